//! PPO for the MLP policy on the fused kernels of
//! [`tradelab_nn::fused_mlp`]: rollouts and minibatch steps on flat
//! buffers, with the loss's gradient written out by hand and one fused
//! Adam pass. After the first iteration this module allocates nothing per
//! minibatch, and per bar only the small result `Actor::act` returns.
//!
//! The candle network remains the model of record: each `learn` copies
//! the parameters and Adam's moments out of it, trains on the copies, and
//! writes them back, so checkpoints, evaluation, serving and meta-learning
//! see no difference. The loss is the one in `update.rs` (masked
//! categorical and Beta log-probabilities, clipped surrogate, value loss,
//! entropy bonus); tests compare the two on the same batch.

use crate::settings::PpoSettings;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;
use tradelab_env::ACCOUNT_FEATURES;
use tradelab_nn::fused_mlp::{
    BatchRows, MlpLayout, MlpScratch, MlpShape, WindowBlock, OUTPUTS, RAW_ALPHA, RAW_BETA, VALUE,
};
use tradelab_nn::heads::ScalarBeta;

use crate::adam::Adam;
use crate::agent::MarketKey;
use crate::epochs::FIGURES;
use crate::error::AgentError;
use crate::reward_scale::RewardScaler;
use crate::rollout::{entry, Acted, Actor, RolloutBuffer};
use crate::sampling::{argmax, quantity_is_the_target, sample, QUANTITY_EPS};

/// The MLP policy's parameters, Adam's moments and every buffer an
/// iteration needs, as flat vectors.
pub(super) struct FusedMlp {
    layout: MlpLayout,
    theta: Vec<f32>,
    grad: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    scratch: MlpScratch,
    d_out: Vec<f32>,
    /// Where a minibatch's windows sit in the rollout (read in place).
    blocks: Vec<WindowBlock>,
    /// A minibatch's accounts and markets, gathered.
    accounts: Vec<f32>,
    markets: Vec<(usize, usize)>,
    /// Scratch for converting between the model's and the kernels' order.
    reorder: Vec<f32>,
}

impl FusedMlp {
    pub(super) fn new(shape: MlpShape, adam: &Adam) -> Result<Self, AgentError> {
        let layout = MlpLayout::new(shape, &adam.flat_layout()).map_err(AgentError::Invalid)?;
        Ok(FusedMlp {
            grad: vec![0.0; layout.total],
            layout,
            theta: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
            scratch: MlpScratch::default(),
            d_out: Vec::new(),
            blocks: Vec::new(),
            accounts: Vec::new(),
            markets: Vec::new(),
            reorder: Vec::new(),
        })
    }

    /// Copies the parameters and moments out of the optimiser, into the
    /// kernels' order.
    pub(super) fn pull(&mut self, adam: &Adam) -> Result<(), AgentError> {
        adam.export_flat(&mut self.theta, &mut self.m, &mut self.v)?;
        for flat in [&mut self.theta, &mut self.m, &mut self.v] {
            self.layout.to_kernel_order(flat, &mut self.reorder);
        }
        Ok(())
    }

    /// Writes the trained parameters and moments back, in the model's order.
    pub(super) fn push(&mut self, adam: &mut Adam) -> Result<(), AgentError> {
        for flat in [&mut self.theta, &mut self.m, &mut self.v] {
            self.layout.to_model_order(flat, &mut self.reorder);
        }
        adam.import_flat(&self.theta, &self.m, &self.v)?;
        Ok(())
    }

    /// The gradient the last [`FusedMlp::loss_gradient`] left, in the
    /// model's order.
    #[cfg(test)]
    pub(super) fn gradient(&mut self) -> Vec<f32> {
        let mut g = self.grad.clone();
        self.layout.to_model_order(&mut g, &mut self.reorder);
        g
    }

    fn check_markets(&self, keys: &[MarketKey]) -> Result<(), AgentError> {
        let s = &self.layout.shape;
        match keys
            .iter()
            .find(|k| k.instrument as usize >= s.instruments.max(1) || k.timeframe as usize >= s.timeframes.max(1))
        {
            Some(k) => Err(AgentError::Invalid(format!(
                "market (instrument {}, timeframe {}) is outside the model's {} instruments and {} timeframes",
                k.instrument, k.timeframe, s.instruments, s.timeframes
            ))),
            None => Ok(()),
        }
    }

