//! Jobs over HTTP: start a training run, a backtest, a parameter search
//! or a model's evaluation, follow it (status,
//! or a server-sent event stream of its progress), cancel it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use serde_json::Value;
use tradelab_store::jobs::JobRecord;
use utoipa::ToSchema;

use super::problem::{ApiResult, Json, Path, Problem, Query};
use super::routes::Limit;
use super::state::AppState;
use tradelab_app::jobs::spec::{BacktestJob, EvaluateJob, JobSpec, OptimizeJob, TrainJob};

/// A background job (a training run or a backtest) as the queue records it.
#[derive(Serialize, ToSchema)]
pub struct Job {
    /// The job's random hex id.
    pub id: String,
    /// `train`, `backtest`, `optimize` or `evaluate`.
    pub kind: String,
    /// queued, running, cancel_requested, finished, failed or cancelled.
    pub status: String,
    /// What was asked for.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The latest progress report (training: step, total, steps per second, ETA).
    #[schema(value_type = Object)]
    pub progress: Value,
    /// What it produced: run id and model version, or backtest id(s).
    #[schema(value_type = Object)]
    pub result: Option<Value>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The worker running it (or that last ran it).
    pub worker: Option<String>,
    /// Times a worker started it (more than 1 after a worker died).
    pub attempts: i64,
    /// When it was enqueued, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When its status or progress last changed, milliseconds since the
    /// Unix epoch.
    pub updated_ms: i64,
}

impl From<JobRecord> for Job {
    fn from(j: JobRecord) -> Job {
        Job {
            id: j.id,
            kind: j.kind,
            status: j.status.as_str().into(),
            payload: j.payload,
            progress: j.progress,
            result: j.result,
            error: j.error,
            worker: j.worker,
            attempts: j.attempts,
            created_ms: j.created_ms,
            updated_ms: j.updated_ms,
        }
    }
}

async fn submit(s: &AppState, spec: JobSpec) -> ApiResult<(StatusCode, Json<Job>)> {
    spec.check()?;
    let id = s
        .queue
        .submit(&s.store, &spec)
        .await
        .map_err(|e| Problem::internal("queueing the job", format!("{e:#}")))?;
    Ok((StatusCode::ACCEPTED, Json(s.store.job(&id).await?.into())))
}

/// Starts a training run as a background job.
#[utoipa::path(post, path = "/v1/training-jobs", request_body = TrainJob, responses((status = 202, body = Job), (status = 422, body = Problem)))]
pub async fn start_training(
    State(s): State<Arc<AppState>>,
    Json(job): Json<TrainJob>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    submit(&s, JobSpec::Train(job)).await
}

/// Starts a backtest as a background job; its result names the stored backtest.
#[utoipa::path(post, path = "/v1/backtests", request_body = BacktestJob, responses((status = 202, body = Job), (status = 422, body = Problem)))]
pub async fn start_backtest(
    State(s): State<Arc<AppState>>,
    Json(job): Json<BacktestJob>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    submit(&s, JobSpec::Backtest(job)).await
}

/// Starts a parameter search over a rule strategy as a background job; its
/// progress counts backtests done, its result names the best combination,
/// the deflated Sharpe ratio, PBO and the report.
#[utoipa::path(post, path = "/v1/optimizations", request_body = OptimizeJob, responses((status = 202, body = Job), (status = 422, body = Problem)))]
pub async fn start_optimization(
    State(s): State<Arc<AppState>>,
    Json(job): Json<OptimizeJob>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    submit(&s, JobSpec::Optimize(job)).await
}

/// Starts the evaluation of a registered model out of sample as a
/// background job: beside buy-and-hold, the rule and supervised baselines,
/// with intervals and the deflated Sharpe ratio; its result names the
/// stored backtests (one per instrument and fold).
#[utoipa::path(post, path = "/v1/evaluations", request_body = EvaluateJob, responses((status = 202, body = Job), (status = 422, body = Problem)))]
pub async fn start_evaluation(
    State(s): State<Arc<AppState>>,
    Json(job): Json<EvaluateJob>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    submit(&s, JobSpec::Evaluate(job)).await
}

