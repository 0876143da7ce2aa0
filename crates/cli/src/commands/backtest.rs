//! `tradelab backtest`: one baseline on one or more instruments.

use anyhow::Result;
use tradelab_app::backtest_statistics::{compare_with_benchmark, BacktestStatistics, Baseline};
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
    let (baselines, statistics) = compare_with_benchmark(&settings, &a.strategy, &feeds, &result)?;
    let recorded = match &recorder {
        Some(r) => {
            // The stored report carries its benchmark and statistics, for
            // the dashboard to show side by side.
            let mut stored = serde_json::to_value(&report)?;
            stored["baselines"] = serde_json::to_value(&baselines)?;
            stored["statistics"] = serde_json::to_value(&statistics)?;
            let id = r.record_backtest(None, &a.strategy, &stored)?;
            r.job_result(&serde_json::json!({"backtest_id": id, "total_pnl": report.metrics.total_pnl}))?;
            Some(id)
        }
        None => None,
    };
    if a.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", render_report(&report, style()));
        print_comparison(&baselines, &statistics);
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

/// Buy-and-hold's figures and the Sharpe ratio's uncertainty, under the report.
fn print_comparison(baselines: &[Baseline], s: &BacktestStatistics) {
    let pct = s.confidence * 100.0;
    println!(
        "Sharpe {:.2}, {pct:.0}% interval [{:.2}, {:.2}] ({} resamples of {} returns); P(true Sharpe > 0) = {:.2}",
        s.sharpe, s.sharpe_low, s.sharpe_high, s.resamples, s.bars, s.probability_sharpe_above_zero
    );
    for b in baselines {
        println!(
            "{}: total return {:.2}%, Sharpe {}, max drawdown {:.2}%",
            b.name,
            b.metrics.curve.total_return * 100.0,
            b.metrics.curve.sharpe.map_or("n/a".into(), |x| format!("{x:.2}")),
            b.metrics.curve.max_drawdown * 100.0
        );
    }
    if let (Some(d), Some(lo), Some(hi), Some(p)) = (
        s.sharpe_minus_benchmark,
        s.difference_low,
        s.difference_high,
        s.difference_p_value,
    ) {
        println!("Sharpe minus buy-and-hold's: {d:+.2}, {pct:.0}% interval [{lo:+.2}, {hi:+.2}], p = {p:.3}");
    }
}
