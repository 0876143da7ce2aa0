//! The probability of backtest overfitting by combinatorially symmetric
//! cross-validation (CSCV; Bailey, Borwein, López de Prado and Zhu, 2015).
//!
//! A search tried `N` configurations over the same `T` bars. Cut the bars
//! into `S` blocks; for every way of choosing half of them as "in sample",
//! pick the configuration with the best in-sample Sharpe ratio and see where
//! it ranks out of sample (the other half). If the in-sample winner tends to
//! land in the bottom half out of sample, the selection is fitting noise.
//! PBO is the share of splits where it does (its rank's logit is ≤ 0).
//!
//! The statistic is the per-bar Sharpe ratio (mean over sample standard
//! deviation; 0 for a column without variation, so a flat configuration is
//! ranked as earning nothing). Ranks out of sample are averaged over ties.

use rayon::prelude::*;
use serde::Serialize;

/// What CSCV found for a matrix of trial returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overfitting {
    /// The share of splits whose in-sample winner ranks at or below the
    /// median out of sample (the logit of its relative rank is ≤ 0).
    pub pbo: f64,
    /// The mean logit over splits: positive when winners tend to stay
    /// above the median.
    pub mean_logit: f64,
    /// The share of splits whose in-sample winner loses money out of
    /// sample (its out-of-sample Sharpe ratio is below 0).
    pub probability_of_loss: f64,
    /// The in-sample winner's mean Sharpe ratio in and out of sample, per
    /// bar: the gap is the performance degradation.
    pub mean_in_sample_sharpe: f64,
    /// See [`mean_in_sample_sharpe`](Self::mean_in_sample_sharpe).
    pub mean_out_of_sample_sharpe: f64,
    /// Splits evaluated: `S` choose `S/2`.
    pub splits: usize,
    /// Blocks the bars were cut into.
    pub blocks: usize,
    /// Configurations compared.
    pub trials: usize,
    /// Bars per configuration (the remainder after equal blocks is dropped
    /// from the start, so the most recent bars always count).
    pub bars: usize,
}

/// Why CSCV could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PboError {
    /// Fewer than two configurations: there is no selection to judge.
    #[error("PBO needs at least 2 trials to compare; got {0}")]
    TooFewTrials(usize),
    /// Block count not even, or below 2.
    #[error("PBO needs an even number of blocks, at least 2; got {0}")]
    OddBlocks(usize),
    /// The columns differ in length.
    #[error("PBO needs every trial's returns over the same bars; got lengths {0} and {1}")]
    Ragged(usize, usize),
    /// Fewer than 2 bars a block.
    #[error("PBO with {blocks} blocks needs at least {} bars a trial; got {bars}", 2 * blocks)]
    TooFewBars {
        /// Bars per trial.
        bars: usize,
        /// Blocks asked for.
        blocks: usize,
    },
}

/// Per-block sums of one trial's returns: combining blocks then costs a
/// few additions, not a pass over the bars. A search that cannot keep
/// every trial's returns (a million bars times thousands of trials) keeps
/// these instead ([`block_sums`], [`probability_of_overfitting_from_blocks`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BlockSums {
    /// Returns in the block.
    pub n: f64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_sq: f64,
}

/// Where `returns` fall when cut into `blocks` equal blocks, the remainder
/// dropped from the start (so the most recent bars always count): the
/// sums of each block, or the reason CSCV cannot use them.
pub fn block_sums(returns: &[f64], blocks: usize) -> Result<Vec<BlockSums>, PboError> {
    if blocks < 2 || !blocks.is_multiple_of(2) {
        return Err(PboError::OddBlocks(blocks));
    }
    let t = returns.len();
    if t < 2 * blocks {
        return Err(PboError::TooFewBars { bars: t, blocks });
    }
    let per_block = t / blocks;
    let skip = t - per_block * blocks;
    Ok(returns[skip..]
        .chunks(per_block)
        .map(|chunk| {
            chunk.iter().fold(BlockSums::default(), |mut s, r| {
                s.n += 1.0;
                s.sum += r;
                s.sum_sq += r * r;
                s
            })
        })
        .collect())
}

impl BlockSums {
    fn add(&mut self, o: &BlockSums) {
        self.n += o.n;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }

    fn sharpe(&self) -> f64 {
        if self.n < 2.0 {
            return 0.0;
        }
        let mean = self.sum / self.n;
        let var = ((self.sum_sq - self.n * mean * mean) / (self.n - 1.0)).max(0.0);
        // Relative to the returns' scale, so the rounding left in a flat
        // column's sums never reads as variation.
        if var > 1e-12 * self.sum_sq / self.n {
            mean / var.sqrt()
        } else {
            0.0
        }
    }
}

