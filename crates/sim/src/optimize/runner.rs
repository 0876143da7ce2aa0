//! Runs every combination through the engine on all cores: the bars are
//! shared, indicators are computed once per distinct window and shared
//! across the combinations that use it, and each combination keeps only
//! its metrics and the per-block sums the overfitting statistics need, so
//! memory grows with the cores and the indicator budget, not with
//! combinations times bars.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde_json::Value;
use tradelab_core::BarSeries;
use tradelab_data::features::{sma_track, SmaPoint};

use super::setup::BacktestSetup;
use super::space::Param;
use super::SearchError;
use crate::engine;
use crate::metrics::{self, Metrics};
use crate::stats::equity_returns;
use crate::stats::pbo::{block_sums, BlockSums};
use crate::stats::sharpe::ReturnMoments;
use crate::strategies::{SharedAverages, SharedSmaCrossover};

/// How a search runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOptions {
    /// Blocks each combination's returns are cut into for CSCV (even).
    pub blocks: usize,
    /// Bytes the shared indicator tracks may hold at once; combinations
    /// are run in batches whose windows fit.
    pub indicator_budget: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            blocks: 16,
            indicator_budget: 256 << 20,
        }
    }
}

/// What one combination did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The strategy's label (`sma_crossover(10,30)`).
    pub strategy: String,
    /// Every metric a single backtest reports.
    pub metrics: Metrics,
    /// Equity at the end.
    pub final_equity: f64,
    /// The per-bar return moments (for the deflated Sharpe ratio).
    pub moments: ReturnMoments,
    /// Per-block sums of the returns, for CSCV; `None` when the run is too
    /// short for the blocks.
    pub blocks: Option<Vec<BlockSums>>,
}

/// Every feed's `window`-bar SMA track, per window.
struct Tracks {
    by_window: BTreeMap<usize, Vec<Vec<SmaPoint>>>,
}

impl Tracks {
    fn build(feeds: &[&BarSeries], windows: &[usize]) -> Tracks {
        let built: Vec<(usize, Vec<Vec<SmaPoint>>)> = windows
            .par_iter()
            .map(|&w| (w, feeds.iter().map(|f| sma_track(&f.close, w)).collect()))
            .collect();
        Tracks {
            by_window: built.into_iter().collect(),
        }
    }

    /// The shared-indicator version of the strategy, when its windows are
    /// here (a concrete type, so the engine's loop inlines its `on_bar`).
    fn shared<'a>(&'a self, setup: &BacktestSetup, feeds: &[&'a BarSeries]) -> Option<SharedSmaCrossover<'a>> {
        if setup.strategy != "sma_crossover" {
            return None;
        }
        let st = &setup.strategies.sma_crossover;
        let (fast, slow) = (self.by_window.get(&st.fast)?, self.by_window.get(&st.slow)?);
        let instruments = feeds
            .iter()
            .enumerate()
            .map(|(i, f)| SharedAverages {
                closes: &f.close,
                fast: &fast[i],
                slow: &slow[i],
            })
            .collect();
        Some(SharedSmaCrossover::new(st.fast, st.slow, st.allow_short, instruments))
    }
}

/// The indicator windows a combination reads (those worth sharing).
fn windows_of(setup: &BacktestSetup) -> Vec<usize> {
    match setup.strategy.as_str() {
        "sma_crossover" => vec![setup.strategies.sma_crossover.fast, setup.strategies.sma_crossover.slow],
        _ => Vec::new(),
    }
}

/// Consecutive runs of combinations whose distinct windows fit `max_windows`.
fn batches(setups: &[BacktestSetup], max_windows: usize) -> Vec<(std::ops::Range<usize>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut windows: Vec<usize> = Vec::new();
    for (i, s) in setups.iter().enumerate() {
        let mut merged = windows.clone();
        for w in windows_of(s) {
            if !merged.contains(&w) {
                merged.push(w);
            }
        }
        if merged.len() > max_windows && i > start {
            out.push((start..i, std::mem::take(&mut windows)));
            start = i;
            merged = windows_of(s);
            merged.dedup();
        }
        windows = merged;
    }
    if start < setups.len() {
        out.push((start..setups.len(), windows));
    }
    out
}

/// Copies of `feeds` with their timeframe and calendar declared as
/// inferred: the engine annualises by them, and inferring them scans
/// every timestamp, once per backtest otherwise. The results are the
/// same; a search just does that scan once.
pub fn pinned(feeds: &[BarSeries]) -> Vec<BarSeries> {
    feeds
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f.timeframe = f.timeframe_or_inferred();
            f.calendar = Some(f.calendar_or_inferred());
            f
        })
        .collect()
}

/// Checks every combination against the settings before anything runs.
pub fn setups(
    base: &BacktestSetup,
    params: &[Param],
    combos: &[Vec<Value>],
) -> Result<Vec<BacktestSetup>, SearchError> {
    combos.iter().map(|c| base.with(params, c)).collect()
}

