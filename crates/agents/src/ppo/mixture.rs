//! The mixture of experts as a PPO agent (`moe`, algorithms.md §5): four
//! specialist policies (trend, mean reversion, volatility, consolidation)
//! under a gate that reads the last bar's features, which carry the
//! filtered regime probabilities and the specialist weights they imply,
//! and the account.
//!
//! Acting samples the mixture exactly: a specialist is drawn from the gate,
//! then the action and quantity from that specialist; the recorded
//! log-probability is the mixture's, log Σ_k g_k π_k(a), so PPO's ratio is
//! the mixture's. Greedy decisions take the mixture's most likely action
//! and the gate-weighted quantity (soft blending, never a hard switch).
//!
//! Training is joint, one loss and one optimiser over gate and specialists:
//! - the mixture's clipped objective, value loss and entropy bonus;
//! - regime-weighted data: each specialist's own clipped objective (its
//!   importance ratio π_k / π_old, clamped) and value loss, averaged over
//!   the samples with the bar's weight for that specialist, times
//!   `specialist_coef`;
//! - a cross-entropy pulling the gate toward those weights, times
//!   `gate_prior_coef`, which the policy gradient can overrule.

use candle_core::{Tensor, D};
use rand::Rng;
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};
use tradelab_core::Action;
use tradelab_nn::heads::{masked_log_probs, Beta};
use tradelab_nn::moe::{mixture_log_prob, MixtureOutput, MixturePolicy};

use super::update::{clipped_surrogate, LossParts};
use super::{Net, PpoAgent};
use crate::agent::{AgentInput, MarketKey};
use crate::error::AgentError;
use crate::rollout::{entry, Acted, Batch};
use crate::sampling::{argmax, quantity_is_the_target, sample, QUANTITY_EPS};

/// The mixture's type name.
pub const MOE_KIND: &str = crate::kinds::MOE;
/// A specialist's importance ratio against the mixture that acted is
/// clamped here: the data is the mixture's, not its own.
const MAX_SPECIALIST_RATIO: f64 = 10.0;

/// The mixture's shape and the feature columns it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureConfig {
    /// Hidden units of the gating network.
    pub gate_hidden: usize,
    /// Weight of each specialist's own clipped objective and value loss on
    /// its regime-weighted samples.
    pub specialist_coef: f64,
    /// Weight of the cross-entropy pulling the gate toward the bar's
    /// specialist weights (0: the policy gradient alone trains the gate).
    pub gate_prior_coef: f64,
    /// Names of the specialists, one per expert.
    pub specialists: Vec<String>,
    /// Feature columns holding each specialist's weight for the bar.
    pub specialist_columns: Vec<usize>,
    /// Feature columns holding the regime probabilities (for logging
    /// which specialists carry the weight in which regime).
    pub regime_columns: Vec<usize>,
}

impl MixtureConfig {
    /// Finds the columns by name in the model's feature list.
    pub fn from_features(
        features: &[String],
        specialists: &[&str],
        settings: &crate::settings::MoeSettings,
    ) -> Result<MixtureConfig, AgentError> {
        let column = |name: String| {
            features.iter().position(|f| *f == name).ok_or_else(|| {
                AgentError::Invalid(format!(
                    "the mixture of experts needs the feature `{name}`; turn on regime.features"
                ))
            })
        };
        let specialist_columns = specialists
            .iter()
            .map(|s| column(format!("specialist_{s}")))
            .collect::<Result<Vec<_>, _>>()?;
        let regime_columns = features
            .iter()
            .enumerate()
            .filter(|(_, f)| f.starts_with("regime_p"))
            .map(|(i, _)| i)
            .collect();
        Ok(MixtureConfig {
            gate_hidden: settings.gate_hidden,
            specialist_coef: settings.specialist_coef,
            gate_prior_coef: settings.gate_prior_coef,
            specialists: specialists.iter().map(|s| s.to_string()).collect(),
            specialist_columns,
            regime_columns,
        })
    }

    pub(super) fn check(&self, features: usize) -> Result<(), AgentError> {
        if self.specialist_columns.is_empty() || self.specialists.len() != self.specialist_columns.len() {
            return Err(AgentError::Invalid(format!(
                "a mixture needs one weight column per specialist ({} names, {} columns)",
                self.specialists.len(),
                self.specialist_columns.len()
            )));
        }
        if let Some(c) = self
            .specialist_columns
            .iter()
            .chain(&self.regime_columns)
            .find(|&&c| c >= features)
        {
            return Err(AgentError::Invalid(format!(
                "mixture column {c} is outside the {features} features"
            )));
        }
        Ok(())
    }
}

