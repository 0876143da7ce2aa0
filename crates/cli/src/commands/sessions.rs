//! `tradelab sessions`: the trading sessions in the store, listed and shown.

use anyhow::Result;
use tradelab_app::record::open_store;
use tradelab_app::runtime::runtime;
use tradelab_core::time::format_datetime;

use crate::cli::{GlobalArgs, SessionsCommand};
use crate::context::load_settings;

pub fn run(g: &GlobalArgs, c: SessionsCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    let lease_ms = settings.trade.lease_seconds as i64 * 1000;
    match c {
        SessionsCommand::List { limit } => {
            let sessions = rt.block_on(store.trading_sessions(limit))?;
            if sessions.is_empty() {
                println!("no trading sessions yet: `tradelab trade --model M --symbol S` starts one");
            }
            let now = tradelab_core::time::now_ms();
            for s in sessions {
                let status = match s.status.as_str() {
                    "running" if !s.is_alive(lease_ms, now) => "running (no heartbeat: killed; --resume it)",
                    other => other,
                };
                println!(
                    "{}  {}  {:<16} {:<24} {}  {}",
                    s.id,
                    format_datetime(s.started_ms / 1000 * 1000),
                    s.account,
                    s.model,
                    s.spec["symbols"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(","))
                        .unwrap_or_default(),
                    status
                );
            }
        }
        SessionsCommand::Show { id, events } => {
            let s = rt.block_on(store.trading_session(&id))?;
            println!("session {}  account {}  model {}", s.id, s.account, s.model);
            println!("spec: {}", s.spec);
            println!(
                "status: {}{}",
                s.status.as_str(),
                s.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            );
            if let Some(cp) = &s.checkpoint {
                println!(
                    "checkpoint: {} timestamps, last {}, cash {}, equity {}, positions {}",
                    cp["ticks"],
                    cp["ts"].as_i64().map(format_datetime).unwrap_or_default(),
                    cp["cash"],
                    cp["equity"],
                    cp["positions"]
                );
            }
            let orders = rt.block_on(store.trading_orders(&id))?;
            println!("orders: {}", orders.len());
            let all = rt.block_on(store.trading_events(&id, 0, i64::MAX))?;
            let shown = all.len().saturating_sub(events.max(0) as usize);
            for e in &all[shown..] {
                println!(
                    "{:>6}  {}  {:<10} {}",
                    e.seq,
                    e.bar_ts.map(format_datetime).unwrap_or_else(|| "-".into()),
                    e.kind,
                    e.detail
                );
            }
        }
    }
    rt.block_on(store.close());
    Ok(())
}
