//! `tradelab run`: the main job on the embedded defaults.

use anyhow::{Context, Result};
use tradelab_data::prepare::prepare;
use tradelab_sim::report::{render_comparison, render_report, BacktestReport};
use tradelab_sim::strategies::BASELINES;

use super::data::print_prepare;
use crate::cli::{GlobalArgs, RunArgs};
use crate::context::{load_settings, path_override};
use crate::output::{build_report, run_folder, style, write_report};
use tradelab_app::markets::backtest;
use tradelab_app::record::Recorder;

pub fn run(g: &GlobalArgs, a: &RunArgs) -> Result<()> {
    let extra: Vec<String> = path_override("report.out_dir", &a.out_dir).into_iter().collect();
    let mut settings = load_settings(g, &extra)?;
    let recorder = Recorder::open(&settings)?;
    println!(
        "== 1/3 prepare data: {} -> {}",
        settings.data.raw_dir.display(),
        settings.data.final_dir.display()
    );
    let prepared = prepare(&settings.data, &settings.features).context("preparing data")?;
    print_prepare(&prepared, g.verbose);
    anyhow::ensure!(
        !prepared.series.is_empty(),
        "no usable data in {}; copy OHLCV files there",
        settings.data.raw_dir.display()
    );
    // A folder of this run's own, once there is something to report.
    if a.out_dir.is_none() {
        settings.report.out_dir = run_folder(&settings.report.out_dir, "run", &settings)?;
    }

    // Baselines run on the daily instruments, where their default
    // parameters mean what they say; intraday files are prepared for training.
    let daily: Vec<_> = prepared
        .series
        .iter()
        .filter(|s| s.timeframe.is_some_and(|t| t.is_daily_or_longer()))
        .collect();
    println!(
        "\n== 2/3 backtest {} baselines on {} daily instruments (fill: {}, fees {}/{} {}, risk cap {:.0}% per asset)",
        BASELINES.len(),
        daily.len(),
        settings.backtest.fill.name(),
        settings.backtest.costs.entry_fixed,
        settings.backtest.costs.exit_fixed,
        settings.backtest.currency,
        settings.risk.max_asset_fraction * 100.0
    );
    let run = match &recorder {
        Some(r) => Some(r.start_run(
            "baselines",
            &serde_json::json!({"strategies": BASELINES, "instruments": daily.iter().map(|s| &s.instrument).collect::<Vec<_>>(), "settings": settings}),
            &serde_json::json!({"kind": "backtest"}),
        )?),
        None => None,
    };
    let mut reports: Vec<BacktestReport> = Vec::new();
    for series in &daily {
        for name in BASELINES {
            let result = backtest(&settings, name, std::slice::from_ref(*series))?;
            let (_, report) = build_report(&result, &settings);
            write_report(&settings.report.out_dir, &report, &result, &[*series])?;
            if let Some(r) = &recorder {
                r.record_backtest(run.as_deref(), name, &serde_json::to_value(&report)?)?;
            }
            reports.push(report);
        }
    }
    if let (Some(r), Some(run)) = (&recorder, &run) {
        r.finish_run(run, tradelab_store::tracking::RunStatus::Finished)?;
    }
    println!("{}", render_comparison(&reports, style()));
    // Say what decided these figures: the baselines trade under the same
    // risk layer as the agents, and a halt by the breaker is for good.
    let halted = reports.iter().filter(|r| r.halted().is_some()).count();
    let risk = &settings.risk;
    if risk.enabled {
        println!(
            "risk layer (as for the agents): at most {:.0}% of equity per asset, drawdown breaker at {:.0}%{}; {halted} of {} runs were halted by the breaker and stayed flat after the date shown (--set risk.enabled=false runs them without it)",
            risk.max_asset_fraction * 100.0,
            risk.max_drawdown * 100.0,
            if risk.max_drawdown > 0.0 { "" } else { " (off)" },
            reports.len()
        );
    } else {
        println!("risk layer off (risk.enabled=false): no caps, no breaker");
    }

    println!("\n== 3/3 best by Sharpe");
    if let Some(best) = reports.iter().max_by(|a, b| {
        a.metrics
            .curve
            .sharpe
            .unwrap_or(f64::MIN)
            .total_cmp(&b.metrics.curve.sharpe.unwrap_or(f64::MIN))
    }) {
        println!("{}", render_report(best, style()));
    }
    let summary: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| serde_json::json!({"simulation_id": r.simulation_id, "model_used": r.model_used, "instruments": r.instruments, "total_pnl": r.metrics.total_pnl, "sharpe": r.metrics.curve.sharpe, "max_drawdown_pct": r.max_drawdown_pct, "total_trades": r.total_trades}))
        .collect();
    let path = settings.report.out_dir.join("summary.json");
    tradelab_data::cache::write_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!(
        "reports and charts: {}/ (summary.json, one .json, .svg and interactive .html per run)",
        settings.report.out_dir.display()
    );
    if let Some(run) = run {
        println!(
            "stored: run {run} with {} backtests (`tradelab runs show {run}`)",
            reports.len()
        );
    }
    Ok(())
}
