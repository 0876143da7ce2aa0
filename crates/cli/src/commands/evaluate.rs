//! `tradelab evaluate`: a trained model out of sample beside every
//! baseline (the use case is `tradelab_app::evaluation`): the comparison
//! table and statistics in the terminal, a report per run in the run's
//! folder with `evaluation.json`, and each of the model's runs stored as a
//! backtest (named `model NAME@VERSION`, linked to its training run) for
//! the dashboard. `--paths N` adds the policy sampled as in training over
//! N seeded paths (mean and spread), since a greedy pass can hide a policy
//! that trades (or one that only trades by chance).

use anyhow::{Context, Result};
use tradelab_app::evaluation::stored::{stored_report, strategy_name};
use tradelab_app::evaluation::{
    evaluate, evaluation_settings, open_models, parse_split, EvaluationPlan, RunStatistics,
};
use tradelab_app::record::Recorder;
use tradelab_app::registry::locate_checkpoint;
use tradelab_sim::report::{render_comparison, SHORT_SAMPLE_NOTE};

use crate::cli::{EvaluateArgs, GlobalArgs};
use crate::context::load_settings;
use crate::output::{style, write_report};

pub fn run(g: &GlobalArgs, a: &EvaluateArgs) -> Result<()> {
    let current = load_settings(g, &[])?;
    let plan = EvaluationPlan {
        split: parse_split(&a.split)?,
        folds: a.folds,
        trials: a.trials,
        trial_sharpe_std: a.trial_sharpe_std,
        paths: a.paths,
        allow_seen_bars: a.allow_seen_bars,
        portfolio: a.portfolio,
    };
    plan.check()?;
    let located = a
        .models
        .iter()
        .map(|m| locate_checkpoint(&current, m, a.registered))
        .collect::<Result<Vec<_>>>()?;
    let label = located.iter().map(|m| m.label()).collect::<Vec<_>>().join("+");
    let mut agent = open_models(&located)?;
    let mut settings = evaluation_settings(agent.as_ref(), &current)?;
    let recorder = Recorder::open(&settings)?;
    let out_dir = match &a.out_dir {
        Some(dir) => dir.clone(),
        None => crate::output::run_folder(&settings.report.out_dir, "evaluate", &settings)?,
    };
    settings.report.out_dir = out_dir.clone();
    let evaluation = evaluate(
        agent.as_mut(),
        &mut settings,
        &a.symbols,
        &plan,
        g.verbose,
        &mut |run| {
            if let Some(r) = &recorder {
                // A job's progress: the backtests done of all it runs.
                r.job_progress(
                    &serde_json::json!({"done": run.done, "total": run.total}),
                    run.done == run.total,
                );
            }
            let dir = run.folder.map_or(out_dir.clone(), |f| out_dir.join(f));
            write_report(&dir, run.report, run.result, run.feeds).map(|_| ())
        },
    )?;
    println!(
        "{} on the {} split{} (greedy; fill {}, fees {}/{} {}; features and window as trained)",
        evaluation.kind,
        plan.split.name(),
        if plan.folds > 1 {
            format!(", {} folds", plan.folds)
        } else {
            String::new()
        },
        settings.backtest.fill.name(),
        settings.backtest.costs.entry_fixed,
        settings.backtest.costs.exit_fixed,
        settings.backtest.currency
    );
    let reports: Vec<_> = evaluation.reports().into_iter().cloned().collect();
    println!("{}", render_comparison(&reports, style()));
    let statistics: Vec<&RunStatistics> = evaluation.runs.iter().map(|r| &r.statistics).collect();
    print_statistics(&statistics, plan.trials);
    if let Some(s) = &evaluation.segments {
        println!(
            "reasoning segments per decision: mean {:.2} over {} decisions; histogram: {}",
            s["mean"].as_f64().unwrap_or_default(),
            s["decisions"],
            s["histogram"]
        );
        for by in s["by_turbulence"].as_array().into_iter().flatten() {
            println!(
                "  {}: calm third {:.2}, middle {:.2}, turbulent third {:.2} (terciles of the {}-bar mean |log return|)",
                by["instrument"].as_str().unwrap_or_default(),
                by["calm"].as_f64().unwrap_or_default(),
                by["middle"].as_f64().unwrap_or_default(),
                by["turbulent"].as_f64().unwrap_or_default(),
                by["window_bars"]
            );
        }
    }
    let summary: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| serde_json::json!({"model_used": r.model_used, "instruments": r.instruments, "start": r.start_date, "end": r.end_date, "total_pnl": r.metrics.total_pnl, "sharpe": r.metrics.curve.sharpe, "max_drawdown_pct": r.max_drawdown_pct, "total_trades": r.total_trades}))
        .collect();
    let path = out_dir.join("evaluation.json");
    crate::context::ensure_dir(&out_dir)?;
    tradelab_data::cache::write_atomic(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({"model": a.models[0], "models": a.models, "label": label, "unseen_instruments": evaluation.unseen, "kind": evaluation.kind, "split": plan.split.name(), "seen_bars": evaluation.seen_bars, "folds": plan.folds, "runs": summary, "statistics": statistics, "segments_per_decision": evaluation.segments}))?.as_bytes(),
    )?;
    println!(
        "reports and charts: {}/ (evaluation.json, one .json, .svg and interactive .html per run)",
        out_dir.display()
    );
    if let Some(r) = &recorder {
        // The model's runs as stored backtests, linked to the training run
        // of a single registered model.
        let training_run = match located.as_slice() {
            [one] => one.registered.as_ref().and_then(|m| m.run_id.clone()),
            _ => None,
        };
        let mut ids = Vec::with_capacity(evaluation.runs.len());
        for run in &evaluation.runs {
            let stored = stored_report(&evaluation, run, &label)?;
            ids.push(
                r.record_backtest(training_run.as_deref(), &strategy_name(&label), &stored)
                    .context("storing the evaluation")?,
            );
        }
        let verdicts: Vec<String> = evaluation.runs.iter().map(|r| r.statistics.verdict()).collect();
        r.job_result(
            &serde_json::json!({"backtest_id": ids[0], "backtest_ids": ids, "model": label, "verdicts": verdicts}),
        )?;
        println!("stored: backtest {} (`tradelab backtests show ID`)", ids.join(", "));
    }
    Ok(())
}

