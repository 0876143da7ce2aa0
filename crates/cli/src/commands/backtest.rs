//! `tradelab backtest`: one baseline on one or more instruments.

use anyhow::Result;
use tradelab_app::markets::{backtest, load_symbols, strategy_by_name};
use tradelab_sim::report::render_report;

use tradelab_core::BarSeries;

use crate::cli::{BacktestArgs, GlobalArgs};
use crate::context::{load_settings, path_override};
use crate::output::{build_report, run_folder, style, write_report};
use tradelab_app::record::Recorder;

pub fn run(g: &GlobalArgs, a: &BacktestArgs) -> Result<()> {
    let mut extra: Vec<String> = path_override("report.out_dir", &a.out_dir).into_iter().collect();
    if let Some(fill) = &a.fill {
        extra.push(format!("backtest.fill={fill}"));
    }
    let mut settings = load_settings(g, &extra)?;
    // Check the name and the store before loading data, so a typo fails fast.
    strategy_by_name(&a.strategy, &settings)?;
    let recorder = Recorder::open(&settings)?;
    let feeds = load_symbols(&settings, &a.symbols, g.verbose)?;
    if a.out_dir.is_none() {
        settings.report.out_dir = run_folder(&settings.report.out_dir, "backtest", &settings)?;
    }
    let result = backtest(&settings, &a.strategy, &feeds)?;
    let (_, report) = build_report(&result, &settings);
    let feed_refs: Vec<&BarSeries> = feeds.iter().collect();
    let (json, svg) = write_report(&settings.report.out_dir, &report, &result, &feed_refs)?;
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
        println!(
            "report: {}\nchart:  {}\nhtml:   {} (interactive, opens offline)",
            json.display(),
            svg.display(),
            svg.with_extension("html").display()
        );
        if let Some(id) = recorded {
            println!("stored: backtest {id}");
        }
    }
    Ok(())
}