/// CSCV over `trials` (one return series per configuration, all over the
/// same bars), cut into `blocks` blocks (even; 16 is the paper's choice).
pub fn probability_of_overfitting(trials: &[Vec<f64>], blocks: usize) -> Result<Overfitting, PboError> {
    let n = trials.len();
    if n < 2 {
        return Err(PboError::TooFewTrials(n));
    }
    if blocks < 2 || !blocks.is_multiple_of(2) {
        return Err(PboError::OddBlocks(blocks));
    }
    let t = trials[0].len();
    if let Some(other) = trials.iter().find(|c| c.len() != t) {
        return Err(PboError::Ragged(t, other.len()));
    }
    // sums[trial][block]
    let sums = trials
        .iter()
        .map(|col| block_sums(col, blocks))
        .collect::<Result<Vec<_>, _>>()?;
    probability_of_overfitting_from_blocks(&sums)
}

/// [`probability_of_overfitting`] from each trial's [`block_sums`] (every
/// trial cut into the same even number of blocks over the same bars).
pub fn probability_of_overfitting_from_blocks(sums: &[Vec<BlockSums>]) -> Result<Overfitting, PboError> {
    let n = sums.len();
    if n < 2 {
        return Err(PboError::TooFewTrials(n));
    }
    let blocks = sums[0].len();
    if blocks < 2 || !blocks.is_multiple_of(2) {
        return Err(PboError::OddBlocks(blocks));
    }
    let bars = |t: &[BlockSums]| t.iter().map(|b| b.n).sum::<f64>() as usize;
    let first = bars(&sums[0]);
    if let Some(other) = sums.iter().find(|t| t.len() != blocks || bars(t) != first) {
        return Err(PboError::Ragged(first, bars(other)));
    }
    // Splits are independent: evaluate them on every core, then sum their
    // figures in split order so the result does not depend on threads.
    // Each split is two lists of block indices in increasing order, and the
    // sums sit in one trial-major array: the same additions in the same
    // order as walking the blocks, without a branch per block.
    let mut halves: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut chosen = vec![false; blocks];
    for_each_half(blocks, &mut chosen, &mut |chosen| {
        let (is, oos): (Vec<usize>, Vec<usize>) = (0..chosen.len()).partition(|&b| chosen[b]);
        halves.push((is, oos));
    });
    let flat: Vec<BlockSums> = sums.iter().flatten().copied().collect();
    let per_split: Vec<(f64, f64, f64)> = halves
        .par_iter()
        .map_init(
            || (vec![0.0; n], vec![0.0; n]),
            |(in_sample, out_of_sample), (is_blocks, oos_blocks)| {
                for (trial, row) in flat.chunks_exact(blocks).enumerate() {
                    let (mut is, mut oos) = (BlockSums::default(), BlockSums::default());
                    for &b in is_blocks {
                        is.add(&row[b]);
                    }
                    for &b in oos_blocks {
                        oos.add(&row[b]);
                    }
                    in_sample[trial] = is.sharpe();
                    out_of_sample[trial] = oos.sharpe();
                }
                // The first of equal in-sample bests, as a search reports it.
                let best = (1..n).fold(0, |b, i| if in_sample[i] > in_sample[b] { i } else { b });
                let w = relative_rank(out_of_sample, best);
                ((w / (1.0 - w)).ln(), in_sample[best], out_of_sample[best])
            },
        )
        .collect();
    let (mut at_or_below, mut losses, mut splits) = (0usize, 0usize, 0usize);
    let (mut logit_sum, mut is_sum, mut oos_sum) = (0.0, 0.0, 0.0);
    for &(logit, is, oos) in &per_split {
        splits += 1;
        at_or_below += usize::from(logit <= 0.0);
        losses += usize::from(oos < 0.0);
        logit_sum += logit;
        is_sum += is;
        oos_sum += oos;
    }
    let s = splits as f64;
    Ok(Overfitting {
        pbo: at_or_below as f64 / s,
        mean_logit: logit_sum / s,
        probability_of_loss: losses as f64 / s,
        mean_in_sample_sharpe: is_sum / s,
        mean_out_of_sample_sharpe: oos_sum / s,
        splits,
        blocks,
        trials: n,
        bars: first,
    })
}

/// `values[at]`'s rank among `values` (1 for the lowest, ties averaged)
/// over `len + 1`: strictly between 0 and 1.
fn relative_rank(values: &[f64], at: usize) -> f64 {
    let v = values[at];
    let (below, equal) = values.iter().fold((0usize, 0usize), |(b, e), &x| {
        (b + usize::from(x < v), e + usize::from(x == v))
    });
    let (below, equal) = (below as f64, equal as f64);
    let rank = below + (equal + 1.0) / 2.0;
    rank / (values.len() as f64 + 1.0)
}

