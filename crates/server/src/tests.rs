//! The API in process (tower's `oneshot`, no socket): every route's
//! answer, the decision endpoint's audit trail and risk layer, and bad
//! requests answered 4xx with a problem document, never 5xx.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;
use tradelab_agents::agent::Agent;
use tradelab_agents::metadata::Vocabulary;
use tradelab_agents::ppo::{PpoAgent, PpoConfig};
use tradelab_agents::trainer::Trainable;
use tradelab_app::Settings;
use tradelab_store::registry::NewModel;
use tradelab_store::Store;

use super::state::AppState;
use tradelab_app::registry::copy_into_registry;

const FEATURES: usize = 5;
const WINDOW: usize = 4;

struct Api {
    app: Router,
    store: Store,
    dir: tempfile::TempDir,
}

/// A server over a fresh SQLite store holding one registered model
/// (`tiny`, version 1, in production; `tiny-target` and `tiny-exposure`,
/// the same reading its outputs as targets and as a target exposure), one
/// run and one backtest.
async fn api() -> Api {
    api_with(Settings::default()).await
}

/// [`api`], the server started with `server_settings`.
async fn api_with(server_settings: Settings) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = Store::open(&url).await.unwrap();
    let queue = tradelab_app::jobs::queue::Queue::open(&url).await.unwrap();
    let mut settings = Settings::default();
    settings.env.window = WINDOW;
    settings.ppo.hidden = 8;
    register_tiny(&store, dir.path(), "tiny", &settings).await;
    settings.env.actions = tradelab_env::ActionSpace::Target;
    register_tiny(&store, dir.path(), "tiny-target", &settings).await;
    settings.env.actions = tradelab_env::ActionSpace::Exposure;
    register_tiny(&store, dir.path(), "tiny-exposure", &settings).await;
    settings.env.actions = tradelab_env::ActionSpace::Target;
    settings.ppo.instrument_dropout = 0.1;
    register_tiny(&store, dir.path(), "tiny-open", &settings).await;
    store
        .set_stage("tiny", 1, tradelab_store::registry::Stage::Production)
        .await
        .unwrap();
    let run = store
        .start_run("e", "train x", &json!({"a": 1}), &json!({}))
        .await
        .unwrap();
    store
        .log_metrics(&run, &[("loss", 1, 0.5), ("loss", 2, 0.25)])
        .await
        .unwrap();
    store
        .record_backtest(
            Some(&run),
            "momentum",
            &json!({"sharpe": 1}),
            &json!([{"pnl": 2}]),
            &json!([1, 2]),
        )
        .await
        .unwrap();
    let auth = test_auth(&store, false).await;
    let state = Arc::new(AppState::new(store.clone(), queue, server_settings, auth));
    Api {
        app: super::router(state, Duration::from_secs(30)),
        store,
        dir,
    }
}

/// Registers an untrained MLP agent with `settings` as version 1 of `name`
/// (with an unknown-instrument row when `ppo.instrument_dropout` is set).
async fn register_tiny(store: &Store, dir: &std::path::Path, name: &str, settings: &Settings) {
    let unknown_instrument = settings.ppo.instrument_dropout > 0.0;
    let mut agent = PpoAgent::new(PpoConfig {
        encoder: "mlp".into(),
        features: FEATURES,
        window: WINDOW,
        instruments: 1 + usize::from(unknown_instrument),
        timeframes: 1,
        seed: 3,
        ppo: settings.ppo.clone(),
        mixture: None,
    })
    .unwrap();
    let p = agent.provenance_mut();
    p.vocabulary = Vocabulary {
        instruments: vec!["acme".into()],
        timeframes: vec!["1d".into()],
        unknown_instrument,
    };
    p.features = (0..FEATURES).map(|i| format!("f{i}")).collect();
    p.settings = serde_json::to_value(settings).unwrap();
    let checkpoint = dir.join(format!("ckpt-{name}"));
    agent.save(&checkpoint).unwrap();
    let stored = copy_into_registry(&checkpoint, &dir.join("models"), name).unwrap();
    let location = stored.dir.display().to_string();
    store
        .register_model(&NewModel {
            name,
            checksum: stored.metadata["weights_sha256"].as_str().unwrap(),
            framework: "candle",
            metadata: &stored.metadata,
            location: &location,
            run_id: None,
        })
        .await
        .unwrap();
}

/// One key-encryption key for every test server (a store may be shared).
fn test_kek() -> tradelab_auth::sealed::KeyEncryptionKey {
    tradelab_auth::sealed::KeyEncryptionKey::from_hex(&"11".repeat(32)).expect("64 hex digits")
}

/// The authorization server for tests: issuer `http://tradelab.test`;
/// `enabled: false` is `--insecure-no-auth` (these tests are about the
/// routes; `auth_tests` is about the tokens).
pub(crate) async fn test_auth(store: &Store, enabled: bool) -> Arc<super::oauth::AuthServer> {
    let settings = tradelab_auth::AuthSettings::default();
    let (keys, _) = tradelab_app::auth_setup::load_keys(store, &settings, &test_kek())
        .await
        .unwrap();
    Arc::new(super::oauth::AuthServer::new(
        enabled,
        "http://tradelab.test".into(),
        settings,
        keys,
    ))
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<(&str, Vec<u8>)>) -> (StatusCode, String, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some((content_type, bytes)) => {
            req = req.header(header::CONTENT_TYPE, content_type);
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, content_type, bytes)
}

