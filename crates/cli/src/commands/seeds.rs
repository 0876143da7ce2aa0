//! `tradelab train --seeds K`: one setting trained with K seeds, each a
//! job on the queue, and how much the result depends on the seed: every
//! seed's validation, their mean and spread, and the command that
//! evaluates them together as an ensemble.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use tradelab_agents::metadata::ValidationMetrics;
use tradelab_app::jobs::batch::run_batch;
use tradelab_app::jobs::queue::open_platform;
use tradelab_app::jobs::spec::{JobSpec, TrainJob};
use tradelab_app::jobs::worker::WorkerContext;
use tradelab_app::runtime::server_runtime;
use tradelab_sim::stats::moments::RunningMoments;
use tradelab_store::jobs::{JobRecord, JobStatus};

use crate::cli::{GlobalArgs, TrainArgs};

pub fn run(g: &GlobalArgs, a: &TrainArgs) -> Result<()> {
    if !a.holdout.is_empty() {
        bail!("--seeds does not take --holdout yet; hold the instrument out by naming the others with --symbol and set ppo.instrument_dropout");
    }
    if a.resume.is_some() || a.out.is_some() {
        bail!("--seeds trains through the job queue, which chooses each run's folder; leave out --resume and --out");
    }
    let source = g.settings_source();
    let settings = source.load(&[])?;
    if !settings.store.record {
        bail!("--seeds records each seed's run and model in the store; drop store.record=false");
    }
    let name = a.name.clone().unwrap_or_else(|| a.agent.clone());
    let specs: Vec<JobSpec> = (0..a.seeds as u64)
        .map(|k| {
            JobSpec::Train(TrainJob {
                agent: a.agent.clone(),
                symbols: a.symbols.clone(),
                timeframe: a.timeframe.clone(),
                steps: a.steps.map(|s| s as u64),
                seed: Some(settings.seed.wrapping_add(k)),
                name: Some(name.clone()),
                preset: a.preset.clone(),
                settings: Vec::new(),
            })
        })
        .collect();
    println!(
        "training {} with {} seeds ({}..={}) as jobs, {} at a time here{}",
        a.agent,
        a.seeds,
        settings.seed,
        settings.seed.wrapping_add(a.seeds as u64 - 1),
        a.workers,
        if a.workers == 0 {
            "; start `tradelab worker` to run them"
        } else {
            ""
        }
    );
    let _ = std::io::stdout().flush();
    let runtime = server_runtime()?;
    let jobs = runtime.block_on(async {
        let (store, queue) = open_platform(&settings).await?;
        let worker = (a.workers > 0).then(|| (WorkerContext::new(store.clone(), &settings, &source, None), a.workers));
        let jobs = run_batch(&store, &queue, &specs, worker, Duration::from_millis(250), |i, job| {
            println!("  seed {}: {}", settings.seed.wrapping_add(i as u64), describe(job));
            let _ = std::io::stdout().flush();
        })
        .await;
        store.close().await;
        jobs
    })?;
    report(&jobs, &name)
}

fn validation(job: &JobRecord) -> Option<ValidationMetrics> {
    serde_json::from_value(job.result.as_ref()?.get("validation")?.clone()).ok()
}

fn model(job: &JobRecord) -> Option<String> {
    let r = job.result.as_ref()?;
    Some(format!("{}@{}", r.get("model")?.as_str()?, r.get("version")?))
}

fn describe(job: &JobRecord) -> String {
    match (job.status, validation(job)) {
        (JobStatus::Finished, Some(v)) => format!(
            "validation score {:+.3}, Sharpe {:+.2}, return {:+.2}%, {} entries{} -> {}",
            v.score,
            v.sharpe,
            v.return_pct,
            v.entries,
            if v.is_flat() { " (flat)" } else { "" },
            model(job).unwrap_or_default()
        ),
        (status, _) => format!(
            "{}{}",
            status.as_str(),
            job.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
    }
}

/// Mean, sample standard deviation and count of the figures.
fn spread(xs: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let mut m = RunningMoments::default();
    xs.for_each(|x| m.push(x));
    (m.mean(), m.std(), m.count())
}

fn report(jobs: &[JobRecord], name: &str) -> Result<()> {
    let done: Vec<ValidationMetrics> = jobs.iter().filter_map(validation).collect();
    let failed = jobs.len() - done.len();
    if done.is_empty() {
        let first = jobs.iter().find_map(|j| j.error.clone()).unwrap_or_default();
        bail!("no seed finished with a validation score; the first error: {first}");
    }
    println!("\nacross {} seeds (validation, after costs):", done.len());
    for (label, f) in [
        (
            "score",
            (|v: &ValidationMetrics| v.score) as fn(&ValidationMetrics) -> f64,
        ),
        ("Sharpe", |v| v.sharpe),
        ("return %", |v| v.return_pct),
        ("entries", |v| v.entries as f64),
    ] {
        let (mean, std, n) = spread(done.iter().map(f));
        println!("  {label:<9} mean {mean:+.3}  std {std:.3}  (n = {n})");
    }
    let flat = done.iter().filter(|v| v.is_flat()).count();
    println!(
        "  {flat} of {} seeds flat (never opened a position); {failed} failed",
        done.len()
    );
    let models: Vec<String> = jobs
        .iter()
        .filter(|j| validation(j).is_some())
        .filter_map(model)
        .collect();
    if models.len() >= 2 {
        println!(
            "evaluate them as an ensemble: tradelab evaluate {}",
            models
                .iter()
                .map(|m| format!("--model {m}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    } else if let Some(m) = models.first() {
        println!("registered: {m} (name {name})");
    }
    Ok(())
}
