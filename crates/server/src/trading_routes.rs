//! Trading sessions over HTTP: start a paper session of a registered model,
//! follow it (status, or a server-sent event stream of its fills, breaker
//! changes and restarts), stop it. The server runs the sessions it starts
//! on threads of their own; status and events come from the store, so a
//! session run from a terminal is followed the same way.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tradelab_app::registry::{verified_location, ModelRef};
use tradelab_app::trading::{prepare_paper, BrokerChoice, FeedChoice, PaperSpec};
use tradelab_store::trading::TradingSessionRecord;
use utoipa::ToSchema;

use super::problem::{ApiResult, Json, Path, Problem, Query};
use super::routes::Limit;
use super::state::AppState;

/// A trading session to start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTradingSession {
    /// A registered model: NAME, NAME@VERSION or NAME@production.
    pub model: String,
    /// Instruments by name (files in data/final or data.raw_dir).
    pub symbols: Vec<String>,
    /// First day to trade, YYYY-MM-DD; default: the latest test-split start.
    pub from: Option<String>,
    /// Times real time; 0 (the default) as fast as possible.
    #[serde(default)]
    pub speed: f64,
    /// The paper account; one live session per account.
    #[serde(default = "default_account")]
    pub account: String,
    /// `replay` (the default: the symbols' files) or `alpaca` (Alpaca's
    /// live bars, with the server's APCA_API_KEY_ID and
    /// APCA_API_SECRET_KEY).
    #[serde(default = "default_feed")]
    pub feed: String,
    /// `paper` (the default) or `alpaca` (Alpaca's account; needs the
    /// alpaca feed).
    #[serde(default = "default_broker")]
    pub broker: String,
}

fn default_feed() -> String {
    "replay".into()
}

fn default_broker() -> String {
    "paper".into()
}

fn default_account() -> String {
    "default".into()
}

/// A trading session as the store records it.
#[derive(Serialize, ToSchema)]
pub struct TradingSession {
    /// Its id.
    pub id: String,
    /// The account it trades (`paper:NAME`).
    pub account: String,
    /// The model as it was named.
    pub model: String,
    /// What it was started with.
    #[schema(value_type = Object)]
    pub spec: Value,
    /// running, stopped, halted, failed or finished.
    pub status: String,
    /// True while a process runs it (its heartbeat is fresh).
    pub alive: bool,
    /// True when this server runs it (and can stop it).
    pub run_here: bool,
    /// Why it ended.
    pub reason: Option<String>,
    /// When it started, milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// Its last checkpoint: positions, cash, equity, breakers, latency,
    /// correlations and volatility contributions.
    #[schema(value_type = Object)]
    pub checkpoint: Option<Value>,
}

impl AppState {
    fn session_view(&self, s: TradingSessionRecord) -> TradingSession {
        let lease_ms = self.settings.trade.lease_seconds as i64 * 1000;
        let run_here = self.trading_stops().contains_key(&s.id);
        TradingSession {
            alive: s.is_alive(lease_ms, tradelab_core::time::now_ms()),
            run_here,
            id: s.id,
            account: s.account,
            model: s.model,
            spec: s.spec,
            status: s.status.as_str().into(),
            reason: s.reason,
            started_ms: s.started_ms,
            checkpoint: s.checkpoint,
        }
    }
}

/// Checks a symbol names an instrument, not a path: the API reads only the
/// configured data folders.
fn check_symbol(s: &str) -> Result<(), Problem> {
    let bad = s.is_empty() || s.contains(['/', '\\']) || s.contains("..") || s.len() > 128;
    if bad {
        return Err(Problem::unprocessable(format!(
            "symbol `{s}`: name an instrument in the data folders (no paths)"
        )));
    }
    Ok(())
}

/// Starts a paper session of a registered model; 202 once its data and
/// model are checked and it holds its account; 409 when a live session
/// already trades that account.
#[utoipa::path(post, path = "/v1/trading-sessions", request_body = StartTradingSession, responses((status = 202, body = TradingSession), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn start(
    State(s): State<Arc<AppState>>,
    Json(req): Json<StartTradingSession>,
) -> ApiResult<(StatusCode, Json<TradingSession>)> {
    if req.symbols.is_empty() {
        return Err(Problem::unprocessable("symbols: name at least one instrument"));
    }
    req.symbols.iter().try_for_each(|x| check_symbol(x))?;
    let from = match &req.from {
        Some(day) => Some(
            tradelab_data::load::timestamp::TimestampFormat::Iso
                .parse(day.as_bytes())
                .ok_or_else(|| Problem::unprocessable(format!("from `{day}`: expected a date like 2013-01-02")))?,
        ),
        None => None,
    };
    let record = ModelRef::parse(&req.model)
        .map_err(|e| Problem::unprocessable(format!("model: {e:#}")))?
        .resolve(&s.store)
        .await
        .map_err(|e| Problem::not_found(format!("model `{}`: {e:#}", req.model)))?;
    let folder = verified_location(&record).map_err(|e| Problem::new(StatusCode::CONFLICT, format!("{e:#}")))?;
    let feed = FeedChoice::parse(&req.feed).map_err(|e| Problem::unprocessable(format!("{e:#}")))?;
    let broker = BrokerChoice::parse(&req.broker).map_err(|e| Problem::unprocessable(format!("{e:#}")))?;
    if feed == FeedChoice::Alpaca && (from.is_some() || req.speed != 0.0) {
        return Err(Problem::unprocessable(
            "from and speed replay history; the alpaca feed trades from now at real time",
        ));
    }
    let spec = PaperSpec {
        model: req.model.clone(),
        symbols: req.symbols,
        from,
        speed: req.speed,
        account: req.account,
        feed,
        broker,
    };
    let state = s.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let agent = tradelab_agents::load::load_agent(&folder)?;
        let mut settings = tradelab_app::settings::model_settings(&agent.provenance().settings, &state.settings)?;
        settings.trade = state.settings.trade.clone();
        settings.store = state.settings.store.clone();
        prepare_paper(&settings, agent, &folder, &spec, None)
    })
    .await
    .map_err(|e| Problem::internal("starting the session", e))?
    .map_err(|e| {
        let text = format!("{e:#}");
        let status = if text.contains("is already traded by") {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Problem::new(status, text)
    })?;
    let id = prepared.id().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    s.trading_stops().insert(id.clone(), stop.clone());
    let state = s.clone();
    let thread_id = id.clone();
    std::thread::spawn(move || {
        // The outcome is in the store (status, reason, checkpoint, events).
        let _ = prepared.run(&stop, |_| {});
        state.trading_stops().remove(&thread_id);
    });
    let record = s.store.trading_session(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(s.session_view(record))))
}