async fn get_json(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(app, "GET", uri, None).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn post_json(app: &Router, uri: &str, body: &Value) -> (StatusCode, Value) {
    let (status, _, bytes) = call(
        app,
        "POST",
        uri,
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn observation() -> Value {
    json!({
        "instrument": "acme",
        "timeframe": "1d",
        "window": vec![vec![0.1; FEATURES]; WINDOW],
        "portfolio": {"cash": 100000.0, "price": 50.0, "initial_equity": 100000.0}
    })
}

#[tokio::test]
async fn a_target_model_says_the_position_it_wants_and_the_order_that_gets_there() {
    let a = api().await;
    let (_, traded) = post_json(&a.app, "/v1/models/tiny/1/decide", &observation()).await;
    assert!(traded.get("target").is_none(), "order models have no target: {traded}");
    for units in [0.0, 200.0, -200.0] {
        let mut o = observation();
        o["portfolio"]["position_units"] = json!(units);
        o["portfolio"]["avg_price"] = json!(50.0);
        o["portfolio"]["cash"] = json!(100000.0 - units * 50.0);
        let (s, d) = post_json(&a.app, "/v1/models/tiny-target/1/decide", &o).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        let p = &d["probabilities"];
        assert_eq!(
            (p["CLOSE_LONG"].as_f64(), p["CLOSE_SHORT"].as_f64()),
            (Some(0.0), Some(0.0)),
            "{d}"
        );
        assert!(
            ["BUY_LONG", "SELL_SHORT", "HOLD"]
                .iter()
                .all(|a| p[a].as_f64().unwrap() > 0.0),
            "{d}"
        );
        let target = d["target"].as_str().unwrap();
        let expected = match (target, units.partial_cmp(&0.0).unwrap()) {
            ("BUY_LONG", std::cmp::Ordering::Greater) | ("SELL_SHORT", std::cmp::Ordering::Less) => "HOLD",
            ("HOLD", std::cmp::Ordering::Equal) => "HOLD",
            (t, std::cmp::Ordering::Equal) => t,
            (_, std::cmp::Ordering::Greater) => "CLOSE_LONG",
            (_, std::cmp::Ordering::Less) => "CLOSE_SHORT",
        };
        assert_eq!(d["model_action"], expected, "{d}");
        let audit = a.store.decisions("tiny-target").await.unwrap();
        assert_eq!(audit.last().unwrap().risk_checks["target"], target);
    }
}

#[tokio::test]
async fn an_exposure_model_says_the_exposure_it_wants_and_trades_only_outside_the_band() {
    let a = api().await;
    // 100,000 of equity at 50 with a 25% cap: 500 units are one risk budget.
    for units in [0.0, 40.0, 100.0, 250.0, -250.0, 500.0] {
        let mut o = observation();
        o["portfolio"]["position_units"] = json!(units);
        o["portfolio"]["avg_price"] = json!(50.0);
        o["portfolio"]["cash"] = json!(100000.0 - units * 50.0);
        let (s, d) = post_json(&a.app, "/v1/models/tiny-exposure/1/decide", &o).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(
            d["probabilities"]["BUY_LONG"], 1.0,
            "the categorical carries nothing: {d}"
        );
        let target = d["target_exposure"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&target), "{d}");
        let held = units / 500.0;
        let action = d["model_action"].as_str().unwrap();
        assert_eq!(action == "HOLD", (target - held).abs() <= 0.1, "held {held}: {d}");
        match action {
            "BUY_LONG" => assert!(units >= 0.0 && target > held, "{d}"),
            "SELL_SHORT" => assert!(units <= 0.0 && target < held, "{d}"),
            "CLOSE_LONG" => assert!(units > 0.0 && target < held, "{d}"),
            "CLOSE_SHORT" => assert!(units < 0.0 && target > held, "{d}"),
            _ => {}
        }
        let audit = a.store.decisions("tiny-exposure").await.unwrap();
        let recorded = audit.last().unwrap().risk_checks["target_exposure"].as_f64().unwrap();
        assert!((recorded - target).abs() < 1e-9);
    }
}

#[tokio::test]
async fn an_unseen_instrument_is_decided_through_the_unknown_embedding_and_said_so() {
    let a = api().await;
    let mut unseen = observation();
    unseen["instrument"] = json!("zeta");
    let (s, d) = post_json(&a.app, "/v1/models/tiny-open/1/decide", &unseen).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["unseen_instrument"], true, "{d}");
    let audit = a.store.decisions("tiny-open").await.unwrap();
    assert_eq!(audit.last().unwrap().risk_checks["unseen_instrument"], true);
    let (_, d) = post_json(&a.app, "/v1/models/tiny-open/1/decide", &observation()).await;
    assert_eq!(
        d["unseen_instrument"], false,
        "a known instrument uses its own row: {d}"
    );
    // A model without the row refuses, saying how to get one.
    let (s, p) = post_json(&a.app, "/v1/models/tiny/1/decide", &unseen).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("ppo.instrument_dropout"), "{p}");
}

#[tokio::test]
async fn datasets_list_what_data_prepare_wrote_and_a_damaged_manifest_is_named() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.data.raw_dir = data.path().join("raw");
    settings.data.final_dir = data.path().join("final");
    settings.data.cache_dir = data.path().join("cache");
    let a = api_with(settings.clone()).await;
    let (s, list) = get_json(&a.app, "/v1/datasets").await;
    assert_eq!((s, list), (StatusCode::OK, json!([])), "nothing prepared yet");

    std::fs::create_dir_all(&settings.data.raw_dir).unwrap();
    let market = tradelab_data::synthetic::generate(&tradelab_data::synthetic::SyntheticConfig {
        bars: 400,
        ..Default::default()
    });
    let csv = tradelab_data::prepare::bars_csv(&market.series, &[], |_, _, _| {});
    std::fs::write(settings.data.raw_dir.join("acme.csv"), csv).unwrap();
    let prepared = tradelab_data::prepare::prepare(&settings.data, &settings.features).unwrap();
    let (s, list) = get_json(&a.app, "/v1/datasets").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let entry = &prepared.prepared[0];
    assert_eq!(list[0]["instrument"], "acme");
    assert_eq!(list[0]["rows"], entry.rows);
    assert_eq!(list[0]["source_sha256"], entry.source_sha256.as_str());
    assert_eq!(list[0]["features"].as_array().unwrap().len(), entry.features.len());

    std::fs::write(settings.data.final_dir.join("manifest.json"), "{ not json").unwrap();
    let (s, problem) = get_json(&a.app, "/v1/datasets").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        problem["detail"],
        "reading the data manifest failed on the server; the server's log has the cause"
    );
}

