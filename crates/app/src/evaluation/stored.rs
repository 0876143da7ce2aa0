//! An evaluation as the store keeps it: one backtest per evaluated run,
//! named after the model, carrying its baselines' metrics side by side,
//! its statistics (intervals, deflated Sharpe ratio) and the verdict, so
//! the dashboard shows a model's report as it shows a rule's.

use anyhow::Result;
use serde_json::{json, Value};

use super::{EvaluatedRun, Evaluation};
use crate::backtest_statistics::Baseline;

/// The strategy name a model's stored backtests go under.
pub fn strategy_name(model: &str) -> String {
    format!("model {model}")
}

/// The stored form of `run`, a run of the evaluation of `model` (as
/// [`LocatedCheckpoint::label`](crate::registry::LocatedCheckpoint::label)
/// names it).
pub fn stored_report(evaluation: &Evaluation, run: &EvaluatedRun, model: &str) -> Result<Value> {
    let mut stored = serde_json::to_value(&run.model)?;
    let baselines: Vec<Baseline> = run
        .baselines
        .iter()
        .map(|b| Baseline {
            name: b.model_used.clone(),
            metrics: b.metrics.clone(),
        })
        .collect();
    stored["baselines"] = serde_json::to_value(baselines)?;
    stored["statistics"] = serde_json::to_value(&run.stored_statistics)?;
    let s = &run.statistics;
    stored["evaluation"] = json!({
        "model": model,
        "kind": evaluation.kind,
        "split": evaluation.split.name(),
        "run": s.run,
        "entries": s.entries,
        "flat": s.entries == 0,
        "short_sample": s.short_sample,
        "unseen_instruments": evaluation.unseen,
        "seen_bars": evaluation.seen_bars,
        "verdict": s.verdict(),
        "sampled": s.sampled,
    });
    Ok(stored)
}
