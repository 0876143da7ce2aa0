//! `tradelab serve`: the REST API over the store. The only crate that
//! names the HTTP framework (axum) and the OpenAPI generator (utoipa).
//!
//! - [`routes`]: the `/v1` handlers (health, data sets, runs, models,
//!   backtests, decisions) and `/metrics`;
//! - [`price_routes`]: an instrument's bars, downsampled for charts, and
//!   what validating its file found;
//! - [`regime_routes`]: an instrument's regime model and probabilities,
//!   bucketed as the bars are;
//! - [`admin_routes`]: who is signed in, and the users and clients;
//! - [`web`]: the dashboard at `/`, built into the binary by `build.rs`;
//! - [`audit`]: the decision audit trail's group-commit writer;
//! - [`decide`]: the decision endpoint's checks and risk layer, apart from HTTP;
//! - [`job_routes`]: training and backtest jobs: start, follow (status and
//!   server-sent events), cancel;
//! - [`problem`]: RFC 7807 errors, and extractors that answer with them;
//! - [`state`]: the shared store, settings and loaded models;
//! - [`oauth`]: the authorization server (login, consent, tokens, keys);
//! - [`guard`]: the resource server: each route's scope, checked on every
//!   request;
//! - [`cors`]: cross-origin access for the browser dashboard;
//! - [`listen`]: accepting connections, with a header-read timeout, a
//!   connection cap and graceful shutdown.
//!
//! Every request runs under a size limit and a timeout; the OpenAPI
//! document is generated from the handlers and served with Swagger UI at
//! `/docs`; Ctrl-C or SIGTERM stops accepting and lets requests in flight
//! finish.

#![warn(missing_docs)]

pub mod admin_routes;
pub mod audit;
pub mod cors;
pub mod decide;
pub mod decision_routes;
pub mod guard;
pub mod job_routes;
pub mod listen;
pub mod oauth;
pub mod price_routes;
pub mod problem;
pub mod regime_routes;
pub mod routes;
pub mod state;
pub mod trading_routes;
pub mod web;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use tradelab_app::jobs::worker::WorkerContext;
use tradelab_app::runtime::{server_runtime, shutdown_signal};
use tradelab_app::settings::SettingsSource;

use self::problem::Problem;
use self::state::AppState;

/// Larger bodies are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The OpenAPI document of the `/v1` routes and `/metrics` (the OAuth
/// endpoints are described by their RFCs instead), with the OAuth 2.0
/// scheme and each operation's scopes; served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tradelab",
        description = "Runs, models, backtests and risk-checked decisions."
    ),
    paths(
        routes::health,
        routes::datasets,
        price_routes::bars,
        price_routes::validation,
        regime_routes::regimes,
        admin_routes::me,
        admin_routes::users,
        admin_routes::clients,
        admin_routes::add_user,
        admin_routes::set_user_enabled,
        admin_routes::remove_client,
        routes::runs,
        routes::run,
        routes::run_metrics,
        routes::models,
        routes::model,
        routes::download,
        routes::set_stage,
        routes::models_gc,
        routes::backtests,
        routes::backtest_report,
        routes::backtest_trades,
        routes::backtest_equity,
        routes::decide,
        job_routes::start_training,
        job_routes::start_backtest,
        job_routes::start_optimization,
        job_routes::start_evaluation,
        job_routes::jobs,
        job_routes::job,
        job_routes::cancel,
        job_routes::events,
        job_routes::logs,
        trading_routes::start,
        trading_routes::list,
        trading_routes::status,
        trading_routes::stop,
        trading_routes::events,
        decision_routes::list,
        decision_routes::one,
        routes::metrics,
    ),
    components(schemas(Problem)),
    modifiers(&OAuthScopes)
)]
pub struct ApiDoc;

/// The OpenAPI document, as `/openapi.json` serves it (pretty-printed);
/// `tradelab serve --print-openapi` prints it for the dashboard's typed
/// client.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document is plain data and always serialises")
}

/// Adds the OAuth 2.0 security scheme to the OpenAPI document and, on each
/// operation, the scopes the router demands of it (any one suffices). A
/// test checks every documented scope is what the server enforces.
struct OAuthScopes;

