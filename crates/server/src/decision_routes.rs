//! The trading sessions' decisions from the audit trail: listed with
//! filters (session, model, instrument, action, time range) and pages, and
//! one decision in full (its inputs, probabilities, value, hash chain).

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tradelab_app::audit::trail;
use tradelab_bus::{Event, EventBody};
use tradelab_data::load::timestamp::TimestampFormat;
use tradelab_store::audit_events::{AuditEventRow, AuditFilter};
use utoipa::{IntoParams, ToSchema};

use super::problem::{ApiResult, Json, Path, Problem, Query};
use super::state::AppState;

/// Which decisions to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// One trading session.
    pub session: Option<String>,
    /// One model, as the session named it.
    pub model: Option<String>,
    /// One instrument.
    pub instrument: Option<String>,
    /// One action: BUY_LONG, SELL_SHORT, CLOSE_LONG, CLOSE_SHORT, HOLD.
    pub action: Option<String>,
    /// Made at or after: YYYY-MM-DD[THH:MM:SS] (UTC).
    pub from: Option<String>,
    /// Made before: YYYY-MM-DD[THH:MM:SS] (UTC).
    pub to: Option<String>,
    /// At most this many, newest first (1 to 1000, default 50).
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

/// A decision as listed.
#[derive(Serialize, ToSchema)]
pub struct DecisionSummary {
    /// `SESSION:SEQ`; the whole decision is at `/v1/decisions/{id}`.
    pub id: String,
    /// The trading session.
    pub session: String,
    /// When it was made, UTC milliseconds.
    pub at_ms: i64,
    /// The bar decided on, UTC milliseconds.
    pub bar_ts: Option<i64>,
    /// The instrument.
    pub instrument: String,
    /// The model, as the session named it.
    pub model: String,
    /// The action chosen.
    pub action: String,
    /// The fraction of the risk budget chosen.
    pub quantity: f64,
    /// Each action's probability (BUY_LONG, SELL_SHORT, CLOSE_LONG,
    /// CLOSE_SHORT, HOLD).
    pub probabilities: [f32; 5],
    /// The critic's value estimate.
    pub value: f32,
    /// SHA-256 of the inputs the model saw.
    pub inputs_sha256: String,
    /// The event's hash in the session's chain.
    pub hash: String,
}

/// A page of decisions.
#[derive(Serialize, ToSchema)]
pub struct DecisionPage {
    /// Newest first.
    pub decisions: Vec<DecisionSummary>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<String>,
}

fn parse_time(name: &str, text: &str) -> Result<i64, Problem> {
    TimestampFormat::Iso
        .parse(text.as_bytes())
        .ok_or_else(|| Problem::bad_request(format!("{name}={text}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC)")))
}

fn decision_of(row: &AuditEventRow) -> Result<(Event, tradelab_bus::DecisionEvent), Problem> {
    let damaged = |why: String| {
        Problem::internal(
            "the audit trail",
            format!(
                "event {}:{} is damaged ({why}); run `tradelab audit verify`",
                row.session_id, row.seq
            ),
        )
    };
    let event = Event::from_json(row.event.as_bytes()).map_err(damaged)?;
    match &event.event {
        EventBody::Decision(d) => {
            let d = d.clone();
            Ok((event, d))
        }
        _ => Err(Problem::not_found(format!(
            "event {}:{} is a {}, not a decision",
            row.session_id, row.seq, row.kind
        ))),
    }
}

/// Decisions of trading sessions, newest first, filtered and paged.
#[utoipa::path(get, path = "/v1/decisions", operation_id = "decisions", params(DecisionQuery), responses((status = 200, body = DecisionPage), (status = 400, body = Problem)))]
pub async fn list(State(s): State<Arc<AppState>>, Query(q): Query<DecisionQuery>) -> ApiResult<Json<DecisionPage>> {
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=1000) => n as i64,
        Some(n) => return Err(Problem::bad_request(format!("limit={n}; use 1 to 1000"))),
    };
    let filter = AuditFilter {
        session_id: q.session,
        kind: Some("decision".into()),
        model: q.model,
        instrument: q.instrument,
        action: q.action,
        from_ms: q.from.as_deref().map(|t| parse_time("from", t)).transpose()?,
        to_ms: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
    };
    let page = trail::list(&s.store, &filter, q.after.as_deref(), limit)
        .await
        .map_err(|e| Problem::bad_request(format!("{e:#}")))?;
    let mut decisions = Vec::with_capacity(page.events.len());
    for row in &page.events {
        let (event, d) = decision_of(row)?;
        decisions.push(DecisionSummary {
            id: format!("{}:{}", row.session_id, row.seq),
            session: row.session_id.clone(),
            at_ms: row.at_ms,
            bar_ts: row.bar_ts,
            instrument: d.instrument,
            model: d.model,
            action: d.action,
            quantity: d.quantity,
            probabilities: d.probabilities,
            value: d.value,
            inputs_sha256: d.inputs.sha256,
            hash: event.hash,
        });
    }
    Ok(Json(DecisionPage {
        decisions,
        next: page.next,
    }))
}

/// One decision in full: the event as published (its inputs, with the
/// feature window, probabilities, value, and its place in the hash chain)
/// and, once a forensics worker has made it, its `explanation`
/// (attributions per feature, bar and account input with the completeness
/// check, regime probabilities, a mixture's specialists, the HRM's
/// segments, and the paragraph); `null` until then.
#[utoipa::path(get, path = "/v1/decisions/{id}", operation_id = "decision", params(("id" = String, Path, description = "SESSION:SEQ")), responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn one(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (session, seq) = trail::parse_event_id(&id).map_err(|e| Problem::bad_request(format!("{e:#}")))?;
    let row = s.store.audit_event(&session, seq).await?;
    let (event, _) = decision_of(&row)?;
    let mut doc = serde_json::to_value(&event).map_err(|e| Problem::internal("the audit trail", e))?;
    doc["id"] = Value::String(id);
    let explanation = trail::explanation(&s.store, &session, seq)
        .await
        .map_err(|e| Problem::internal("the explanations", format!("{e:#}")))?;
    doc["explanation"] = explanation.unwrap_or(Value::Null);
    Ok(Json(doc))
}
