//! `tradelab sweep SPACE.yaml`: runs or resumes a sweep, prints each
//! trial as it ends and the ranking at the end, and writes `sweep.json`
//! and `best.yaml` beside the state.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tradelab_app::jobs::queue::open_platform;
use tradelab_app::jobs::worker::WorkerContext;
use tradelab_app::markets::load_series;
use tradelab_app::runtime::server_runtime;
use tradelab_app::sweep::report::SweepReport;
use tradelab_app::sweep::runner::{check_finished, open_state, run_with_local_worker, SweepEvent, SweepRunner};
use tradelab_app::sweep::space::SweepSpec;
use tradelab_app::sweep::state::SweepState;

use crate::cli::{GlobalArgs, SweepArgs};

pub fn run(g: &GlobalArgs, a: &SweepArgs) -> Result<()> {
    let spec = SweepSpec::load(&a.space)?;
    let source = g.settings_source();
    let settings = source.load(&spec.settings)?;
    // The sweep's markets must exist before a hundred jobs fail on them.
    load_series(&settings, &spec.symbols, spec.timeframe.as_deref(), false)
        .context("checking the sweep's symbols (sweeps train on prepared data: `tradelab data prepare`)")?;
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = a
            .space
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs/sweeps").join(stem)
    });
    let (mut state, resumed) = open_state(&out, &spec)?;
    spec.check_settings(&source, &state.trials)?;
    let rungs = spec.rung_steps();
    let total_jobs: usize = {
        let mut n = spec.trials;
        let (mut jobs, mut rung) = (0, 0);
        while rung < rungs.len() {
            jobs += n;
            n = spec.promoted(n);
            rung += 1;
        }
        jobs
    };
    println!(
        "sweep {} of {}: {} trials, {} ({}), {} on {}; {} jobs at most; state in {}{}",
        state.id,
        a.space.display(),
        spec.trials,
        match spec.search {
            tradelab_app::sweep::space::Search::Random => "random search".to_string(),
            tradelab_app::sweep::space::Search::Halving =>
                format!("successive halving, eta {}", spec.halving.map_or(0, |h| h.eta)),
        },
        rungs.iter().map(|s| format!("{s}")).collect::<Vec<_>>().join(" -> ") + " steps",
        spec.agent,
        if spec.symbols.is_empty() {
            "every prepared market".to_string()
        } else {
            spec.symbols.join(", ")
        },
        total_jobs,
        out.display(),
        if resumed { " (resumed)" } else { "" }
    );
    if a.workers == 0 {
        println!("running no jobs here: start `tradelab worker` (same settings and database) to run them");
    }
    let _ = std::io::stdout().flush();

    let started = Instant::now();
    let runtime = server_runtime()?;
    runtime.block_on(async {
        let (store, queue) = open_platform(&settings).await?;
        let runner = SweepRunner {
            store: &store,
            queue: &queue,
            dir: out.clone(),
            poll: Duration::from_millis(250),
        };
        let worker = (a.workers > 0).then(|| (WorkerContext::new(store.clone(), &settings, &source, None), a.workers));
        let trials = state.trials.clone();
        let result = run_with_local_worker(&runner, &mut state, worker, |e| print_event(&e, &trials)).await;
        store.close().await;
        result
    })?;
    check_finished(&state)?;
    let report = SweepReport::of(&state);
    print_report(&report, &state, a.top);
    std::fs::write(out.join("sweep.json"), serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", out.join("sweep.json").display()))?;
    if let Some(yaml) = report.best_yaml(&state)? {
        let path = out.join("best.yaml");
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        println!("best settings: {}", path.display());
    }
    println!(
        "report: {}; {} jobs, {:.1}s",
        out.join("sweep.json").display(),
        report.jobs,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_event(e: &SweepEvent<'_>, trials: &[tradelab_app::sweep::space::Trial]) {
    match e {
        SweepEvent::Rung {
            rung,
            rungs,
            trials,
            steps,
        } => println!("rung {}/{rungs}: {trials} trial(s) at {steps} steps", rung + 1),
        SweepEvent::Ended { run, done, of } => {
            let o = run.outcome.as_ref();
            let what = match o.and_then(|o| o.validation.as_ref().map(|v| (o, v))) {
                Some((o, v)) => format!(
                    "score {:+.3} (Sharpe {:+.2}, return {:+.2}%, {} entries){}",
                    v.score,
                    v.sharpe,
                    v.return_pct,
                    v.entries,
                    o.model.as_ref().map(|m| format!(" {m}")).unwrap_or_default()
                ),
                None => format!(
                    "{}: {}",
                    o.map_or("?", |o| o.status.as_str()),
                    o.and_then(|o| o.error.clone()).unwrap_or_default()
                ),
            };
            println!(
                "  [{done}/{of}] trial {} {}: {what}",
                run.trial,
                trials[run.trial].short()
            );
        }
    }
    let _ = std::io::stdout().flush();
}

fn print_report(r: &SweepReport, state: &SweepState, top: usize) {
    println!("\nranking on validation (after costs; the test splits were not used):");
    println!(
        "{:>4} {:>5} {:>8} {:>8} {:>7} {:>8} {:>7} {:>6}  settings",
        "rank", "trial", "steps", "score", "sharpe", "return%", "entries", "expo"
    );
    let fmt = |x: Option<f64>, p: usize| x.map_or("-".into(), |v| format!("{v:.p$}"));
    for row in r.rows.iter().filter(|r| r.rank.is_some()).take(top) {
        println!(
            "{:>4} {:>5} {:>8} {:>8} {:>7} {:>8} {:>7} {:>6}  {}",
            row.rank.unwrap_or(0),
            row.trial,
            row.steps,
            fmt(row.score, 3),
            fmt(row.sharpe, 2),
            fmt(row.return_pct, 2),
            row.entries.map_or("-".into(), |e| e.to_string()),
            fmt(row.exposure, 2),
            state.trials[row.trial].short()
        );
    }
    let flat = r.rows.iter().filter(|r| r.entries == Some(0)).count();
    let ranked = r.rows.iter().filter(|r| r.rank.is_some()).count();
    println!(
        "{ranked} ranked, {flat} of them flat (never opened a position), {} failed run(s)",
        r.failed
    );
    if r.rows.first().is_some_and(|b| b.rank.is_some() && b.entries == Some(0)) {
        println!("warning: the best trial's model is flat on validation: this search found nothing that trades");
    }
    if let Some(d) = &r.deflation {
        println!(
            "deflated Sharpe ratio of the best, given {} trials: {:.3} (per-bar Sharpe {:.4}; trials' variance {:.2e})",
            d.trials, d.deflated_sharpe, d.sharpe_per_bar, d.trial_variance_per_bar
        );
    }
    for o in &r.overfitting {
        match &o.result {
            Ok(p) => println!(
                "probability of backtest overfitting, rung {} ({} trials at {} steps, {} blocks): {:.2}; the in-sample best loses out of sample in {:.0}% of splits",
                o.rung + 1,
                p.trials,
                o.steps,
                p.blocks,
                p.pbo,
                p.probability_of_loss * 100.0
            ),
            Err(e) => println!("probability of backtest overfitting, rung {}: not computed: {e}", o.rung + 1),
        }
    }
}