impl utoipa::Modify for OAuthScopes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            AuthorizationCode, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes,
            SecurityRequirement, SecurityScheme,
        };
        let scopes = || {
            Scopes::from_iter(
                tradelab_auth::scope::ALL
                    .iter()
                    .map(|s| (*s, tradelab_auth::scope::describe(s))),
            )
        };
        let scheme = SecurityScheme::OAuth2(OAuth2::new([
            Flow::AuthorizationCode(AuthorizationCode::new("/oauth/authorize", "/oauth/token", scopes())),
            Flow::ClientCredentials(ClientCredentials::new("/oauth/token", scopes())),
        ]));
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("oauth2", scheme);
        // Swagger UI's Authorize dialog takes a pasted access token too
        // (from `tradelab api token` or any OAuth client); the scopes the
        // token carries still decide, as for the OAuth flows.
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from this server, pasted as is; it needs the scopes listed under oauth2.",
                    ))
                    .build(),
            ),
        );
        for (method, path, needs) in ROUTE_SCOPES {
            let Some(item) = doc.paths.paths.get_mut(*path) else {
                continue;
            };
            let op = match *method {
                "GET" => item.get.as_mut(),
                "POST" => item.post.as_mut(),
                "PUT" => item.put.as_mut(),
                "DELETE" => item.delete.as_mut(),
                _ => None,
            };
            if let Some(op) = op {
                let mut any_of: Vec<SecurityRequirement> =
                    needs.iter().map(|s| SecurityRequirement::new("oauth2", [*s])).collect();
                any_of.push(SecurityRequirement::new("bearer", Vec::<String>::new()));
                op.security = Some(any_of);
            }
        }
    }
}

/// The scope each route needs, for the API documentation; the router below
/// enforces the same (a test checks that they agree, route by route).
pub const ROUTE_SCOPES: &[(&str, &str, guard::Needs)] = {
    use tradelab_auth::scope::{ADMIN, BACKTEST, DATA_READ, MODELS_READ, MODELS_WRITE, TRADE, TRAIN};
    &[
        ("GET", "/v1/datasets", &[DATA_READ]),
        ("GET", "/v1/datasets/{instrument}/bars", &[DATA_READ]),
        ("GET", "/v1/datasets/{instrument}/validation", &[DATA_READ]),
        ("GET", "/v1/datasets/{instrument}/regimes", &[DATA_READ]),
        ("GET", "/v1/me", tradelab_auth::scope::ALL),
        ("GET", "/v1/admin/users", &[ADMIN]),
        ("GET", "/v1/admin/clients", &[ADMIN]),
        ("POST", "/v1/admin/users", &[ADMIN]),
        ("PUT", "/v1/admin/users/{username}/enabled", &[ADMIN]),
        ("DELETE", "/v1/admin/clients/{client_id}", &[ADMIN]),
        ("GET", "/v1/runs", &[DATA_READ]),
        ("GET", "/v1/runs/{id}", &[DATA_READ]),
        ("GET", "/v1/runs/{id}/metrics", &[DATA_READ]),
        ("GET", "/v1/models", &[MODELS_READ]),
        ("POST", "/v1/models/gc", &[MODELS_WRITE]),
        ("GET", "/v1/models/{name}/{version}", &[MODELS_READ]),
        ("GET", "/v1/models/{name}/{version}/download", &[MODELS_READ]),
        ("POST", "/v1/models/{name}/{version}/stage", &[MODELS_WRITE]),
        ("POST", "/v1/models/{name}/{version}/decide", &[TRADE]),
        ("GET", "/v1/backtests", &[DATA_READ]),
        ("POST", "/v1/backtests", &[BACKTEST]),
        ("POST", "/v1/training-jobs", &[TRAIN]),
        ("POST", "/v1/optimizations", &[BACKTEST]),
        ("POST", "/v1/evaluations", &[BACKTEST]),
        ("GET", "/v1/jobs", &[DATA_READ]),
        ("GET", "/v1/jobs/{id}", &[DATA_READ]),
        ("POST", "/v1/jobs/{id}/cancel", &[TRAIN, BACKTEST]),
        ("GET", "/v1/jobs/{id}/events", &[DATA_READ]),
        ("GET", "/v1/jobs/{id}/logs", &[DATA_READ]),
        ("GET", "/v1/backtests/{id}", &[DATA_READ]),
        ("GET", "/v1/backtests/{id}/trades", &[DATA_READ]),
        ("GET", "/v1/backtests/{id}/equity", &[DATA_READ]),
        ("POST", "/v1/trading-sessions", &[TRADE]),
        ("GET", "/v1/trading-sessions", &[DATA_READ]),
        ("GET", "/v1/trading-sessions/{id}", &[DATA_READ]),
        ("POST", "/v1/trading-sessions/{id}/stop", &[TRADE]),
        ("GET", "/v1/trading-sessions/{id}/events", &[DATA_READ]),
        ("GET", "/v1/decisions", &[DATA_READ]),
        ("GET", "/v1/decisions/{id}", &[DATA_READ]),
        ("GET", "/metrics", &[ADMIN]),
    ]
};

