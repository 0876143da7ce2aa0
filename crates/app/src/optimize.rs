//! `tradelab optimize` and the optimisation job: a search over a
//! baseline's parameters and backtest settings, run in one process on
//! every core, reported as a ranked table, JSON, CSV, a heatmap and an
//! HTML page, with walk-forward optimisation on request.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tradelab_core::BarSeries;
use tradelab_sim::optimize::heatmap::heatmap_svg;
use tradelab_sim::optimize::render::report_html;
use tradelab_sim::optimize::walk_forward::{walk_forward, WalkForwardResults};
use tradelab_sim::optimize::{prepare, runner, BacktestSetup, Objective, ParamSpec, RunOptions, SearchResults};

use crate::settings::Settings;

/// What to search, as `tradelab optimize` and the API take it.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizeRequest {
    /// The baseline (`sma_crossover`).
    pub strategy: String,
    /// `NAME=START:END[:STEP]` or `NAME=A,B,C`, one per parameter.
    pub params: Vec<String>,
    /// `A OP B` each combination must satisfy.
    pub constraints: Vec<String>,
    /// `Some((trials, seed))` for a random search, `None` for the grid.
    pub random: Option<(usize, u64)>,
    /// The metric ranked by (`sharpe`).
    pub metric: String,
    /// Folds of walk-forward optimisation, if asked for.
    pub walk_forward: Option<usize>,
    /// The two parameters of the heatmap (default: the first two).
    pub heatmap: Option<(String, String)>,
    /// CSCV blocks (even).
    pub pbo_blocks: usize,
    /// Worker threads (default: every core).
    pub threads: Option<usize>,
}

/// What a search found, as the JSON report holds it.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    /// The baseline searched.
    pub strategy: String,
    /// The instruments, in the account's order.
    pub instruments: Vec<String>,
    /// Bars across the instruments.
    pub bars: usize,
    /// `grid` or `random`.
    pub method: String,
    /// Combinations run.
    pub combinations: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Seconds the search took (loading excluded).
    pub seconds: f64,
    /// The constraints applied.
    pub constraints: Vec<String>,
    /// The ranking and the statistics.
    pub results: SearchResults,
    /// Walk-forward optimisation, when asked for.
    pub walk_forward: Option<WalkForwardResults>,
}

/// The files a search wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizeFiles {
    /// Everything, as JSON.
    pub json: PathBuf,
    /// Every combination, as CSV.
    pub csv: PathBuf,
    /// The heatmap (with two or more parameters).
    pub heatmap: Option<PathBuf>,
    /// The HTML page.
    pub html: PathBuf,
}

/// The settings one backtest of `strategy` reads.
pub fn setup(settings: &Settings, strategy: &str) -> Result<BacktestSetup> {
    Ok(BacktestSetup::new(
        strategy,
        settings.strategies.clone(),
        settings.backtest.clone(),
        settings.risk.clone(),
        settings.data.clone(),
    )?)
}