/// The scope that starts (and so may cancel) a job of `kind`.
fn scope_of(kind: &str) -> &'static str {
    use tradelab_auth::scope::{BACKTEST, TRAIN};
    match kind {
        "train" => TRAIN,
        _ => BACKTEST,
    }
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", params(Limit), responses((status = 200, body = [Job])))]
pub async fn jobs(State(s): State<Arc<AppState>>, Query(q): Query<Limit>) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(
        s.store
            .recent_jobs(q.get()?)
            .await?
            .into_iter()
            .map(Job::from)
            .collect(),
    ))
}

/// One job's status, progress and result.
#[utoipa::path(get, path = "/v1/jobs/{id}", responses((status = 200, body = Job), (status = 404, body = Problem)))]
pub async fn job(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Job>> {
    Ok(Json(s.store.job(&id).await?.into()))
}

/// Cancels a job: a queued one at once, a running one when its worker next
/// checks (within seconds). Cancelling an ended job changes nothing.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", responses((status = 200, body = Job), (status = 404, body = Problem)))]
pub async fn cancel(
    State(s): State<Arc<AppState>>,
    caller: Option<axum::Extension<crate::guard::Caller>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    // The route admits `train` or `backtest`; the job's kind decides which
    // (an optimisation or an evaluation is started, so cancelled, with `backtest`).
    let kind = s.store.job(&id).await?.kind;
    let needs = scope_of(&kind);
    if let Some(axum::Extension(c)) = caller {
        if !c.has(needs) {
            return Err(Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                format!("cancelling a {kind} job needs the `{needs}` scope"),
            ));
        }
    }
    s.store.request_cancel(&id).await?;
    Ok(Json(s.store.job(&id).await?.into()))
}

/// How often the event stream looks at the job.
const POLL: Duration = Duration::from_millis(250);

/// How often a stream re-checks that its token is still live.
const TOKEN_RECHECK: Duration = Duration::from_secs(2);

/// A stream's token, re-checked every [`TOKEN_RECHECK`] (issue 19 finding
/// 17: a stream outlived an expired or revoked token).
pub(crate) struct TokenWatch {
    caller: Option<crate::guard::Caller>,
    checked: std::time::Instant,
}

impl TokenWatch {
    /// Watches `caller`'s token (none when auth is off).
    pub(crate) fn new(caller: Option<axum::Extension<crate::guard::Caller>>) -> Self {
        TokenWatch {
            caller: caller.map(|c| c.0),
            checked: std::time::Instant::now(),
        }
    }

    /// The `denied` event that ends the stream, when a re-check is due and
    /// the token no longer lets it run.
    pub(crate) async fn denied(&mut self, s: &AppState) -> Option<Event> {
        let caller = self
            .caller
            .as_ref()
            .filter(|_| self.checked.elapsed() >= TOKEN_RECHECK)?;
        self.checked = std::time::Instant::now();
        let why = token_gone(s, caller).await?;
        Some(Event::default().event("denied").data(why))
    }
}

/// Why a stream's token no longer lets it run, if it does not: expired,
/// or revoked.
async fn token_gone(s: &AppState, caller: &crate::guard::Caller) -> Option<&'static str> {
    if tradelab_core::time::now_secs() >= caller.expires_secs {
        return Some("the token has expired; reconnect with a fresh one");
    }
    match s.store.access_revoked(&caller.grant_id, &caller.token_id).await {
        Ok(false) => None,
        Ok(true) => Some("the token has been revoked"),
        Err(_) => Some("the token could not be re-checked; reconnect"),
    }
}