#[tokio::test]
async fn read_routes_answer_from_the_store() {
    let a = api().await;
    let (s, health) = get_json(&a.app, "/v1/health").await;
    assert_eq!((s, health["database"].as_str()), (StatusCode::OK, Some("sqlite")));
    let (_, runs) = get_json(&a.app, "/v1/runs?limit=5").await;
    let id = runs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(runs[0]["params"]["a"], 1);
    let (_, metrics) = get_json(&a.app, &format!("/v1/runs/{id}/metrics")).await;
    assert_eq!(metrics["loss"][1]["value"], 0.25);
    let (s, _) = get_json(&a.app, "/v1/runs/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get_json(&a.app, "/v1/runs?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (_, models) = get_json(&a.app, "/v1/models").await;
    assert_eq!(
        (models[0]["name"].as_str(), models[0]["stage"].as_str()),
        (Some("tiny"), Some("production"))
    );
    for version in ["1", "latest", "production"] {
        let (s, m) = get_json(&a.app, &format!("/v1/models/tiny/{version}")).await;
        assert_eq!((s, m["version"].as_i64()), (StatusCode::OK, Some(1)), "{version}");
    }
    let (s, _) = get_json(&a.app, "/v1/models/tiny/staging").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get_json(&a.app, "/v1/models/tiny/live").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, ct, weights) = call(&a.app, "GET", "/v1/models/tiny/1/download", None).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/octet-stream"));
    assert_eq!(
        tradelab_agents::checkpoint::sha256_hex(&weights),
        models[0]["checksum"].as_str().unwrap()
    );

    let (_, list) = get_json(&a.app, "/v1/backtests").await;
    let bt = list[0]["id"].as_str().unwrap();
    assert_eq!(
        get_json(&a.app, &format!("/v1/backtests/{bt}")).await.1,
        json!({"sharpe": 1})
    );
    assert_eq!(
        get_json(&a.app, &format!("/v1/backtests/{bt}/trades")).await.1,
        json!([{"pnl": 2}])
    );
    assert_eq!(
        get_json(&a.app, &format!("/v1/backtests/{bt}/equity")).await.1,
        json!([1, 2])
    );
    // Filtered by exact strategy name (a model's evaluations).
    let (_, only) = get_json(&a.app, "/v1/backtests?strategy=momentum&limit=1").await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["id"].as_str(), Some(bt));
    let (_, none) = get_json(&a.app, "/v1/backtests?strategy=model%20tiny%401").await;
    assert_eq!(none, json!([]));
    let (s, _) = get_json(&a.app, "/v1/backtests?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, doc) = get_json(&a.app, "/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/v1/health",
        "/v1/models/{name}/{version}/decide",
        "/v1/backtests/{id}/equity",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let (s, ct, _) = call(&a.app, "GET", "/docs/", None).await;
    assert_eq!((s, ct.starts_with("text/html")), (StatusCode::OK, true));
    drop(a.dir);
}

#[tokio::test]
async fn a_decision_is_risk_checked_audited_and_counted() {
    let a = api().await;
    let (s, d) = post_json(&a.app, "/v1/models/tiny/production/decide", &observation()).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let probs = d["probabilities"].as_object().unwrap();
    assert_eq!(probs.len(), 5);
    // Flat: the close actions are masked.
    assert_eq!(
        (probs["CLOSE_LONG"].as_f64(), probs["CLOSE_SHORT"].as_f64()),
        (Some(0.0), Some(0.0))
    );
    let total: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "{d}");
    assert_eq!(d["risk_checks"][0]["rule"], "drawdown_circuit_breaker");
    if d["action"] == "BUY_LONG" || d["action"] == "SELL_SHORT" {
        // Never more than the 25% single-asset cap: 25% of 100000 at 50.
        assert!(d["units"].as_f64().unwrap() <= 500.0, "{d}");
    }
    // The same observation gives the same decision (greedy, deterministic).
    let (_, again) = post_json(&a.app, "/v1/models/tiny/1/decide", &observation()).await;
    assert_eq!(
        (again["action"].clone(), again["inputs_sha256"].clone()),
        (d["action"].clone(), d["inputs_sha256"].clone())
    );

    let audit = a.store.decisions("tiny").await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].id, d["decision_id"].as_str().unwrap());
    assert_eq!(audit[0].inputs_sha256, d["inputs_sha256"].as_str().unwrap());
    assert_eq!(audit[0].action, d["action"].as_str().unwrap());
    assert_eq!(audit[0].risk_checks["checks"][0]["rule"], "drawdown_circuit_breaker");

    // Concurrent requests are group-committed: every one audited, once.
    let many: Vec<_> = (0..40)
        .map(|_| {
            let app = a.app.clone();
            tokio::spawn(async move { post_json(&app, "/v1/models/tiny/1/decide", &observation()).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for m in many {
        let (s, d) = m.await.unwrap();
        assert_eq!(s, StatusCode::OK);
        ids.insert(d["decision_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 40);
    let audit = a.store.decisions("tiny").await.unwrap();
    assert_eq!(audit.len(), 42);
    assert!(audit[2..].iter().all(|r| ids.contains(&r.id)));

    // In a deep drawdown the breaker blocks every entry.
    let mut deep = observation();
    deep["portfolio"]["cash"] = json!(50000.0);
    deep["portfolio"]["peak_equity"] = json!(100000.0);
    let (_, d) = post_json(&a.app, "/v1/models/tiny/1/decide", &deep).await;
    assert_eq!(
        (d["action"].as_str(), d["risk_checks"][0]["passed"].as_bool()),
        (Some("HOLD"), Some(false))
    );

    let (_, _, text) = call(&a.app, "GET", "/metrics", None).await;
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("tradelab_decision_duration_seconds_count 43"), "{text}");
    assert!(
        text.contains("route=\"/v1/models/{name}/{version}/decide\",status=\"200\""),
        "per-route histograms: {text}"
    );
}

#[tokio::test]
async fn bad_requests_get_a_problem_document() {
    let a = api().await;
    let decide = "/v1/models/tiny/1/decide";
    let problem = |expected: StatusCode, (s, ct, body): (StatusCode, String, Vec<u8>), needle: &str| {
        assert_eq!(s, expected, "{}", String::from_utf8_lossy(&body));
        assert_eq!(ct, "application/problem+json");
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["status"].as_u64(), Some(expected.as_u16() as u64));
        let detail = doc["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "`{needle}` not in `{detail}`");
    };
    let json_body = |v: &Value| Some(("application/json", v.to_string().into_bytes()));
    problem(
        StatusCode::BAD_REQUEST,
        call(
            &a.app,
            "POST",
            decide,
            Some(("application/json", b"{\"window\": [".to_vec())),
        )
        .await,
        "JSON",
    );
    problem(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        call(
            &a.app,
            "POST",
            decide,
            Some(("text/plain", observation().to_string().into_bytes())),
        )
        .await,
        "Content-Type",
    );
    let mut wrong_type = observation();
    wrong_type["window"] = json!("many");
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        call(&a.app, "POST", decide, json_body(&wrong_type)).await,
        "window",
    );
    let mut short = observation();
    short["window"] = json!(vec![vec![0.1; FEATURES]; WINDOW - 1]);
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        call(&a.app, "POST", decide, json_body(&short)).await,
        "rows",
    );
    let mut unknown = observation();
    unknown["instrument"] = json!("zzz");
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        call(&a.app, "POST", decide, json_body(&unknown)).await,
        "zzz",
    );
    // Issue 19 finding 6: finite figures whose products overflow, and a
    // window so large the model's output is not finite: 422, not a 500 or
    // a failed audit batch.
    let mut overflow = observation();
    overflow["portfolio"]["position_units"] = json!(1e300);
    overflow["portfolio"]["avg_price"] = json!(1.0);
    overflow["portfolio"]["price"] = json!(1e300);
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        call(&a.app, "POST", decide, json_body(&overflow)).await,
        "not a finite number",
    );
    let mut extreme = observation();
    extreme["window"] = json!(vec![vec![3.0e38f32; FEATURES]; WINDOW]);
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        call(&a.app, "POST", decide, json_body(&extreme)).await,
        "model's output",
    );
    let mut extra = observation();
    extra["leverage"] = json!(10);
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        call(&a.app, "POST", decide, json_body(&extra)).await,
        "leverage",
    );
    problem(
        StatusCode::NOT_FOUND,
        call(&a.app, "POST", "/v1/models/nosuch/1/decide", json_body(&observation())).await,
        "nosuch",
    );
    let huge = vec![b' '; super::MAX_BODY_BYTES + 10];
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        call(&a.app, "POST", decide, Some(("application/json", huge))).await,
        "larger",
    );
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        call(&a.app, "DELETE", "/v1/runs", None).await,
        "method",
    );
    // Under the API's prefix; any other path is a page of the dashboard.
    problem(
        StatusCode::NOT_FOUND,
        call(&a.app, "GET", "/v1/anything", None).await,
        "route",
    );
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        call(
            &a.app,
            "POST",
            "/v1/models/tiny/1/stage",
            json_body(&json!({"stage": "live"})),
        )
        .await,
        "production",
    );
    // A registered file changed on disk is refused, not served.
    let (_, m) = get_json(&a.app, "/v1/models/tiny/1").await;
    let weights = std::path::Path::new(m["location"].as_str().unwrap()).join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    problem(
        StatusCode::CONFLICT,
        call(&a.app, "GET", "/v1/models/tiny/1/download", None).await,
        "changed",
    );
}

