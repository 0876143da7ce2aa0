//! Segment-wise PPO (algorithms.md 2, "Training"): per minibatch, segments
//! 1..M_max are re-run from the initial states with the carry detached
//! between them, and each segment's heads are trained:
//!
//! ```text
//! L^m = -min(r^m A, clip(r^m, 1 +- eps) A) + c_v 1/2 (V^m - R)^2 - c_e H[pi^m]
//!       + c_q [BCE(Q_halt^m, G_halt^m) + BCE(Q_cont^m, G_cont^m)]
//! r^m = exp(log pi^m(a, q | s) - log mu(a, q | s))    (mu: the recorded behaviour policy)
//! L   = mean_m L^m, one Adam step per minibatch
//! ```
//!
//! The two passes that keep memory flat are in [`super::supervision`].

use candle_core::{DType, Tensor};
use tradelab_nn::heads::{categorical_entropy, masked_log_probs, Beta};

use super::halting::Reference;
use super::supervision::scalar;
use super::HrmAgent;
use crate::agent::LearnStats;
use crate::epochs::{learning_rate, ppo_update, FIGURES};
use crate::error::AgentError;
use crate::rollout::{Batch, RolloutBuffer};

impl HrmAgent {
    pub(crate) fn update(&mut self, b: &RolloutBuffer) -> Result<LearnStats, AgentError> {
        let p = self.config.ppo.clone();
        let lr = learning_rate(
            self.config.model.learning_rate,
            p.anneal_lr,
            self.updates,
            self.config.total_updates(),
        );
        let (window, features, device) = (self.config.window, self.config.features, self.device.clone());
        let mut rng = self.rng.clone();
        let stats = ppo_update(
            b,
            &p,
            lr,
            &mut rng,
            |returns| b.batch(window, features, returns, &device),
            |batch, idx, adv| self.minibatch_step(batch, idx, adv, lr),
        )?;
        self.rng = rng;
        Ok(stats)
    }

    /// Every segment's PPO loss and halting loss, one Adam step. Returns
    /// the policy, value and entropy terms (mean over segments), approx-KL
    /// and clip fraction (of the deepest segment), gradient norm and
    /// halting loss.
    pub(crate) fn minibatch_step(
        &mut self,
        batch: &Batch,
        idx: &[u32],
        adv: Vec<f32>,
        lr: f64,
    ) -> Result<[f64; FIGURES], AgentError> {
        let p = self.config.ppo.clone();
        let m = idx.len();
        let d = self.device.clone();
        let ix = Tensor::from_slice(idx, m, &d)?;
        let pick = |t: &Tensor| t.index_select(&ix, 0);
        let x = self.net.embed(
            &pick(&batch.windows)?,
            &pick(&batch.accounts)?,
            &pick(&batch.instruments)?,
            &pick(&batch.timeframes)?,
        )?;
        let masks = pick(&batch.masks)?;
        let actions = pick(&batch.actions)?.unsqueeze(1)?;
        let quantities = pick(&batch.quantities)?;
        let entries = pick(&batch.entries)?;
        let old_lp = pick(&batch.old_log_probs)?;
        let returns = pick(&batch.returns)?;
        let adv = Tensor::from_vec(adv, m, &d)?;
        let references = vec![Reference::Deepest; m];
        let r = self.deep_supervision_step(&x, &masks, &references, lr, |out| {
            let log_probs = masked_log_probs(&out.logits, &masks)?;
            let beta = Beta::from_raw(&out.raw_alpha, &out.raw_beta)?;
            let new_lp = (log_probs.gather(&actions, 1)?.squeeze(1)? + (beta.log_prob(&quantities)? * &entries)?)?;
            let log_ratio = (new_lp - &old_lp)?;
            let ratio = log_ratio.exp()?;
            let unclipped = (adv.neg()? * &ratio)?;
            let clipped = (adv.neg()? * ratio.clamp(1.0 - p.clip, 1.0 + p.clip)?)?;
            let policy_loss = unclipped.maximum(&clipped)?.mean_all()?;
            let value_loss = ((&out.value - &returns)?.sqr()?.mean_all()? * 0.5)?;
            let entropy = (categorical_entropy(&log_probs)? + beta.entropy()?)?.mean_all()?;
            let loss = ((&policy_loss + (&value_loss * p.value_coef)?)? - (&entropy * p.entropy_coef)?)?;
            let approx_kl = ((&ratio - 1.0)? - &log_ratio)?.mean_all()?;
            let clip_fraction = (&ratio - 1.0)?.abs()?.gt(p.clip)?.to_dtype(DType::F32)?.mean_all()?;
            Ok((
                loss,
                [
                    scalar(&policy_loss)?,
                    scalar(&value_loss)?,
                    scalar(&entropy)?,
                    scalar(&approx_kl)?,
                    scalar(&clip_fraction)?,
                ],
            ))
        })?;
        Ok([
            r.mean[0],
            r.mean[1],
            r.mean[2],
            r.deepest[3],
            r.deepest[4],
            r.grad_norm,
            r.halt_loss,
        ])
    }
}

impl HrmAgent {
    /// Seconds per training step (both passes over M_max segments, backward
    /// and Adam) on `batch` observations from `data`'s training split with
    /// synthetic actions and advantages, `repeats` times after one warm-up:
    /// the benchmark of BENCHMARKS.md, which needs no rollout first.
    pub fn time_training_step(
        &mut self,
        data: &tradelab_env::MarketData,
        key: crate::agent::MarketKey,
        batch: usize,
        repeats: usize,
    ) -> Result<Vec<f64>, AgentError> {
        let wlen = self.config.window * self.config.features;
        let mut b = RolloutBuffer::new(batch, 1, wlen);
        let steps = data.steps(tradelab_env::Split::Train);
        if steps.len() < batch {
            return Err(AgentError::Invalid(format!(
                "the training split has {} steps, fewer than the batch of {batch}",
                steps.len()
            )));
        }
        for (i, t) in steps.take(batch).enumerate() {
            b.windows[i * wlen..(i + 1) * wlen].copy_from_slice(data.window(t));
            b.masks[i * 5..(i + 1) * 5].fill(1.0);
            b.keys[i] = key;
            b.actions[i] = (i % 5) as u32;
            b.quantities[i] = 0.5;
            b.log_probs[i] = -1.6;
        }
        let batch_t = b.batch(self.config.window, self.config.features, &b.values, &self.device)?;
        let idx: Vec<u32> = (0..batch as u32).collect();
        let adv: Vec<f32> = (0..batch).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let mut times = Vec::with_capacity(repeats);
        for k in 0..=repeats {
            let start = std::time::Instant::now();
            self.minibatch_step(&batch_t, &idx, adv.clone(), 1e-5)?;
            if k > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        Ok(times)
    }
}
