//! The handlers of `/v1`: each reads or writes the store, and answers JSON
//! or a problem document.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tradelab_agents::agent::Decision;
use tradelab_env::{ActionSpace, Holding};
use tradelab_store::audit::{BacktestPart, NewDecision};
use tradelab_store::registry::{ModelRecord, Stage};
use tradelab_store::tracking::{MetricPoint, RunRecord};
use utoipa::{IntoParams, ToSchema};

use super::decide::{apply_risk, input, observation, BarsContext, DecisionRequest, RiskCheck, Shape};
use super::problem::{ApiResult, Json, Path, Problem, Query};
use super::state::AppState;
use tradelab_app::metrics::JobFacts;
use tradelab_app::registry::{collect_garbage, verified_location, GcReport};

/// The health check's answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` once the database has answered a query.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The server's version.
    pub version: String,
}

/// Liveness and the database the server writes to.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = Health)))]
pub async fn health(State(s): State<Arc<AppState>>) -> ApiResult<Json<Health>> {
    // A round trip proves the database answers, not just that a pool exists.
    s.store.recent_runs(1).await?;
    Ok(Json(Health {
        status: "ok".into(),
        database: format!("{:?}", s.store.backend()).to_lowercase(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// A prepared data set, as `data/final/manifest.json` lists it.
#[derive(Serialize, ToSchema)]
pub struct Dataset {
    /// Instrument name (the source file's stem).
    pub instrument: String,
    /// Bar spacing, such as `1d` or `15m`; `null` if it could not be inferred.
    pub timeframe: Option<String>,
    /// Bars in the prepared file.
    pub rows: usize,
    /// Feature column names, in the order they follow the OHLCV columns.
    pub features: Vec<String>,
    /// Hex SHA-256 of the raw file it was prepared from.
    pub source_sha256: String,
}

/// The prepared data sets (`data/final`), as `tradelab data prepare` left them.
#[utoipa::path(get, path = "/v1/datasets", responses((status = 200, body = [Dataset])))]
pub async fn datasets(State(s): State<Arc<AppState>>) -> ApiResult<Json<Vec<Dataset>>> {
    let path = s.settings.data.final_dir.join("manifest.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Json(Vec::new())),
        Err(e) => return Err(Problem::internal("reading the data manifest", e)),
    };
    let manifest: tradelab_data::prepare::Manifest =
        serde_json::from_str(&text).map_err(|e| Problem::internal("reading the data manifest", e))?;
    Ok(Json(
        manifest
            .entries
            .into_iter()
            .map(|e| Dataset {
                instrument: e.instrument,
                timeframe: e.timeframe.map(|t| t.to_string()),
                rows: e.rows,
                features: e.features,
                source_sha256: e.source_sha256,
            })
            .collect(),
    ))
}

/// The `limit` query parameter of the listings.
#[derive(Deserialize, IntoParams)]
pub struct Limit {
    /// At most this many, newest first (1 to 1000, default 50).
    pub limit: Option<u32>,
}

impl Limit {
    /// The number of rows to list: 50 when absent, a 400 problem outside
    /// 1 to 1000.
    pub fn get(&self) -> Result<i64, Problem> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=1000) => Ok(n as i64),
            Some(n) => Err(Problem::bad_request(format!("limit={n}; use 1 to 1000"))),
        }
    }
}

/// A tracked run.
#[derive(Serialize, ToSchema)]
pub struct Run {
    /// The run's random hex id.
    pub id: String,
    /// The experiment it belongs to.
    pub experiment: String,
    /// The run's name (not unique).
    pub name: String,
    /// `running`, `finished`, `failed` or `killed`.
    pub status: String,
    /// The run's parameters, a JSON object.
    #[schema(value_type = Object)]
    pub params: Value,
    /// The run's tags, a JSON object.
    #[schema(value_type = Object)]
    pub tags: Value,
    /// When it started, milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// When it ended, milliseconds since the Unix epoch; `null` while running.
    pub ended_ms: Option<i64>,
}

impl From<RunRecord> for Run {
    fn from(r: RunRecord) -> Run {
        Run {
            id: r.id,
            experiment: r.experiment,
            name: r.name,
            status: r.status.as_str().into(),
            params: r.params,
            tags: r.tags,
            started_ms: r.started_ms,
            ended_ms: r.ended_ms,
        }
    }
}

/// Recorded runs of every experiment, newest first.
#[utoipa::path(get, path = "/v1/runs", params(Limit), responses((status = 200, body = [Run])))]
pub async fn runs(State(s): State<Arc<AppState>>, Query(q): Query<Limit>) -> ApiResult<Json<Vec<Run>>> {
    Ok(Json(
        s.store
            .recent_runs(q.get()?)
            .await?
            .into_iter()
            .map(Run::from)
            .collect(),
    ))
}

/// One run.
#[utoipa::path(get, path = "/v1/runs/{id}", responses((status = 200, body = Run), (status = 404, body = Problem)))]
pub async fn run(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Run>> {
    Ok(Json(s.store.run(&id).await?.into()))
}

/// One value of a metric's series.
#[derive(Serialize, ToSchema)]
pub struct Point {
    /// The step (update, epoch...) it was logged at.
    pub step: i64,
    /// When it was stored, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The value (always finite).
    pub value: f64,
}

impl From<MetricPoint> for Point {
    fn from(p: MetricPoint) -> Point {
        Point {
            step: p.step,
            time_ms: p.time_ms,
            value: p.value,
        }
    }
}

/// Every metric series of a run, by key.
#[utoipa::path(get, path = "/v1/runs/{id}/metrics", responses((status = 200, body = BTreeMap<String, Vec<Point>>), (status = 404, body = Problem)))]
pub async fn run_metrics(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<BTreeMap<String, Vec<Point>>>> {
    s.store.run(&id).await?;
    let mut out = BTreeMap::new();
    for key in s.store.metric_keys(&id).await? {
        let series = s.store.metric_history(&id, &key).await?;
        out.insert(key, series.into_iter().map(Point::from).collect());
    }
    Ok(Json(out))
}

/// A registered model version.
#[derive(Serialize, ToSchema)]
pub struct Model {
    /// The model's name.
    pub name: String,
    /// Its version under that name, from 1.
    pub version: i64,
    /// `none`, `staging`, `production` or `archived`.
    pub stage: String,
    /// Hex SHA-256 of the weights file.
    pub checksum: String,
    /// The framework and versions that wrote the weights.
    pub framework: String,
    /// Empty once garbage collection removed the files.
    pub location: String,
    /// The training run that produced it, if recorded.
    pub run_id: Option<String>,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The checkpoint's metadata.json.
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<ModelRecord> for Model {
    fn from(m: ModelRecord) -> Model {
        Model {
            name: m.name,
            version: m.version,
            stage: m.stage.as_str().into(),
            checksum: m.checksum,
            framework: m.framework,
            location: m.location,
            run_id: m.run_id,
            created_ms: m.created_ms,
            metadata: m.metadata,
        }
    }
}

/// Every registered model version.
#[utoipa::path(get, path = "/v1/models", responses((status = 200, body = [Model])))]
pub async fn models(State(s): State<Arc<AppState>>) -> ApiResult<Json<Vec<Model>>> {
    Ok(Json(s.store.models(None).await?.into_iter().map(Model::from).collect()))
}

/// A version number from a number, `latest` or a stage, reading no metadata.
async fn resolve_version(s: &AppState, name: &str, version: &str) -> Result<i64, Problem> {
    if let Ok(v) = version.parse::<i64>() {
        return Ok(v);
    }
    let stage = match version {
        "latest" => None,
        other => Some(Stage::parse(other).map_err(|_| {
            Problem::bad_request(format!(
                "`{version}` is not a version; use a number, latest, staging or production"
            ))
        })?),
    };
    s.store.newest_version(name, stage).await?.ok_or_else(|| match stage {
        None => Problem::not_found(format!("no model called `{name}`")),
        Some(st) => Problem::not_found(format!("model `{name}` has no version in {}", st.as_str())),
    })
}

/// A version by number or stage: `3`, `production`, `staging`, `latest`.
async fn resolve(s: &AppState, name: &str, version: &str) -> Result<ModelRecord, Problem> {
    if version == "latest" {
        return s
            .store
            .models(Some(name))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Problem::not_found(format!("no model called `{name}`")));
    }
    match version.parse::<i64>() {
        Ok(v) => Ok(s.store.model(name, v).await?),
        Err(_) => {
            let stage = Stage::parse(version).map_err(|_| {
                Problem::bad_request(format!(
                    "`{version}` is not a version; use a number, latest, staging or production"
                ))
            })?;
            s.store
                .model_at_stage(name, stage)
                .await?
                .ok_or_else(|| Problem::not_found(format!("model `{name}` has no version in {}", stage.as_str())))
        }
    }
}

/// One model version (by number, `latest`, `staging` or `production`).
#[utoipa::path(get, path = "/v1/models/{name}/{version}", responses((status = 200, body = Model), (status = 404, body = Problem)))]
pub async fn model(
    State(s): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Model>> {
    Ok(Json(resolve(&s, &name, &version).await?.into()))
}

/// The version's weights (`model.safetensors`), checked against the
/// registry's checksum before they are sent.
#[utoipa::path(get, path = "/v1/models/{name}/{version}/download", responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn download(
    State(s): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let m = resolve(&s, &name, &version).await?;
    let dir = verified_location(&m).map_err(|e| Problem::new(StatusCode::CONFLICT, format!("{e:#}")))?;
    let bytes = tokio::fs::read(dir.join(tradelab_agents::checkpoint::WEIGHTS_FILE))
        .await
        .map_err(|e| Problem::internal("reading the weights", e))?;
    let disposition = format!(
        "attachment; filename=\"{}-v{}.safetensors\"",
        m.name.replace('"', "_"),
        m.version
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::HeaderName::from_static("x-checksum-sha256"), m.checksum),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// The body of a stage change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageChange {
    /// `staging`, `production` (archives the current production version),
    /// `archived` or `none`.
    pub stage: String,
}

/// Moves a version to a stage.
#[utoipa::path(post, path = "/v1/models/{name}/{version}/stage", request_body = StageChange, responses((status = 200, body = Model), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_stage(
    State(s): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    Json(change): Json<StageChange>,
) -> ApiResult<Json<Model>> {
    let stage = Stage::parse(&change.stage).map_err(|e| Problem::unprocessable(e.to_string()))?;
    let m = resolve(&s, &name, &version).await?;
    if stage != Stage::Archived && stage != Stage::None {
        verified_location(&m).map_err(|e| Problem::new(StatusCode::CONFLICT, format!("{e:#}")))?;
    }
    s.store.set_stage(&m.name, m.version, stage).await?;
    s.forget_model(&m.name);
    Ok(Json(s.store.model(&m.name, m.version).await?.into()))
}

/// The body of a garbage collection.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// Besides the best, staging and production versions, keep this many
    /// newest versions of each model (default: `store.keep_last`).
    pub keep_last: Option<usize>,
    /// Only report what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// Garbage-collects model files by the retention policy; records stay.
#[utoipa::path(post, path = "/v1/models/gc", request_body = GcRequest, responses((status = 200, body = GcReport), (status = 422, body = Problem)))]
pub async fn models_gc(State(s): State<Arc<AppState>>, Json(req): Json<GcRequest>) -> ApiResult<Json<GcReport>> {
    if req.keep_last == Some(0) {
        return Err(Problem::unprocessable("keep_last must be at least 1"));
    }
    let keep = req.keep_last.unwrap_or(s.settings.store.keep_last);
    let report = collect_garbage(&s.store, keep, req.dry_run)
        .await
        .map_err(|e| Problem::internal("garbage collection", format!("{e:#}")))?;
    Ok(Json(report))
}

/// A stored backtest, without its documents.
#[derive(Serialize, ToSchema)]
pub struct BacktestSummary {
    /// The backtest's random hex id; its documents are under
    /// `/v1/backtests/{id}`.
    pub id: String,
    /// The run it was recorded under, if any.
    pub run_id: Option<String>,
    /// The strategy or model it tested.
    pub strategy: String,
    /// When it was stored, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// Which stored backtests to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BacktestsQuery {
    /// At most this many, newest first (1 to 1000, default 50).
    pub limit: Option<u32>,
    /// Only those of this strategy, exactly as stored (a model's
    /// evaluations are `model NAME@VERSION`).
    pub strategy: Option<String>,
}

/// Stored backtests, newest first.
#[utoipa::path(get, path = "/v1/backtests", params(BacktestsQuery), responses((status = 200, body = [BacktestSummary]), (status = 400, body = Problem)))]
pub async fn backtests(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BacktestsQuery>,
) -> ApiResult<Json<Vec<BacktestSummary>>> {
    let limit = Limit { limit: q.limit }.get()?;
    let list = s.store.backtests_of(q.strategy.as_deref(), limit).await?;
    Ok(Json(
        list.into_iter()
            .map(|b| BacktestSummary {
                id: b.id,
                run_id: b.run_id,
                strategy: b.strategy,
                created_ms: b.created_ms,
            })
            .collect(),
    ))
}

async fn backtest_part(s: &AppState, id: &str, part: BacktestPart) -> ApiResult<Json<Value>> {
    Ok(Json(s.store.backtest_part(id, part).await?))
}

/// A backtest's report: metrics, costs, risk events.
#[utoipa::path(get, path = "/v1/backtests/{id}", responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn backtest_report(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    backtest_part(&s, &id, BacktestPart::Report).await
}

/// A backtest's round-trip trades.
#[utoipa::path(get, path = "/v1/backtests/{id}/trades", responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn backtest_trades(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    backtest_part(&s, &id, BacktestPart::Trades).await
}

/// A backtest's equity curve.
#[utoipa::path(get, path = "/v1/backtests/{id}/equity", responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn backtest_equity(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    backtest_part(&s, &id, BacktestPart::Equity).await
}