/// Gate weights summed by the most likely regime over one rollout.
#[derive(Debug, Clone, Default)]
pub struct GateLog {
    total: Vec<f64>,
    samples: usize,
    by_regime: Vec<Vec<f64>>,
    counts: Vec<usize>,
}

impl GateLog {
    fn add(&mut self, regime: Option<usize>, gate: &[f32]) {
        let k = gate.len();
        if self.total.len() != k {
            self.total = vec![0.0; k];
        }
        for (t, g) in self.total.iter_mut().zip(gate) {
            *t += *g as f64;
        }
        self.samples += 1;
        if let Some(r) = regime {
            if self.by_regime.len() <= r {
                self.by_regime.resize(r + 1, vec![0.0; k]);
                self.counts.resize(r + 1, 0);
            }
            for (t, g) in self.by_regime[r].iter_mut().zip(gate) {
                *t += *g as f64;
            }
            self.counts[r] += 1;
        }
    }

    /// Mean weights overall and per regime (empty where it had no sample).
    pub fn means(self) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n = self.samples.max(1) as f64;
        let total = self.total.iter().map(|t| t / n).collect();
        let by_regime = self
            .by_regime
            .into_iter()
            .zip(self.counts)
            .map(|(row, c)| {
                if c == 0 {
                    Vec::new()
                } else {
                    row.iter().map(|t| t / c as f64).collect()
                }
            })
            .collect();
        (total, by_regime)
    }
}

/// What the mixture intends for one observation: the gate's weights, each
/// specialist's signed exposure, P(buy long)·E\[q\] − P(sell short)·E\[q\]
/// (under `env.actions: exposure`, its mean target 2·E\[q\] − 1), and
/// the specialist the most likely regime calls for (the largest of the
/// bar's specialist weights).
#[derive(Debug, Clone, PartialEq)]
pub struct MixtureView {
    /// The gate's weight per specialist (sums to 1).
    pub gate: Vec<f32>,
    /// Each specialist's signed exposure, in [−1, 1]: positive leans long.
    pub exposures: Vec<f32>,
    /// Index of the specialist whose weight column is largest on the bar.
    pub regime_specialist: usize,
}

impl MixtureView {
    /// Σ_k g_k exposure_k: soft blending.
    pub fn blended(&self) -> f64 {
        self.gate.iter().zip(&self.exposures).map(|(g, e)| (g * e) as f64).sum()
    }

    /// The exposure of the regime's specialist alone: hard switching.
    pub fn switched(&self) -> f64 {
        self.exposures.get(self.regime_specialist).copied().unwrap_or(0.0) as f64
    }

    /// The exposure of the specialist the gate weighs most.
    pub fn top_gate(&self) -> f64 {
        let top = (0..self.gate.len())
            .max_by(|&i, &j| self.gate[i].total_cmp(&self.gate[j]))
            .unwrap_or(0);
        self.exposures.get(top).copied().unwrap_or(0.0) as f64
    }
}

/// Position disruption around regime transitions: for each switch at bar
/// τ, the largest one-bar change of exposure within `half_width` bars of
/// it, as a fraction of the exposure's full range (−1 to 1), averaged over
/// switches. 0 when the position glides, 1 when it flips long to short
/// in one bar.
pub fn transition_disruption(exposure: &[f64], switches: &[usize], half_width: usize) -> f64 {
    let mut total = 0.0;
    let mut counted = 0;
    for &tau in switches {
        let lo = tau.saturating_sub(half_width).max(1);
        let hi = (tau + half_width + 1).min(exposure.len());
        if lo >= hi {
            continue;
        }
        let jump = (lo..hi)
            .map(|t| (exposure[t] - exposure[t - 1]).abs())
            .fold(0.0, f64::max);
        total += jump / 2.0;
        counted += 1;
    }
    if counted == 0 {
        0.0
    } else {
        total / counted as f64
    }
}

impl PpoAgent {
    fn mixture_config(&self) -> &MixtureConfig {
        self.config
            .mixture
            .as_ref()
            .expect("a mixture network has a mixture config")
    }

    /// The mixture's names of its specialists (empty for a single policy).
    pub fn specialists(&self) -> Vec<String> {
        self.config
            .mixture
            .as_ref()
            .map(|m| m.specialists.clone())
            .unwrap_or_default()
    }

