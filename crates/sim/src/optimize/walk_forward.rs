//! Walk-forward optimisation: cut the timeline into `K + 1` equal windows;
//! for each of the first `K`, search on it and trade the best combination,
//! untouched, on the window after it. The out-of-sample windows' returns
//! are stitched into one equity curve, shown beside the in-sample figure
//! the search reported and beside buy-and-hold on the same windows. A test
//! window's bars are never part of the search that chose what trades it.

use std::sync::atomic::AtomicUsize;

use serde::Serialize;
use serde_json::Value;
use tradelab_core::time::format_date;
use tradelab_core::BarSeries;

use super::results::{Objective, SearchResults};
use super::runner::{run_all, run_with_curve, RunOptions};
use super::setup::BacktestSetup;
use super::space::Param;
use super::SearchError;
use crate::metrics::{curve_metrics, periods_per_year, CurveMetrics};

/// Fewer bars than this in a window make its search meaningless.
pub const MIN_WINDOW_BARS: usize = 30;

/// One fold: where it searched, what it chose, what that did next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldResult {
    /// Position, from 0.
    pub index: usize,
    /// First and last date of the search window.
    pub train: (String, String),
    /// First and last date of the test window.
    pub test: (String, String),
    /// Bars of the first instrument in each.
    pub train_bars: usize,
    /// See `train_bars`.
    pub test_bars: usize,
    /// The combination the search chose.
    pub best: serde_json::Map<String, Value>,
    /// Its score in the search window (what a single search reports).
    pub in_sample_score: Option<f64>,
    /// Its score trading the test window.
    pub out_of_sample_score: Option<f64>,
    /// Its total return over the test window.
    pub out_of_sample_return: f64,
    /// Buy-and-hold's total return over the test window.
    pub buy_and_hold_return: f64,
}

/// What walk-forward optimisation found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WalkForwardResults {
    /// The metric searched on.
    pub objective: Objective,
    /// Every fold.
    pub folds: Vec<FoldResult>,
    /// The mean of the folds' in-sample scores: what optimising promised.
    pub mean_in_sample_score: Option<f64>,
    /// The mean of their out-of-sample scores: what it delivered.
    pub mean_out_of_sample_score: Option<f64>,
    /// The stitched out-of-sample equity curve's metrics.
    pub out_of_sample: CurveMetrics,
    /// Buy-and-hold's, stitched over the same windows.
    pub buy_and_hold: CurveMetrics,
    /// The stitched curve itself: timestamps (ms) and equity.
    #[serde(skip)]
    pub curve: (Vec<i64>, Vec<f64>),
}

/// The bars of `feed` with timestamps in `[from, to)`.
fn window(feed: &BarSeries, from: i64, to: i64) -> BarSeries {
    let a = feed.ts.partition_point(|&t| t < from);
    let b = feed.ts.partition_point(|&t| t < to);
    feed.slice(a, b)
}

/// The folds' boundaries as timestamps of the first feed:
/// `(train_from, test_from, test_to)`, `test_to` exclusive.
pub fn fold_bounds(first: &BarSeries, folds: usize) -> Result<Vec<(i64, i64, i64)>, SearchError> {
    let n = first.len();
    let seg = n / (folds + 1).max(1);
    if folds == 0 || seg < MIN_WINDOW_BARS {
        return Err(SearchError::new(format!(
            "--walk-forward {folds}: {n} bars make windows of {seg} bars; use at least 1 fold and at most {} for this series (each window needs {MIN_WINDOW_BARS} bars)",
            (n / MIN_WINDOW_BARS).saturating_sub(1).max(1)
        )));
    }
    Ok((0..folds)
        .map(|k| {
            let end = if k + 1 == folds {
                i64::MAX
            } else {
                first.ts[(k + 2) * seg]
            };
            (first.ts[k * seg], first.ts[(k + 1) * seg], end)
        })
        .collect())
}

fn span(feed: &BarSeries) -> (String, String) {
    let d = |t: Option<&i64>| t.map(|&t| format_date(t)).unwrap_or_default();
    (d(feed.ts.first()), d(feed.ts.last()))
}

/// Appends `equity`'s returns to `stitched`, which continues from its last value.
fn stitch(stitched: &mut (Vec<i64>, Vec<f64>), ts: &[i64], equity: &[f64], initial: f64) {
    let mut level = stitched.1.last().copied().unwrap_or(initial);
    let mut prev = initial;
    for (&t, &e) in ts.iter().zip(equity) {
        if prev > 0.0 {
            level *= e / prev;
        }
        prev = e;
        stitched.0.push(t);
        stitched.1.push(level);
    }
}