/// The answer to a decision request.
#[derive(Serialize, ToSchema)]
pub struct DecisionResponse {
    /// The audit record's id.
    pub decision_id: String,
    /// The model's name.
    pub model: String,
    /// The version that decided (a stage or `latest` resolved to its number).
    pub version: i64,
    /// The action after the risk layer.
    pub action: String,
    /// The order the model chose, before the risk layer.
    pub model_action: String,
    /// For a model trained with `env.actions: target`, the position it
    /// wants (BUY_LONG: long, SELL_SHORT: short, HOLD: flat), which
    /// `model_action` carries out from the posted position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For a model trained with `env.actions: exposure`, the position it
    /// wants in risk budgets (-1 short the whole single-asset cap, 0 flat,
    /// 1 long it), which `model_action` moves toward from the posted
    /// position (no order within `env.exposure_band` of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_exposure: Option<f64>,
    /// The model's quantity: a fraction of the risk budget in (0, 1] for
    /// entries. For exposure models the order's: the entry's fraction of the
    /// risk budget, or the fraction of the position a close closes (1: all).
    pub quantity: f64,
    /// Units to trade after the risk layer: entries, and partial closes
    /// (0 for a close of the whole position or a hold).
    pub units: f64,
    /// Probability of each action.
    pub probabilities: BTreeMap<String, f32>,
    /// The critic's value estimate.
    pub value: f32,
    /// Each risk rule's verdict, in the order applied.
    pub risk_checks: Vec<RiskCheck>,
    /// sha256 of the request body's observation, as stored in the audit trail.
    pub inputs_sha256: String,
    /// True when the model never saw this instrument and decided through
    /// its learnt unknown-instrument embedding.
    pub unseen_instrument: bool,
}