    /// Acts with specialist `k` alone (`None`: the whole mixture), to
    /// measure each specialist's own performance.
    pub fn force_expert(&mut self, k: Option<usize>) -> Result<(), AgentError> {
        let experts = self.specialists().len();
        if let Some(k) = k.filter(|&k| k >= experts) {
            return Err(AgentError::Invalid(format!(
                "specialist {k} does not exist; this model has {experts}"
            )));
        }
        self.forced_expert = k;
        Ok(())
    }

    pub(super) fn forward_mixture(
        &self,
        mix: &MixturePolicy,
        windows: &[f32],
        accounts: &[f32],
        keys: &[MarketKey],
    ) -> Result<MixtureOutput, AgentError> {
        let x = self.inputs(windows, accounts, keys)?;
        Ok(mix.forward(&x.window, &x.account, &x.instrument, &x.timeframe)?)
    }

    /// The gate's weights, replaced by a one-hot row when a specialist is forced.
    fn gate_rows(&self, out: &MixtureOutput) -> Result<Vec<Vec<f32>>, AgentError> {
        let mut g = out.log_gate.exp()?.to_vec2::<f32>()?;
        if let Some(k) = self.forced_expert {
            for row in &mut g {
                row.iter_mut()
                    .enumerate()
                    .for_each(|(j, w)| *w = if j == k { 1.0 } else { 0.0 });
            }
        }
        Ok(g)
    }

    /// The most likely regime of a window's last bar, if its features say.
    fn regime_of(&self, window: &[f32]) -> Option<usize> {
        let cols = &self.mixture_config().regime_columns;
        let last = &window[(self.config.window - 1) * self.config.features..];
        let (best, p) = cols
            .iter()
            .enumerate()
            .map(|(r, &c)| (r, last[c]))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        (p > 0.0).then_some(best)
    }

    pub(super) fn act_mixture(
        &mut self,
        windows: &[f32],
        accounts: &[f32],
        masks: &[f32],
        keys: &[MarketKey],
        greedy: bool,
    ) -> Result<Acted, AgentError> {
        let Net::Mixture(mix) = &self.net else {
            unreachable!("act_mixture is only called for a mixture")
        };
        let n = keys.len();
        let out = self.forward_mixture(mix, windows, accounts, keys)?;
        let mask = Tensor::from_slice(masks, (n, 5), &self.device)?;
        let gate = self.gate_rows(&out)?;
        let mut log_probs = Vec::with_capacity(out.experts.len());
        let mut alphas = Vec::with_capacity(out.experts.len());
        let mut betas = Vec::with_capacity(out.experts.len());
        let mut modes = Vec::with_capacity(out.experts.len());
        let mut means = Vec::with_capacity(out.experts.len());
        for o in &out.experts {
            log_probs.push(masked_log_probs(&o.logits, &mask)?.to_vec2::<f32>()?);
            let beta = Beta::from_raw(&o.raw_alpha, &o.raw_beta)?;
            alphas.push(beta.alpha.to_vec1::<f32>()?);
            betas.push(beta.beta.to_vec1::<f32>()?);
            if greedy {
                modes.push(beta.mode()?.to_vec1::<f32>()?);
                means.push(beta.mean()?.to_vec1::<f32>()?);
            }
        }
        let values = match self.forced_expert {
            Some(k) => out.experts[k].value.to_vec1::<f32>()?,
            None => out.value.to_vec1::<f32>()?,
        };
        let mut acted = Acted {
            values,
            ..Default::default()
        };
        let wlen = self.config.window * self.config.features;
        for i in 0..n {
            let g = &gate[i];
            let p: [f32; 5] =
                std::array::from_fn(|a| g.iter().enumerate().map(|(k, gk)| gk * log_probs[k][i][a].exp()).sum());
            let (a, q) = if greedy {
                // An exposure target is the gate-weighted mean of the
                // specialists' means (the mixture's expected target).
                let greedy_q = if quantity_is_the_target(&masks[i * 5..i * 5 + 5]) {
                    &means
                } else {
                    &modes
                };
                let q = g.iter().enumerate().map(|(k, gk)| gk * greedy_q[k][i]).sum::<f32>();
                (argmax(&p), q)
            } else {
                let mut gk = [0f32; 5];
                let k = sample_index(g, self.rng.random::<f32>());
                gk.iter_mut()
                    .enumerate()
                    .for_each(|(a, x)| *x = log_probs[k][i][a].exp());
                let a = sample(&gk, self.rng.random::<f32>());
                let q = rand_distr::Beta::new(alphas[k][i], betas[k][i])
                    .map(|b| b.sample(&mut self.rng))
                    .unwrap_or(0.5);
                (a, q)
            };
            acted.actions.push(a as u32);
            acted.quantities.push(q.clamp(QUANTITY_EPS, 1.0 - QUANTITY_EPS));
            acted.probabilities.push(p);
            if !greedy {
                let regime = self.regime_of(&windows[i * wlen..(i + 1) * wlen]);
                self.gate_log.add(regime, g);
            }
        }
        if !greedy {
            let actions = Tensor::from_slice(&acted.actions, n, &self.device)?;
            let quantities = Tensor::from_slice(&acted.quantities, n, &self.device)?;
            let entries: Vec<f32> = acted.actions.iter().map(|&a| entry(a as usize)).collect();
            let entries = Tensor::from_vec(entries, n, &self.device)?;
            let lp = MixturePolicy::log_prob(&out, &mask, &actions, &quantities, &entries)?;
            acted.log_probs = lp.to_vec1::<f32>()?;
        }
        Ok(acted)
    }