    fn forward(&mut self, windows: &[f32], accounts: &[f32], keys: &[MarketKey]) -> Result<(), AgentError> {
        self.check_markets(keys)?;
        let market = |r: usize| (keys[r].instrument as usize, keys[r].timeframe as usize);
        let blocks = [WindowBlock::contiguous(keys.len(), self.layout.shape.window_len)];
        let batch = BatchRows {
            windows,
            blocks: &blocks,
            market: &market,
        };
        self.layout.forward(&self.theta, &batch, accounts, &mut self.scratch);
        Ok(())
    }

    /// One minibatch: [`FusedMlp::loss_gradient`] and a fused Adam step.
    /// Returns policy loss, value loss, entropy, approx-KL, clip fraction
    /// and gradient norm.
    pub(super) fn minibatch(
        &mut self,
        samples: &Samples<'_>,
        p: &PpoSettings,
        lr: f64,
        adam: &mut Adam,
    ) -> [f64; FIGURES] {
        let mut figures = self.loss_gradient(samples, p);
        figures[5] = adam.step_flat(
            &mut self.theta,
            &self.grad,
            &mut self.m,
            &mut self.v,
            lr,
            p.max_grad_norm,
        );
        figures
    }

    /// The PPO loss on a minibatch and its gradient (left in `self.grad`):
    /// forward, the loss's derivative with respect to the heads, backward.
    /// Returns the figures of [`FusedMlp::minibatch`], the gradient norm
    /// left 0.
    pub(super) fn loss_gradient(&mut self, samples: &Samples<'_>, p: &PpoSettings) -> [f64; FIGURES] {
        let &Samples {
            rollout: b,
            returns,
            idx,
            advantages: adv,
        } = samples;
        let rows = idx.len();
        let wlen = self.layout.shape.window_len;
        self.accounts.clear();
        self.markets.clear();
        row_blocks(idx, wlen, &mut self.blocks);
        for &i in idx {
            let i = i as usize;
            self.accounts
                .extend_from_slice(&b.accounts[i * ACCOUNT_FEATURES..(i + 1) * ACCOUNT_FEATURES]);
            self.markets
                .push((b.keys[i].instrument as usize, b.keys[i].timeframe as usize));
        }
        let markets = &self.markets;
        let market = |r: usize| markets[r];
        let batch = BatchRows {
            windows: &b.windows,
            blocks: &self.blocks,
            market: &market,
        };
        self.layout
            .forward(&self.theta, &batch, &self.accounts, &mut self.scratch);

        self.d_out.clear();
        self.d_out.resize(rows * OUTPUTS, 0.0);
        let inv = 1.0 / rows as f64;
        let (clip, g_entropy) = (p.clip, -p.entropy_coef * inv);
        let mut sums = [0f64; FIGURES];
        for (r, &i) in idx.iter().enumerate() {
            let i = i as usize;
            let out = &self.scratch.out[r * OUTPUTS..(r + 1) * OUTPUTS];
            let (a, is_entry) = (b.actions[i] as usize, entry(b.actions[i] as usize) as f64);
            let cat = MaskedCategorical::new(&out[..5], &b.masks[i * 5..i * 5 + 5]);
            let beta = ScalarBeta::from_raw(out[RAW_ALPHA] as f64, out[RAW_BETA] as f64).terms(b.quantities[i] as f64);
            let log_ratio = cat.log_probs[a] + is_entry * beta.log_prob - b.log_probs[i] as f64;
            let ratio = log_ratio.exp();
            let advantage = adv[r] as f64;
            // max(-A r, -A clip(r)): the clipped side (flat in r) wins
            // once r leaves the range in the advantage's direction.
            let clipped = (advantage > 0.0 && ratio > 1.0 + clip) || (advantage < 0.0 && ratio < 1.0 - clip);
            let surrogate = -advantage
                * if clipped {
                    ratio.clamp(1.0 - clip, 1.0 + clip)
                } else {
                    ratio
                };
            let g_log_prob = if clipped { 0.0 } else { -advantage * ratio * inv };
            let value_error = out[VALUE] as f64 - returns[i] as f64;

            let d = &mut self.d_out[r * OUTPUTS..(r + 1) * OUTPUTS];
            for (k, d_logit) in d[..5].iter_mut().enumerate() {
                let pk = cat.probs[k];
                let chosen = if k == a { 1.0 } else { 0.0 };
                let d_entropy = if pk > 0.0 {
                    -pk * (cat.log_probs[k] + cat.entropy)
                } else {
                    0.0
                };
                *d_logit = (g_log_prob * (chosen - pk) + g_entropy * d_entropy) as f32;
            }
            d[RAW_ALPHA] = (g_log_prob * is_entry * beta.d_log_prob.0 + g_entropy * beta.d_entropy.0) as f32;
            d[RAW_BETA] = (g_log_prob * is_entry * beta.d_log_prob.1 + g_entropy * beta.d_entropy.1) as f32;
            d[VALUE] = (p.value_coef * value_error * inv) as f32;

            sums[0] += surrogate;
            sums[1] += 0.5 * value_error * value_error;
            sums[2] += cat.entropy + beta.entropy;
            sums[3] += (ratio - 1.0) - log_ratio;
            sums[4] += ((ratio - 1.0).abs() > clip) as u8 as f64;
        }

        self.grad.fill(0.0);
        self.layout
            .backward(&self.theta, &batch, &self.d_out, &mut self.scratch, &mut self.grad);
        [
            sums[0] * inv,
            sums[1] * inv,
            sums[2] * inv,
            sums[3] * inv,
            sums[4] * inv,
            0.0,
            0.0,
        ]
    }
}