/// Trading sessions, newest first.
#[utoipa::path(get, path = "/v1/trading-sessions", operation_id = "trading_sessions", params(Limit), responses((status = 200, body = [TradingSession])))]
pub async fn list(State(s): State<Arc<AppState>>, Query(q): Query<Limit>) -> ApiResult<Json<Vec<TradingSession>>> {
    let sessions = s.store.trading_sessions(q.get()?).await?;
    Ok(Json(sessions.into_iter().map(|x| s.session_view(x)).collect()))
}

/// One session's status and last checkpoint.
#[utoipa::path(get, path = "/v1/trading-sessions/{id}", responses((status = 200, body = TradingSession), (status = 404, body = Problem)))]
pub async fn status(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<TradingSession>> {
    let record = s.store.trading_session(&id).await?;
    Ok(Json(s.session_view(record)))
}

/// Stops a session this server runs, after the bar in progress (it can be
/// resumed later). 409 for a live session another process runs.
#[utoipa::path(post, path = "/v1/trading-sessions/{id}/stop", responses((status = 202, body = TradingSession), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn stop(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<TradingSession>)> {
    let record = s.store.trading_session(&id).await?;
    let flag = s.trading_stops().get(&id).cloned();
    match flag {
        Some(flag) => flag.store(true, Ordering::SeqCst),
        None => {
            let view = s.session_view(record);
            if view.alive {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    format!("session {id} is run by another process; stop it there (Ctrl-C)"),
                ));
            }
            return Ok((StatusCode::OK, Json(view)));
        }
    }
    Ok((StatusCode::ACCEPTED, Json(s.session_view(record))))
}

/// How often the event stream reads the store.
const POLL: Duration = Duration::from_millis(250);

/// A server-sent event stream of a session's events (`trading` events:
/// fills, breaker changes, restarts, reconciliation), from the first,
/// ending with an `end` event once the session is no longer alive and its
/// events are all sent; a `denied` event ends it when its token expires
/// or is revoked.
#[utoipa::path(get, path = "/v1/trading-sessions/{id}/events", operation_id = "trading_session_events", responses((status = 200, content_type = "text/event-stream"), (status = 404, body = Problem)))]
pub async fn events(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<crate::guard::Caller>>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    s.store.trading_session(&id).await?;
    struct Cursor {
        state: Arc<AppState>,
        id: String,
        after: i64,
        queued: std::collections::VecDeque<Event>,
        ended: bool,
        token: crate::job_routes::TokenWatch,
    }
    let cursor = Cursor {
        state: s,
        id,
        after: 0,
        queued: Default::default(),
        ended: false,
        token: crate::job_routes::TokenWatch::new(caller),
    };
    let stream = stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.queued.pop_front() {
                return Some((Ok(e), c));
            }
            if c.ended {
                return None;
            }
            if let Some(denied) = c.token.denied(&c.state).await {
                c.ended = true;
                return Some((Ok(denied), c));
            }
            let lease_ms = c.state.settings.trade.lease_seconds as i64 * 1000;
            let alive = match c.state.store.trading_session(&c.id).await {
                Ok(r) => r.is_alive(lease_ms, tradelab_core::time::now_ms()),
                Err(e) => {
                    c.ended = true;
                    return Some((Ok(Event::default().event("error").data(e.to_string())), c));
                }
            };
            match c.state.store.trading_events(&c.id, c.after, 500).await {
                Ok(events) if !events.is_empty() => {
                    for e in events {
                        c.after = e.seq;
                        let body = serde_json::json!({"seq": e.seq, "at_ms": e.at_ms, "bar_ts": e.bar_ts, "kind": e.kind, "detail": e.detail});
                        c.queued.push_back(
                            Event::default()
                                .event("trading")
                                .id(e.seq.to_string())
                                .data(body.to_string()),
                        );
                    }
                    continue;
                }
                Ok(_) if !alive => {
                    c.ended = true;
                    return Some((Ok(Event::default().event("end").data(c.id.clone())), c));
                }
                Ok(_) => tokio::time::sleep(POLL).await,
                Err(e) => {
                    c.ended = true;
                    return Some((Ok(Event::default().event("error").data(e.to_string())), c));
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
