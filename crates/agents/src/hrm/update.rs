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
//! Two passes keep memory flat: the first runs every segment without
//! gradient, keeping only the states each final step starts from and the
//! outputs for the halting targets (a segment should halt when its decision
//! agrees with the deepest segment's; its continue value is the next
//! segment's best Q, see [`super::halting`]). The second re-runs each
//! segment's final L and H step with gradient from those states and
//! back-propagates its loss at once. With the one-step gradient this is
//! exactly the gradient of the mean segment loss; only one segment's graph
//! exists at a time.

use candle_core::{DType, Tensor};
use tradelab_nn::heads::{categorical_entropy, masked_log_probs, Beta};
use tradelab_nn::hrm::SegmentOutput;

use super::halting::{halting_targets, SegmentDecision};
use super::HrmAgent;
use crate::agent::LearnStats;
use crate::epochs::{run_epochs, Schedule, APPROX_KL, FIGURES};
use crate::error::AgentError;
use crate::gae::{explained_variance, gae, Rollout};
use crate::rollout::{entry, Batch, RolloutBuffer};

/// `BCE(sigmoid(z), y)` per element, computed stably from the logit.
fn bce_with_logits(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let softplus_neg_abs = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (z.relu()? - (z * y)?)? + softplus_neg_abs
}

impl HrmAgent {
    pub(crate) fn update(&mut self, b: &RolloutBuffer) -> Result<LearnStats, AgentError> {
        let p = self.config.ppo.clone();
        let (n, t) = (b.envs, b.steps);
        let (advantages, returns) = gae(
            &Rollout {
                envs: n,
                rewards: &b.rewards,
                values: &b.values,
                terminated: &b.terminated,
                truncated: &b.truncated,
                final_values: &b.final_values,
                last_values: &b.last_values,
            },
            p.gamma as f32,
            p.gae_lambda as f32,
        );
        let batch = b.batch(self.config.window, self.config.features, &returns, &self.device)?;
        let base = self.config.model.learning_rate;
        let lr = if p.anneal_lr {
            base * (1.0 - self.updates as f64 / self.config.total_updates() as f64).max(0.0)
        } else {
            base
        };
        let schedule = Schedule {
            envs: n,
            steps: t,
            epochs: p.epochs,
            minibatches: p.minibatches,
            target_kl: p.target_kl,
        };
        let mut rng = self.rng.clone();
        let (means, epochs) = run_epochs(&schedule, &mut rng, &advantages, |idx, adv| {
            self.minibatch_step(&batch, idx, adv, lr)
        })?;
        self.rng = rng;
        Ok(LearnStats {
            learning_rate: lr,
            epochs,
            policy_loss: means[0],
            value_loss: means[1],
            entropy: means[2],
            approx_kl: means[APPROX_KL],
            clip_fraction: means[4],
            grad_norm: means[5],
            halt_loss: means[6],
            explained_variance: explained_variance(&b.values, &returns),
            ..Default::default()
        })
    }