/// Runs a model on a posted observation window, applies the risk layer,
/// writes the audit record, and answers with the decision.
#[utoipa::path(post, path = "/v1/models/{name}/{version}/decide", request_body = DecisionRequest, responses((status = 200, body = DecisionResponse), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn decide(
    State(s): State<Arc<AppState>>,
    caller: Option<axum::Extension<crate::guard::Caller>>,
    Path((name, version)): Path<(String, String)>,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Json<DecisionResponse>> {
    let started = Instant::now();
    let version = resolve_version(&s, &name, &version).await?;
    let loaded = s.model(&name, version).await?;
    let state = s.clone();
    let replicas = loaded.clone();
    let (decision, inputs_sha256) = tokio::task::spawn_blocking(move || -> Result<_, Problem> {
        let mut m = replicas.acquire();
        let shape = Shape {
            window: m.window,
            features: m.features,
        };
        let context = BarsContext {
            features: m.feature_settings.as_ref(),
            provenance: m.agent.provenance(),
        };
        let flat = observation(&req, &shape, &context)?;
        let vocabulary = &m.agent.provenance().vocabulary;
        let market = vocabulary
            .key(&req.instrument, &req.timeframe)
            .map_err(Problem::unprocessable)?;
        let unseen = !vocabulary.knows(&req.instrument);
        let (actions, band) = (m.actions, m.exposure_band);
        let chosen = m
            .agent
            .select_action(&input(&flat, &req.portfolio, market, actions), true)
            .map_err(|e| Problem::internal("the model", e))?;
        drop(m);
        if !chosen.quantity.is_finite() || !chosen.value.is_finite() || chosen.probabilities.iter().any(|p| !p.is_finite()) {
            return Err(Problem::unprocessable(
                "the model's output for this input is not a finite number, so no decision was made or recorded; check that the window's features are normalised as in training",
            ));
        }
        let target = (actions == ActionSpace::Target).then_some(chosen.action);
        let target_exposure = (actions == ActionSpace::Exposure).then_some(2.0 * chosen.quantity - 1.0);
        let p = &req.portfolio;
        let held = Holding::new(p.position_units, p.price, p.equity(), state.settings.env_config().risk_budget());
        let order = actions.carry_out(chosen.action, chosen.quantity, held, band);
        // Exposure models' quantity is the target, so the order's is reported;
        // the others' is the model's own entry fraction, as before.
        let quantity = if target_exposure.is_some() { order.quantity } else { chosen.quantity };
        let decision = Decision {
            action: order.action,
            quantity,
            ..chosen
        };
        let as_ordered = Decision {
            quantity: order.quantity,
            ..decision
        };
        let risk = apply_risk(&state.settings, &req.instrument, &as_ordered, &req.portfolio);
        let mut h = Sha256::new();
        for v in &flat {
            h.update(v.to_le_bytes());
        }
        for v in req.portfolio.account_features() {
            h.update(v.to_le_bytes());
        }
        h.update(req.instrument.as_bytes());
        h.update([0]);
        h.update(req.timeframe.as_bytes());
        Ok((((decision, target, target_exposure, unseen), risk), hex::encode(h.finalize())))
    })
    .await
    .map_err(|e| Problem::internal("the decision task", e))??;
    let record = &loaded.record;
    let ((decision, target, target_exposure, unseen), risk) = decision;
    let probabilities: BTreeMap<String, f32> = tradelab_core::Action::ALL
        .iter()
        .map(|a| (a.as_str().to_string(), decision.probabilities[a.index()]))
        .collect();
    let checks = serde_json::to_value(&risk.checks).map_err(|e| Problem::internal("the audit record", e))?;
    let decision_id = s
        .audit
        .append(NewDecision {
            model_name: record.name.clone(),
            model_version: record.version,
            inputs_sha256: inputs_sha256.clone(),
            action: risk.action.as_str().into(),
            quantity: decision.quantity,
            probabilities: serde_json::to_value(&probabilities).unwrap_or_default(),
            risk_checks: serde_json::json!({"model_action": decision.action.as_str(), "target": target.map(|t| t.as_str()), "target_exposure": target_exposure, "unseen_instrument": unseen, "units": risk.units, "checks": checks}),
            caller: caller.map(|axum::Extension(c)| c.name()),
        })
        .await?;
    s.metrics.decisions.observe(started.elapsed().as_secs_f64());
    Ok(Json(DecisionResponse {
        decision_id,
        model: record.name.clone(),
        version: record.version,
        action: risk.action.as_str().into(),
        model_action: decision.action.as_str().into(),
        target: target.map(|t| t.as_str().to_string()),
        target_exposure,
        quantity: decision.quantity,
        units: risk.units,
        probabilities,
        value: decision.value,
        risk_checks: risk.checks,
        inputs_sha256,
        unseen_instrument: unseen,
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(s): State<Arc<AppState>>) -> ApiResult<Response> {
    let mut facts = JobFacts::default();
    for (status, n) in s.store.job_counts().await? {
        facts.counts.push((status.as_str().to_string(), n));
    }
    for job in s.store.running_jobs().await? {
        if let Some(sps) = job.progress["steps_per_second"].as_f64() {
            facts.training_steps_per_second.push((job.id, sps));
        }
    }
    let lease_ms = s.settings.trade.lease_seconds as i64 * 1000;
    let now = tradelab_core::time::now_ms();
    for session in s.store.trading_sessions(100).await? {
        if let Some(cp) = session.checkpoint.clone().filter(|_| session.is_alive(lease_ms, now)) {
            facts.trading_sessions.push((session.id, cp));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&facts),
    )
        .into_response())
}