/// Backtests each setup over `feeds` (one shared account, as `backtest`
/// runs them), in parallel on the current rayon pool; results come back in
/// the setups' order, whatever the thread count. `done` counts finished
/// combinations, for progress reports.
pub fn run_all(setups: &[BacktestSetup], feeds: &[&BarSeries], opts: &RunOptions, done: &AtomicUsize) -> Vec<Outcome> {
    let bars: usize = feeds.iter().map(|f| f.len()).sum();
    let per_track = bars.max(1) * std::mem::size_of::<SmaPoint>();
    let max_windows = opts.indicator_budget / per_track;
    let mut out = Vec::with_capacity(setups.len());
    for (range, windows) in batches(setups, max_windows.max(2)) {
        // Under two tracks' worth of budget, every strategy keeps its own.
        let tracks = Tracks::build(feeds, if max_windows >= 2 { &windows } else { &[] });
        let batch: Vec<Outcome> = setups[range]
            .par_iter()
            .map(|s| {
                let o = run_one(s, feeds, &tracks, opts.blocks);
                done.fetch_add(1, Ordering::Relaxed);
                o
            })
            .collect();
        out.extend(batch);
    }
    out
}

/// One backtest, the same as `tradelab backtest` with these settings.
pub fn run_single(setup: &BacktestSetup, feeds: &[&BarSeries], blocks: usize) -> Outcome {
    run_one(
        setup,
        feeds,
        &Tracks {
            by_window: BTreeMap::new(),
        },
        blocks,
    )
}

fn run_one(setup: &BacktestSetup, feeds: &[&BarSeries], tracks: &Tracks, blocks: usize) -> Outcome {
    let cfg = setup.engine_config();
    let result = match tracks.shared(setup, feeds) {
        Some(mut shared) => engine::run(feeds, &mut shared, &cfg),
        None => engine::run(feeds, setup.strategy().as_mut(), &cfg),
    };
    let metrics = metrics::compute(&result, setup.backtest.risk_free_rate);
    let returns = equity_returns(&result.equity);
    Outcome {
        strategy: result.strategy.clone(),
        final_equity: result.final_equity,
        moments: ReturnMoments::of(&returns),
        blocks: block_sums(&returns, blocks).ok(),
        metrics,
    }
}

/// The equity curve (timestamps and values) of one setup, for the best
/// combination's charts and for walk-forward stitching.
pub fn curve(setup: &BacktestSetup, feeds: &[&BarSeries]) -> (Vec<i64>, Vec<f64>) {
    let mut strategy = setup.strategy();
    let result = engine::run(feeds, strategy.as_mut(), &setup.engine_config());
    (result.timestamps.into_owned(), result.equity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::space::{Method, ParamSpec, Space};
    use crate::settings::{BacktestSettings, RiskSettings, StrategySettings};
    use tradelab_data::settings::DataSettings;
    use tradelab_data::synthetic::{generate, SyntheticConfig};

    fn base() -> BacktestSetup {
        BacktestSetup::new(
            "sma_crossover",
            StrategySettings::default(),
            BacktestSettings::default(),
            RiskSettings::default(),
            DataSettings::default(),
        )
        .unwrap()
    }

    fn grid(base: &BacktestSetup) -> Vec<BacktestSetup> {
        let specs = ["fast=3:12:3", "slow=15:40:5"].map(|t| ParamSpec::parse(t).unwrap());
        let params = base.resolve(&specs, false).unwrap();
        let space = Space {
            params: params.clone(),
            constraints: vec![],
            method: Method::Grid,
        };
        setups(base, &params, &space.combinations().unwrap()).unwrap()
    }

    #[test]
    fn shared_indicators_small_budgets_and_thread_counts_change_nothing() {
        let a = generate(&SyntheticConfig {
            bars: 1500,
            seed: 3,
            ..Default::default()
        });
        let b = generate(&SyntheticConfig {
            bars: 1200,
            seed: 4,
            ..Default::default()
        });
        let mut b = b.series;
        b.instrument = "other".into();
        let feeds = [&a.series, &b];
        let base = base();
        let setups = grid(&base);
        let alone: Vec<Outcome> = setups.iter().map(|s| run_single(s, &feeds, 16)).collect();
        assert!(alone.iter().any(|o| o.metrics.trades.total_trades > 0));
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        for (threads, budget) in [(1, 256 << 20), (2, 256 << 20), (2, 2700 * 24 * 3), (2, 0)] {
            let opts = RunOptions {
                blocks: 16,
                indicator_budget: budget,
            };
            let done = AtomicUsize::new(0);
            let shared = pool(threads).install(|| run_all(&setups, &feeds, &opts, &done));
            assert_eq!(done.load(Ordering::Relaxed), setups.len());
            assert_eq!(shared, alone, "{threads} threads, budget {budget}");
        }
    }

    #[test]
    fn batches_keep_their_windows_within_the_budget_and_cover_every_combination() {
        let setups = grid(&base());
        for max in [2, 3, 5, 100] {
            let b = batches(&setups, max);
            assert_eq!(b.first().unwrap().0.start, 0);
            assert_eq!(b.last().unwrap().0.end, setups.len());
            assert!(b.windows(2).all(|w| w[0].0.end == w[1].0.start));
            for (range, windows) in &b {
                assert!(windows.len() <= max, "{windows:?}");
                for s in &setups[range.clone()] {
                    assert!(windows_of(s).iter().all(|w| windows.contains(w)));
                }
            }
        }
    }
}
