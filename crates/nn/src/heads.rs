//! Policy heads: the masked 5-way action distribution and the Beta
//! distribution of the quantity.

use candle_core::{Result, Tensor, D};

use crate::special::{digamma, gamma_terms, lgamma, ln_gamma};

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
    /// The first concentration `a`, one per sample (always > 1).
    pub alpha: Tensor,
    /// The second concentration `b`, shaped like `alpha` (always > 1).
    pub beta: Tensor,
}

impl Beta {
    /// The distribution from the network's raw outputs: `a = 1 +
    /// softplus(raw_alpha)`, `b = 1 + softplus(raw_beta)`, differentiably.
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

    /// The mean `a/(a+b)` (the greedy value of a target exposure).
    pub fn mean(&self) -> Result<Tensor> {
        &self.alpha / (&self.alpha + &self.beta)?
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

/// One sample's Beta head in scalars, with the derivatives a hand-written
/// backward pass needs (the fused MLP policy). Same parameterisation as
/// [`Beta`]: concentrations `1 + softplus(raw)`.
#[derive(Debug, Clone, Copy)]
pub struct ScalarBeta {
    /// The first concentration `a` (> 1).
    pub alpha: f64,
    /// The second concentration `b` (> 1).
    pub beta: f64,
    /// `d alpha / d raw_alpha` and `d beta / d raw_beta` (sigmoids).
    slope_alpha: f64,
    slope_beta: f64,
}

/// A [`ScalarBeta`]'s log-density at a point, its entropy, and both
/// differentiated with respect to the raw head outputs `(raw_alpha, raw_beta)`.
#[derive(Debug, Clone, Copy)]
pub struct BetaTerms {
    /// `ln p(x)` at the point given.
    pub log_prob: f64,
    /// The distribution's entropy.
    pub entropy: f64,
    /// `(d ln p / d raw_alpha, d ln p / d raw_beta)`.
    pub d_log_prob: (f64, f64),
    /// `(d H / d raw_alpha, d H / d raw_beta)`.
    pub d_entropy: (f64, f64),
}

impl ScalarBeta {
    /// As [`Beta::from_raw`] for one sample, keeping the softplus slopes
    /// for the backward pass (softplus(x) taken as x above 30).
    pub fn from_raw(raw_alpha: f64, raw_beta: f64) -> Self {
        // softplus(x) = ln(1 + e^x) and its slope e^x / (1 + e^x), from one exp.
        let softplus_and_slope = |x: f64| {
            if x > 30.0 {
                (x, 1.0)
            } else {
                let e = x.exp();
                (e.ln_1p(), e / (1.0 + e))
            }
        };
        let (sa, slope_alpha) = softplus_and_slope(raw_alpha);
        let (sb, slope_beta) = softplus_and_slope(raw_beta);
        ScalarBeta {
            alpha: 1.0 + sa,
            beta: 1.0 + sb,
            slope_alpha,
            slope_beta,
        }
    }

    fn log_beta_fn(&self) -> f64 {
        ln_gamma(self.alpha) + ln_gamma(self.beta) - ln_gamma(self.alpha + self.beta)
    }

    /// `ln p(x)`, as [`Beta::log_prob`].
    pub fn log_prob(&self, x: f64) -> f64 {
        (self.alpha - 1.0) * x.ln() + (self.beta - 1.0) * (1.0 - x).ln() - self.log_beta_fn()
    }

    /// The mean, as [`Beta::mean`].
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// The mode, as [`Beta::mode`].
    pub fn mode(&self) -> f64 {
        let den = self.alpha + self.beta - 2.0;
        if den < 1e-9 {
            0.5
        } else {
            (self.alpha - 1.0) / (den + 1e-12)
        }
    }

    /// Log-density at `x` and entropy, with their gradients:
    /// `d ln p / d a = ln x - psi(a) + psi(a+b)` and
    /// `d H / d a = -(a-1) psi'(a) + (a+b-2) psi'(a+b)` (b likewise),
    /// times the softplus slopes.
    pub fn terms(&self, x: f64) -> BetaTerms {
        let (a, b) = (self.alpha, self.beta);
        let s = a + b;
        let (lg_a, psi_a, tri_a) = gamma_terms(a);
        let (lg_b, psi_b, tri_b) = gamma_terms(b);
        let (lg_s, psi_s, tri_s) = gamma_terms(s);
        let log_beta = lg_a + lg_b - lg_s;
        let (ln_x, ln_1mx) = (x.ln(), (1.0 - x).ln());
        BetaTerms {
            log_prob: (a - 1.0) * ln_x + (b - 1.0) * ln_1mx - log_beta,
            entropy: log_beta - (a - 1.0) * psi_a - (b - 1.0) * psi_b + (s - 2.0) * psi_s,
            d_log_prob: (
                (ln_x - psi_a + psi_s) * self.slope_alpha,
                (ln_1mx - psi_b + psi_s) * self.slope_beta,
            ),
            d_entropy: (
                (-(a - 1.0) * tri_a + (s - 2.0) * tri_s) * self.slope_alpha,
                (-(b - 1.0) * tri_b + (s - 2.0) * tri_s) * self.slope_beta,
            ),
        }
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
        // Beta(2,3)'s mean is 2/5.
        let mean = b.mean().unwrap().to_vec1::<f64>().unwrap();
        assert!((mean[0] - 0.4).abs() < 1e-9 && (mean[1] - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_scalar_beta_matches_the_tensor_beta_and_autograd() {
        use candle_core::Var;
        let raws = [(-2.0, 0.5), (0.0, 0.0), (1.5, -0.7), (4.0, 3.0)];
        let xs = [0.2, 0.5, 0.9, 0.33];
        let ra = Var::new(&raws.map(|r| r.0), &Device::Cpu).unwrap();
        let rb = Var::new(&raws.map(|r| r.1), &Device::Cpu).unwrap();
        let beta = Beta::from_raw(ra.as_tensor(), rb.as_tensor()).unwrap();
        let lp = beta.log_prob(&t(&xs)).unwrap();
        let h = beta.entropy().unwrap();
        let lp_grads = lp.sum_all().unwrap().backward().unwrap();
        let h_grads = h.sum_all().unwrap().backward().unwrap();
        let get =
            |g: &candle_core::backprop::GradStore, v: &Var| g.get(v.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        let (lp, h) = (lp.to_vec1::<f64>().unwrap(), h.to_vec1::<f64>().unwrap());
        let (dlp_a, dlp_b) = (get(&lp_grads, &ra), get(&lp_grads, &rb));
        let (dh_a, dh_b) = (get(&h_grads, &ra), get(&h_grads, &rb));
        let modes = beta.mode().unwrap().to_vec1::<f64>().unwrap();
        for (i, &(a, b)) in raws.iter().enumerate() {
            let s = ScalarBeta::from_raw(a, b);
            let terms = s.terms(xs[i]);
            let close = |x: f64, y: f64| (x - y).abs() < 1e-8 * y.abs().max(1.0);
            assert!(
                close(terms.log_prob, lp[i]) && close(s.log_prob(xs[i]), lp[i]),
                "log_prob {i}"
            );
            assert!(close(terms.entropy, h[i]), "entropy {i}");
            assert!(
                close(terms.d_log_prob.0, dlp_a[i]) && close(terms.d_log_prob.1, dlp_b[i]),
                "d log_prob {i}"
            );
            assert!(
                close(terms.d_entropy.0, dh_a[i]) && close(terms.d_entropy.1, dh_b[i]),
                "d entropy {i}"
            );
            assert!(close(s.mode(), modes[i]), "mode {i}");
            assert!(close(s.mean(), s.alpha / (s.alpha + s.beta)), "mean {i}");
        }
    }
}