    /// The mixture's intent for one observation (see [`MixtureView`]);
    /// `None` for a single policy.
    pub fn mixture_view(&self, input: &AgentInput<'_>) -> Result<Option<MixtureView>, AgentError> {
        let Net::Mixture(mix) = &self.net else {
            return Ok(None);
        };
        let mask: Vec<f32> = input.mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
        let target = quantity_is_the_target(&mask);
        let out = self.forward_mixture(mix, input.window, &input.account, &[input.market])?;
        let mask = Tensor::from_vec(mask, (1, 5), &self.device)?;
        let gate = self.gate_rows(&out)?.remove(0);
        let mut exposures = Vec::with_capacity(out.experts.len());
        for o in &out.experts {
            let p = masked_log_probs(&o.logits, &mask)?.exp()?.to_vec2::<f32>()?.remove(0);
            let beta = Beta::from_raw(&o.raw_alpha, &o.raw_beta)?;
            let mean = beta.mean()?.to_vec1::<f32>()?[0];
            // An exposure target's mean is the exposure itself, read as 2q - 1.
            exposures.push(if target {
                2.0 * mean - 1.0
            } else {
                (p[Action::BuyLong.index()] - p[Action::SellShort.index()]) * mean
            });
        }
        let last = &input.window[(self.config.window - 1) * self.config.features..];
        let regime_specialist = self
            .mixture_config()
            .specialist_columns
            .iter()
            .enumerate()
            .max_by(|a, b| last[*a.1].total_cmp(&last[*b.1]))
            .map_or(0, |(k, _)| k);
        Ok(Some(MixtureView {
            gate,
            exposures,
            regime_specialist,
        }))
    }