/// Calls `f` with every choice of half of `chosen.len()` blocks, in
/// lexicographic order of the chosen indices.
fn for_each_half(blocks: usize, chosen: &mut [bool], f: &mut dyn FnMut(&[bool])) {
    fn go(start: usize, left: usize, chosen: &mut [bool], f: &mut dyn FnMut(&[bool])) {
        if left == 0 {
            f(chosen);
            return;
        }
        for i in start..=chosen.len() - left {
            chosen[i] = true;
            go(i + 1, left - 1, chosen, f);
            chosen[i] = false;
        }
    }
    go(0, blocks / 2, chosen, f);
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    use super::*;

    fn noise(n: usize, mean: f64, seed: u64) -> Vec<f64> {
        let d = Normal::new(mean, 0.01).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn every_half_of_the_blocks_is_visited_once() {
        let mut seen = std::collections::BTreeSet::new();
        let mut chosen = vec![false; 6];
        for_each_half(6, &mut chosen, &mut |c| {
            assert_eq!(c.iter().filter(|&&x| x).count(), 3);
            seen.insert(c.to_vec());
        });
        assert_eq!(seen.len(), 20, "6 choose 3");
    }

    #[test]
    fn a_configuration_better_in_every_block_is_never_overfit() {
        // One configuration earns a steady edge; the rest are noise around
        // zero. It wins in sample on every split and stays on top.
        let mut trials: Vec<Vec<f64>> = (0..9).map(|s| noise(800, 0.0, s)).collect();
        trials.push(noise(800, 0.01, 99));
        let o = probability_of_overfitting(&trials, 8).unwrap();
        assert_eq!(o.splits, 70);
        assert_eq!(o.pbo, 0.0, "{o:?}");
        assert_eq!(o.probability_of_loss, 0.0);
        assert!(o.mean_logit > 1.5, "{o:?}");
    }

    #[test]
    fn pure_noise_is_overfit_about_half_the_time() {
        // Nothing has an edge: whichever wins in sample is a coin toss out
        // of sample, so PBO sits near 1/2 (the paper's null).
        let trials: Vec<Vec<f64>> = (0..40).map(|s| noise(1600, 0.0, s)).collect();
        let o = probability_of_overfitting(&trials, 16).unwrap();
        assert_eq!(o.splits, 12_870);
        assert!((0.25..0.75).contains(&o.pbo), "{o:?}");
        assert!(o.mean_in_sample_sharpe > o.mean_out_of_sample_sharpe + 0.02, "{o:?}");
    }

    #[test]
    fn a_winner_that_reverses_out_of_sample_is_always_overfit() {
        // Two configurations, mirror images, each earning in one half of
        // the bars and losing in the other: whichever won in sample loses
        // out of sample, so the in-sample pick always ranks last.
        let mut a = noise(400, 0.01, 7);
        a[200..].iter_mut().for_each(|x| *x -= 0.02);
        let b: Vec<f64> = a.iter().map(|x| -x).collect();
        let o = probability_of_overfitting(&[a, b], 2).unwrap();
        assert_eq!(o.pbo, 1.0, "{o:?}");
        // Relative rank 1/3 of two: logit ln(1/2).
        assert!((o.mean_logit - 0.5f64.ln()).abs() < 1e-12, "{o:?}");
    }

    #[test]
    fn flat_configurations_rank_as_earning_nothing() {
        let flat = vec![0.0; 100];
        let loser = noise(100, -0.02, 3);
        let o = probability_of_overfitting(&[flat, loser], 2).unwrap();
        // Flat wins in sample (Sharpe 0 beats negative) and out of sample.
        assert_eq!(o.pbo, 0.0, "{o:?}");
        assert_eq!(o.mean_out_of_sample_sharpe, 0.0);
    }

    #[test]
    fn bad_shapes_are_named() {
        let a = vec![0.01; 40];
        assert_eq!(
            probability_of_overfitting(std::slice::from_ref(&a), 4),
            Err(PboError::TooFewTrials(1))
        );
        assert_eq!(
            probability_of_overfitting(&[a.clone(), a.clone()], 3),
            Err(PboError::OddBlocks(3))
        );
        assert_eq!(
            probability_of_overfitting(&[a.clone(), vec![0.0; 39]], 4),
            Err(PboError::Ragged(40, 39))
        );
        let e = probability_of_overfitting(&[a.clone(), a], 32).unwrap_err();
        assert!(e.to_string().contains("at least 64 bars"), "{e}");
    }
}