/// Runs walk-forward optimisation of `setups` (the combinations, checked)
/// over `feeds` with `folds` folds. `done` counts finished backtests of
/// the searches.
#[allow(clippy::too_many_arguments)]
pub fn walk_forward(
    base: &BacktestSetup,
    params: &[Param],
    combos: &[Vec<Value>],
    setups: &[BacktestSetup],
    objective: Objective,
    feeds: &[&BarSeries],
    folds: usize,
    opts: &RunOptions,
    done: &AtomicUsize,
) -> Result<WalkForwardResults, SearchError> {
    let bounds = fold_bounds(feeds[0], folds)?;
    let initial = base.backtest.initial_cash;
    let mut hold = base.clone();
    hold.strategy = "buy_and_hold".into();
    let (mut stitched, mut held) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    let mut out = Vec::new();
    for (k, &(train_from, test_from, test_to)) in bounds.iter().enumerate() {
        let cut = |from, to| -> Vec<BarSeries> {
            feeds
                .iter()
                .map(|f| window(f, from, to))
                .filter(|s| !s.is_empty())
                .collect()
        };
        let (train, test) = (cut(train_from, test_from), cut(test_from, test_to));
        let (train_refs, test_refs): (Vec<&BarSeries>, Vec<&BarSeries>) =
            (train.iter().collect(), test.iter().collect());
        let searched = SearchResults::new(params, combos, run_all(setups, &train_refs, opts, done), objective);
        let best = searched.best();
        let chosen = &setups[best.index];
        let (traded, ts, equity) = run_with_curve(chosen, &test_refs, opts.blocks);
        stitch(&mut stitched, &ts, &equity, initial);
        let (_, hts, hequity) = run_with_curve(&hold, &test_refs, opts.blocks);
        stitch(&mut held, &hts, &hequity, initial);
        out.push(FoldResult {
            index: k,
            train: span(&train[0]),
            test: span(&test[0]),
            train_bars: train[0].len(),
            test_bars: test[0].len(),
            best: best.params.clone(),
            in_sample_score: best.score,
            out_of_sample_score: objective.score(&traded.metrics),
            out_of_sample_return: traded.metrics.curve.total_return,
            buy_and_hold_return: hequity.last().map_or(0.0, |e| e / initial - 1.0),
        });
    }
    let mean = |xs: Vec<Option<f64>>| -> Option<f64> {
        let xs: Option<Vec<f64>> = xs.into_iter().collect();
        xs.map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    let ppy = periods_per_year(feeds[0]);
    let rf = base.backtest.risk_free_rate;
    Ok(WalkForwardResults {
        objective,
        mean_in_sample_score: mean(out.iter().map(|f| f.in_sample_score).collect()),
        mean_out_of_sample_score: mean(out.iter().map(|f| f.out_of_sample_score).collect()),
        out_of_sample: curve_metrics(&stitched.0, &stitched.1, ppy, rf),
        buy_and_hold: curve_metrics(&held.0, &held.1, ppy, rf),
        folds: out,
        curve: stitched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::runner::setups as check;
    use crate::optimize::space::{Method, ParamSpec, Space};
    use tradelab_data::synthetic::{generate, SyntheticConfig};

    fn run(feed: &BarSeries) -> WalkForwardResults {
        let base = crate::optimize::default_setup("sma_crossover");
        let specs = ["fast=2:10:2", "slow=12:40:7"].map(|t| ParamSpec::parse(t).unwrap());
        let params = base.resolve(&specs, false).unwrap();
        let space = Space {
            params: params.clone(),
            constraints: vec![],
            method: Method::Grid,
        };
        let combos = space.combinations().unwrap();
        let setups = check(&base, &params, &combos).unwrap();
        let done = AtomicUsize::new(0);
        let r = walk_forward(
            &base,
            &params,
            &combos,
            &setups,
            Objective::TotalReturn,
            &[feed],
            3,
            &RunOptions::default(),
            &done,
        )
        .unwrap();
        assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 3 * combos.len());
        r
    }

    #[test]
    fn a_test_window_never_informs_the_choice_that_trades_it() {
        let market = generate(&SyntheticConfig {
            bars: 1200,
            seed: 11,
            ..Default::default()
        });
        let feed = market.series;
        let bounds = fold_bounds(&feed, 3).unwrap();
        assert!(bounds.iter().all(|&(a, b, c)| a < b && b < c));
        assert!(bounds.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0));
        let before = run(&feed);
        assert_eq!(before.folds.len(), 3);
        // Rewrite every bar of fold 0's test window (the second quarter):
        // fold 0's choice must not move; what it earns there does.
        let mut changed = feed.clone();
        for i in 300..600 {
            let f = if i % 2 == 0 { 1.3 } else { 0.8 };
            changed.open[i] *= f;
            changed.high[i] *= f * 1.01;
            changed.low[i] *= f * 0.99;
            changed.close[i] *= f;
        }
        let after = run(&changed);
        assert_eq!(after.folds[0].best, before.folds[0].best);
        assert_eq!(after.folds[0].in_sample_score, before.folds[0].in_sample_score);
        assert_ne!(
            after.folds[0].out_of_sample_return,
            before.folds[0].out_of_sample_return
        );
        // The stitched curve covers the three test windows, bar for bar.
        assert_eq!(before.curve.0.len(), 900);
        assert_eq!(before.curve.0[0], feed.ts[300]);
    }

    #[test]
    fn too_few_bars_for_the_folds_is_explained() {
        let market = generate(&SyntheticConfig {
            bars: 100,
            seed: 1,
            ..Default::default()
        });
        let e = fold_bounds(&market.series, 5).unwrap_err().to_string();
        assert!(e.contains("--walk-forward 5: 100 bars make windows of 16 bars"), "{e}");
        assert!(fold_bounds(&market.series, 0).is_err());
    }
}
