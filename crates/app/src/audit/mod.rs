//! The audit trail of trading sessions: where a session's events go
//! ([`publishing`]: the in-process bus writing to the store, or NATS
//! JetStream), the worker that moves JetStream's events into the store
//! ([`ingest`]), explaining decisions with the models that made them
//! ([`forensics`], [`explain`]), and reading the trail back: listing,
//! showing, verifying each session's hash chain and exporting it
//! ([`trail`]), replaying it ([`replay`]) and archiving it ([`retention`]).

pub mod explain;
pub mod forensics;
pub mod ingest;
pub mod publishing;
pub mod replay;
pub mod retention;
pub mod trail;

use tradelab_bus::Event;
use tradelab_store::audit_events::AuditEventRow;

/// The agent's input a decision event recorded (its window decoded): what
/// the model saw, for asking it again or explaining it.
pub fn recorded_input(i: &tradelab_bus::DecisionInputs) -> Result<tradelab_agents::AgentInput<'_>, String> {
    Ok(tradelab_agents::AgentInput {
        window: i.window_values()?,
        account: i.account,
        mask: i.mask,
        market: tradelab_agents::MarketKey {
            instrument: i.market[0],
            timeframe: i.market[1],
        },
    })
}

/// An event as the store keeps it: the event's JSON as published, and the
/// columns it is searched by.
pub fn event_row(e: &Event) -> AuditEventRow {
    use tradelab_bus::EventBody;
    let (model, action) = match &e.event {
        EventBody::Decision(d) => (Some(d.model.clone()), Some(d.action.clone())),
        EventBody::Order(o) => (None, Some(o.action.clone())),
        EventBody::Fill(f) => (None, Some(f.action.clone())),
        EventBody::Model(m) => (Some(m.model.clone()), None),
        _ => (None, None),
    };
    AuditEventRow {
        session_id: e.session.clone(),
        seq: e.seq as i64,
        kind: e.kind().to_string(),
        at_ms: e.at_ms,
        bar_ts: e.bar_ts,
        instrument: e.event.instrument().map(str::to_string),
        model,
        action,
        event: e.to_json(),
        hash: e.hash.clone(),
    }
}