    /// Every segment's loss, one backward pass and one Adam step. Returns
    /// the policy, value, entropy terms, approx-KL and clip fraction (of the
    /// deepest segment), gradient norm and halting loss.
    pub(crate) fn minibatch_step(
        &mut self,
        batch: &Batch,
        idx: &[u32],
        adv: Vec<f32>,
        lr: f64,
    ) -> Result<[f64; FIGURES], AgentError> {
        let p = &self.config.ppo;
        let model = &self.config.model;
        let m = idx.len();
        let d = &self.device;
        let ix = Tensor::from_slice(idx, m, d)?;
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
        let adv = Tensor::from_vec(adv, m, d)?;

        // Pass 1, without gradient: every segment's starting states for its
        // final step, and its outputs for the halting targets.
        let plain = x.detach();
        let mut carry = self.net.initial_carry(m)?;
        let mut ahead = Vec::with_capacity(model.max_segments);
        let mut outputs: Vec<SegmentOutput> = Vec::with_capacity(model.max_segments);
        for _ in 0..model.max_segments {
            let states = self.net.think_ahead(&carry, &plain)?;
            let (next, out) = self.net.final_step(&states, &plain)?;
            ahead.push(states);
            outputs.push(out);
            carry = next;
        }
        let (halt_targets, cont_targets, cont_weights) = self.halting_targets(&outputs, &masks)?;
        drop(outputs);

        // Pass 2: per segment, the final step with gradient, its loss, and
        // its backward pass at once, so only one segment's graph is ever
        // alive (memory flat in M_max as well as in N x T).
        let segments = ahead.len() as f64;
        let mut grads: Option<candle_core::backprop::GradStore> = None;
        let mut sums = [0f64; 4];
        let (mut approx_kl, mut clip_fraction) = (0f64, 0f64);
        for (k, states) in ahead.iter().enumerate() {
            let (_, out) = self.net.final_step(states, &x)?;
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
            let halt_loss = bce_with_logits(&out.q_halt, &halt_targets[k])?.mean_all()?;
            let cont_loss = (bce_with_logits(&out.q_continue, &cont_targets[k])? * &cont_weights[k])?.mean_all()?;
            let q_loss = (halt_loss + cont_loss)?;
            let loss = (((&policy_loss + (&value_loss * p.value_coef)?)? - (&entropy * p.entropy_coef)?)?
                + (&q_loss * model.halt_loss_coef)?)?;
            let g = (loss / segments)?.backward()?;
            match grads.as_mut() {
                None => grads = Some(g),
                Some(acc) => acc.extend(g)?,
            }
            let scalar = |t: &Tensor| -> Result<f64, AgentError> { Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?) };
            for (s, v) in sums.iter_mut().zip([&policy_loss, &value_loss, &entropy, &q_loss]) {
                *s += scalar(v)? / segments;
            }
            if k + 1 == ahead.len() {
                approx_kl = scalar(&((&ratio - 1.0)? - &log_ratio)?.mean_all()?)?;
                clip_fraction = scalar(&(&ratio - 1.0)?.abs()?.gt(p.clip)?.to_dtype(DType::F32)?.mean_all()?)?;
            }
        }
        let grads = grads.ok_or_else(|| AgentError::Invalid("max_segments must be at least 1".into()))?;
        let grad_norm = self.adam.step(&grads, lr, p.max_grad_norm)?;
        Ok([sums[0], sums[1], sums[2], approx_kl, clip_fraction, grad_norm, sums[3]])
    }

    /// Per segment: halt targets, continue targets and continue weights
    /// (0 for the last segment, which cannot continue), `[m]` each.
    #[allow(clippy::type_complexity)]
    fn halting_targets(
        &self,
        outputs: &[SegmentOutput],
        masks: &Tensor,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>, Vec<Tensor>), AgentError> {
        let model = &self.config.model;
        let m = masks.dim(0)?;
        // Detached per-segment summaries, [segment][sample].
        let mut summaries: Vec<Vec<SegmentDecision>> = Vec::with_capacity(outputs.len());
        for out in outputs {
            let lp = masked_log_probs(&out.logits.detach(), masks)?.to_vec2::<f32>()?;
            let beta = Beta::from_raw(&out.raw_alpha.detach(), &out.raw_beta.detach())?;
            let mean = (&beta.alpha / (&beta.alpha + &beta.beta)?)?.to_vec1::<f32>()?;
            let sigmoid = |t: &Tensor| -> Result<Vec<f32>, AgentError> {
                Ok(t.to_vec1::<f32>()?
                    .into_iter()
                    .map(|z| 1.0 / (1.0 + (-z).exp()))
                    .collect())
            };
            let (halt, cont) = (sigmoid(&out.q_halt)?, sigmoid(&out.q_continue)?);
            summaries.push(
                (0..m)
                    .map(|s| SegmentDecision {
                        action: (0..5).fold(0, |best, k| if lp[s][k] > lp[s][best] { k } else { best }),
                        quantity: mean[s],
                        halt: halt[s],
                        cont: cont[s],
                    })
                    .collect(),
            );
        }
        let d = &self.device;
        let (mut halts, mut conts, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        let mut per_sample = Vec::with_capacity(outputs.len());
        for k in 0..outputs.len() {
            let (mut h, mut c, mut w) = (vec![0f32; m], vec![0f32; m], vec![0f32; m]);
            for s in 0..m {
                per_sample.clear();
                per_sample.extend(summaries.iter().map(|seg| seg[s]));
                let (halt, cont) = halting_targets(
                    &per_sample,
                    k,
                    model.quantity_tolerance as f32,
                    model.continue_margin as f32,
                    |a| entry(a) > 0.0,
                );
                h[s] = halt;
                if let Some(cont) = cont {
                    (c[s], w[s]) = (cont, 1.0);
                }
            }
            halts.push(Tensor::from_vec(h, m, d)?);
            conts.push(Tensor::from_vec(c, m, d)?);
            weights.push(Tensor::from_vec(w, m, d)?);
        }
        Ok((halts, conts, weights))
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