#[tokio::test]
async fn stage_changes_move_production() {
    let a = api().await;
    let (s, m) = post_json(&a.app, "/v1/models/tiny/1/stage", &json!({"stage": "archived"})).await;
    assert_eq!((s, m["stage"].as_str()), (StatusCode::OK, Some("archived")));
    let (s, _) = get_json(&a.app, "/v1/models/tiny/production").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, m) = post_json(&a.app, "/v1/models/tiny/1/stage", &json!({"stage": "production"})).await;
    assert_eq!((s, m["stage"].as_str()), (StatusCode::OK, Some("production")));
}

#[tokio::test]
async fn jobs_are_queued_checked_followed_and_cancelled() {
    let a = api().await;
    let (s, job) = post_json(
        &a.app,
        "/v1/backtests",
        &json!({"strategy": "momentum", "symbols": ["acme"]}),
    )
    .await;
    assert_eq!(
        (s, job["status"].as_str(), job["kind"].as_str()),
        (StatusCode::ACCEPTED, Some("queued"), Some("backtest"))
    );
    let id = job["id"].as_str().unwrap().to_string();
    let (_, listed) = get_json(&a.app, "/v1/jobs").await;
    assert_eq!(listed[0]["id"].as_str(), Some(id.as_str()));
    let (s, job) = post_json(&a.app, &format!("/v1/jobs/{id}/cancel"), &json!({})).await;
    assert_eq!((s, job["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    // The event stream of an ended job is one `end` event, then it closes.
    let (s, ct, body) = call(&a.app, "GET", &format!("/v1/jobs/{id}/events"), None).await;
    let body = String::from_utf8(body).unwrap();
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/event-stream"));
    assert!(
        body.starts_with("event: end\ndata: {") && body.contains("\"cancelled\""),
        "{body}"
    );
    assert_eq!(get_json(&a.app, "/v1/jobs/none/events").await.0, StatusCode::NOT_FOUND);

    let (s, job) = post_json(
        &a.app,
        "/v1/training-jobs",
        &json!({"agent": "ppo-mlp", "steps": 128, "symbols": ["acme"]}),
    )
    .await;
    assert_eq!((s, job["kind"].as_str()), (StatusCode::ACCEPTED, Some("train")));
    let (s, job) = post_json(
        &a.app,
        "/v1/optimizations",
        &json!({"strategy": "sma_crossover", "symbols": ["acme"], "params": ["fast=5:20:5", "slow=30:60:10"], "constraints": ["fast < slow"]}),
    )
    .await;
    assert_eq!(
        (s, job["kind"].as_str()),
        (StatusCode::ACCEPTED, Some("optimize")),
        "{job}"
    );
    let (s, job) = post_json(
        &a.app,
        "/v1/evaluations",
        &json!({"model": "logreg@production", "split": "test", "folds": 2}),
    )
    .await;
    assert_eq!(
        (s, job["kind"].as_str()),
        (StatusCode::ACCEPTED, Some("evaluate")),
        "{job}"
    );
    assert_eq!(job["payload"]["model"], "logreg@production");
    // What a client may not ask for is refused before anything is queued.
    for (route, body, needle) in [
        ("/v1/training-jobs", json!({"agent": "dqn"}), "unknown agent"),
        (
            "/v1/training-jobs",
            json!({"agent": "hrm", "symbols": ["../../etc/passwd"]}),
            "plain name",
        ),
        (
            "/v1/training-jobs",
            json!({"agent": "hrm", "settings": ["store.url=sqlite:///tmp/x"]}),
            "fixed by the server",
        ),
        ("/v1/training-jobs", json!({"agent": "hrm", "steps": -5}), "steps"),
        (
            "/v1/backtests",
            json!({"strategy": "martingale", "symbols": ["acme"]}),
            "unknown strategy",
        ),
        (
            "/v1/backtests",
            json!({"strategy": "momentum", "symbols": []}),
            "at least one symbol",
        ),
        (
            "/v1/optimizations",
            json!({"strategy": "sma_crossover", "symbols": ["acme"], "params": ["fast=5:50"], "metric": "alpha"}),
            "unknown metric",
        ),
        (
            "/v1/optimizations",
            json!({"strategy": "sma_crossover", "symbols": ["acme"], "params": ["--config=/etc/passwd"]}),
            "not a plain expression",
        ),
        ("/v1/evaluations", json!({"model": "../models/logreg"}), "plain name"),
        (
            "/v1/evaluations",
            json!({"model": "logreg", "split": "train"}),
            "unknown split",
        ),
        (
            "/v1/evaluations",
            json!({"model": "logreg", "trials": 8}),
            "needs trial_sharpe_std",
        ),
    ] {
        let (s, p) = post_json(&a.app, route, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(needle), "{body}: {p}");
    }
    assert_eq!(a.store.recent_jobs(10).await.unwrap().len(), 4);
    let (_, _, text) = call(&a.app, "GET", "/metrics", None).await;
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("tradelab_jobs{status=\"queued\"} 3") && text.contains("tradelab_jobs{status=\"cancelled\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn garbage_collection_over_the_api_keeps_records_and_shared_files() {
    let a = api().await;
    let (_, m) = get_json(&a.app, "/v1/models/tiny/1").await;
    // Versions 2 and 3: the same weights, so the same content-addressed folder.
    for _ in 0..2 {
        a.store
            .register_model(&NewModel {
                name: "tiny",
                checksum: m["checksum"].as_str().unwrap(),
                framework: "candle",
                metadata: &m["metadata"],
                location: m["location"].as_str().unwrap(),
                run_id: None,
            })
            .await
            .unwrap();
    }
    let (s, plan) = post_json(&a.app, "/v1/models/gc", &json!({"keep_last": 1, "dry_run": true})).await;
    assert_eq!(s, StatusCode::OK, "{plan}");
    assert_eq!(plan["pruned"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(
        get_json(&a.app, "/v1/models/tiny/2").await.1["location"],
        m["location"],
        "a dry run changes nothing"
    );
    let (_, done) = post_json(&a.app, "/v1/models/gc", &json!({"keep_last": 1})).await;
    // Kept: 3 (newest) and 1 (production); 2 is pruned, its folder kept for the others.
    assert_eq!(
        (
            done["pruned"][0]["version"].as_i64(),
            done["pruned"][0]["folder_kept"].as_bool()
        ),
        (Some(2), Some(true))
    );
    assert_eq!(get_json(&a.app, "/v1/models/tiny/2").await.1["location"], "");
    assert!(std::path::Path::new(m["location"].as_str().unwrap())
        .join("model.safetensors")
        .is_file());
    let (s, ct, _) = call(&a.app, "GET", "/v1/models/tiny/2/download", None).await;
    assert_eq!((s, ct.as_str()), (StatusCode::CONFLICT, "application/problem+json"));
    assert_eq!(
        post_json(&a.app, "/v1/models/gc", &json!({"keep_last": 0})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn a_request_past_the_timeout_is_answered_503() {
    let a = api().await;
    let state = Arc::new(AppState::new(
        a.store.clone(),
        tradelab_app::jobs::queue::Queue::open(&format!("sqlite://{}", a.dir.path().join("api.db").display()))
            .await
            .unwrap(),
        Settings::default(),
        test_auth(&a.store, false).await,
    ));
    // A microsecond: the first decision loads the model from disk, which
    // takes far longer.
    let app = super::router(state, Duration::from_micros(1));
    let (s, ct, body) = call(
        &app,
        "POST",
        "/v1/models/tiny/1/decide",
        Some(("application/json", observation().to_string().into_bytes())),
    )
    .await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "application/problem+json")
    );
    assert!(String::from_utf8_lossy(&body).contains("longer than"));
}

/// Anything a client can send: a JSON-ish body (random text, random JSON,
/// or a valid request with one field replaced by a random value) to a
/// random route. The server answers, and never with a 5xx.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_map(|x| serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    let fields = ["instrument", "timeframe", "window", "portfolio", "stage"];
    prop_oneof![
        ".{0,64}".prop_map(String::into_bytes),
        any_value().prop_map(|v| v.to_string().into_bytes()),
        (0..fields.len(), any_value()).prop_map(move |(i, v)| {
            let mut body = observation();
            body[fields[i]] = v;
            body.to_string().into_bytes()
        }),
        (any_value(), any_value()).prop_map(|(cash, price)| {
            let mut body = observation();
            body["portfolio"]["cash"] = cash;
            body["portfolio"]["price"] = price;
            body.to_string().into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: tradelab_testkit::fuzz_cases(192),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    /// The decision request and the other API bodies: fuzzed like every
    /// parser of outside input (`TRADELAB_FUZZ_CASES`).
    #[test]
    fn fuzz_no_api_input_makes_the_server_fail(
        route in prop::sample::select(vec![
            "/v1/models/tiny/1/decide",
            "/v1/models/tiny/production/decide",
            "/v1/models/tiny/1/stage",
            "/v1/runs",
            "/v1/models/%00/1",
            "/v1/runs?limit=-1",
            "/v1/backtests/x/trades",
            "/v1/jobs/x/cancel",
            "/v1/training-jobs",
            "/v1/backtests",
        ]),
        method in prop::sample::select(vec!["GET", "POST", "PUT"]),
        body in any_body(),
    ) {
        thread_local! {
            static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            static API: std::cell::OnceCell<Api> = const { std::cell::OnceCell::new() };
        }
        let (status, ct) = RUNTIME.with(|rt| {
            API.with(|cell| {
                let a = cell.get_or_init(|| rt.block_on(api()));
                rt.block_on(async {
                    let (s, ct, _) = call(&a.app, method, route, Some(("application/json", body.clone()))).await;
                    (s, ct)
                })
            })
        });
        prop_assert!(!status.is_server_error(), "{method} {route} -> {status}");
        if !status.is_success() {
            prop_assert_eq!(ct, "application/problem+json");
        }
    }
}

/// Issue 22: a session's decisions, as the audit trail holds them, listed
/// with filters and pages and read one by one; other events are not
/// decisions, and bad filters are 400s naming the problem.
#[tokio::test]
async fn decisions_are_listed_filtered_paged_and_shown_from_the_audit_trail() {
    use tradelab_bus::event::{DecisionEvent, DecisionInputs, EventBody, FillEvent};
    use tradelab_bus::{ChainHead, Event};
    let api = api().await;
    let mut head = ChainHead::genesis();
    let mut rows = Vec::new();
    for seq in 1..=12u64 {
        let body = if seq % 4 == 0 {
            EventBody::Fill(FillEvent {
                instrument: "ORCL".into(),
                action: "BUY_LONG".into(),
                qty: 1.0,
                side: "buy".into(),
                price: 10.0,
                fee: 25.0,
            })
        } else {
            EventBody::Decision(DecisionEvent {
                instrument: if seq % 2 == 0 { "ORCL" } else { "NVDA" }.into(),
                model: "tiny".into(),
                action: if seq % 3 == 0 { "HOLD" } else { "BUY_LONG" }.into(),
                quantity: 0.5,
                probabilities: [0.6, 0.1, 0.0, 0.0, 0.3],
                value: 0.25,
                inputs: DecisionInputs::new(&[0.5; 8], 4, [0.0; 3], [true; 5], [0, 0], 10.0, 0.0, 1e5, 1e5),
            })
        };
        let e = Event::seal(
            "sess",
            seq,
            1_700_000_000_000 + seq as i64 * 60_000,
            Some(seq as i64),
            body,
            &head.hash,
        );
        head = ChainHead::of(&e);
        rows.push(tradelab_app::audit::event_row(&e));
    }
    api.store.record_audit_events(&rows).await.unwrap();

    let (status, page) = get_json(&api.app, "/v1/decisions?session=sess&limit=4").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["sess:11", "sess:10", "sess:9", "sess:7"],
        "newest first, fills left out"
    );
    let next = page["next"].as_str().unwrap().to_string();
    let (_, page2) = get_json(&api.app, &format!("/v1/decisions?session=sess&limit=4&after={next}")).await;
    let ids2: Vec<&str> = page2["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids2, ["sess:6", "sess:5", "sess:3", "sess:2"]);
    assert_eq!(page2["decisions"][0]["inputs_sha256"].as_str().unwrap().len(), 64);

    let (_, held) = get_json(&api.app, "/v1/decisions?action=HOLD&instrument=NVDA").await;
    let ids: Vec<&str> = held["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sess:9", "sess:3"]);
    // 2023-11-14T22:13:20Z is seq 0's time: from seq 5 to before seq 7.
    let (_, window) = get_json(
        &api.app,
        "/v1/decisions?from=2023-11-14T22:18:20&to=2023-11-14T22:20:20&model=tiny",
    )
    .await;
    let ids: Vec<&str> = window["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sess:6", "sess:5"], "{window}");

    let (status, one) = get_json(&api.app, "/v1/decisions/sess:5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], "sess:5");
    assert_eq!(one["event"]["kind"], "decision");
    assert_eq!(one["event"]["data"]["inputs"]["bars"], 4);
    assert_eq!(one["prev_hash"], rows[3].hash.as_str());
    assert_eq!(one["explanation"], Value::Null, "not explained yet");
    // A forensics worker's explanation is served with its decision.
    let doc = serde_json::json!({"schema": 1, "action": "HOLD", "text": "Held (probability 0.90)."});
    let explanation = |seq: i64, doc: &Value| tradelab_store::explanations::ExplanationRow {
        session_id: "sess".into(),
        seq,
        at_ms: rows[4].at_ms,
        model: "tiny".into(),
        weights_sha256: "ab".repeat(32),
        explanation: doc.to_string(),
        summary: "Held.".into(),
        explained_ms: 1,
    };
    api.store.record_explanations(&[explanation(5, &doc)]).await.unwrap();
    let (_, one) = get_json(&api.app, "/v1/decisions/sess:5").await;
    assert_eq!(one["explanation"]["text"], "Held (probability 0.90).");
    assert_eq!(one["explanation"]["weights_sha256"], "ab".repeat(32));
    // One from a newer tradelab is not misread.
    let newer = serde_json::json!({"schema": 99});
    api.store.record_explanations(&[explanation(6, &newer)]).await.unwrap();
    let (status, _) = get_json(&api.app, "/v1/decisions/sess:6").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    for (uri, status, needle) in [
        ("/v1/decisions/sess:4", StatusCode::NOT_FOUND, "a fill, not a decision"),
        ("/v1/decisions/sess:99", StatusCode::NOT_FOUND, "no event 99"),
        ("/v1/decisions/sess", StatusCode::BAD_REQUEST, "SESSION:SEQ"),
        ("/v1/decisions?limit=0", StatusCode::BAD_REQUEST, "limit=0"),
        (
            "/v1/decisions?from=yesterday",
            StatusCode::BAD_REQUEST,
            "from=yesterday",
        ),
        ("/v1/decisions?after=xyz", StatusCode::BAD_REQUEST, "not a page cursor"),
        ("/v1/decisions?colour=red", StatusCode::BAD_REQUEST, "colour"),
    ] {
        let (got, body) = get_json(&api.app, uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(needle),
            "{uri}: {body}"
        );
    }
}

/// The bundled data, as `data.raw_dir` names it for the bars route.
fn bundled_data_settings() -> Settings {
    let mut s = Settings::default();
    s.data.raw_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/raw");
    s
}

/// The bundled `orcl` daily file as the routes load it under `settings`.
fn bundled_orcl(settings: &Settings) -> tradelab_core::BarSeries {
    tradelab_data::load_symbol(
        &settings.data.raw_dir,
        "orcl",
        &tradelab_data::LoadOptions::for_file(&settings.data, std::path::Path::new("orcl-1995-2014.txt")),
    )
    .unwrap()
    .0
}

#[tokio::test]
async fn price_bars_come_back_as_at_most_the_candles_asked_for_with_every_extreme_kept() {
    let a = api_with(bundled_data_settings()).await;
    let settings = bundled_data_settings();
    let series = bundled_orcl(&settings);
    let (status, all) = get_json(&a.app, "/v1/datasets/orcl/bars?max_points=100").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["instrument"], "orcl-1995-2014");
    assert_eq!(all["timeframe"], "1d");
    assert_eq!(all["total_bars"].as_u64(), Some(series.len() as u64));
    let per = series.len().div_ceil(100);
    assert_eq!(all["bars_per_point"].as_u64(), Some(per as u64));
    let bars = all["bars"].as_array().unwrap();
    assert_eq!(bars.len(), series.len().div_ceil(per));
    assert!(bars.len() <= 100);
    let top =
        |key: &str, pick: fn(f64, f64) -> f64| bars.iter().map(|b| b[key].as_f64().unwrap()).reduce(pick).unwrap();
    assert_eq!(
        top("high", f64::max),
        series.high.iter().cloned().fold(f64::MIN, f64::max)
    );
    assert_eq!(
        top("low", f64::min),
        series.low.iter().cloned().fold(f64::MAX, f64::min)
    );
    assert_eq!(bars[0]["time_ms"].as_i64(), Some(series.ts[0]));
    assert_eq!(bars.last().unwrap()["close"].as_f64(), series.close.last().copied());

    // A window in time, short enough to come back bar for bar.
    let (from, to) = (series.ts[10], series.ts[19]);
    let (_, window) = get_json(&a.app, &format!("/v1/datasets/orcl/bars?from_ms={from}&to_ms={to}")).await;
    assert_eq!(
        (window["total_bars"].as_u64(), window["bars_per_point"].as_u64()),
        (Some(10), Some(1))
    );
    assert_eq!(window["bars"][0]["open"].as_f64(), Some(series.open[10]));

    for (uri, status, names) in [
        (
            "/v1/datasets/orcl/bars?max_points=0",
            StatusCode::BAD_REQUEST,
            "max_points=0",
        ),
        (
            "/v1/datasets/orcl/bars?max_points=10001",
            StatusCode::BAD_REQUEST,
            "1 to 10000",
        ),
        (
            "/v1/datasets/orcl/bars?from_ms=yesterday",
            StatusCode::BAD_REQUEST,
            "from_ms",
        ),
        ("/v1/datasets/acme/bars", StatusCode::NOT_FOUND, "acme"),
        ("/v1/datasets/2006/bars", StatusCode::BAD_REQUEST, "2006"),
    ] {
        let (s, p) = get_json(&a.app, uri).await;
        assert_eq!(s, status, "{uri}: {p}");
        assert!(p["detail"].as_str().unwrap_or("").contains(names), "{uri}: {p}");
    }
}

#[tokio::test]
async fn the_dashboard_is_served_at_the_root_and_api_paths_stay_problems() {
    let a = api().await;
    let (status, content_type, body) = call(&a.app, "GET", "/", None).await;
    let page = String::from_utf8_lossy(&body).to_string();
    match super::web::not_built() {
        None => {
            assert_eq!(status, StatusCode::OK);
            assert_eq!(content_type, "text/html; charset=utf-8");
            assert!(page.contains("<div id=\"root\">"), "{page}");
            // A page of the app is the same document, routed in the browser.
            let (s, _, deep) = call(&a.app, "GET", "/runs/some-run", None).await;
            assert_eq!((s, deep), (StatusCode::OK, body.clone()));
            let script = page
                .split("src=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string();
            let (s, js_type, _) = call(&a.app, "GET", &script, None).await;
            assert_eq!(
                (s, js_type.as_str()),
                (StatusCode::OK, "text/javascript; charset=utf-8"),
                "{script}"
            );
        }
        Some(why) => {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(page.contains(why) && page.contains("Node.js"), "{page}");
        }
    }
    for (method, uri) in [
        ("GET", "/v1/nope"),
        ("GET", "/oauth/nope"),
        ("POST", "/runs"),
        ("GET", "/assets/missing.js"),
    ] {
        let (s, content_type, _) = call(&a.app, method, uri, None).await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::SERVICE_UNAVAILABLE && uri.starts_with("/assets"),
            "{method} {uri}: {s}"
        );
        if s == StatusCode::NOT_FOUND {
            assert_eq!(content_type, "application/problem+json", "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn without_auth_the_caller_is_an_anonymous_administrator() {
    let a = api().await;
    let (status, me) = get_json(&a.app, "/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("anonymous"), Some("admin"))
    );
    assert_eq!(me["scopes"].as_array().unwrap().len(), tradelab_auth::scope::ALL.len());
}

/// Operation ids name the typed client's functions: two alike would make
/// one route's types answer for another's (it happened: the decisions and
/// the trading sessions listings were both `list`).
#[test]
fn every_operation_has_its_own_id() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no id"));
            if let Some(other) = seen.insert(id.to_string(), format!("{method} {path}")) {
                panic!("`{id}` names both {other} and {method} {path}");
            }
        }
    }
    assert!(seen.len() >= 30, "{}", seen.len());
}

#[tokio::test]
async fn validation_findings_name_each_dropped_row_and_a_corrupt_file_is_a_422() {
    let raw = tempfile::tempdir().unwrap();
    std::fs::write(
        raw.path().join("acme.csv"),
        "Date,Open,High,Low,Close,Volume\n2020-01-02,10,11,9,10.5,100\n2020-01-03,10,11,9,not-a-price,100\n2020-01-06,10,11,9,10.5,100\n2020-01-07,10,11,9,10.6,100\n",
    )
    .unwrap();
    std::fs::write(raw.path().join("junk.csv"), [0xffu8, 0xfe, 0x00, 0x13, 0x37].repeat(50)).unwrap();
    let mut settings = Settings::default();
    settings.data.raw_dir = raw.path().to_path_buf();
    let a = api_with(settings).await;
    let (status, v) = get_json(&a.app, "/v1/datasets/acme/validation").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["rows_read"].as_u64(), v["rows_loaded"].as_u64()),
        (Some(4), Some(3)),
        "{v}"
    );
    assert_eq!(
        (v["dropped"].as_u64(), v["repaired"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(v["findings"][0]["line"], 3, "{v}");
    assert_eq!(v["findings"][0]["action"], "dropped", "{v}");
    assert!(
        v["findings"][0]["message"].as_str().unwrap().contains("not-a-price"),
        "{v}"
    );
    assert!(
        v["layout"]
            .as_str()
            .unwrap()
            .starts_with("date,open,high,low,close,volume"),
        "{v}"
    );
    // A file written since it was loaded (and cached) is read again.
    std::fs::write(
        raw.path().join("acme.csv"),
        "Date,Open,High,Low,Close,Volume\n2020-01-02,10,11,9,10.5,100\n2020-01-03,10,11,9,10.7,100\n",
    )
    .unwrap();
    let (_, v) = get_json(&a.app, "/v1/datasets/acme/validation").await;
    assert_eq!(
        (v["rows_loaded"].as_u64(), v["dropped"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    let (_, bars) = get_json(&a.app, "/v1/datasets/acme/bars").await;
    assert_eq!(bars["bars"][1]["close"].as_f64(), Some(10.7), "{bars}");
    let (status, p) = get_json(&a.app, "/v1/datasets/junk/validation").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("junk"), "{p}");
    let (status, _) = get_json(&a.app, "/v1/datasets/nothing/validation").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn regime_probabilities_line_up_with_the_candles_and_match_the_command_line_fit() {
    let a = api_with(bundled_data_settings()).await;
    let settings = bundled_data_settings();
    let series = bundled_orcl(&settings);
    let (status, r) = get_json(&a.app, "/v1/datasets/orcl/regimes?max_points=100").await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let (_, bars) = get_json(&a.app, "/v1/datasets/orcl/bars?max_points=100").await;

    // The same fit as `tradelab regimes` (the app's use case), on the
    // training split only.
    let fitted =
        tradelab_app::regimes::MarketRegimes::fit(&series.close, settings.env.train_fraction, &settings.regime)
            .unwrap();
    let k = fitted.state_count();
    assert_eq!(r["training_bars"].as_u64(), Some(fitted.training_bars as u64));
    assert_eq!(r["training_end_ms"].as_i64(), Some(series.ts[fitted.training_bars]));
    assert_eq!(
        r["fitted_from"], 0,
        "a short file is fitted on its whole training split"
    );
    assert_eq!(r["fitted_from_ms"].as_i64(), Some(series.ts[0]));
    assert_eq!(r["states"].as_array().unwrap().len(), k, "{r}");
    assert_eq!(r["bic"].as_array().unwrap().len(), fitted.detector.bic.len());

    // One point per candle, at the candle's time, each a distribution.
    let points = r["points"].as_array().unwrap();
    let candles = bars["bars"].as_array().unwrap();
    assert_eq!(points.len(), candles.len());
    assert_eq!(r["bars_per_point"], bars["bars_per_point"]);
    for (p, c) in points.iter().zip(candles) {
        assert_eq!(p["time_ms"], c["time_ms"]);
        let probs: Vec<f64> = p["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(probs.len(), k);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{probs:?}");
    }
    // Bar for bar in a short window: the filtered probabilities themselves.
    let (from, to) = (series.ts[3000], series.ts[3004]);
    let (_, window) = get_json(&a.app, &format!("/v1/datasets/orcl/regimes?from_ms={from}&to_ms={to}")).await;
    assert_eq!(window["points"].as_array().unwrap().len(), 5, "{window}");
    let p0: Vec<f64> = window["points"][0]["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(p0, fitted.at(3000));

    for (uri, status, names) in [
        (
            "/v1/datasets/orcl/regimes?max_points=0",
            StatusCode::BAD_REQUEST,
            "max_points=0",
        ),
        ("/v1/datasets/acme/regimes", StatusCode::NOT_FOUND, "acme"),
    ] {
        let (s, p) = get_json(&a.app, uri).await;
        assert_eq!(s, status, "{uri}: {p}");
        assert!(p["detail"].as_str().unwrap_or("").contains(names), "{uri}: {p}");
    }
}

#[tokio::test]
async fn a_file_too_short_for_a_regime_model_is_a_422_that_says_why() {
    let raw = tempfile::tempdir().unwrap();
    let mut csv = String::from("Date,Open,High,Low,Close,Volume\n");
    for d in 1..=28 {
        csv.push_str(&format!("2020-02-{d:02},10,11,9,{}.5,100\n", 10 + d % 3));
    }
    std::fs::write(raw.path().join("tiny.csv"), csv).unwrap();
    let mut settings = Settings::default();
    settings.data.raw_dir = raw.path().to_path_buf();
    let a = api_with(settings).await;
    let (status, p) = get_json(&a.app, "/v1/datasets/tiny/regimes").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("tiny") && detail.contains("too few observations"),
        "{p}"
    );
}

#[tokio::test]
async fn a_jobs_log_is_served_page_by_page_for_a_reader_to_follow() {
    use tradelab_store::job_logs::stream;
    let a = api().await;
    let (_, job) = post_json(
        &a.app,
        "/v1/backtests",
        &json!({"strategy": "momentum", "symbols": ["acme"]}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    let (s, page) = get_json(&a.app, &format!("/v1/jobs/{id}/logs")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(
        (page["status"].as_str(), page["next_after"].as_i64()),
        (Some("queued"), Some(0))
    );
    assert!(page["lines"].as_array().unwrap().is_empty());
    let lines: Vec<String> = (1..=5).map(|i| format!("line {i}")).collect();
    let rows: Vec<(i64, &str, &str)> = lines.iter().map(|l| (1_000, stream::STDOUT, l.as_str())).collect();
    a.store.append_job_log(&id, 1, &rows).await.unwrap();
    let (_, first) = get_json(&a.app, &format!("/v1/jobs/{id}/logs?limit=2")).await;
    assert_eq!(first["lines"][0]["line"], "line 1", "{first}");
    assert_eq!(first["lines"][1]["stream"], "stdout", "{first}");
    assert_eq!(first["next_after"], 2);
    let (_, rest) = get_json(&a.app, &format!("/v1/jobs/{id}/logs?after=2")).await;
    let rest: Vec<&str> = rest["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["line 3", "line 4", "line 5"]);
    for (uri, status, names) in [
        (
            format!("/v1/jobs/{id}/logs?limit=0"),
            StatusCode::BAD_REQUEST,
            "limit=0",
        ),
        (
            format!("/v1/jobs/{id}/logs?after=-1"),
            StatusCode::BAD_REQUEST,
            "after=-1",
        ),
        ("/v1/jobs/nope/logs".to_string(), StatusCode::NOT_FOUND, "nope"),
    ] {
        let (s, p) = get_json(&a.app, &uri).await;
        assert_eq!(s, status, "{uri}: {p}");
        assert!(p["detail"].as_str().unwrap_or("").contains(names), "{uri}: {p}");
    }
}
