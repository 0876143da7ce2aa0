//! `tradelab runs`: recorded training runs and their metric series.

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tradelab_core::time::format_datetime;
use tradelab_store::tracking::RunRecord;
use tradelab_store::Store;

use crate::cli::{GlobalArgs, RunsCommand};
use crate::context::load_settings;
use tradelab_app::record::open_store;
use tradelab_app::run_liveness::mark_dead_runs;
use tradelab_app::runtime::runtime;

pub fn run(g: &GlobalArgs, c: RunsCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    rt.block_on(async {
        match c {
            RunsCommand::List {
                limit,
                status,
                experiment,
                json,
            } => list(&store, limit, status.as_deref(), experiment.as_deref(), json).await,
            RunsCommand::Show { id, metric, format } => match metric {
                Some(key) => export(&store, &id, &key, &format).await,
                None => show(&store, &id).await,
            },
            RunsCommand::Compare { a, b } => compare(&store, &a, &b).await,
        }
    })
}

/// A run as `--json` lists it (its full settings are left to `show`).
fn summary(r: &RunRecord) -> Value {
    let mut params = r.params.clone();
    if let Some(o) = params.as_object_mut() {
        o.remove("settings");
    }
    json!({
        "id": r.id, "experiment": r.experiment, "name": r.name, "status": r.status.as_str(),
        "started": format_datetime(r.started_ms), "ended": r.ended_ms.map(format_datetime),
        "params": params, "tags": r.tags,
    })
}

async fn list(store: &Store, limit: usize, status: Option<&str>, experiment: Option<&str>, json: bool) -> Result<()> {
    const STATUSES: [&str; 4] = ["running", "finished", "failed", "killed"];
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        bail!("--status {s} is not a run status; use one of {}", STATUSES.join(", "));
    }
    // Filters apply to a wider window of recent runs, then the limit.
    let mut runs = store
        .recent_runs((limit.saturating_mul(20)).clamp(limit, 10_000) as i64)
        .await?;
    mark_dead_runs(store, &mut runs).await?;
    runs.retain(|r| status.is_none_or(|s| r.status.as_str() == s) && experiment.is_none_or(|e| r.experiment == e));
    runs.truncate(limit);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs.iter().map(summary).collect::<Vec<_>>())?
        );
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs recorded (with these filters); `tradelab train` records one");
        return Ok(());
    }
    println!(
        "{:<32}  {:<16} {:<28} {:<9} {:<19}  duration",
        "id", "experiment", "name", "status", "started (UTC)"
    );
    for r in runs {
        let secs = r.ended_ms.map(|e| (e - r.started_ms) as f64 / 1000.0);
        println!(
            "{:<32}  {:<16} {:<28} {:<9} {:<19}  {}",
            r.id,
            r.experiment,
            r.name,
            r.status.as_str(),
            format_datetime(r.started_ms),
            secs.map_or("".into(), |s| format!("{s:.1}s"))
        );
    }
    Ok(())
}

async fn show(store: &Store, id: &str) -> Result<()> {
    let mut found = [store.run(id).await?];
    mark_dead_runs(store, &mut found).await?;
    let [r] = found;
    println!(
        "run {} ({}) in experiment {}: {}",
        r.id,
        r.name,
        r.experiment,
        r.status.as_str()
    );
    println!("  started: {}", format_datetime(r.started_ms));
    if let Some(e) = r.ended_ms {
        println!("  ended:   {}", format_datetime(e));
    }
    println!("  tags:    {}", r.tags);
    // The full settings are long: stored, not printed.
    println!("  params:  {}", summary(&r)["params"]);
    println!("  metrics (points, first -> last; `--metric KEY` prints a series):");
    for key in store.metric_keys(&r.id).await? {
        let series = store.metric_history(&r.id, &key).await?;
        if let (Some(first), Some(last)) = (series.first(), series.last()) {
            println!(
                "    {key:<24} {:>5}  {:+.4} -> {:+.4} (step {})",
                series.len(),
                first.value,
                last.value,
                last.step
            );
        }
    }
    Ok(())
}

/// One metric's whole series, as CSV (`step,time,value`) or JSON.
async fn export(store: &Store, id: &str, key: &str, format: &str) -> Result<()> {
    store.run(id).await?;
    let series = store.metric_history(id, key).await?;
    if series.is_empty() {
        let keys = store.metric_keys(id).await?;
        bail!(
            "run {id} has no metric `{key}`; it has: {}",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        );
    }
    match format {
        "csv" => {
            println!("step,time,value");
            for p in series {
                println!("{},{},{}", p.step, format_datetime(p.time_ms), p.value);
            }
        }
        "json" => {
            let points: Vec<Value> = series
                .iter()
                .map(|p| json!({"step": p.step, "time": format_datetime(p.time_ms), "value": p.value}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"run": id, "metric": key, "points": points}))?
            );
        }
        other => bail!("--format {other} is not csv or json"),
    }
    Ok(())
}

/// The parameters that differ between two runs, and each metric's last value.
async fn compare(store: &Store, a: &str, b: &str) -> Result<()> {
    let (ra, rb) = (store.run(a).await?, store.run(b).await?);
    println!("{:<28} {:<32} {:<32}", "", ra.id, rb.id);
    println!("{:<28} {:<32} {:<32}", "name", ra.name, rb.name);
    println!("{:<28} {:<32} {:<32}", "status", ra.status.as_str(), rb.status.as_str());
    // Settings compared key by key, flattened, so a difference is named.
    let flat = |r: &RunRecord| {
        let mut out = std::collections::BTreeMap::new();
        flatten("", &r.params, &mut out);
        out
    };
    let (pa, pb) = (flat(&ra), flat(&rb));
    let keys: std::collections::BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
    let mut differ = 0;
    for k in keys {
        let (va, vb) = (pa.get(k), pb.get(k));
        if va != vb {
            differ += 1;
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".into());
            println!("{k:<28} {:<32} {:<32}", show(va), show(vb));
        }
    }
    if differ == 0 {
        println!("(the same parameters and settings)");
    }
    let mut metrics: Vec<String> = store.metric_keys(a).await?;
    metrics.extend(store.metric_keys(b).await?);
    metrics.sort();
    metrics.dedup();
    for key in metrics {
        let last = |series: Vec<tradelab_store::tracking::MetricPoint>| {
            series
                .last()
                .map_or("-".to_string(), |p| format!("{:+.4} (step {})", p.value, p.step))
        };
        let (la, lb) = (
            last(store.metric_history(a, &key).await?),
            last(store.metric_history(b, &key).await?),
        );
        println!("{:<28} {la:<32} {lb:<32}", format!("last {key}"));
    }
    Ok(())
}

/// `value`'s leaves as dotted keys and their JSON text.
fn flatten(prefix: &str, value: &Value, out: &mut std::collections::BTreeMap<String, String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}