/// The application: every route with the scope it needs, its limits and
/// its metrics. The route table is the one place scopes are declared; a
/// test walks the OpenAPI document to check every route refuses a request
/// without a token.
pub fn router(state: Arc<AppState>, timeout: Duration) -> Router {
    use tradelab_auth::scope::{ADMIN, BACKTEST, DATA_READ, MODELS_READ, MODELS_WRITE, TRADE, TRAIN};
    let needs = |scopes: guard::Needs| middleware::from_fn_with_state((state.clone(), scopes), guard::require);
    let api = Router::new()
        .route("/v1/health", get(routes::health))
        .route("/v1/datasets", get(routes::datasets).route_layer(needs(&[DATA_READ])))
        .route(
            "/v1/datasets/{instrument}/bars",
            get(price_routes::bars).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/datasets/{instrument}/validation",
            get(price_routes::validation).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/datasets/{instrument}/regimes",
            get(regime_routes::regimes).route_layer(needs(&[DATA_READ])),
        )
        // Any scope at all: every signed-in caller may ask who it is.
        .route(
            "/v1/me",
            get(admin_routes::me).route_layer(needs(tradelab_auth::scope::ALL)),
        )
        .route(
            "/v1/admin/users",
            get(admin_routes::users)
                .merge(post(admin_routes::add_user))
                .route_layer(needs(&[ADMIN])),
        )
        .route(
            "/v1/admin/users/{username}/enabled",
            put(admin_routes::set_user_enabled).route_layer(needs(&[ADMIN])),
        )
        .route(
            "/v1/admin/clients",
            get(admin_routes::clients).route_layer(needs(&[ADMIN])),
        )
        .route(
            "/v1/admin/clients/{client_id}",
            delete(admin_routes::remove_client).route_layer(needs(&[ADMIN])),
        )
        .route("/v1/runs", get(routes::runs).route_layer(needs(&[DATA_READ])))
        .route("/v1/runs/{id}", get(routes::run).route_layer(needs(&[DATA_READ])))
        .route(
            "/v1/runs/{id}/metrics",
            get(routes::run_metrics).route_layer(needs(&[DATA_READ])),
        )
        .route("/v1/models", get(routes::models).route_layer(needs(&[MODELS_READ])))
        .route(
            "/v1/models/gc",
            post(routes::models_gc).route_layer(needs(&[MODELS_WRITE])),
        )
        .route(
            "/v1/models/{name}/{version}",
            get(routes::model).route_layer(needs(&[MODELS_READ])),
        )
        .route(
            "/v1/models/{name}/{version}/download",
            get(routes::download).route_layer(needs(&[MODELS_READ])),
        )
        .route(
            "/v1/models/{name}/{version}/stage",
            post(routes::set_stage).route_layer(needs(&[MODELS_WRITE])),
        )
        .route(
            "/v1/models/{name}/{version}/decide",
            post(routes::decide).route_layer(needs(&[TRADE])),
        )
        .route(
            "/v1/backtests",
            get(routes::backtests)
                .route_layer(needs(&[DATA_READ]))
                .merge(post(job_routes::start_backtest).route_layer(needs(&[BACKTEST]))),
        )
        .route(
            "/v1/training-jobs",
            post(job_routes::start_training).route_layer(needs(&[TRAIN])),
        )
        .route(
            "/v1/optimizations",
            post(job_routes::start_optimization).route_layer(needs(&[BACKTEST])),
        )
        .route(
            "/v1/evaluations",
            post(job_routes::start_evaluation).route_layer(needs(&[BACKTEST])),
        )
        .route("/v1/jobs", get(job_routes::jobs).route_layer(needs(&[DATA_READ])))
        .route("/v1/jobs/{id}", get(job_routes::job).route_layer(needs(&[DATA_READ])))
        .route(
            "/v1/jobs/{id}/cancel",
            post(job_routes::cancel).route_layer(needs(&[TRAIN, BACKTEST])),
        )
        .route(
            "/v1/jobs/{id}/events",
            get(job_routes::events).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/jobs/{id}/logs",
            get(job_routes::logs).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/backtests/{id}",
            get(routes::backtest_report).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/backtests/{id}/trades",
            get(routes::backtest_trades).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/backtests/{id}/equity",
            get(routes::backtest_equity).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/trading-sessions",
            get(trading_routes::list)
                .route_layer(needs(&[DATA_READ]))
                .merge(post(trading_routes::start).route_layer(needs(&[TRADE]))),
        )
        .route(
            "/v1/trading-sessions/{id}",
            get(trading_routes::status).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/trading-sessions/{id}/stop",
            post(trading_routes::stop).route_layer(needs(&[TRADE])),
        )
        .route(
            "/v1/trading-sessions/{id}/events",
            get(trading_routes::events).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/decisions",
            get(decision_routes::list).route_layer(needs(&[DATA_READ])),
        )
        .route(
            "/v1/decisions/{id}",
            get(decision_routes::one).route_layer(needs(&[DATA_READ])),
        )
        .route("/metrics", get(routes::metrics).route_layer(needs(&[ADMIN])))
        .merge(oauth::router())
        .fallback(web::serve)
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method; see /docs",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            (state.clone(), timeout),
            observe_and_time_out,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
        .with_state(state);
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}

