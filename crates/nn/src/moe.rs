//! Mixture of experts (Jacobs et al. 1991; algorithms.md §5): a gating
//! network that weighs specialist policies, and the arithmetic that turns
//! their outputs into one policy.
//!
//! With gate weights g (softmax over experts) and expert k's probability
//! π_k(a) of the joint action (type and quantity):
//! - log π(a) = logsumexp_k(log g_k + log π_k(a)), which PPO's ratio needs;
//! - V = Σ_k g_k V_k;
//! - the blended quantity Σ_k g_k E[q_k], optionally scaled down by the
//!   gate's uncertainty 1 − H(g)/log K.
//!
//! Soft blending changes the position gradually as the gate's weights move,
//! where switching to the most likely regime's expert would jump.

use candle_core::{Result, Tensor, D};

use crate::kernels;
use crate::params::Params;
use crate::transformer::Linear;

/// Market-state features (and regime probabilities) in, log-weights of the
/// experts out.
pub struct GatingNet {
    hidden: Linear,
    out: Linear,
    experts: usize,
}

impl GatingNet {
    pub fn new(p: &mut Params, name: &str, inputs: usize, hidden: usize, experts: usize) -> Result<GatingNet> {
        Ok(GatingNet {
            hidden: Linear::new(p, &format!("{name}.hidden"), inputs, hidden, 2f64.sqrt())?,
            // Small output weights: every expert starts with about 1/K.
            out: Linear::new(p, &format!("{name}.out"), hidden, experts, 0.01)?,
            experts,
        })
    }

    pub fn experts(&self) -> usize {
        self.experts
    }

    /// `inputs: [B, I]` → `log g: [B, K]`.
    pub fn forward(&self, inputs: &Tensor) -> Result<Tensor> {
        let h = kernels::tanh(&self.hidden.forward(inputs)?)?;
        candle_nn::ops::log_softmax(&self.out.forward(&h)?, D::Minus1)
    }
}

/// log Σ_k g_k π_k(a): `log_gate, expert_log_probs: [B, K]` → `[B]`.
pub fn mixture_log_prob(log_gate: &Tensor, expert_log_probs: &Tensor) -> Result<Tensor> {
    (log_gate + expert_log_probs)?.log_sum_exp(D::Minus1)
}

/// Σ_k g_k x_k: `log_gate, x: [B, K]` → `[B]` (values, expected quantities).
pub fn mixture_mean(log_gate: &Tensor, x: &Tensor) -> Result<Tensor> {
    (log_gate.exp()? * x)?.sum(D::Minus1)
}

/// The gate's entropy H(g), `[B]`.
pub fn gate_entropy(log_gate: &Tensor) -> Result<Tensor> {
    (log_gate.exp()? * log_gate)?.sum(D::Minus1)?.neg()
}

/// 1 − H(g)/log K: 1 when one expert carries all the weight, 0 when the
/// gate cannot tell them apart (the quantity's optional scale).
pub fn gate_confidence(log_gate: &Tensor) -> Result<Tensor> {
    let k = log_gate.dim(D::Minus1)? as f64;
    if k <= 1.0 {
        return log_gate.ones_like()?.sum(D::Minus1);
    }
    (1.0 - (gate_entropy(log_gate)? / k.ln())?)?.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn t(v: &[&[f32]]) -> Tensor {
        let rows = v.len();
        let cols = v[0].len();
        Tensor::from_vec(v.concat(), (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn mixture_log_prob_is_the_log_of_the_weighted_sum() {
        let g = [[0.2f32, 0.5, 0.3], [0.9, 0.05, 0.05]];
        let pi = [[0.1f32, 0.6, 0.9], [0.25, 0.5, 0.75]];
        let log_g = t(&[&g[0].map(f32::ln), &g[1].map(f32::ln)]);
        let log_pi = t(&[&pi[0].map(f32::ln), &pi[1].map(f32::ln)]);
        let got = mixture_log_prob(&log_g, &log_pi).unwrap().to_vec1::<f32>().unwrap();
        for b in 0..2 {
            let want: f32 = (0..3).map(|k| g[b][k] * pi[b][k]).sum::<f32>().ln();
            assert!((got[b] - want).abs() < 1e-6, "{b}: {} vs {want}", got[b]);
        }
        // A one-hot gate is that expert's policy; log-space stays finite
        // where a product of tiny probabilities would underflow.
        let one_hot = t(&[&[0.0, -1e9, -1e9]]);
        let tiny = t(&[&[-200.0, -1.0, -2.0]]);
        assert!((mixture_log_prob(&one_hot, &tiny).unwrap().to_vec1::<f32>().unwrap()[0] + 200.0).abs() < 1e-3);
        let values = t(&[&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]]);
        let v = mixture_mean(&log_g, &values).unwrap().to_vec1::<f32>().unwrap();
        assert!((v[0] - (0.2 + 1.0 + 0.9)).abs() < 1e-6 && (v[1] - (0.9 + 0.1 + 0.15)).abs() < 1e-6);
    }

    #[test]
    fn confidence_runs_from_uniform_to_one_hot() {
        let k = 4f32;
        let uniform = t(&[&[(1.0 / k).ln(); 4]]);
        assert!(gate_confidence(&uniform).unwrap().to_vec1::<f32>().unwrap()[0].abs() < 1e-6);
        assert!((gate_entropy(&uniform).unwrap().to_vec1::<f32>().unwrap()[0] - k.ln()).abs() < 1e-6);
        let sure = t(&[&[0.0, -60.0, -60.0, -60.0]]);
        assert!((gate_confidence(&sure).unwrap().to_vec1::<f32>().unwrap()[0] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn the_gate_starts_near_uniform_and_learns_from_the_mixture_loss() {
        let mut p = Params::new(7, Device::Cpu);
        let gate = GatingNet::new(&mut p, "gate", 6, 16, 4).unwrap();
        let x = Tensor::randn(0f32, 1.0, (8, 6), &Device::Cpu).unwrap();
        let log_g = gate.forward(&x).unwrap();
        let g = log_g.exp().unwrap().to_vec2::<f32>().unwrap();
        for row in &g {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row.iter().all(|w| (w - 0.25).abs() < 0.05), "{row:?}");
        }
        // Expert 2 explains every action best: gradient descent on the
        // mixture's negative log-likelihood moves weight onto it, and the
        // experts' own log-probabilities get gradients too.
        let expert_logits = Var::from_tensor(&Tensor::zeros((8, 4), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let bias = Tensor::new(&[[-3f32, -3.0, -0.1, -3.0]], &Device::Cpu).unwrap();
        let vars = p.vars();
        for _ in 0..200 {
            let log_pi = expert_logits.as_tensor().broadcast_add(&bias).unwrap();
            let loss = mixture_log_prob(&gate.forward(&x).unwrap(), &log_pi)
                .unwrap()
                .mean_all()
                .unwrap()
                .neg()
                .unwrap();
            let grads = loss.backward().unwrap();
            assert!(grads.get(expert_logits.as_tensor()).is_some());
            for v in &vars {
                let gv = grads.get(v.as_tensor()).expect("every gate parameter gets a gradient");
                v.set(&(v.as_tensor() - (gv * 0.5).unwrap()).unwrap()).unwrap();
            }
        }
        let g = gate.forward(&x).unwrap().exp().unwrap().to_vec2::<f32>().unwrap();
        assert!(g.iter().all(|row| row[2] > 0.8), "{g:?}");
    }
}
