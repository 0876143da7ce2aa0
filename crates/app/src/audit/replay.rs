//! `tradelab audit replay`: every decision a session recorded is asked of
//! the model again, from the inputs the event holds, and must come back bit
//! for bit (action, quantity, each probability, the value); its orders are
//! sized again through the same risk budget and costs and must match the
//! orders the session sent. The model must be the one that decided: its
//! weights' digest is checked against the session's `model` events.

use std::collections::HashMap;

use anyhow::{bail, Result};
use tradelab_agents::evaluate::{submit_decision, Acting};
use tradelab_agents::Agent;
use tradelab_bus::{DecisionEvent, Event, EventBody, OrderEvent};
use tradelab_core::{Action, Bar};
use tradelab_sim::order::{Order, OrderQty};
use tradelab_sim::strategy::BarContext;
use tradelab_store::Store;

/// Events read at a time.
const PAGE: i64 = 5_000;

/// One decision that did not come back as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// `SESSION:SEQ`.
    pub id: String,
    /// What differs, recorded against replayed.
    pub what: String,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayReport {
    /// Decisions asked again.
    pub decisions: u64,
    /// Of them, reproduced bit for bit.
    pub reproduced: u64,
    /// Decisions whose orders were let through and compared.
    pub orders_checked: u64,
    /// The differences, in order (all of them).
    pub differences: Vec<Difference>,
}

/// The f32 values' bits, for an exact comparison that NaN does not spoil.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn order_key(action: Action, qty: Option<f64>) -> (String, Option<u64>) {
    (action.as_str().to_string(), qty.map(f64::to_bits))
}

/// Replays session `session`'s decisions through `agent` (which must hold
/// the weights whose digest the session's `model` events recorded), sizing
/// orders under `acting`.
pub async fn replay(
    store: &Store,
    session: &str,
    agent: &mut dyn Agent,
    weights_sha256: &str,
    acting: &Acting,
) -> Result<ReplayReport> {
    let mut events: Vec<Event> = Vec::new();
    let mut after = 0;
    loop {
        let rows = store.session_audit_events(session, after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in &rows {
            events.push(
                Event::from_json(r.event.as_bytes())
                    .map_err(|e| anyhow::anyhow!("event {}:{}: {e}", session, r.seq))?,
            );
        }
    }
    if events.is_empty() {
        bail!("session {session} has no events in the audit trail (list them with `tradelab audit list`)");
    }
    let recorded_weights: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            EventBody::Model(m) => Some(m.weights_sha256.as_str()),
            _ => None,
        })
        .collect();
    if recorded_weights.is_empty() {
        bail!("session {session} recorded no model: it was decided by a rule strategy, and there is nothing to replay");
    }
    if let Some(other) = recorded_weights.iter().find(|w| **w != weights_sha256) {
        bail!(
            "the model given holds weights {}, but session {session} decided with {}; replay with the version it traded (NAME@VERSION)",
            &weights_sha256[..weights_sha256.len().min(12)],
            &other[..other.len().min(12)]
        );
    }
    // The decision orders the session sent, by instrument and bar.
    let mut sent: HashMap<(String, Option<i64>), Vec<&OrderEvent>> = HashMap::new();
    for e in &events {
        if let EventBody::Order(o) = &e.event {
            let decision_order = o
                .client_order_id
                .rsplit('-')
                .next()
                .is_some_and(|t| t.parse::<u32>().is_ok());
            if decision_order {
                sent.entry((o.instrument.clone(), e.bar_ts)).or_default().push(o);
            }
        }
    }
    let mut allowed: HashMap<(String, Option<i64>), bool> = HashMap::new();
    for e in &events {
        if let EventBody::RiskVerdict(v) = &e.event {
            allowed.insert((v.instrument.clone(), e.bar_ts), v.allowed);
        }
    }
    let mut report = ReplayReport::default();
    let mut orders = Vec::with_capacity(4);
    for e in &events {
        let EventBody::Decision(d) = &e.event else { continue };
        report.decisions += 1;
        let id = format!("{session}:{}", e.seq);
        let mut differ = |what: String| report.differences.push(Difference { id: id.clone(), what });
        let Some(diff) = ask_again(agent, d).map_err(|w| anyhow::anyhow!("decision {id}: {w}"))? else {
            // Reproduced; now its orders.
            report.reproduced += 1;
            let key = (d.instrument.clone(), e.bar_ts);
            if allowed.get(&key) == Some(&true) {
                orders.clear();
                resize(d, acting, &mut orders)?;
                let mut want: Vec<_> = orders.iter().map(|o: &Order| order_key(o.action, units(o))).collect();
                let mut got: Vec<_> = sent
                    .get(&key)
                    .map(|v| {
                        v.iter()
                            .filter_map(|o| o.action.parse::<Action>().ok().map(|a| order_key(a, o.qty)))
                            .collect()
                    })
                    .unwrap_or_default();
                want.sort();
                got.sort();
                report.orders_checked += 1;
                if want != got {
                    differ(format!("orders: recorded {got:?}, replayed {want:?}"));
                }
            }
            continue;
        };
        differ(diff);
    }
    Ok(report)
}

fn units(o: &Order) -> Option<f64> {
    match o.qty {
        OrderQty::Units(u) => Some(u),
        _ => None,
    }
}

/// `None` when the model gives back exactly what `d` recorded; otherwise
/// what differs. An error when the inputs cannot be read.
fn ask_again(agent: &mut dyn Agent, d: &DecisionEvent) -> std::result::Result<Option<String>, String> {
    let input = super::recorded_input(&d.inputs)?;
    let again = agent.select_action(&input, true).map_err(|e| e.to_string())?;
    let mut what = Vec::new();
    if again.action.as_str() != d.action {
        what.push(format!("action {} -> {}", d.action, again.action.as_str()));
    }
    if again.quantity.to_bits() != d.quantity.to_bits() {
        what.push(format!("quantity {} -> {}", d.quantity, again.quantity));
    }
    if bits(&again.probabilities) != bits(&d.probabilities) {
        what.push(format!(
            "probabilities {:?} -> {:?}",
            d.probabilities, again.probabilities
        ));
    }
    if again.value.to_bits() != d.value.to_bits() {
        what.push(format!("value {} -> {}", d.value, again.value));
    }
    Ok((!what.is_empty()).then(|| what.join("; ")))
}

/// The orders `d` means under `acting`, from the account it recorded.
fn resize(d: &DecisionEvent, acting: &Acting, orders: &mut Vec<Order>) -> Result<()> {
    let action: Action = d
        .action
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown action {}", d.action))?;
    let decision = tradelab_agents::Decision {
        action,
        quantity: d.quantity,
        probabilities: d.probabilities,
        value: d.value,
    };
    let i = &d.inputs;
    let mut ctx = BarContext {
        instrument: 0,
        index: 0,
        bar: Bar {
            ts: 0,
            open: i.close,
            high: i.close,
            low: i.close,
            close: i.close,
            volume: 0.0,
        },
        position: i.position,
        equity: i.equity,
        cash: i.cash,
        unrealized_pnl: 0.0,
        halted: false,
        orders,
    };
    submit_decision(&decision, acting, &mut ctx);
    Ok(())
}