/// Times every request into the route's histogram, and answers 503 with a
/// problem document when a handler runs past the timeout.
async fn observe_and_time_out(
    State((state, timeout)): State<(Arc<AppState>, Duration)>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    // The route template, not the path: `/v1/models/{name}/{version}`.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s and was abandoned; retry later",
                timeout.as_secs_f64()
            ),
        )
        .into_response(),
    };
    state.metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// How `tradelab serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free one).
    pub addr: String,
    /// Requests running longer are answered 503.
    pub timeout_secs: f64,
    /// Jobs this server runs itself (0: leave them to `tradelab worker`).
    pub workers: usize,
    /// Answer API requests without checking tokens (development only).
    pub insecure_no_auth: bool,
    /// Request headers must arrive within this; idle connections close
    /// after it.
    pub header_timeout_secs: f64,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves the API until Ctrl-C or SIGTERM, with `a.workers` job workers
/// beside it; prints the address line scripts wait for once ready.
pub fn run(source: &SettingsSource, a: &ServeOptions) -> Result<()> {
    let settings = source.load(&[])?;
    let runtime = server_runtime()?;
    runtime.block_on(async {
        let started = Instant::now();
        let (store, queue) = tradelab_app::jobs::queue::open_platform(&settings).await?;
        let listener = tokio::net::TcpListener::bind(&a.addr).await.with_context(|| {
            format!(
                "listening on {}; is another server using the port? (--addr HOST:PORT)",
                a.addr
            )
        })?;
        let local = listener.local_addr()?;
        let kek = tradelab_app::auth_setup::key_encryption_key(&settings.store.database_url(), &settings.auth)?;
        let auth = oauth::start(&store, &settings.auth, &kek, local, !a.insecure_no_auth).await?;
        let state = Arc::new(AppState::new(store.clone(), queue.clone(), settings.clone(), auth));
        let app = router(state.clone(), Duration::from_secs_f64(a.timeout_secs.max(0.001)));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = (a.workers > 0).then(|| {
            let ctx = WorkerContext::new(store.clone(), &settings, source, Some(state.metrics.clone()));
            let mut stopped = stopped.clone();
            tokio::spawn(tradelab_app::jobs::worker::run(queue, ctx, a.workers, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        });
        // The address line is what scripts (and the tests) wait for.
        println!(
            "listening on http://{local} (API docs at http://{local}/docs, issuer {}), {} job worker(s), ready in {:.0} ms",
            state.auth.issuer,
            a.workers,
            started.elapsed().as_secs_f64() * 1000.0
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let limits = listen::ListenLimits {
            header_timeout: Duration::from_secs_f64(a.header_timeout_secs.clamp(0.1, 3600.0)),
            max_connections: a.max_connections.max(1),
            ..listen::ListenLimits::default()
        };
        listen::serve(listener, app, limits, shutdown_signal())
            .await
            .context("serving")?;
        let _ = stop.send(true);
        if let Some(w) = workers {
            // Jobs in flight end with their worker's children; their leases
            // lapse and another worker picks them up.
            let _ = w.await;
        }
        store.close().await;
        Ok(())
    })
}
