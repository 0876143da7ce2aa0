//! Turning an actor-critic's head outputs into decisions: the masked
//! categorical action and the Beta quantity, sampled for exploration or
//! taken greedily, with the composite log-probability PPO needs.

use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;
use tradelab_env::EXPOSURE_MASK;
use tradelab_nn::heads::{masked_log_probs, Beta};

use crate::error::AgentError;
use crate::rollout::{entry, Acted};

/// Quantities are kept inside (0, 1) so their Beta log-density stays finite.
pub(crate) const QUANTITY_EPS: f32 = 1e-4;

/// The heads' outputs for a batch of `n`.
pub(crate) struct Heads<'a> {
    /// `[n, 5]`, before masking.
    pub logits: &'a Tensor,
    /// `[n]` each.
    pub raw_alpha: &'a Tensor,
    pub raw_beta: &'a Tensor,
    pub value: &'a Tensor,
}

/// True for a mask row of `env.actions: exposure`, where the quantity is a
/// target exposure and greedy acting takes the Beta's mean (its expected
/// target) rather than its mode.
pub(crate) fn quantity_is_the_target(mask: &[f32]) -> bool {
    mask.len() == 5 && mask.iter().zip(EXPOSURE_MASK).all(|(&m, e)| (m > 0.5) == e)
}

/// Decides for every sample: samples (or, when greedy, takes the most
/// likely action and the quantity's mode, or its mean for an exposure
/// target) and records log-probabilities (only when sampling: greedy
/// decisions are never trained on).
pub(crate) fn decide(
    heads: Heads<'_>,
    masks: &Tensor,
    greedy: bool,
    rng: &mut ChaCha8Rng,
) -> Result<Acted, AgentError> {
    let n = masks.dim(0)?;
    let log_probs = masked_log_probs(heads.logits, masks)?.to_vec2::<f32>()?;
    let beta = Beta::from_raw(heads.raw_alpha, heads.raw_beta)?;
    let alphas = beta.alpha.to_vec1::<f32>()?;
    let betas = beta.beta.to_vec1::<f32>()?;
    let (modes, means, mask_rows) = if greedy {
        (
            beta.mode()?.to_vec1::<f32>()?,
            beta.mean()?.to_vec1::<f32>()?,
            masks.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?,
        )
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let mut acted = Acted {
        values: heads.value.to_vec1::<f32>()?,
        ..Default::default()
    };
    for i in 0..n {
        let p: [f32; 5] = std::array::from_fn(|k| log_probs[i][k].exp());
        let a = if greedy {
            argmax(&p)
        } else {
            sample(&p, rng.random::<f32>())
        };
        let q = if greedy && quantity_is_the_target(&mask_rows[i]) {
            means[i]
        } else if greedy {
            modes[i]
        } else {
            rand_distr::Beta::new(alphas[i], betas[i])
                .map(|b| b.sample(rng))
                .unwrap_or(0.5)
        };
        acted.actions.push(a as u32);
        acted.quantities.push(q.clamp(QUANTITY_EPS, 1.0 - QUANTITY_EPS));
        acted.probabilities.push(p);
    }
    if !greedy {
        let q = Tensor::from_slice(&acted.quantities, n, masks.device())?;
        let lq = beta.log_prob(&q)?.to_vec1::<f32>()?;
        for i in 0..n {
            let a = acted.actions[i] as usize;
            acted.log_probs.push(log_probs[i][a] + entry(a) * lq[i]);
        }
    }
    Ok(acted)
}

pub(crate) fn argmax(p: &[f32; 5]) -> usize {
    let mut best = 0;
    for k in 1..5 {
        if p[k] > p[best] {
            best = k;
        }
    }
    best
}

/// Inverse-CDF draw from a categorical; never returns a zero-probability action.
pub(crate) fn sample(p: &[f32; 5], u: f32) -> usize {
    let mut acc = 0.0;
    let mut last = 4;
    for (k, pk) in p.iter().enumerate() {
        if *pk > 0.0 {
            acc += pk;
            last = k;
            if u < acc {
                return k;
            }
        }
    }
    last
}