/// Runs the search over `feeds`; `progress(done, total)` is called from
/// this thread about four times a second while it runs.
pub fn optimize(
    settings: &Settings,
    req: &OptimizeRequest,
    feeds: &[BarSeries],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<OptimizeReport> {
    let base = setup(settings, &req.strategy)?;
    let objective = Objective::parse(&req.metric)?;
    if req.pbo_blocks < 2 || !req.pbo_blocks.is_multiple_of(2) {
        bail!(
            "--pbo-blocks must be even and at least 2 (16 is the paper's choice); got {}",
            req.pbo_blocks
        );
    }
    if feeds.is_empty() {
        bail!("no data to search on: give at least one --symbol");
    }
    let specs = req
        .params
        .iter()
        .map(|p| ParamSpec::parse(p))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let constraints: Vec<&str> = req.constraints.iter().map(String::as_str).collect();
    let prepared = prepare(&base, &specs, &constraints, req.random)?;
    if let Some((x, y)) = &req.heatmap {
        for name in [x, y] {
            if !prepared.space.params.iter().any(|p| &p.name == name) {
                bail!("--heatmap: `{name}` is not a searched parameter");
            }
        }
    }
    let pool = match req.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n).build()?,
        None => rayon::ThreadPoolBuilder::new().build()?,
    };
    let opts = RunOptions {
        blocks: req.pbo_blocks,
        ..RunOptions::default()
    };
    let feeds = runner::pinned(feeds);
    let refs: Vec<&BarSeries> = feeds.iter().collect();
    let total = prepared.setups.len() * (1 + req.walk_forward.unwrap_or(0));
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let (finished, outcome) = std::sync::mpsc::channel();
    let (results, wf) = std::thread::scope(|scope| {
        scope.spawn(|| {
            let r = pool.install(|| -> Result<(SearchResults, Option<WalkForwardResults>)> {
                let outcomes = runner::run_all(&prepared.setups, &refs, &opts, &done);
                let results = SearchResults::new(&prepared.space.params, &prepared.combos, outcomes, objective);
                let wf = match req.walk_forward {
                    Some(k) => Some(walk_forward(
                        &base,
                        &prepared.space.params,
                        &prepared.combos,
                        &prepared.setups,
                        objective,
                        &refs,
                        k,
                        &opts,
                        &done,
                    )?),
                    None => None,
                };
                Ok((results, wf))
            });
            let _ = finished.send(r);
        });
        // Progress four times a second; the result the moment it is ready.
        loop {
            match outcome.recv_timeout(Duration::from_millis(250)) {
                Ok(r) => break r,
                Err(RecvTimeoutError::Timeout) => progress(done.load(Ordering::Relaxed), total),
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("the search stopped unexpectedly (a worker thread panicked)")
                }
            }
        }
    })?;
    progress(total, total);
    Ok(OptimizeReport {
        strategy: base.strategy.clone(),
        instruments: feeds.iter().map(|f| f.instrument.clone()).collect(),
        bars: feeds.iter().map(|f| f.len()).sum(),
        method: if req.random.is_some() { "random" } else { "grid" }.into(),
        combinations: prepared.combos.len(),
        threads: pool.current_num_threads(),
        seconds: started.elapsed().as_secs_f64(),
        constraints: req.constraints.clone(),
        results,
        walk_forward: wf,
    })
}

