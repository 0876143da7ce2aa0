//! Ledoit-Wolf shrinkage of a covariance matrix towards a scaled identity
//! (Ledoit and Wolf 2004, "A well-conditioned estimator for
//! large-dimensional covariance matrices"), computed as scikit-learn's
//! `ledoit_wolf` does: the sample covariance divides by n (not n - 1), the
//! target is `mu I` with `mu` the mean variance, and the intensity is
//! `min(beta, delta) / delta`. Checked against scikit-learn in
//! `tests/hrp_reference.rs`.

/// A shrunk covariance matrix (row-major, `assets x assets`) and the
/// shrinkage intensity in [0, 1] that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shrunk {
    /// Row-major `assets x assets`.
    pub covariance: Vec<f64>,
    /// 0 keeps the sample covariance, 1 is the scaled identity.
    pub shrinkage: f64,
}

/// The Ledoit-Wolf covariance of `returns`, one row per observation and
/// one column per asset (row-major, `rows x assets`). `None` with fewer
/// than two rows or no asset.
pub fn ledoit_wolf(returns: &[f64], assets: usize) -> Option<Shrunk> {
    if assets == 0 || !returns.len().is_multiple_of(assets) || returns.len() / assets < 2 {
        return None;
    }
    let n = returns.len() / assets;
    let p = assets;
    let mut mean = vec![0.0; p];
    for row in returns.chunks_exact(p) {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    // Centred cross products X'X (and of the squares, for beta).
    let mut xtx = vec![0.0; p * p];
    let mut x2tx2 = vec![0.0; p * p];
    let mut centred = vec![0.0; p];
    for row in returns.chunks_exact(p) {
        for (c, (x, m)) in centred.iter_mut().zip(row.iter().zip(&mean)) {
            *c = x - m;
        }
        for i in 0..p {
            for j in 0..p {
                let xy = centred[i] * centred[j];
                xtx[i * p + j] += xy;
                x2tx2[i * p + j] += xy * xy;
            }
        }
    }
    let (nf, pf) = (n as f64, p as f64);
    let emp: Vec<f64> = xtx.iter().map(|v| v / nf).collect();
    let trace: f64 = (0..p).map(|i| emp[i * p + i]).sum();
    let mu = trace / pf;
    let beta_sum: f64 = x2tx2.iter().sum();
    let delta_sum: f64 = xtx.iter().map(|v| v * v).sum::<f64>() / (nf * nf);
    let beta = (beta_sum / nf - delta_sum) / (pf * nf);
    let delta = (delta_sum - 2.0 * mu * trace + pf * mu * mu) / pf;
    let beta = beta.min(delta);
    let shrinkage = if beta == 0.0 { 0.0 } else { beta / delta };
    let mut covariance: Vec<f64> = emp.iter().map(|v| (1.0 - shrinkage) * v).collect();
    for i in 0..p {
        covariance[i * p + i] += shrinkage * mu;
    }
    Some(Shrunk { covariance, shrinkage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_between_the_sample_covariance_and_a_scaled_identity() {
        // Two assets over four rows; the sample covariance by hand.
        let returns = [0.01, 0.02, -0.01, -0.02, 0.03, 0.05, 0.0, 0.01];
        let (a, b) = ([0.01, -0.01, 0.03, 0.0], [0.02, -0.02, 0.05, 0.01]);
        let mean = |x: &[f64; 4]| x.iter().sum::<f64>() / 4.0;
        let cov = |x: &[f64; 4], y: &[f64; 4]| (0..4).map(|i| (x[i] - mean(x)) * (y[i] - mean(y))).sum::<f64>() / 4.0;
        let emp = [cov(&a, &a), cov(&a, &b), cov(&b, &a), cov(&b, &b)];
        let s = ledoit_wolf(&returns, 2).unwrap();
        assert!(s.shrinkage > 0.0 && s.shrinkage <= 1.0, "{}", s.shrinkage);
        let mu = (emp[0] + emp[3]) / 2.0;
        for (k, e) in emp.iter().enumerate() {
            let target = if k == 0 || k == 3 { mu } else { 0.0 };
            let want = (1.0 - s.shrinkage) * e + s.shrinkage * target;
            assert!(
                (s.covariance[k] - want).abs() < 1e-15,
                "{k}: {} vs {want}",
                s.covariance[k]
            );
        }
        assert!(ledoit_wolf(&returns[..2], 2).is_none(), "one row");
        assert!(ledoit_wolf(&returns[..3], 2).is_none(), "ragged");
        assert!(ledoit_wolf(&[], 0).is_none());
    }
}