/// A server-sent event stream of a job: a `job` event with the whole job
/// each time it changes, ending with an `end` event once it has ended.
/// With auth on, the stream ends with a `denied` event once its token
/// expires or is revoked (checked every two seconds).
#[utoipa::path(get, path = "/v1/jobs/{id}/events", operation_id = "job_events", responses((status = 200, content_type = "text/event-stream"), (status = 404, body = Problem)))]
pub async fn events(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<crate::guard::Caller>>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Unknown ids are a 404 now, not an empty stream.
    s.store.job(&id).await?;
    struct Cursor {
        state: Arc<AppState>,
        id: String,
        last: Option<(String, i64, Option<Value>)>,
        ended: bool,
        token: TokenWatch,
    }
    let cursor = Cursor {
        state: s,
        id,
        last: None,
        ended: false,
        token: TokenWatch::new(caller),
    };
    let stream = stream::unfold(cursor, |mut c| async move {
        if c.ended {
            return None;
        }
        loop {
            if let Some(denied) = c.token.denied(&c.state).await {
                c.ended = true;
                return Some((Ok(denied), c));
            }
            let job = match c.state.store.job(&c.id).await {
                Ok(j) => j,
                Err(e) => {
                    c.ended = true;
                    let event = Event::default().event("error").data(e.to_string());
                    return Some((Ok(event), c));
                }
            };
            let seen = (job.status.as_str().to_string(), job.updated_ms, job.result.clone());
            if c.last.as_ref() != Some(&seen) {
                c.last = Some(seen);
                let ended = job.status.is_terminal();
                let body = serde_json::to_string(&Job::from(job)).unwrap_or_default();
                let event = Event::default().event(if ended { "end" } else { "job" }).data(body);
                c.ended = ended;
                return Some((Ok(event), c));
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Which lines of a job's log.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct LogQuery {
    /// Only lines numbered after this one (0, the default: from the start);
    /// pass the last `seq` read to follow the log.
    pub after: Option<i64>,
    /// At most this many lines (1 to 5000, default 1000).
    pub limit: Option<i64>,
}

/// One line of a job's log.
#[derive(Serialize, ToSchema)]
pub struct LogLine {
    /// Its number in the job's log, from 1.
    pub seq: i64,
    /// The attempt that wrote it (more than 1 after a worker died).
    pub attempt: i64,
    /// When it was read, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// `stdout` or `stderr` of the job's process, or `worker` for the
    /// worker's own notes (started, ended, why).
    pub stream: String,
    /// The text.
    pub line: String,
}

/// A page of a job's log.
#[derive(Serialize, ToSchema)]
pub struct JobLogPage {
    /// The job's status when the page was read: once it has ended, a page
    /// shorter than `limit` is the end of the log.
    pub status: String,
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
    /// The `after` that asks for the next page (the last line's `seq`, or
    /// the `after` given when there was none).
    pub next_after: i64,
}

/// The most lines one request may ask for.
pub const MAX_LOG_LINES: i64 = 5_000;

/// A job's log: what its process printed on standard output and error and
/// its worker's notes, line by line in order, across attempts.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/logs",
    operation_id = "job_logs",
    params(("id" = String, Path, description = "The job's id"), LogQuery),
    responses((status = 200, body = JobLogPage), (status = 400, body = Problem), (status = 404, body = Problem))
)]
pub async fn logs(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<JobLogPage>> {
    let limit = match q.limit {
        None => 1_000,
        Some(n @ 1..=MAX_LOG_LINES) => n,
        Some(n) => return Err(Problem::bad_request(format!("limit={n}; use 1 to {MAX_LOG_LINES}"))),
    };
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(Problem::bad_request(format!("after={after}; use 0 or a line's seq")));
    }
    // Status first: a reader that sees `finished` and a short page has
    // every line (the worker stores the log before it ends the job).
    let status = s.store.job(&id).await?.status.as_str().to_string();
    let lines: Vec<LogLine> = s
        .store
        .job_log(&id, after, limit)
        .await?
        .into_iter()
        .map(|l| LogLine {
            seq: l.seq,
            attempt: l.attempt,
            at_ms: l.at_ms,
            stream: l.stream,
            line: l.line,
        })
        .collect();
    Ok(Json(JobLogPage {
        status,
        next_after: lines.last().map_or(after, |l| l.seq),
        lines,
    }))
}