/// Writes `optimize.json`, `optimize.csv`, `heatmap.svg` (two or more
/// parameters) and `optimize.html` into `dir`.
pub fn write_outputs(
    dir: &Path,
    report: &OptimizeReport,
    heatmap: Option<&(String, String)>,
    top: usize,
) -> Result<OptimizeFiles> {
    crate::settings::ensure_dir(dir)?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf> {
        let path = dir.join(name);
        tradelab_data::cache::write_atomic(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let json = write("optimize.json", serde_json::to_string_pretty(report)?.as_bytes())?;
    let csv = write("optimize.csv", report.results.to_csv().as_bytes())?;
    let title = format!(
        "{} on {}: {} combinations",
        report.strategy,
        report.instruments.join(", "),
        report.combinations
    );
    let axes = heatmap.cloned().or_else(|| match report.results.params.as_slice() {
        [a, b, ..] => Some((a.name.clone(), b.name.clone())),
        _ => None,
    });
    let svg = match &axes {
        Some((x, y)) => Some(heatmap_svg(&report.results, x, y, &title)?),
        None => None,
    };
    let heatmap = match &svg {
        Some(s) => Some(write("heatmap.svg", s.as_bytes())?),
        None => None,
    };
    let html = report_html(
        &title,
        &report.results,
        top,
        svg.as_deref(),
        report.walk_forward.as_ref(),
    );
    let html = write("optimize.html", html.as_bytes())?;
    Ok(OptimizeFiles {
        json,
        csv,
        heatmap,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markets::backtest;
    use tradelab_sim::metrics;

    fn bundled() -> (Settings, Vec<BarSeries>) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut s = Settings::default();
        s.data.raw_dir = root.join("data/raw");
        let feeds = crate::markets::load_symbols(&s, &["orcl".to_string()], false).unwrap();
        (s, feeds)
    }

    fn request(params: &[&str]) -> OptimizeRequest {
        OptimizeRequest {
            strategy: "sma_crossover".into(),
            params: params.iter().map(|s| s.to_string()).collect(),
            constraints: vec!["fast < slow".into()],
            random: None,
            metric: "sharpe".into(),
            walk_forward: None,
            heatmap: None,
            pbo_blocks: 16,
            threads: Some(2),
        }
    }

    #[test]
    fn every_metric_equals_a_single_backtest_with_the_same_settings() {
        let (settings, feeds) = bundled();
        let req = request(&["fast=5:25:10", "slow=20:60:20", "backtest.costs.percent=0,0.001"]);
        let mut calls = 0;
        let report = optimize(&settings, &req, &feeds, &mut |_, _| calls += 1).unwrap();
        assert!(calls >= 1);
        assert_eq!(report.combinations, report.results.rows.len());
        assert!(report.results.rows.iter().any(|r| r.metrics.trades.total_trades > 0));
        // A sample: the best, the worst and one in the middle.
        let rows = &report.results.rows;
        for r in [&rows[0], &rows[rows.len() / 2], rows.last().unwrap()] {
            let overrides: Vec<String> = report
                .results
                .params
                .iter()
                .map(|p| format!("{}={}", p.key, r.params[&p.name]))
                .collect();
            let mut single = Settings::defaults_with(&overrides).unwrap();
            single.data = settings.data.clone();
            let result = backtest(&single, "sma_crossover", &feeds).unwrap();
            let m = metrics::compute(&result, single.backtest.risk_free_rate);
            assert_eq!(r.metrics, m, "{overrides:?}");
            assert_eq!(r.final_equity, result.final_equity);
            assert_eq!(r.strategy, result.strategy);
        }
        let dir = tempfile::tempdir().unwrap();
        let files = write_outputs(dir.path(), &report, None, 10).unwrap();
        let csv = std::fs::read_to_string(&files.csv).unwrap();
        assert_eq!(csv.lines().count(), report.combinations + 1);
        assert!(csv.starts_with("rank,index,fast,slow,backtest.costs.percent,score,final_equity,total_return"));
        let svg = std::fs::read_to_string(files.heatmap.unwrap()).unwrap();
        assert_eq!(svg.matches("class=\"best\"").count(), 1);
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
        assert_eq!(json["results"]["rows"][0]["rank"], 1);
        assert!(std::fs::read_to_string(&files.html).unwrap().contains("<svg"));
    }

    #[test]
    fn one_thread_and_two_give_the_same_report() {
        let (settings, feeds) = bundled();
        let mut req = request(&["fast=5:30:5", "slow=20:80:10"]);
        req.walk_forward = Some(2);
        req.threads = Some(1);
        let one = optimize(&settings, &req, &feeds, &mut |_, _| {}).unwrap();
        req.threads = Some(2);
        let two = optimize(&settings, &req, &feeds, &mut |_, _| {}).unwrap();
        assert_eq!(one.threads, 1);
        assert_eq!(two.threads, 2);
        assert_eq!(one.results, two.results);
        assert_eq!(one.walk_forward, two.walk_forward);
        assert!(one.results.deflation.is_some());
        assert!(
            one.results.overfitting.is_some(),
            "{:?}",
            one.results.overfitting_unavailable
        );
    }

    #[test]
    fn bad_requests_are_refused_before_anything_runs() {
        let (settings, feeds) = bundled();
        let err = |req: OptimizeRequest| {
            optimize(&settings, &req, &feeds, &mut |_, _| {})
                .unwrap_err()
                .to_string()
        };
        let mut r = request(&["fast=5:30:5"]);
        r.metric = "alpha".into();
        assert!(err(r).contains("unknown metric `alpha`"));
        assert!(err(request(&["fast=50:60", "slow=20:30"]))
            .contains("the search is empty: no combination satisfies `fast < slow`"));
        assert!(err(request(&["speed=1:2"])).contains("unknown parameter `speed`"));
        assert!(err(request(&["fast=1.5:3"])).contains("is not a whole number"));
        let mut r = request(&["fast=5:30:5", "slow=40:50:10"]);
        r.heatmap = Some(("fast".into(), "period".into()));
        assert!(err(r).contains("--heatmap: `period` is not a searched parameter"));
        let mut r = request(&["fast=5:30:5", "slow=40:50:10"]);
        r.pbo_blocks = 3;
        assert!(err(r).contains("--pbo-blocks must be even"));
        let mut r = request(&["fast=5:30:5", "slow=40:50:10"]);
        r.strategy = "martingale".into();
        assert!(err(r).contains("unknown strategy `martingale`"));
    }
}