    /// The mixture's loss on one minibatch (see the module docs).
    pub(super) fn mixture_loss(&self, batch: &Batch, idx: &[u32], adv: Vec<f32>) -> Result<LossParts, AgentError> {
        let Net::Mixture(mix) = &self.net else {
            unreachable!("mixture_loss is only called for a mixture")
        };
        let p = &self.config.ppo;
        let m_cfg = self.mixture_config();
        let m = idx.len();
        let ix = Tensor::from_slice(idx, m, &self.device)?;
        let pick = |t: &Tensor| t.index_select(&ix, 0);
        let windows = pick(&batch.windows)?;
        let out = mix.forward(
            &windows,
            &pick(&batch.accounts)?,
            &pick(&batch.instruments)?,
            &pick(&batch.timeframes)?,
        )?;
        let mask = pick(&batch.masks)?;
        let per = MixturePolicy::expert_log_probs(
            &out,
            &mask,
            &pick(&batch.actions)?,
            &pick(&batch.quantities)?,
            &pick(&batch.entries)?,
        )?;
        let new_lp = mixture_log_prob(&out.log_gate, &per)?;
        let old_lp = pick(&batch.old_log_probs)?;
        let log_ratio = (&new_lp - &old_lp)?;
        let ratio = log_ratio.exp()?;
        let adv = Tensor::from_vec(adv, m, &self.device)?;
        let surrogate = |ratio: &Tensor, adv: &Tensor| clipped_surrogate(ratio, adv, p.clip);
        let policy_loss = surrogate(&ratio, &adv)?.mean_all()?;
        let returns = pick(&batch.returns)?;
        let value_loss = ((&out.value - &returns)?.sqr()?.mean_all()? * 0.5)?;

        // The mixture's action entropy, plus the gate-weighted quantity entropies.
        let gate = out.log_gate.exp()?;
        let mut action_probs = Vec::with_capacity(out.experts.len());
        let mut quantity_entropy = Vec::with_capacity(out.experts.len());
        for o in &out.experts {
            action_probs.push(masked_log_probs(&o.logits, &mask)?.exp()?);
            quantity_entropy.push(Beta::from_raw(&o.raw_alpha, &o.raw_beta)?.entropy()?);
        }
        let mixed = Tensor::stack(&action_probs, 1)?
            .broadcast_mul(&gate.unsqueeze(2)?)?
            .sum(1)?;
        let action_entropy = (&mixed * (&mixed + 1e-12)?.log()?)?.sum(D::Minus1)?.neg()?;
        let q_entropy = (Tensor::stack(&quantity_entropy, 1)? * &gate)?.sum(D::Minus1)?;
        let entropy = (action_entropy + q_entropy)?.mean_all()?;

        // Regime-weighted data: each specialist on the samples of its regimes.
        let columns: Vec<u32> = m_cfg.specialist_columns.iter().map(|&c| c as u32).collect();
        let columns = Tensor::from_vec(columns, m_cfg.specialist_columns.len(), &self.device)?;
        let weights = windows
            .narrow(1, self.config.window - 1, 1)?
            .squeeze(1)?
            .contiguous()?
            .index_select(&columns, 1)?
            .clamp(0.0, 1.0)?;
        let total_weight = (weights.sum(0)? + 1e-6)?;
        let specialist_ratio = per
            .broadcast_sub(&old_lp.unsqueeze(1)?)?
            .clamp(-30.0, MAX_SPECIALIST_RATIO.ln())?
            .exp()?;
        let specialist_policy = surrogate(
            &specialist_ratio,
            &adv.unsqueeze(1)?.broadcast_as(specialist_ratio.shape())?,
        )?;
        let expert_values = Tensor::stack(&out.experts.iter().map(|o| &o.value).collect::<Vec<_>>(), 1)?;
        let specialist_value = (expert_values.broadcast_sub(&returns.unsqueeze(1)?)?.sqr()? * 0.5)?;
        let weighted =
            |x: &Tensor| -> candle_core::Result<Tensor> { ((&weights * x)?.sum(0)? / &total_weight)?.sum_all() };
        let specialist_loss = (weighted(&specialist_policy)? + (weighted(&specialist_value)? * p.value_coef)?)?;
        let gate_prior = (&weights * &out.log_gate)?.sum(D::Minus1)?.mean_all()?.neg()?;

        let loss = ((&policy_loss + (&value_loss * p.value_coef)?)? - (&entropy * p.entropy_coef)?)?;
        let loss = ((loss + (specialist_loss * m_cfg.specialist_coef)?)? + (gate_prior * m_cfg.gate_prior_coef)?)?;

        Ok(LossParts {
            loss,
            policy_loss,
            value_loss,
            entropy,
            ratio,
            log_ratio,
        })
    }
}

/// Inverse-CDF draw of an index from weights that sum to about 1.
fn sample_index(weights: &[f32], u: f32) -> usize {
    let mut acc = 0.0;
    for (k, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            return k;
        }
    }
    weights.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disruption_is_the_largest_jump_near_a_switch_over_the_full_range() {
        // A flip from fully short to fully long in one bar is total disruption.
        let hard = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0];
        assert!((transition_disruption(&hard, &[3], 2) - 1.0).abs() < 1e-12);
        // The same move over four bars: half a unit per bar is a quarter of the range.
        let soft = [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0];
        assert!((transition_disruption(&soft, &[3], 2) - 0.25).abs() < 1e-12);
        // Jumps far from any switch do not count.
        let far = [1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0];
        assert_eq!(transition_disruption(&far, &[6], 2), 0.0);
        assert_eq!(transition_disruption(&far, &[], 2), 0.0);
    }

    #[test]
    fn blended_and_switched_exposures() {
        let v = MixtureView {
            gate: vec![0.6, 0.4],
            exposures: vec![1.0, -1.0],
            regime_specialist: 1,
        };
        assert!((v.blended() - 0.2).abs() < 1e-6);
        assert_eq!(v.switched(), -1.0);
        assert_eq!(v.top_gate(), 1.0);
        let log = {
            let mut l = GateLog::default();
            l.add(Some(1), &[0.2, 0.8]);
            l.add(Some(1), &[0.4, 0.6]);
            l.add(None, &[1.0, 0.0]);
            l.means()
        };
        assert_eq!(log.1[0], Vec::<f64>::new());
        assert!((log.1[1][1] - 0.7).abs() < 1e-6 && (log.0[0] - 1.6 / 3.0).abs() < 1e-6);
    }
}
