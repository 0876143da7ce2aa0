//! `tradelab sessions`: the trading sessions in the store, listed, shown
//! and watched. `show` and `watch` read the session's last checkpoint, so
//! they work for a session run by any process (a terminal, the API).

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use tradelab_app::record::open_store;
use tradelab_app::runtime::runtime;
use tradelab_core::time::format_datetime;
use tradelab_store::trading::{SessionStatus, TradingSessionRecord};
use tradelab_store::Store;

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
            for s in sessions {
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
                    status_text(&s, lease_ms)
                );
            }
        }
        SessionsCommand::Show { id, events } => {
            print!("{}", rt.block_on(view(&store, &id, events, lease_ms))?);
        }
        SessionsCommand::Watch { id, every } => {
            let terminal = std::io::stdout().is_terminal();
            let interrupt = crate::interrupt::install("\nstopped watching; the session runs on\n");
            loop {
                let text = rt.block_on(view(&store, &id, 8, lease_ms))?;
                if terminal {
                    // Clear the screen and redraw from the top.
                    print!("\x1b[2J\x1b[H");
                }
                print!("{text}");
                let s = rt.block_on(store.trading_session(&id))?;
                if !s.is_alive(lease_ms, tradelab_core::time::now_ms()) {
                    break;
                }
                let wait = Duration::from_secs_f64(every.max(0.2));
                let step = Duration::from_millis(100);
                let mut waited = Duration::ZERO;
                while waited < wait {
                    if interrupt.load(std::sync::atomic::Ordering::SeqCst) {
                        rt.block_on(store.close());
                        return Ok(());
                    }
                    std::thread::sleep(step);
                    waited += step;
                }
            }
        }
    }
    rt.block_on(store.close());
    Ok(())
}

fn status_text(s: &TradingSessionRecord, lease_ms: i64) -> String {
    match s.status {
        SessionStatus::Running if !s.is_alive(lease_ms, tradelab_core::time::now_ms()) => {
            "running (no heartbeat: killed; --resume it)".into()
        }
        other => other.as_str().into(),
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// A session's state as a page of text: status, P&L, latency, positions
/// with their weights and volatility contributions, breakers, the last
/// orders and events.
async fn view(store: &Store, id: &str, events: i64, lease_ms: i64) -> Result<String> {
    use std::fmt::Write;
    let s = store.trading_session(id).await?;
    let mut out = String::new();
    writeln!(out, "session {}  account {}  model {}", s.id, s.account, s.model)?;
    writeln!(
        out,
        "status: {}{}",
        status_text(&s, lease_ms),
        s.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )?;
    let Some(cp) = &s.checkpoint else {
        writeln!(out, "no checkpoint yet")?;
        return Ok(out);
    };
    let (equity, initial) = (num(&cp["equity"]), num(&cp["initial_equity"]));
    writeln!(
        out,
        "last bar {} after {} timestamps; equity {equity:.2}, P&L {:+.2} ({:+.2}%), cash {:.2}",
        cp["ts"].as_i64().map(format_datetime).unwrap_or_default(),
        cp["ticks"],
        equity - initial,
        (equity / initial - 1.0) * 100.0,
        num(&cp["cash"])
    )?;
    writeln!(
        out,
        "bar in to order out: p50 {:.1} µs, p99 {:.1} µs",
        num(&cp["latency_us"][0]),
        num(&cp["latency_us"][1])
    )?;
    let risk = &cp["risk"];
    writeln!(
        out,
        "\n{:<20} {:>14} {:>9} {:>14}",
        "instrument", "position", "weight", "vol share"
    )?;
    let symbols = cp["symbols"].as_array().cloned().unwrap_or_default();
    let positions = cp["positions"].as_array().cloned().unwrap_or_default();
    let vol = num(&risk["volatility"]);
    for (i, q) in positions.iter().enumerate() {
        let share = num(&risk["contributions"][i]) / vol * 100.0;
        writeln!(
            out,
            "{:<20} {:>14.4} {:>8.1}% {:>14}",
            symbols.get(i).and_then(Value::as_str).unwrap_or("?"),
            num(q),
            num(&risk["weights"][i]) * 100.0,
            if share.is_finite() {
                format!("{share:.1}%")
            } else {
                "-".into()
            }
        )?;
    }
    if vol.is_finite() {
        writeln!(
            out,
            "portfolio volatility {:.4}% a bar over {} returns",
            vol * 100.0,
            risk["returns"]
        )?;
    }
    if let Some(rows) = risk["correlation"].as_array().filter(|r| r.len() > 1 && r.len() <= 12) {
        writeln!(out, "correlations:")?;
        for row in rows {
            let cells: Vec<String> = row
                .as_array()
                .map(|r| r.iter().map(|c| format!("{:>6.2}", num(c))).collect())
                .unwrap_or_default();
            writeln!(out, "  {}", cells.join(" "))?;
        }
    }
    let breakers: Vec<String> = cp["breakers"]["states"]
        .as_array()
        .map(|a| {
            tradelab_trade::BreakerKind::ALL
                .iter()
                .zip(a)
                .filter(|(_, st)| st["state"] != "closed")
                .map(|(k, st)| format!("{} {}", k.name(), st["state"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default();
    writeln!(
        out,
        "breakers: {}",
        if breakers.is_empty() {
            "all closed".into()
        } else {
            breakers.join(", ")
        }
    )?;
    let orders = store.trading_orders(id).await?;
    writeln!(out, "orders: {}", orders.len())?;
    for o in orders.iter().rev().take(5).rev() {
        writeln!(
            out,
            "  {}  {:<11} {:<16} {:>12} {}",
            format_datetime(o.bar_ts),
            o.action,
            o.instrument,
            o.qty.map_or("all".into(), |q| format!("{q:.4}")),
            o.status
        )?;
    }
    let all = store.trading_events(id, 0, i64::MAX).await?;
    let shown = all.len().saturating_sub(events.max(0) as usize);
    if shown < all.len() {
        writeln!(out, "events:")?;
    }
    for e in &all[shown..] {
        writeln!(
            out,
            "{:>6}  {}  {:<10} {}",
            e.seq,
            e.bar_ts.map(format_datetime).unwrap_or_else(|| "-".into()),
            e.kind,
            e.detail
        )?;
    }
    Ok(out)
}