/// Splits sample indices into runs at a constant step (one environment's
/// steps in a time-major rollout), as blocks of windows `window_len` long.
fn row_blocks(idx: &[u32], window_len: usize, blocks: &mut Vec<WindowBlock>) {
    blocks.clear();
    let mut r = 0;
    while r < idx.len() {
        let step = idx.get(r + 1).map_or(1, |next| *next as i64 - idx[r] as i64);
        let mut end = r + 1;
        if step > 0 {
            while end < idx.len() && idx[end] as i64 - idx[end - 1] as i64 == step {
                end += 1;
            }
        }
        let stride = if end - r > 1 { step as usize } else { 1 };
        blocks.push(WindowBlock {
            start: idx[r] as usize * window_len,
            stride: stride * window_len,
            rows: end - r,
        });
        r = end;
    }
}

/// One minibatch of a rollout: the samples, their normalised advantages
/// (in the order of `idx`) and the rollout's value targets (by sample).
pub(super) struct Samples<'a> {
    pub rollout: &'a RolloutBuffer,
    pub returns: &'a [f32],
    pub idx: &'a [u32],
    pub advantages: &'a [f32],
}

/// The masked 5-way distribution of one row, as `heads::masked_log_probs`
/// computes it (invalid actions get probability 0; a row with none valid,
/// which the environment never produces, is uniform, as there).
struct MaskedCategorical {
    log_probs: [f64; 5],
    probs: [f64; 5],
    entropy: f64,
}

impl MaskedCategorical {
    fn new(logits: &[f32], mask: &[f32]) -> Self {
        let none_valid = mask[..5].iter().all(|m| *m <= 0.5);
        let valid = |k: usize| none_valid || mask[k] > 0.5;
        let max = (0..5)
            .filter(|&k| valid(k))
            .map(|k| logits[k] as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = (0..5)
            .filter(|&k| valid(k))
            .map(|k| (logits[k] as f64 - max).exp())
            .sum();
        let lse = max + sum.ln();
        let log_probs = std::array::from_fn(|k| if valid(k) { logits[k] as f64 - lse } else { -1e9 });
        let probs = std::array::from_fn(|k| if valid(k) { log_probs[k].exp() } else { 0.0 });
        let entropy = -(0..5)
            .filter(|&k| valid(k))
            .map(|k| probs[k] * log_probs[k])
            .sum::<f64>();
        MaskedCategorical {
            log_probs,
            probs,
            entropy,
        }
    }
}

/// The fused MLP as the rollout's actor.
pub(super) struct FusedActor<'a> {
    pub net: &'a mut FusedMlp,
    pub rng: &'a mut ChaCha8Rng,
    pub scaler: Option<&'a mut RewardScaler>,
}

