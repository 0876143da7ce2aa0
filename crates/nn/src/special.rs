//! Log-gamma and digamma built from elementwise tensor ops, so gradients
//! flow through them (candle has no such ops). Both shift the argument up
//! by 6 with the recurrences `lgamma(x) = lgamma(x + 6) - ln(x (x+1) ... (x+5))`
//! and `psi(x) = psi(x + 6) - sum 1/(x + k)`, then use the asymptotic
//! (Stirling) series, accurate to ~1e-10 for x + 6 >= 6. Inputs must be
//! positive (the Beta head's concentrations are >= 1).
//!
//! The scalar forms use the same shift and series: `ln_gamma` alone (a
//! rollout's log-density) and `gamma_terms`, log-gamma with digamma and
//! trigamma, which the fused MLP policy's hand-written gradient of the Beta
//! entropy needs.

use candle_core::{Result, Tensor};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln Gamma(x)` elementwise, for `x > 0`.
pub fn lgamma(x: &Tensor) -> Result<Tensor> {
    let mut prod = x.clone();
    for k in 1..6 {
        prod = (prod * (x + k as f64)?)?;
    }
    let z = (x + 6.0)?;
    let inv = z.recip()?;
    let inv2 = inv.sqr()?;
    // 1/(12z) - 1/(360z^3) + 1/(1260z^5) - 1/(1680z^7), in Horner form.
    let poly = ((((&inv2 * (-1.0 / 1680.0))? + 1.0 / 1260.0)? * &inv2)? - 1.0 / 360.0)?;
    let poly = ((poly * &inv2)? + 1.0 / 12.0)?;
    let series = (&inv * poly)?;
    let stirling = ((((&z - 0.5)? * z.log()?)? - &z)? + HALF_LN_2PI)?;
    (stirling + series)? - prod.log()?
}

/// The digamma function `psi(x) = d/dx ln Gamma(x)` elementwise, `x > 0`.
pub fn digamma(x: &Tensor) -> Result<Tensor> {
    let mut shift = x.recip()?;
    for k in 1..6 {
        shift = (shift + (x + k as f64)?.recip()?)?;
    }
    let z = (x + 6.0)?;
    let inv = z.recip()?;
    let inv2 = inv.sqr()?;
    // ln z - 1/(2z) - 1/(12z^2) + 1/(120z^4) - 1/(252z^6) + 1/(240z^8)
    let poly = ((((&inv2 * (1.0 / 240.0))? - 1.0 / 252.0)? * &inv2)? + 1.0 / 120.0)?;
    let tail = (&inv2 * ((poly * &inv2)? - 1.0 / 12.0)?)?;
    let asym = ((z.log()? - (&inv * 0.5)?)? + tail)?;
    asym - shift
}

/// Scalar `ln Gamma(x)`, `x > 0`.
pub fn ln_gamma(x: f64) -> f64 {
    let prod = x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0);
    let z = x + 6.0;
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    let series = inv * (1.0 / 12.0 + inv2 * (-1.0 / 360.0 + inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    (z - 0.5) * z.ln() - z + HALF_LN_2PI + series - prod.ln()
}

/// `(ln Gamma(x), psi(x), psi'(x))` together, `x > 0`, sharing the shift's
/// terms and `ln(x + 6)`. Trigamma's series:
/// `sum 1/(x+k)^2 + 1/z + 1/(2z^2) + 1/(6z^3) - 1/(30z^5) + 1/(42z^7) - 1/(30z^9)`.
pub fn gamma_terms(x: f64) -> (f64, f64, f64) {
    let (mut prod, mut inv_sum, mut inv_sq_sum) = (1.0, 0.0, 0.0);
    for k in 0..6 {
        let y = x + k as f64;
        let inv = 1.0 / y;
        prod *= y;
        inv_sum += inv;
        inv_sq_sum += inv * inv;
    }
    let z = x + 6.0;
    let ln_z = z.ln();
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    let series = inv * (1.0 / 12.0 + inv2 * (-1.0 / 360.0 + inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    let ln_gamma = (z - 0.5) * ln_z - z + HALF_LN_2PI + series - prod.ln();
    let tail = inv2 * (-1.0 / 12.0 + inv2 * (1.0 / 120.0 + inv2 * (-1.0 / 252.0 + inv2 / 240.0)));
    let digamma = ln_z - 0.5 * inv + tail - inv_sum;
    let odd = inv * inv2 * (1.0 / 6.0 + inv2 * (-1.0 / 30.0 + inv2 * (1.0 / 42.0 - inv2 / 30.0)));
    (ln_gamma, digamma, inv_sq_sum + inv + 0.5 * inv2 + odd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn eval(f: fn(&Tensor) -> Result<Tensor>, xs: &[f64]) -> Vec<f64> {
        let t = Tensor::new(xs, &Device::Cpu).unwrap();
        f(&t).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn lgamma_matches_known_values() {
        let xs = [0.5, 1.0, 2.0, 3.5, 5.0, 10.0, 0.1, 100.0];
        // ln Gamma: ln(sqrt(pi)), 0, 0, ln(3.32335097...), ln 24, ln 362880, ln Gamma(0.1), 359.13420536957540
        let want = [
            0.572_364_942_924_700_1,
            0.0,
            0.0,
            1.200_973_602_347_074_3,
            24f64.ln(),
            362_880f64.ln(),
            2.252_712_651_734_206,
            359.134_205_369_575_4,
        ];
        for ((x, g), w) in xs.iter().zip(eval(lgamma, &xs)).zip(want) {
            assert!((g - w).abs() < 1e-9 * w.abs().max(1.0), "lgamma({x}) = {g}, want {w}");
        }
    }

    #[test]
    fn digamma_matches_known_values_and_is_lgammas_derivative() {
        let euler = 0.577_215_664_901_532_9;
        let xs = [1.0, 2.0, 0.5, 4.0];
        let want = [
            -euler,
            1.0 - euler,
            -euler - 2.0 * 2f64.ln(),
            1.0 + 0.5 + 1.0 / 3.0 - euler,
        ];
        for ((x, g), w) in xs.iter().zip(eval(digamma, &xs)).zip(want) {
            assert!((g - w).abs() < 1e-9, "digamma({x}) = {g}, want {w}");
        }
        // Autograd through lgamma gives digamma.
        let v = Var::new(&[0.7f64, 1.3, 2.9, 7.5], &Device::Cpu).unwrap();
        let grads = lgamma(v.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f64> = grads.get(v.as_tensor()).unwrap().to_vec1().unwrap();
        let d = eval(digamma, &[0.7, 1.3, 2.9, 7.5]);
        for (a, b) in g.iter().zip(d) {
            assert!((a - b).abs() < 1e-8, "{a} vs {b}");
        }
    }

    #[test]
    fn scalar_forms_match_the_tensor_forms_and_trigamma_is_digammas_derivative() {
        let xs = [1.0, 1.3, 2.0, 3.7, 9.5, 40.0];
        let lg = eval(lgamma, &xs);
        let dg = eval(digamma, &xs);
        let psi = |x: f64| gamma_terms(x).1;
        for (i, &x) in xs.iter().enumerate() {
            let (ln_g, digamma_x, trigamma_x) = gamma_terms(x);
            assert!((ln_gamma(x) - lg[i]).abs() < 1e-12, "ln_gamma({x})");
            assert!((ln_g - lg[i]).abs() < 1e-12, "gamma_terms({x}).0");
            assert!((digamma_x - dg[i]).abs() < 1e-12, "gamma_terms({x}).1");
            let h = 1e-5;
            let numeric = (psi(x + h) - psi(x - h)) / (2.0 * h);
            assert!(
                (trigamma_x - numeric).abs() < 1e-7,
                "trigamma({x}) = {trigamma_x} vs {numeric}"
            );
        }
        // psi'(1) = pi^2 / 6.
        assert!((gamma_terms(1.0).2 - std::f64::consts::PI.powi(2) / 6.0).abs() < 1e-10);
    }
}
