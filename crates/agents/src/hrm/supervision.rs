//! Deep supervision (algorithms.md 1.4) in two passes, shared by PPO
//! fine-tuning and supervised pre-training.
//!
//! The first pass runs every segment without gradient, keeping only the
//! states each segment's final step starts from and the outputs the
//! halting targets need. The second re-runs each segment's final L and H
//! step with gradient from those states and back-propagates its loss at
//! once. With the one-step gradient this is exactly the gradient of the
//! mean segment loss (tested in `tradelab_nn::hrm`), and only one segment's
//! graph exists at a time: memory is flat in N x T and in M_max.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use tradelab_nn::heads::{masked_log_probs, Beta};
use tradelab_nn::hrm::SegmentOutput;

use super::halting::{halting_targets, Reference, SegmentDecision};
use super::HrmAgent;
use crate::error::AgentError;
use crate::rollout::entry;

/// Figures a segment's task loss reports (averaged over segments).
pub(crate) const TASK_FIGURES: usize = 5;

pub(crate) struct Supervised {
    /// Task figures averaged over segments.
    pub mean: [f64; TASK_FIGURES],
    /// Task figures of the deepest segment.
    pub deepest: [f64; TASK_FIGURES],
    /// Mean Q-halting loss.
    pub halt_loss: f64,
    pub grad_norm: f64,
}

/// `BCE(sigmoid(z), y)` per element, computed stably from the logit.
fn bce_with_logits(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let softplus_neg_abs = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (z.relu()? - (z * y)?)? + softplus_neg_abs
}

pub(crate) fn scalar(t: &Tensor) -> Result<f64, AgentError> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

impl HrmAgent {
    /// One optimiser step of deep supervision on the embedded batch `x`:
    /// every segment's `task_loss` plus the halting loss (targets from
    /// `references`, one per sample), averaged over segments.
    pub(crate) fn deep_supervision_step(
        &mut self,
        x: &Tensor,
        masks: &Tensor,
        references: &[Reference],
        lr: f64,
        mut task_loss: impl FnMut(&SegmentOutput) -> Result<(Tensor, [f64; TASK_FIGURES]), AgentError>,
    ) -> Result<Supervised, AgentError> {
        let model = self.config.model.clone();
        let plain = x.detach();
        let mut carry = self.net.initial_carry(masks.dim(0)?)?;
        let mut ahead = Vec::with_capacity(model.max_segments);
        let mut outputs: Vec<SegmentOutput> = Vec::with_capacity(model.max_segments);
        for _ in 0..model.max_segments {
            let states = self.net.think_ahead(&carry, &plain)?;
            let (next, out) = self.net.final_step(&states, &plain)?;
            ahead.push(states);
            outputs.push(out);
            carry = next;
        }
        let (halt_targets, cont_targets, cont_weights) = self.halting_targets(&outputs, masks, references)?;
        drop(outputs);

        let segments = ahead.len() as f64;
        let mut grads: Option<GradStore> = None;
        let mut result = Supervised {
            mean: [0.0; TASK_FIGURES],
            deepest: [0.0; TASK_FIGURES],
            halt_loss: 0.0,
            grad_norm: 0.0,
        };
        for (k, states) in ahead.iter().enumerate() {
            let (_, out) = self.net.final_step(states, x)?;
            let (task, figures) = task_loss(&out)?;
            let halt_loss = bce_with_logits(&out.q_halt, &halt_targets[k])?.mean_all()?;
            let cont_loss = (bce_with_logits(&out.q_continue, &cont_targets[k])? * &cont_weights[k])?.mean_all()?;
            let q_loss = (halt_loss + cont_loss)?;
            let loss = (task + (&q_loss * model.halt_loss_coef)?)?;
            let g = (loss / segments)?.backward()?;
            match grads.as_mut() {
                None => grads = Some(g),
                Some(acc) => acc.extend(g)?,
            }
            for (m, f) in result.mean.iter_mut().zip(figures) {
                *m += f / segments;
            }
            result.deepest = figures;
            result.halt_loss += scalar(&q_loss)? / segments;
        }
        let grads = grads.ok_or_else(|| AgentError::Invalid("max_segments must be at least 1".into()))?;
        result.grad_norm = self.adam.step(&grads, lr, self.config.ppo.max_grad_norm)?;
        self.weights_changed();
        Ok(result)
    }

    /// Per segment: halt targets, continue targets and continue weights
    /// (0 for the last segment, which cannot continue), `[m]` each.
    #[allow(clippy::type_complexity)]
    fn halting_targets(
        &self,
        outputs: &[SegmentOutput],
        masks: &Tensor,
        references: &[Reference],
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
                    references[s],
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
