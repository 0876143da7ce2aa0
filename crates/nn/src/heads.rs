//! Policy heads: the masked 5-way action distribution and the Beta
//! distribution of the quantity.

use candle_core::{Result, Tensor, D};

use crate::special::{digamma, lgamma};

/// Added to the logits of invalid actions: their probability becomes 0
/// (exp underflows) while everything stays finite.
const MASKED_LOGIT: f64 = -1e9;

/// Log-probabilities of the valid actions. `mask` is 1.0 for valid and 0.0
/// for invalid actions, `[batch, actions]` like the logits.
pub fn masked_log_probs(logits: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let penalty = ((mask - 1.0)? * -MASKED_LOGIT)?;
    let masked = (logits + penalty)?;
    candle_nn::ops::log_softmax(&masked, D::Minus1)
}

/// Entropy of a categorical given its log-probabilities, `[batch]`.
pub fn categorical_entropy(log_probs: &Tensor) -> Result<Tensor> {
    (log_probs.exp()? * log_probs)?.sum(D::Minus1)?.neg()
}

/// The Beta distribution of a quantity in (0, 1). Concentrations are
/// `1 + softplus(raw)`, so the density is unimodal and never explodes at
/// the ends.
pub struct Beta {
    pub alpha: Tensor,
    pub beta: Tensor,
}

impl Beta {
    pub fn from_raw(raw_alpha: &Tensor, raw_beta: &Tensor) -> Result<Beta> {
        let softplus = |x: &Tensor| -> Result<Tensor> { (x.exp()? + 1.0)?.log() };
        Ok(Beta {
            alpha: (softplus(raw_alpha)? + 1.0)?,
            beta: (softplus(raw_beta)? + 1.0)?,
        })
    }

    fn log_beta_fn(&self) -> Result<Tensor> {
        (lgamma(&self.alpha)? + lgamma(&self.beta)?)? - lgamma(&(&self.alpha + &self.beta)?)?
    }

    /// `ln p(x) = (a-1) ln x + (b-1) ln(1-x) - ln B(a, b)`.
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        let one_minus = (x.neg()? + 1.0)?;
        let a = ((&self.alpha - 1.0)? * x.log()?)?;
        let b = ((&self.beta - 1.0)? * one_minus.log()?)?;
        (a + b)? - self.log_beta_fn()?
    }

    /// `H = ln B(a,b) - (a-1) psi(a) - (b-1) psi(b) + (a+b-2) psi(a+b)`.
    pub fn entropy(&self) -> Result<Tensor> {
        let sum = (&self.alpha + &self.beta)?;
        let t1 = ((&self.alpha - 1.0)? * digamma(&self.alpha)?)?;
        let t2 = ((&self.beta - 1.0)? * digamma(&self.beta)?)?;
        let t3 = ((&sum - 2.0)? * digamma(&sum)?)?;
        ((self.log_beta_fn()? - t1)? - t2)? + t3
    }

    /// The mode `(a-1)/(a+b-2)` (the greedy quantity); 0.5 when a = b = 1.
    pub fn mode(&self) -> Result<Tensor> {
        let num = (&self.alpha - 1.0)?;
        let den = ((&self.alpha + &self.beta)? - 2.0)?;
        let safe = (den.clone() + 1e-12)?;
        let ratio = (num / safe)?;
        // Where a + b == 2 the density is flat: fall back to 0.5.
        let flat = den.lt(1e-9)?;
        flat.where_cond(&ratio.ones_like()?.affine(0.5, 0.0)?, &ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    /// The raw value whose `1 + softplus` is `c`.
    fn raw(c: f64) -> f64 {
        ((c - 1.0).exp() - 1.0).ln()
    }

    #[test]
    fn masked_actions_get_zero_probability_and_entropy_counts_only_valid_ones() {
        let logits = Tensor::new(
            &[[0.0f32, 0.0, 0.0, 0.0, 0.0], [2.0, -1.0, 0.5, 3.0, 0.0]],
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::new(&[[1.0f32, 1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0, 1.0]], &Device::Cpu).unwrap();
        let lp = masked_log_probs(&logits, &mask).unwrap();
        let p = lp.exp().unwrap().to_vec2::<f32>().unwrap();
        assert!((p[0][0] - 1.0 / 3.0).abs() < 1e-6 && p[0][2] == 0.0 && p[0][3] == 0.0);
        assert!((p[1][2] + p[1][4] - 1.0).abs() < 1e-6 && p[1][3] == 0.0);
        let h = categorical_entropy(&lp).unwrap().to_vec1::<f32>().unwrap();
        assert!((h[0] - 3f32.ln()).abs() < 1e-5, "{}", h[0]);
        assert!(h.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn beta_density_entropy_and_mode_match_closed_forms() {
        let b = Beta::from_raw(
            &t(&[raw(2.0), raw(2.0), raw(1.0 + 1e-12)]),
            &t(&[raw(3.0), raw(2.0), raw(1.0 + 1e-12)]),
        )
        .unwrap();
        // Beta(2,3) at 0.4: 12 * 0.4 * 0.6^2 = 1.728.
        let lp = b.log_prob(&t(&[0.4, 0.5, 0.9])).unwrap().to_vec1::<f64>().unwrap();
        assert!((lp[0] - 1.728f64.ln()).abs() < 1e-8, "{}", lp[0]);
        // Beta(2,2) at 0.5: 6 * 0.25 = 1.5.
        assert!((lp[1] - 1.5f64.ln()).abs() < 1e-8);
        // Beta(1,1) is uniform: density 1 everywhere, entropy 0.
        assert!(lp[2].abs() < 1e-6, "{}", lp[2]);
        let h = b.entropy().unwrap().to_vec1::<f64>().unwrap();
        // H(Beta(2,2)) = ln(1/6) - 2 psi(2) + 2 psi(4) = 5/3 - ln 6 - ... known value -0.12509...
        let euler = 0.577_215_664_901_532_9;
        let psi2 = 1.0 - euler;
        let psi4 = 1.0 + 0.5 + 1.0 / 3.0 - euler;
        let want = (1.0f64 / 6.0).ln() - 2.0 * psi2 + 2.0 * psi4;
        assert!((h[1] - want).abs() < 1e-8, "{} vs {want}", h[1]);
        assert!(h[2].abs() < 1e-6);
        let m = b.mode().unwrap().to_vec1::<f64>().unwrap();
        assert!((m[0] - 1.0 / 3.0).abs() < 1e-9 && (m[1] - 0.5).abs() < 1e-9 && (m[2] - 0.5).abs() < 1e-9);
    }
}
