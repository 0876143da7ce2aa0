//! `tradelab meta-train`: meta-learning across every (instrument,
//! timeframe) market (MAML, first-order MAML or Reptile), with whole
//! instruments held out; then, on those held-out instruments, the return
//! after K adaptation steps from the meta-learnt initialisation against K
//! steps from a fresh one and against no adaptation.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tradelab_agents::kinds::{self, AgentKind};
use tradelab_agents::meta_learning::{evaluate_held_out, meta_iteration, HeldOutResult, MetaIteration, MetaTask};
use tradelab_agents::meta_tasks::{MarketInfo, Task, TaskConfig, TaskSampler};
use tradelab_agents::ppo::{PpoAgent, MOE_KIND};
use tradelab_agents::trainer::TrainingMarket;
use tradelab_agents::Agent;
use tradelab_env::Split;
use tradelab_store::tracking::RunStatus;

use crate::cli::{GlobalArgs, MetaTrainArgs};
use crate::context::load_settings;
use tradelab_app::markets::{data_hash, load_series, markets, timeframe_name, vocabulary};
use tradelab_app::record::Recorder;
use tradelab_app::training::ppo_config;

pub fn run(g: &GlobalArgs, a: &MetaTrainArgs) -> Result<()> {
    if !AgentKind::parse(&a.agent).is_some_and(AgentKind::is_ppo) {
        bail!(
            "meta-train works for {}; `{}` is not one of them",
            kinds::names(AgentKind::is_ppo),
            a.agent
        );
    }
    let mut extra = Vec::new();
    if let Some(mode) = &a.mode {
        extra.push(format!("meta.mode={mode}"));
    }
    if let Some(n) = a.iterations {
        extra.push(format!("meta.iterations={n}"));
    }
    if a.agent == MOE_KIND {
        extra.push("regime.features=true".into());
    }
    let mut settings = load_settings(g, &extra)?;
    if !a.holdout.is_empty() {
        settings.meta.holdout = a.holdout.clone();
    }
    let mode = settings.meta.mode;
    let setup = settings.meta_setup();
    let recorder = Recorder::open(&settings)?;
    let series = load_series(&settings, &a.symbols, a.timeframe.as_deref(), g.verbose)?;
    let vocab = vocabulary(&series);
    let hashes: Vec<_> = series.iter().map(data_hash).collect();
    let mut holdout = settings.meta.holdout.clone();
    if holdout.is_empty() {
        let last = vocab.instruments.iter().max().cloned().unwrap_or_default();
        holdout.push(last);
    }
    let all = markets(series, &vocab, &settings)?;
    if all.is_empty() {
        bail!("no markets to meta-train on; prepare data (`tradelab data prepare`) or name files with --symbol");
    }
    let names: Vec<String> = all
        .iter()
        .map(|m| format!("{} {}", m.data.series.instrument, timeframe_name(&m.data.series)))
        .collect();
    // Meta-training tasks come from each market's training split; a held-out
    // instrument is never trained on, so its tasks may lie anywhere in it.
    let regions: Vec<std::ops::Range<usize>> = all
        .iter()
        .map(|m| {
            let steps = m.data.steps(Split::Train);
            if holdout.contains(&m.data.series.instrument) {
                steps.start..m.data.series.len()
            } else {
                steps.start..m.data.bars(Split::Train).end
            }
        })
        .collect();
    let infos = all
        .iter()
        .zip(&regions)
        .map(|(m, r)| MarketInfo {
            instrument: m.data.series.instrument.clone(),
            timeframe: timeframe_name(&m.data.series),
            bars: r.len(),
        })
        .collect();
    let me = &settings.meta;
    let embargo = if me.embargo == 0 {
        settings.env.window
    } else {
        me.embargo
    };
    let mut sampler = TaskSampler::new(
        infos,
        TaskConfig {
            support: me.support_bars,
            query: me.query_bars,
            embargo,
            holdout: holdout.clone(),
            batch: me.tasks_per_batch,
            seed: settings.seed,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e} (meta.support_bars, meta.query_bars, meta.embargo, meta.holdout)"))?;
    let task_of = |t: &Task| -> Result<MetaTask> {
        let m: &TrainingMarket = &all[t.market];
        let off = regions[t.market].start;
        let support = off + t.support.start..off + t.support.end;
        let query = off + t.query.start..off + t.query.end;
        let data = m
            .data
            .with_splits(support.clone(), query.clone(), 0..0)
            .with_context(|| format!("a task on {}", names[t.market]))?;
        Ok(MetaTask {
            name: format!(
                "{} support {}..{} query {}..{}",
                names[t.market], support.start, support.end, query.start, query.end
            ),
            data: Arc::new(data),
            key: m.key,
        })
    };

    let features = all[0].data.feature_names.clone();
    let config = ppo_config(&a.agent, &features, &vocab, &settings)?;
    let mut agent = PpoAgent::new(config.clone())?;
    {
        let p = &mut agent.provenance;
        p.vocabulary = vocab.clone();
        p.features = features.clone();
        p.settings = serde_json::to_value(&settings)?;
        p.data = hashes;
    }
    let run_dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/meta-{}-{}-seed{}", me.mode, a.agent, settings.seed)));
    let train_names: Vec<&str> = sampler
        .meta_train_markets()
        .iter()
        .map(|&i| names[i].as_str())
        .collect();
    let test_names: Vec<&str> = sampler.meta_test_markets().iter().map(|&i| names[i].as_str()).collect();
    eprintln!(
        "meta-training {} ({} parameters, {}) on {} market(s) [{}], holding out [{}]: {} iterations of {} tasks, {} inner steps of {}",
        a.agent,
        agent.parameter_count(),
        me.mode,
        train_names.len(),
        train_names.join(", "),
        test_names.join(", "),
        me.iterations,
        me.tasks_per_batch,
        me.inner_steps,
        me.inner_lr
    );
    let run = match &recorder {
        Some(r) => Some(r.start_run(
            &format!("meta-train {} {}", me.mode, a.agent),
            &json!({"agent": a.agent, "meta": me, "holdout": holdout, "markets": names, "seed": settings.seed}),
            &json!({"kind": "meta-train", "agent": a.agent}),
        )?),
        None => None,
    };
    let mut history: Vec<MetaIteration> = Vec::new();
    let result = (|| -> Result<Vec<HeldOutResult>> {
        for it in 0..me.iterations {
            let tasks = sampler
                .sample_batch()
                .iter()
                .map(&task_of)
                .collect::<Result<Vec<_>>>()?;
            let s = meta_iteration(&mut agent, &tasks, &setup, mode, it)?;
            eprintln!(
                "meta {}/{} | meta-loss {:+.4} | query return before adaptation {:+.2}%, after {:+.2}% | meta-gradient norm {:.4}",
                it + 1,
                me.iterations,
                s.meta_loss,
                s.pre_return_pct,
                s.post_return_pct,
                s.grad_norm
            );
            if let (Some(r), Some(run)) = (&recorder, &run) {
                let step = it as i64 + 1;
                r.log_metrics(
                    run,
                    &[
                        ("meta_loss", step, s.meta_loss),
                        ("pre_adaptation_return_pct", step, s.pre_return_pct),
                        ("post_adaptation_return_pct", step, s.post_return_pct),
                        ("meta_gradient_norm", step, s.grad_norm),
                    ],
                );
            }
            history.push(s);
        }
        agent.save(&run_dir.join("meta-init"))?;

        // Held-out instruments: the same K steps from the meta-learnt and
        // from a fresh initialisation (same seed and shape as this run's).
        let mut scratch = PpoAgent::new(config.clone())?;
        let mut results = Vec::new();
        for round in 0..a.eval_tasks.max(1) {
            for (i, t) in sampler.meta_test_tasks().iter().enumerate() {
                let task = task_of(t)?;
                let seed = settings.seed ^ 0xE7A1 ^ ((round as u64) << 16) ^ i as u64;
                results.push(evaluate_held_out(&mut agent, &mut scratch, &task, &setup, seed)?);
            }
        }
        Ok(results)
    })();
    let results = match result {
        Ok(r) => r,
        Err(e) => {
            if let (Some(r), Some(run)) = (&recorder, &run) {
                let _ = r.finish_run(run, RunStatus::Failed);
            }
            return Err(e);
        }
    };
    let n = results.len().max(1) as f64;
    let mean = |f: fn(&HeldOutResult) -> f64| results.iter().map(f).sum::<f64>() / n;
    let (none, meta, scratch) = (
        mean(|r| r.no_adaptation_pct),
        mean(|r| r.meta_adapted_pct),
        mean(|r| r.scratch_adapted_pct),
    );
    let init = run_dir.join("meta-init");
    if let (Some(r), Some(run)) = (&recorder, &run) {
        r.log_metrics(
            run,
            &[
                ("held_out_no_adaptation_pct", 0, none),
                ("held_out_meta_adapted_pct", 0, meta),
                ("held_out_scratch_adapted_pct", 0, scratch),
            ],
        );
        let (version, _) = r.register_checkpoint(&format!("meta-{}", a.agent), &init, Some(run))?;
        r.finish_run(run, RunStatus::Finished)?;
        eprintln!("registered: meta-{} version {version}", a.agent);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "iterations": history,
                "held_out": results,
                "mean": {"no_adaptation_pct": none, "meta_adapted_pct": meta, "scratch_adapted_pct": scratch},
                "meta_init": init.display().to_string(),
            }))?
        );
        return Ok(());
    }
    println!(
        "held-out query windows (return %, {} steps of size {}):",
        settings.meta.inner_steps, settings.meta.inner_lr
    );
    println!(
        "  {:<58} {:>10} {:>12} {:>12}",
        "task", "no adapt", "meta + K", "scratch + K"
    );
    for r in &results {
        println!(
            "  {:<58} {:>+10.2} {:>+12.2} {:>+12.2}",
            r.task, r.no_adaptation_pct, r.meta_adapted_pct, r.scratch_adapted_pct
        );
    }
    println!("  {:<58} {none:>+10.2} {meta:>+12.2} {scratch:>+12.2}", "mean");
    println!("meta-learnt initialisation: {}", init.display());
    Ok(())
}
