//! Which specialist suits which regime: a soft assignment of every fitted
//! state to the four specialists of the mixture of experts, from the
//! state's mean features (standardised trend strength t and log
//! volatility v):
//!
//! ```text
//! score = [ |t|, -|t|, v, -v ]   (trend, mean reversion, volatility, consolidation)
//! affinity(state) = softmax(score / temperature)
//! ```
//!
//! A strongly drifting state belongs to trend following, a driftless one to
//! mean reversion, a turbulent one to the volatility specialist and a quiet
//! one to consolidation; most states are a blend. Per bar, the filtered
//! probabilities weigh the states' affinities, so the weights are causal
//! whenever the probabilities are.

use crate::detector::RegimeDetector;
use crate::features::{FEATURES, VOLATILITY};

/// The specialists, in the order of every affinity vector.
pub const SPECIALISTS: [&str; 4] = ["trend", "mean_reversion", "volatility", "consolidation"];
/// Index of the trend-strength feature.
const TREND: usize = 2;
/// Below 1 the assignment is sharper than the raw z-score gaps.
const TEMPERATURE: f64 = 0.5;

/// Each state's weights over [`SPECIALISTS`] (each row sums to 1).
pub fn state_affinity(detector: &RegimeDetector) -> Vec<[f64; 4]> {
    let m = &detector.model;
    (0..m.states)
        .map(|s| {
            let mean = &m.means[s * FEATURES..(s + 1) * FEATURES];
            let (t, v) = (mean[TREND].abs(), mean[VOLATILITY]);
            softmax([t, -t, v, -v].map(|x| x / TEMPERATURE))
        })
        .collect()
}

/// Per-bar specialist weights from filtered probabilities (`bars × states`,
/// row-major): `bars × 4`, row-major.
pub fn specialist_weights(affinity: &[[f64; 4]], probabilities: &[f64]) -> Vec<f64> {
    let k = affinity.len();
    let mut out = Vec::with_capacity(probabilities.len() / k.max(1) * 4);
    for row in probabilities.chunks_exact(k) {
        let mut w = [0.0; 4];
        for (p, a) in row.iter().zip(affinity) {
            for j in 0..4 {
                w[j] += p * a[j];
            }
        }
        out.extend_from_slice(&w);
    }
    out
}

fn softmax(x: [f64; 4]) -> [f64; 4] {
    let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e = x.map(|v| (v - max).exp());
    let sum: f64 = e.iter().sum();
    e.map(|v| v / sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hmm::GaussianHmm;
    use crate::{RegimeConfig, RegimeDetector};

    fn detector(means: &[f64]) -> RegimeDetector {
        let states = means.len() / FEATURES;
        RegimeDetector {
            config: RegimeConfig::default(),
            standardizer: crate::features::Standardizer::fit(&[[0.0; FEATURES], [1.0; FEATURES]]),
            model: GaussianHmm {
                states,
                dims: FEATURES,
                start: vec![1.0 / states as f64; states],
                transition: vec![1.0 / states as f64; states * states],
                means: means.to_vec(),
                variances: vec![1.0; means.len()],
            },
            bic: vec![],
        }
    }

    #[test]
    fn states_go_to_the_specialist_their_features_describe() {
        // (return, log vol, trend): quiet, drifting, turbulent.
        let d = detector(&[0.0, -1.5, 0.1, 0.5, 0.0, 2.0, 0.0, 2.0, -0.2]);
        let a = state_affinity(&d);
        let top = |row: &[f64; 4]| (0..4).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap();
        assert_eq!(SPECIALISTS[top(&a[0])], "consolidation", "{a:?}");
        assert_eq!(SPECIALISTS[top(&a[1])], "trend", "{a:?}");
        assert_eq!(SPECIALISTS[top(&a[2])], "volatility", "{a:?}");
        for row in &a {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // A bar's weights are the probability-weighted blend of the states'.
        let w = specialist_weights(&a, &[0.5, 0.5, 0.0, 0.0, 0.0, 1.0]);
        for j in 0..4 {
            assert!((w[j] - 0.5 * (a[0][j] + a[1][j])).abs() < 1e-12);
            assert!((w[4 + j] - a[2][j]).abs() < 1e-12);
        }
    }
}
