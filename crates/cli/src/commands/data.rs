//! `tradelab data ...`: prepare, validate, resample, synthesise.

use anyhow::{Context, Result};
use tradelab_core::time::format_datetime;
use tradelab_core::Timeframe;
use tradelab_data::load::{load_file, LoadOptions};
use tradelab_data::prepare::{bars_csv, prepare, PrepareReport};
use tradelab_data::resample::resample;
use tradelab_data::synthetic::{generate, SyntheticConfig};

use crate::cli::{DataCommand, GlobalArgs};
use crate::context::{load_settings, path_override};

pub fn run(g: &GlobalArgs, cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Prepare { raw_dir, final_dir } => {
            let extra: Vec<String> = [
                path_override("data.raw_dir", &raw_dir),
                path_override("data.final_dir", &final_dir),
            ]
            .into_iter()
            .flatten()
            .collect();
            let settings = load_settings(g, &extra)?;
            let report = prepare(&settings.data, &settings.features).context("preparing data")?;
            print_prepare(&report, g.verbose);
            if report.prepared.is_empty() {
                anyhow::bail!(
                    "no file in {} could be prepared; see the errors above",
                    settings.data.raw_dir.display()
                );
            }
            println!(
                "wrote {} files and manifest.json to {}",
                report.prepared.len(),
                settings.data.final_dir.display()
            );
            Ok(())
        }
        DataCommand::Validate { file } => {
            let settings = load_settings(g, &[])?;
            let (series, report) = load_file(&file, &LoadOptions::for_file(&settings.data, &file))?;
            println!(
                "{}: {} rows read, {} loaded",
                file.display(),
                report.rows_read,
                report.rows_loaded
            );
            println!("layout: {}", report.layout);
            if let Some(n) = &report.header_note {
                println!("header: {n}");
            }
            if let Some(n) = &report.adjusted_close_note {
                println!("adjusted close: {n}");
            }
            println!(
                "timeframe: {}",
                series.timeframe.map_or("unknown".into(), |t| t.to_string())
            );
            println!(
                "range: {} .. {}",
                format_datetime(series.ts[0]),
                format_datetime(*series.ts.last().unwrap_or(&0))
            );
            println!(
                "policy: {}; {} repaired, {} dropped",
                settings.data.repair_policy.name(),
                report.repaired(),
                report.dropped()
            );
            for i in &report.issues {
                println!("  {}:{}: {}: {}", file.display(), i.line, i.action.name(), i.message);
            }
            Ok(())
        }
        DataCommand::Resample { file, to, out } => {
            let settings = load_settings(g, &[])?;
            let target: Timeframe = to.parse()?;
            let (series, _) = load_file(&file, &LoadOptions::for_file(&settings.data, &file))?;
            let resampled = resample(&series, target)?;
            tradelab_data::cache::write_atomic(&out, bars_csv(&resampled, &[], |_, _, _| {}).as_bytes())?;
            println!(
                "{} {} bars -> {} {} bars: {}",
                series.len(),
                series.timeframe.map_or("?".into(), |t| t.to_string()),
                resampled.len(),
                target,
                out.display()
            );
            Ok(())
        }
        DataCommand::Synth {
            bars,
            out,
            timeframe,
            skip_weekends,
        } => {
            let settings = load_settings(g, &[])?;
            anyhow::ensure!(bars >= 2, "--bars must be at least 2");
            let market = generate(&SyntheticConfig {
                bars,
                seed: settings.seed,
                timeframe: timeframe.parse()?,
                skip_weekends,
                ..Default::default()
            });
            let labels: Vec<String> = market
                .regimes
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                })
                .collect();
            tradelab_data::cache::write_atomic(
                &out,
                bars_csv(&market.series, &["regime"], |_, row, out| out.push_str(&labels[row])).as_bytes(),
            )?;
            println!(
                "wrote {bars} synthetic bars (seed {}) with regime labels to {}",
                settings.seed,
                out.display()
            );
            Ok(())
        }
    }
}

pub fn print_prepare(report: &PrepareReport, verbose: bool) {
    for (entry, load) in report.prepared.iter().zip(&report.loads) {
        let tf = entry.timeframe.map_or("?".into(), |t| t.to_string());
        let fixes = if load.issues.is_empty() {
            String::new()
        } else {
            format!(", {} repaired, {} dropped", load.repaired(), load.dropped())
        };
        println!("  {:<34} {:>6} bars  {:>3}{fixes}", entry.instrument, entry.rows, tf);
        if verbose {
            if let Some(n) = &load.header_note {
                println!("    note: {n}");
            }
            for i in &load.issues {
                println!(
                    "    {}:{}: {}: {}",
                    load.path.display(),
                    i.line,
                    i.action.name(),
                    i.message
                );
            }
        }
    }
    for (path, err) in &report.failures {
        eprintln!("  skipped {}: {err}", path.display());
    }
    println!(
        "features: {} computed, {} from cache",
        report.cache_misses, report.cache_hits
    );
}
