//! `tradelab optimize`: a parameter search over a rule strategy.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use serde_json::json;
use tradelab_app::markets::load_symbols;
use tradelab_app::optimize::{optimize, setup, write_outputs, OptimizeRequest};
use tradelab_app::record::Recorder;
use tradelab_sim::optimize::render::{render_results, render_walk_forward};

use crate::cli::{GlobalArgs, OptimizeArgs};
use crate::context::{load_settings, path_override};
use crate::output::run_folder;

pub fn run(g: &GlobalArgs, a: &OptimizeArgs) -> Result<()> {
    let extra: Vec<String> = path_override("report.out_dir", &a.out_dir).into_iter().collect();
    let mut settings = load_settings(g, &extra)?;
    let random = match (a.method.as_str(), a.trials) {
        ("grid", None) => None,
        ("grid", Some(_)) => bail!("--trials is for --method random; a grid runs every combination"),
        ("random", Some(n)) => Some((n, settings.seed)),
        ("random", None) => bail!("--method random needs --trials N (how many combinations to draw)"),
        (other, _) => bail!("unknown --method `{other}`; choose grid or random"),
    };
    let heatmap = match &a.heatmap {
        None => None,
        Some(h) => match h.split_once(',') {
            Some((x, y)) => Some((x.trim().to_string(), y.trim().to_string())),
            None => bail!("--heatmap takes two parameters as X,Y (e.g. --heatmap fast,slow)"),
        },
    };
    let req = OptimizeRequest {
        strategy: a.strategy.clone(),
        params: a.params.clone(),
        constraints: a.constraints.clone(),
        random,
        metric: a.metric.clone(),
        walk_forward: a.walk_forward,
        heatmap: heatmap.clone(),
        pbo_blocks: a.pbo_blocks,
        threads: a.threads,
    };
    // A typo in the strategy fails before the data loads.
    setup(&settings, &a.strategy)?;
    let recorder = Recorder::open(&settings)?;
    let feeds = load_symbols(&settings, &a.symbols, g.verbose)?;
    let tty = std::io::stderr().is_terminal() && !a.json;
    let mut last_shown = 0;
    let report = optimize(&settings, &req, &feeds, &mut |done, total| {
        if let Some(r) = &recorder {
            r.job_progress(&json!({"done": done, "total": total}), done == total);
        }
        if tty && done != last_shown {
            eprint!("\r{done}/{total} backtests");
            last_shown = done;
        }
    })?;
    if tty {
        eprintln!();
    }
    if a.out_dir.is_none() {
        settings.report.out_dir = run_folder(&settings.report.out_dir, "optimize", &settings)?;
    }
    let files = write_outputs(&settings.report.out_dir, &report, heatmap.as_ref(), a.top)?;
    let best = report.results.best();
    if let Some(r) = &recorder {
        r.job_result(&json!({
            "best": best.params,
            "score": best.score,
            "metric": a.metric,
            "combinations": report.combinations,
            "deflated_sharpe": report.results.deflation.map(|d| d.deflated_sharpe),
            "pbo": report.results.overfitting.as_ref().map(|o| o.pbo),
            "report": files.json,
        }))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let plain = !std::io::stdout().is_terminal();
    println!(
        "{} on {}: {} combinations ({}) over {} bars in {:.2} s on {} threads",
        report.strategy,
        report.instruments.join(", "),
        report.combinations,
        report.method,
        report.bars,
        report.seconds,
        report.threads
    );
    print!("{}", render_results(&report.results, a.top, plain));
    if let Some(wf) = &report.walk_forward {
        print!("{}", render_walk_forward(wf, plain));
    }
    println!("report: {}\ncsv:    {}", files.json.display(), files.csv.display());
    if let Some(h) = &files.heatmap {
        println!("heatmap: {}", h.display());
    }
    println!("html:   {}", files.html.display());
    Ok(())
}
