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
use crate::engine::{self, BacktestResult};
use crate::metrics::{self, Metrics};
use crate::stats::equity_returns;
use crate::stats::pbo::{block_sums, BlockSums};
use crate::stats::sharpe::ReturnMoments;
use crate::strategies::{
    rsi_track, volatility_track, SharedAverages, SharedRsiMeanReversion, SharedSmaCrossover, VolatilityTargetSide,
    VolatilityTargeted,
};

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

/// An indicator worth computing once and sharing: its kind and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Indicator {
    /// A simple moving average of the closes.
    Sma(usize),
    /// Wilder's RSI of the closes.
    Rsi(usize),
    /// The vol-target baselines' annualised realised volatility.
    Volatility(usize),
}

/// Every feed's track of each indicator a batch needs.
struct Tracks {
    sma: BTreeMap<usize, Vec<Vec<SmaPoint>>>,
    rsi: BTreeMap<usize, Vec<Vec<f64>>>,
    volatility: BTreeMap<usize, Vec<Vec<f64>>>,
}

/// One indicator's tracks, one per feed.
enum Built {
    Sma(usize, Vec<Vec<SmaPoint>>),
    Rsi(usize, Vec<Vec<f64>>),
    Volatility(usize, Vec<Vec<f64>>),
}

impl Tracks {
    fn none() -> Tracks {
        Tracks {
            sma: BTreeMap::new(),
            rsi: BTreeMap::new(),
            volatility: BTreeMap::new(),
        }
    }

    fn build(feeds: &[&BarSeries], indicators: &[Indicator]) -> Tracks {
        let built: Vec<Built> = indicators
            .par_iter()
            .map(|&i| match i {
                Indicator::Sma(w) => Built::Sma(w, feeds.iter().map(|f| sma_track(&f.close, w)).collect()),
                Indicator::Rsi(w) => Built::Rsi(w, feeds.iter().map(|f| rsi_track(&f.close, w)).collect()),
                Indicator::Volatility(w) => {
                    Built::Volatility(w, feeds.iter().map(|f| volatility_track(f, w)).collect())
                }
            })
            .collect();
        let mut t = Tracks::none();
        for b in built {
            match b {
                Built::Sma(w, v) => {
                    t.sma.insert(w, v);
                }
                Built::Rsi(w, v) => {
                    t.rsi.insert(w, v);
                }
                Built::Volatility(w, v) => {
                    t.volatility.insert(w, v);
                }
            }
        }
        t
    }

    /// The shared-indicator SMA crossover, when its windows are here (a
    /// concrete type, so the engine's loop inlines its `on_bar`).
    fn sma_crossover<'a>(&'a self, setup: &BacktestSetup, feeds: &[&'a BarSeries]) -> Option<SharedSmaCrossover<'a>> {
        if setup.strategy != "sma_crossover" {
            return None;
        }
        let st = &setup.strategies.sma_crossover;
        let (fast, slow) = (self.sma.get(&st.fast)?, self.sma.get(&st.slow)?);
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

    /// The shared-indicator RSI mean reversion, when its period is here.
    fn rsi_mean_reversion(&self, setup: &BacktestSetup) -> Option<SharedRsiMeanReversion<'_>> {
        if setup.strategy != "rsi_mean_reversion" {
            return None;
        }
        let cfg = &setup.strategies.rsi_mean_reversion;
        let tracks = self.rsi.get(&cfg.period)?;
        Some(SharedRsiMeanReversion::new(
            cfg,
            tracks.iter().map(Vec::as_slice).collect(),
        ))
    }

    /// The volatility-targeted baselines on shared volatility, when their
    /// window is here.
    fn vol_target(&self, setup: &BacktestSetup) -> Option<VolatilityTargeted<'_>> {
        let side = match setup.strategy.as_str() {
            "buy_and_hold_vol_target" => VolatilityTargetSide::Long,
            "momentum_vol_target" => VolatilityTargetSide::Momentum,
            _ => return None,
        };
        let cfg = &setup.strategies.volatility_target;
        let tracks = self.volatility.get(&cfg.window)?;
        Some(VolatilityTargeted::with_volatility(
            cfg,
            side,
            tracks.iter().map(Vec::as_slice).collect(),
        ))
    }
}

/// The indicators a combination reads (those worth sharing).
fn indicators_of(setup: &BacktestSetup) -> Vec<Indicator> {
    match setup.strategy.as_str() {
        "sma_crossover" => {
            let st = &setup.strategies.sma_crossover;
            vec![Indicator::Sma(st.fast), Indicator::Sma(st.slow)]
        }
        "rsi_mean_reversion" => vec![Indicator::Rsi(setup.strategies.rsi_mean_reversion.period)],
        "buy_and_hold_vol_target" | "momentum_vol_target" => {
            vec![Indicator::Volatility(setup.strategies.volatility_target.window)]
        }
        _ => Vec::new(),
    }
}