impl Actor for FusedActor<'_> {
    /// Samples as `sampling::decide` does (the same draws in the same order).
    fn act(
        &mut self,
        windows: &[f32],
        accounts: &[f32],
        masks: &[f32],
        keys: &[MarketKey],
        greedy: bool,
    ) -> Result<Acted, AgentError> {
        self.net.forward(windows, accounts, keys)?;
        let n = keys.len();
        let mut acted = Acted {
            actions: Vec::with_capacity(n),
            quantities: Vec::with_capacity(n),
            log_probs: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            probabilities: Vec::with_capacity(n),
            segments: Vec::new(),
        };
        for r in 0..n {
            let out = &self.net.scratch.out[r * OUTPUTS..(r + 1) * OUTPUTS];
            let cat = MaskedCategorical::new(&out[..5], &masks[r * 5..r * 5 + 5]);
            let p: [f32; 5] = cat.probs.map(|x| x as f32);
            let beta = ScalarBeta::from_raw(out[RAW_ALPHA] as f64, out[RAW_BETA] as f64);
            let (a, q) = if greedy {
                let q = if quantity_is_the_target(&masks[r * 5..r * 5 + 5]) {
                    beta.mean()
                } else {
                    beta.mode()
                };
                (argmax(&p), q as f32)
            } else {
                let a = sample(&p, self.rng.random::<f32>());
                let q = rand_distr::Beta::new(beta.alpha as f32, beta.beta as f32)
                    .map(|d| d.sample(self.rng))
                    .unwrap_or(0.5);
                (a, q)
            };
            let q = q.clamp(QUANTITY_EPS, 1.0 - QUANTITY_EPS);
            if !greedy {
                let lp = cat.log_probs[a] + entry(a) as f64 * beta.log_prob(q as f64);
                acted.log_probs.push(lp as f32);
            }
            acted.actions.push(a as u32);
            acted.quantities.push(q);
            acted.probabilities.push(p);
            acted.values.push(out[VALUE]);
        }
        Ok(acted)
    }

    fn values(&mut self, windows: &[f32], accounts: &[f32], keys: &[MarketKey]) -> Result<Vec<f32>, AgentError> {
        self.net.forward(windows, accounts, keys)?;
        Ok((0..keys.len())
            .map(|r| self.net.scratch.out[r * OUTPUTS + VALUE])
            .collect())
    }

    fn reward_scaler(&mut self) -> Option<&mut RewardScaler> {
        self.scaler.as_deref_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(idx: &[u32]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        row_blocks(idx, 10, &mut out);
        out.iter().map(|b| (b.start, b.stride, b.rows)).collect()
    }

    #[test]
    fn minibatch_rows_become_strided_blocks_per_environment() {
        // Two environments of a time-major rollout with 8 environments.
        assert_eq!(blocks(&[3, 11, 19, 27, 5, 13, 21]), vec![(30, 80, 4), (50, 80, 3)]);
        assert_eq!(blocks(&[0, 1, 2]), vec![(0, 10, 3)]);
        assert_eq!(blocks(&[7]), vec![(70, 10, 1)]);
        assert_eq!(blocks(&[5, 3, 4]), vec![(50, 10, 1), (30, 10, 2)]);
        assert_eq!(blocks(&[2, 2]), vec![(20, 10, 1), (20, 10, 1)]);
    }

    #[test]
    fn the_masked_distribution_zeroes_invalid_actions_and_falls_back_to_uniform() {
        let c = MaskedCategorical::new(&[2.0, 0.0, 5.0, 5.0, 0.0], &[1.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!((c.probs[2], c.probs[3]), (0.0, 0.0));
        let total: f64 = c.probs.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        let z = 2f64.exp() + 2.0;
        assert!((c.probs[0] - 2f64.exp() / z).abs() < 1e-12);
        assert!((c.entropy + c.probs.iter().filter(|p| **p > 0.0).map(|p| p * p.ln()).sum::<f64>()).abs() < 1e-12);
        let none = MaskedCategorical::new(&[0.0; 5], &[0.0; 5]);
        assert!(none.probs.iter().all(|p| (p - 0.2).abs() < 1e-12));
    }
}