fn print_statistics(statistics: &[&RunStatistics], trials: usize) {
    println!(
        "Sharpe ratios with stationary-bootstrap 95% intervals; the difference to buy-and-hold with its interval and p-value; the deflated Sharpe ratio for {trials} trial(s) (P[true Sharpe > the best of {trials} lucky trials]):"
    );
    for s in statistics {
        let c = &s.comparison;
        let (sr, bh) = (c.sharpe, c.benchmark_sharpe);
        let difference = c.difference.map_or("n/a".to_string(), |d| {
            format!(
                "{:+.2} [{:+.2}, {:+.2}] p={:.3}",
                d.difference, d.low, d.high, d.p_value
            )
        });
        println!(
            "  {}: model {:+.2} [{:+.2}, {:+.2}], buy-and-hold {:+.2} [{:+.2}, {:+.2}], difference {difference}, deflated Sharpe {:.3}",
            s.run, sr.sharpe, sr.low, sr.high, bh.sharpe, bh.low, bh.high, c.deflated_sharpe
        );
        if let Some(p) = &s.sampled {
            println!(
                "    sampled, {} paths: return {:+.2}% ± {:.2}, Sharpe {:+.2} ± {:.2}, {:.1} entries a path, {} flat path(s)",
                p.paths, p.return_pct_mean, p.return_pct_std, p.sharpe_mean, p.sharpe_std, p.entries_mean, p.flat_paths
            );
        }
        println!("    verdict: {}", s.verdict());
        if s.short_sample {
            println!("    {SHORT_SAMPLE_NOTE}");
        }
        if s.entries == 0 {
            println!(
                "    flat: the model never opened a position here (greedy); its Sharpe ratio of 0 is standing aside, not skill"
            );
        } else if s.closed_trades == 0 {
            println!(
                "    the model opened {} position(s) and never closed one: it bought and held",
                s.entries
            );
        }
    }
    let better = statistics
        .iter()
        .filter(|s| s.entries > 0 && s.comparison.difference.is_some_and(|d| d.difference > 0.0))
        .count();
    let significant = statistics
        .iter()
        .filter(|s| {
            s.entries > 0
                && s.comparison
                    .difference
                    .is_some_and(|d| d.difference > 0.0 && d.p_value < 0.05)
        })
        .count();
    println!(
        "overall: the model's Sharpe ratio is above buy-and-hold's in {better} of {} run(s), significantly (p < 0.05) in {significant}",
        statistics.len()
    );
}
