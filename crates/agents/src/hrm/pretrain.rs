//! Supervised pre-training on hindsight-optimal action labels (algorithms.md
//! 2, "Variants"), before PPO fine-tuning.
//!
//! Each epoch drives the training environments with the teacher (the label
//! for each environment's bar and current position, at full quantity), so
//! the observations, account features included, are the ones the agent will
//! meet, and the labels cover positions the teacher holds. The model then
//! learns them with deep supervision: cross-entropy of every segment's
//! masked policy against the label, and the Q-head trained on whether each
//! segment was right (HRM's halting target). The quantity and value heads
//! are left to PPO.

use std::sync::Arc;

use candle_core::Tensor;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tradelab_core::Action;
use tradelab_env::{EnvAction, MarketData, Split, VecEnv};
use tradelab_nn::heads::masked_log_probs;

use super::halting::Reference;
use super::supervision::scalar;
use super::HrmAgent;
use crate::agent::MarketKey;
use crate::error::AgentError;
use crate::hindsight::{HindsightLabels, LabelCosts};
use crate::rollout::RolloutBuffer;

/// One pre-training epoch's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PretrainStats {
    /// Mean cross-entropy over segments.
    pub cross_entropy: f64,
    /// Share of samples whose deepest segment picks the label.
    pub accuracy: f64,
    /// Mean Q-halting loss (binary cross-entropy against the label-based
    /// halt targets) over the minibatches.
    pub halt_loss: f64,
    /// Labelled samples in the epoch's rollout (`envs x rollout_steps`).
    pub samples: usize,
}

/// Labels for each market's training split, under `costs`.
pub fn training_labels(data: &[Arc<MarketData>], costs: LabelCosts) -> Vec<HindsightLabels> {
    data.iter()
        .map(|d| {
            let steps = d.steps(Split::Train);
            HindsightLabels::new(&d.series, steps.start, steps.end, costs)
        })
        .collect()
}

impl HrmAgent {
    /// One epoch: a teacher-driven rollout of `ppo.envs x ppo.rollout_steps`
    /// samples, then `ppo.epochs` shuffled passes in `ppo.minibatches`
    /// minibatches at `pretrain_learning_rate`. `labels[m]` labels market
    /// `m` of `envs`.
    pub fn pretrain_epoch(
        &mut self,
        envs: &mut VecEnv,
        markets: &[MarketKey],
        labels: &[HindsightLabels],
        epoch: usize,
    ) -> Result<PretrainStats, AgentError> {
        let (n, steps) = (envs.len(), self.config.ppo.rollout_steps);
        if labels.len() < markets.len() {
            return Err(AgentError::Invalid(format!(
                "{} markets but labels for {}",
                markets.len(),
                labels.len()
            )));
        }
        let wlen = self.config.window * self.config.features;
        let mut b = RolloutBuffer::new(n, steps, wlen);
        let mut acts = vec![EnvAction::new(Action::Hold, 1.0); n];
        for t in 0..steps {
            b.record_observations(t, envs, markets);
            for (e, act) in acts.iter_mut().enumerate() {
                let env = envs.env(e);
                let position = env.broker().account().position(0).qty;
                let label = labels[envs.market(e)]
                    .label(env.bar_index(), position)
                    .unwrap_or(Action::Hold);
                b.actions[t * n + e] = label.index() as u32;
                *act = EnvAction::new(label, 1.0);
            }
            envs.step(&acts);
        }

        let total = n * steps;
        let batch = b.batch(self.config.window, self.config.features, &b.values, &self.device)?;
        let per = (total / self.config.ppo.minibatches.max(1)).max(1);
        let mut order: Vec<u32> = (0..total as u32).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let lr = self.config.model.pretrain_learning_rate;
        let (mut sums, mut count) = ([0f64; 3], 0f64);
        for _ in 0..self.config.ppo.epochs {
            order.shuffle(&mut rng);
            for idx in order.chunks(per) {
                let m = idx.len();
                let ix = Tensor::from_slice(idx, m, &self.device)?;
                let pick = |t: &Tensor| t.index_select(&ix, 0);
                let x = self.net.embed(
                    &pick(&batch.windows)?,
                    &pick(&batch.accounts)?,
                    &pick(&batch.instruments)?,
                    &pick(&batch.timeframes)?,
                )?;
                let masks = pick(&batch.masks)?;
                let targets = pick(&batch.actions)?;
                let references: Vec<Reference> = idx
                    .iter()
                    .map(|&i| Reference::Label(b.actions[i as usize] as usize))
                    .collect();
                let column = targets.unsqueeze(1)?;
                let r = self.deep_supervision_step(&x, &masks, &references, lr, |out| {
                    let log_probs = masked_log_probs(&out.logits, &masks)?;
                    let ce = log_probs.gather(&column, 1)?.mean_all()?.neg()?;
                    let hits = log_probs
                        .argmax(1)?
                        .eq(&targets)?
                        .to_dtype(candle_core::DType::F32)?
                        .mean_all()?;
                    Ok((ce.clone(), [scalar(&ce)?, scalar(&hits)?, 0.0, 0.0, 0.0]))
                })?;
                sums[0] += r.mean[0];
                sums[1] += r.deepest[1];
                sums[2] += r.halt_loss;
                count += 1.0;
            }
        }
        Ok(PretrainStats {
            cross_entropy: sums[0] / count,
            accuracy: sums[1] / count,
            halt_loss: sums[2] / count,
            samples: total,
        })
    }
}
