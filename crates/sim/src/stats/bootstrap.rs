//! The stationary bootstrap (Politis and Romano, 1994).
//!
//! A resample is built from blocks of consecutive observations whose
//! starts are uniform and whose lengths are geometric with mean
//! `mean_block`, wrapping around the end of the series. Unlike resampling
//! single returns it keeps volatility clusters and autocorrelation inside
//! each block, and unlike fixed blocks the resampled series is stationary.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The mean block length used when none is given: `T^(1/3)`, the order
/// that minimises the error of a bootstrap variance (Hall, Horowitz and
/// Jing, 1995), at least 1.
pub fn default_block_length(n: usize) -> f64 {
    (n as f64).cbrt().max(1.0)
}

/// Draws stationary-bootstrap index sequences over a series of `n`
/// observations, reproducibly from a seed.
pub struct StationaryBootstrap {
    n: usize,
    restart: f64,
    rng: ChaCha8Rng,
}

impl StationaryBootstrap {
    /// Resamples of `n` indices with blocks of mean length `mean_block`
    /// (clamped to [1, n]), seeded by `seed`.
    pub fn new(n: usize, mean_block: f64, seed: u64) -> Self {
        let block = if mean_block.is_finite() {
            mean_block.clamp(1.0, n.max(1) as f64)
        } else {
            1.0
        };
        StationaryBootstrap {
            n,
            restart: 1.0 / block,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Fills `indices` (resized to `n`) with the next resample's indices.
    pub fn next_indices(&mut self, indices: &mut Vec<usize>) {
        indices.clear();
        if self.n == 0 {
            return;
        }
        let mut i = self.rng.random_range(0..self.n);
        for _ in 0..self.n {
            indices.push(i);
            i = if self.rng.random::<f64>() < self.restart {
                self.rng.random_range(0..self.n)
            } else {
                (i + 1) % self.n
            };
        }
    }
}

/// The `q`-quantile of `sorted` (ascending) by linear interpolation
/// between order statistics (NumPy's default); NaN when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (lo, frac) = (h.floor() as usize, h - h.floor());
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + frac * (sorted[hi] - sorted[lo])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_asked_mean_length_and_wrap_around() {
        let mut b = StationaryBootstrap::new(1000, 10.0, 7);
        let mut idx = Vec::new();
        let (mut blocks, mut draws, mut wraps) = (0usize, 0usize, 0usize);
        for _ in 0..200 {
            b.next_indices(&mut idx);
            assert_eq!(idx.len(), 1000);
            assert!(idx.iter().all(|&i| i < 1000));
            blocks += 1 + idx.windows(2).filter(|w| w[1] != (w[0] + 1) % 1000).count();
            wraps += idx.windows(2).filter(|w| w[0] == 999 && w[1] == 0).count();
            draws += idx.len();
        }
        let mean = draws as f64 / blocks as f64;
        // A restart can land on the next index by chance (1 in 1000), so
        // the observed mean is a hair above 10.
        assert!((mean - 10.0).abs() < 0.3, "mean block length {mean}");
        assert!(wraps > 0, "blocks continue from the last observation to the first");
    }

    #[test]
    fn the_same_seed_draws_the_same_resamples_and_block_one_is_iid() {
        let (mut a, mut b) = (
            StationaryBootstrap::new(50, 5.0, 3),
            StationaryBootstrap::new(50, 5.0, 3),
        );
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.next_indices(&mut x);
        b.next_indices(&mut y);
        assert_eq!(x, y);
        let mut iid = StationaryBootstrap::new(10_000, 1.0, 3);
        iid.next_indices(&mut x);
        let runs = x.windows(2).filter(|w| w[1] == (w[0] + 1) % 10_000).count();
        assert!(runs < 10, "mean block 1 restarts every draw: {runs} continuations");
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert!(
            (quantile_sorted(&v, 0.25) - 1.75).abs() < 1e-12,
            "numpy.quantile([1,2,3,4], .25) = 1.75"
        );
        assert!(quantile_sorted(&[], 0.5).is_nan());
        assert_eq!(default_block_length(1000), 10.0);
    }
}