/// Consecutive runs of combinations whose distinct indicators fit `max_windows`.
fn batches(setups: &[BacktestSetup], max_windows: usize) -> Vec<(std::ops::Range<usize>, Vec<Indicator>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut windows: Vec<Indicator> = Vec::new();
    for (i, s) in setups.iter().enumerate() {
        let mut merged = windows.clone();
        for w in indicators_of(s) {
            if !merged.contains(&w) {
                merged.push(w);
            }
        }
        if merged.len() > max_windows && i > start {
            out.push((start..i, std::mem::take(&mut windows)));
            start = i;
            merged = indicators_of(s);
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
    // Budgeted at the larger track (an SMA's bar is 24 bytes, an RSI's 8).
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
    run_one(setup, feeds, &Tracks::none(), blocks)
}

fn run_one(setup: &BacktestSetup, feeds: &[&BarSeries], tracks: &Tracks, blocks: usize) -> Outcome {
    let cfg = setup.engine_config();
    let result = if let Some(mut s) = tracks.sma_crossover(setup, feeds) {
        engine::run(feeds, &mut s, &cfg)
    } else if let Some(mut s) = tracks.rsi_mean_reversion(setup) {
        engine::run(feeds, &mut s, &cfg)
    } else if let Some(mut s) = tracks.vol_target(setup) {
        engine::run(feeds, &mut s, &cfg)
    } else {
        engine::run(feeds, setup.strategy().as_mut(), &cfg)
    };
    outcome(setup, &result, blocks)
}

/// What a finished run keeps: its metrics, return moments and block sums.
fn outcome(setup: &BacktestSetup, result: &BacktestResult<'_>, blocks: usize) -> Outcome {
    let metrics = metrics::compute(result, setup.backtest.risk_free_rate);
    let returns = equity_returns(&result.equity);
    Outcome {
        strategy: result.strategy.clone(),
        final_equity: result.final_equity,
        moments: ReturnMoments::of(&returns),
        blocks: block_sums(&returns, blocks).ok(),
        metrics,
    }
}

/// [`run_single`] that also returns the equity curve (timestamps and
/// values), for walk-forward stitching: one run gives both.
pub fn run_with_curve(setup: &BacktestSetup, feeds: &[&BarSeries], blocks: usize) -> (Outcome, Vec<i64>, Vec<f64>) {
    let result = engine::run(feeds, setup.strategy().as_mut(), &setup.engine_config());
    let o = outcome(setup, &result, blocks);
    (o, result.timestamps.into_owned(), result.equity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::space::{Method, ParamSpec, Space};
    use tradelab_data::synthetic::{generate, SyntheticConfig};

    fn base() -> BacktestSetup {
        named("sma_crossover")
    }

    fn named(strategy: &str) -> BacktestSetup {
        crate::optimize::default_setup(strategy)
    }

    fn grid(base: &BacktestSetup) -> Vec<BacktestSetup> {
        let specs: &[&str] = match base.strategy.as_str() {
            "sma_crossover" => &["fast=3:12:3", "slow=15:40:5"],
            "rsi_mean_reversion" => &["period=3:9:3", "oversold=20:35:5", "exit_level=45,55"],
            _ => &["window=10:30:10", "target=0.05:0.2:0.05", "rebalance_band=0.1,0.3"],
        };
        let specs: Vec<ParamSpec> = specs.iter().map(|t| ParamSpec::parse(t).unwrap()).collect();
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
        for strategy in ["sma_crossover", "rsi_mean_reversion", "momentum_vol_target"] {
            let setups = grid(&named(strategy));
            let alone: Vec<Outcome> = setups.iter().map(|s| run_single(s, &feeds, 16)).collect();
            assert!(alone.iter().any(|o| o.metrics.trades.total_trades > 0), "{strategy}");
            let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
            for (threads, budget) in [(1, 256 << 20), (2, 256 << 20), (2, 2700 * 24 * 3), (2, 0)] {
                let opts = RunOptions {
                    blocks: 16,
                    indicator_budget: budget,
                };
                let done = AtomicUsize::new(0);
                let shared = pool(threads).install(|| run_all(&setups, &feeds, &opts, &done));
                assert_eq!(done.load(Ordering::Relaxed), setups.len());
                assert_eq!(shared, alone, "{strategy}: {threads} threads, budget {budget}");
            }
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
                    assert!(indicators_of(s).iter().all(|w| windows.contains(w)));
                }
            }
        }
    }
}
