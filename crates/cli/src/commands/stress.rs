//! `tradelab stress`: Monte Carlo stress test of a baseline's equity curve.

use anyhow::{bail, Result};
use tradelab_sim::montecarlo::{stress, StressConfig};

use crate::cli::{GlobalArgs, StressArgs};
use crate::context::load_settings;
use tradelab_app::markets::{backtest, load_symbols, strategy_by_name};

pub fn run(g: &GlobalArgs, a: &StressArgs) -> Result<()> {
    let mut extra: Vec<String> = a.paths.map(|p| format!("monte_carlo.paths={p}")).into_iter().collect();
    extra.extend(crate::context::path_override("report.out_dir", &a.out_dir));
    let mut settings = load_settings(g, &extra)?;
    strategy_by_name(&a.strategy, &settings)?;
    if a.out_dir.is_none() {
        settings.report.out_dir = crate::output::run_folder(&settings.report.out_dir, "stress", &settings)?;
    }
    let feeds = load_symbols(&settings, &a.symbols, g.verbose)?;
    let result = backtest(&settings, &a.strategy, &feeds)?;
    let mc = &settings.monte_carlo;
    let cfg = StressConfig {
        paths: mc.paths,
        block_size: mc.block_size,
        vol_scales: mc.vol_scales.clone(),
        seed: settings.seed,
    };
    let Some(results) = stress(&result.equity, &cfg) else {
        bail!("the equity curve has fewer than 3 points; use more data");
    };
    println!(
        "{} on {}: final equity {:.2} from {:.2}; {} paths, block {} bars",
        result.strategy,
        result.instruments.join(", "),
        result.final_equity,
        result.initial_cash,
        cfg.paths,
        cfg.block_size
    );
    println!(
        "{:>9} {:>14} {:>14} {:>14} {:>10} {:>10} {:>8}",
        "vol scale", "equity p5", "equity p50", "equity p95", "DD p50", "DD p5", "P(loss)"
    );
    for r in &results {
        println!(
            "{:>9.2} {:>14.2} {:>14.2} {:>14.2} {:>9.1}% {:>9.1}% {:>7.1}%",
            r.vol_scale,
            r.final_equity.p05,
            r.final_equity.p50,
            r.final_equity.p95,
            r.max_drawdown.p50 * 100.0,
            r.max_drawdown.p05 * 100.0,
            r.probability_of_loss * 100.0
        );
    }
    let path = settings.report.out_dir.join("stress.json");
    crate::context::ensure_dir(&settings.report.out_dir)?;
    tradelab_data::cache::write_atomic(&path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    println!("report: {}", path.display());
    Ok(())
}
