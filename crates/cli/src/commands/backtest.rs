//! `tradelab backtest`: one baseline on one or more instruments.

use anyhow::{bail, Context, Result};
use tradelab_core::{BarSeries, Settings};
use tradelab_data::load::find_symbol;
use tradelab_data::{load_file, LoadOptions};
use tradelab_sim::engine::{self, BacktestResult, EngineConfig};
use tradelab_sim::report::render_report;
use tradelab_sim::strategies::{baseline, BASELINES};
use tradelab_sim::strategy::Strategy;

use crate::cli::{BacktestArgs, GlobalArgs};
use crate::context::{load_settings, path_override};
use crate::output::{build_report, style, write_report};
use crate::record::Recorder;

/// Looks up a baseline or explains which names exist.
pub fn strategy_by_name(name: &str, settings: &Settings) -> Result<Box<dyn Strategy>> {
    match baseline(name, settings) {
        Some(s) => Ok(s),
        None => bail!("unknown strategy `{name}`; choose one of: {}", BASELINES.join(", ")),
    }
}

/// Loads symbols from `data.raw_dir`, reporting what validation did.
pub fn load_symbols(settings: &Settings, symbols: &[String], verbose: bool) -> Result<Vec<BarSeries>> {
    let mut out = Vec::new();
    for s in symbols {
        // A path to a file loads that file; anything else names an instrument in data.raw_dir.
        let path = std::path::Path::new(s);
        let path = if path.is_file() {
            path.to_path_buf()
        } else {
            find_symbol(&settings.data.raw_dir, s).with_context(|| format!("loading `{s}`"))?
        };
        let loaded = load_file(&path, &LoadOptions::for_file(settings, &path));
        let (series, report) = loaded.with_context(|| format!("loading `{s}`"))?;
        if !report.issues.is_empty() {
            eprintln!(
                "note: {}: {} rows repaired, {} dropped (run `tradelab data validate {}` for details)",
                report.path.display(),
                report.repaired(),
                report.dropped(),
                report.path.display()
            );
        }
        if verbose {
            if let Some(n) = &report.header_note {
                eprintln!("note: {}: {n}", report.path.display());
            }
        }
        out.push(series);
    }
    Ok(out)
}

pub fn backtest<'a>(settings: &Settings, strategy: &str, feeds: &'a [BarSeries]) -> Result<BacktestResult<'a>> {
    let mut s = strategy_by_name(strategy, settings)?;
    let refs: Vec<&BarSeries> = feeds.iter().collect();
    Ok(engine::run(&refs, s.as_mut(), &EngineConfig::from_settings(settings)))
}

pub fn run(g: &GlobalArgs, a: &BacktestArgs) -> Result<()> {
    let mut extra: Vec<String> = path_override("report.out_dir", &a.out_dir).into_iter().collect();
    if let Some(fill) = &a.fill {
        extra.push(format!("backtest.fill={fill}"));
    }
    let settings = load_settings(g, &extra)?;
    // Check the name and the store before loading data, so a typo fails fast.
    strategy_by_name(&a.strategy, &settings)?;
    let recorder = Recorder::open(&settings)?;
    let feeds = load_symbols(&settings, &a.symbols, g.verbose)?;
    let result = backtest(&settings, &a.strategy, &feeds)?;
    let (_, report) = build_report(&result, &settings);
    let (json, svg) = write_report(&settings.report.out_dir, &report, &result)?;
    let recorded = match &recorder {
        Some(r) => {
            let id = r.record_backtest(None, &a.strategy, &serde_json::to_value(&report)?)?;
            r.job_result(&serde_json::json!({"backtest_id": id, "total_pnl": report.metrics.total_pnl}))?;
            Some(id)
        }
        None => None,
    };
    if a.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", render_report(&report, style()));
        println!("report: {}\nchart:  {}", json.display(), svg.display());
        if let Some(id) = recorded {
            println!("stored: backtest {id}");
        }
    }
    Ok(())
}
