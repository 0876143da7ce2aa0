//! `tradelab backtests`: the backtests recorded in the store (by
//! `backtest`, `run` and the API's jobs), listed and shown.

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tradelab_core::time::format_datetime;
use tradelab_store::audit::{BacktestPart, BacktestSummary};
use tradelab_store::Store;

use crate::cli::{BacktestsCommand, GlobalArgs};
use crate::context::load_settings;
use tradelab_app::record::open_store;
use tradelab_app::runtime::runtime;

pub fn run(g: &GlobalArgs, c: BacktestsCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    rt.block_on(async {
        match c {
            BacktestsCommand::List {
                limit,
                strategy,
                instrument,
                json,
            } => list(&store, limit, strategy.as_deref(), instrument.as_deref(), json).await,
            BacktestsCommand::Show { id, part } => show(&store, &id, part.as_deref()).await,
        }
    })
}

/// A backtest as `list --json` gives it: the headline figures of its report.
/// A model's evaluation goes by its stored name (`model NAME@VERSION`),
/// a rule by its report's (with its parameters).
fn summary(b: &BacktestSummary, report: &Value) -> Value {
    let m = &report["metrics"];
    let strategy = match report.get("evaluation") {
        Some(_) => json!(b.strategy),
        None => report["model_used"].clone(),
    };
    json!({
        "id": b.id, "run_id": b.run_id, "created": format_datetime(b.created_ms / 1000 * 1000),
        "strategy": strategy, "instruments": report["instruments"],
        "start_date": report["start_date"], "end_date": report["end_date"],
        "total_pnl": m["total_pnl"], "cagr": m["cagr"], "sharpe": m["sharpe"],
        "max_drawdown": m["max_drawdown"], "total_trades": m["total_trades"],
        "open_positions": report["open_positions"].as_array().map_or(0, Vec::len),
        "risk_events": report["risk_events"].as_array().map_or(0, Vec::len),
        "short_sample": m["short_sample"],
    })
}

fn instruments(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn number(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

async fn list(
    store: &Store,
    limit: usize,
    strategy: Option<&str>,
    instrument: Option<&str>,
    as_json: bool,
) -> Result<()> {
    // Filters apply to a wider window of recent backtests, then the limit.
    let recent = store
        .recent_backtests((limit.saturating_mul(20)).clamp(limit, 10_000) as i64)
        .await?;
    let mut rows = Vec::new();
    for b in recent {
        if strategy.is_some_and(|s| !b.strategy.contains(s)) {
            continue;
        }
        let report = store.backtest_report(&b.id).await?;
        let row = summary(&b, &report);
        if instrument.is_some_and(|i| !instruments(&row["instruments"]).contains(i)) {
            continue;
        }
        rows.push(row);
        if rows.len() == limit {
            break;
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no backtests recorded (with these filters); `tradelab backtest` records one");
        return Ok(());
    }
    println!(
        "{:<32}  {:<19}  {:<26} {:<20} {:>12} {:>7} {:>7} {:>7}",
        "id", "created (UTC)", "strategy", "instruments", "P&L", "Sharpe", "max DD", "trades"
    );
    for r in rows {
        let open = r["open_positions"].as_u64().unwrap_or(0);
        let trades = format!(
            "{}{}",
            r["total_trades"].as_u64().unwrap_or(0),
            if open > 0 {
                format!(" +{open} open")
            } else {
                String::new()
            }
        );
        let short = if r["short_sample"].as_bool() == Some(true) {
            "*"
        } else {
            ""
        };
        println!(
            "{:<32}  {:<19}  {:<26} {:<20} {:>12} {:>7} {:>6.1}% {:>7}",
            r["id"].as_str().unwrap_or_default(),
            r["created"].as_str().unwrap_or_default(),
            r["strategy"].as_str().unwrap_or_default(),
            instruments(&r["instruments"]),
            number(&r["total_pnl"], 0),
            format!("{}{short}", number(&r["sharpe"], 2)),
            r["max_drawdown"].as_f64().unwrap_or(0.0) * 100.0,
            trades,
        );
    }
    Ok(())
}

async fn show(store: &Store, id: &str, part: Option<&str>) -> Result<()> {
    let part = match part {
        None | Some("report") => BacktestPart::Report,
        Some("trades") => BacktestPart::Trades,
        Some("equity") => BacktestPart::Equity,
        Some(other) => bail!("--part {other}: use report, trades or equity"),
    };
    let doc = store.backtest_part(id, part).await?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
