//! Walk-forward splits: train on a window, skip an embargo gap, test on the
//! next window, roll forward by one test window.
//!
//! The embargo keeps features computed near the end of a training window
//! (whose lookbacks reach forward into what would be test data for labels
//! or rewards) from leaking into the test.
//!
//! ```
//! use tradelab_sim::walkforward::walk_forward;
//! let folds = walk_forward(1000, 500, 100, 10, false);
//! assert_eq!(folds[0].train, 0..500);
//! assert_eq!(folds[0].test, 510..610);
//! assert!(folds.windows(2).all(|w| w[0].test.end <= w[1].test.start));
//! ```

use std::ops::Range;

use serde::Serialize;

/// One split, as ranges of bar indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fold {
    /// Position of the fold, from 0.
    pub index: usize,
    /// Bars to train on.
    pub train: Range<usize>,
    /// Bars to test on, after the embargo gap.
    pub test: Range<usize>,
}

/// Folds over `n` bars. With `anchored`, every training window starts at
/// bar 0 (expanding); otherwise it rolls with a fixed length.
pub fn walk_forward(n: usize, train: usize, test: usize, embargo: usize, anchored: bool) -> Vec<Fold> {
    let mut folds = Vec::new();
    if train == 0 || test == 0 {
        return folds;
    }
    let mut train_end = train;
    while train_end + embargo + test <= n {
        let test_start = train_end + embargo;
        folds.push(Fold {
            index: folds.len(),
            train: if anchored {
                0..train_end
            } else {
                train_end - train..train_end
            },
            test: test_start..test_start + test,
        });
        train_end += test;
    }
    folds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_never_overlap_and_respect_the_embargo() {
        for anchored in [false, true] {
            let folds = walk_forward(5000, 1000, 250, 5, anchored);
            assert_eq!(folds.len(), (5000 - 1000 - 5) / 250);
            for f in &folds {
                assert!(f.train.end + 5 <= f.test.start);
                assert_eq!(f.test.len(), 250);
                assert!(f.test.end <= 5000);
                assert_eq!(f.train.start, if anchored { 0 } else { f.train.end - 1000 });
            }
            for w in folds.windows(2) {
                assert_eq!(w[0].test.end, w[1].test.start, "test windows tile the data");
            }
        }
    }

    #[test]
    fn too_little_data_gives_no_folds() {
        assert!(walk_forward(100, 80, 30, 0, false).is_empty());
        assert!(walk_forward(100, 0, 10, 0, false).is_empty());
    }
}
