//! The security review made repeatable (issue 19): its attacks replayed
//! against a real `tradelab serve` on 127.0.0.1, with bounded loops, on
//! SQLite always and on PostgreSQL when `TRADELAB_TEST_POSTGRES_URL` is
//! set. Each attack names its finding; each must now fail to do harm while
//! the server keeps answering everyone else. (Attacks that need several
//! client addresses, or a clock, are replayed in the server crate's tests.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::http::{add_user, Browser, Server};
use common::{root, text, TestDatabase, SMALL_MODEL};

const KEK: &str = "5ec0000000000000000000000000000000000000000000000000000000000001";

fn tradelab(dir: &Path, db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradelab"));
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TRADELAB_DATABASE_URL", db)
        .env("TRADELAB_KEY_ENCRYPTION_KEY", KEK)
        .env("TRADELAB_CONFIG_DIR", dir.join("config"))
        .env_remove("TRADELAB_ADMIN_PASSWORD")
        .args(["--set", &format!("data.raw_dir={}", root().join("data/raw").display())])
        .args(["--set", &format!("data.final_dir={}", dir.join("final").display())]);
    c
}

fn run_ok(mut c: Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One HTTP exchange: status and body.
fn call(b: &Browser, method: &str, url: &str, token: Option<&str>, body: Option<(&str, String)>) -> (u16, String) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let answer = match body {
        Some((content_type, text)) => {
            let req = req.header("Content-Type", content_type).body(text).unwrap();
            b.agent.run(req)
        }
        None => b.agent.run(req.body(()).unwrap()),
    };
    match answer {
        Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

fn form(pairs: &[(&str, &str)]) -> (&'static str, String) {
    let text = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&");
    ("application/x-www-form-urlencoded", text)
}

/// A client-credentials token for `client` with `scope`.
fn token(b: &Browser, server: &str, client: &str, secret: &str, scope: &str) -> String {
    let (status, body) = call(
        b,
        "POST",
        &format!("{server}/oauth/token"),
        None,
        Some(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("scope", scope),
        ])),
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn add_client(dir: &Path, db: &str, id: &str, extra: &[&str]) -> String {
    let out = run_ok({
        let mut c = tradelab(dir, db);
        c.args([
            "auth",
            "client",
            "add",
            id,
            "--name",
            id,
            "--grant",
            "client_credentials",
        ])
        .args(extra);
        c
    });
    out.split("client secret: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn attack_journey(db: &str, sqlite_file: Option<&Path>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A small registered model to decide with.
    let trained = run_ok({
        let mut c = tradelab(d, db);
        c.args(SMALL_MODEL).args([
            "train",
            "--agent",
            "ppo-mlp",
            "--symbol",
            "nvda-1999-2014",
            "--steps",
            "512",
            "--name",
            "sec",
            "--seed",
            "1",
        ]);
        c
    });
    assert!(trained.contains("registered: sec version 1"), "{trained}");
    add_user(tradelab(d, db), "ada", "researcher", "ada-password-123");
    let svc = add_client(d, db, "svc", &["--scope", "data:read train trade admin"]);
    let api = add_client(d, db, "api", &["--scope", "data:read", "--resource-server"]);

    // Finding 1: the database (and the key-encryption key) are private.
    if let Some(file) = sqlite_file {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }

    let server = Server::start_with(
        {
            let mut c = tradelab(d, db);
            c.args(SMALL_MODEL);
            c
        },
        &[
            "--workers",
            "1",
            "--header-timeout-secs",
            "1",
            "--max-connections",
            "32",
        ],
    );
    let url = server.url.clone();
    let addr = url.trim_start_matches("http://").to_string();
    let b = Browser::new();
    let health = || call(&b, "GET", &format!("{url}/v1/health"), None, None).0;
    assert_eq!(health(), 200);

    // Finding 5: half-open connections are cut at the header timeout, and
    // the server keeps answering while they hang.
    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    assert_eq!(health(), 200, "answering during the slowloris");
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let t0 = Instant::now();
        let _ = s.read_to_end(&mut buf);
        assert!(t0.elapsed() < Duration::from_secs(9), "a slow connection was cut");
    }

    let admin = token(&b, &url, "svc", &svc, "data:read train trade admin");

    // Finding 3: invented HTTP methods add no metric series.
    for i in 0..50 {
        let _ = call(&b, &format!("XATTACK{i}"), &format!("{url}/v1/health"), None, None);
    }
    let (status, metrics) = call(&b, "GET", &format!("{url}/metrics"), Some(&admin), None);
    assert_eq!(status, 200, "{metrics}");
    assert!(!metrics.contains("XATTACK"), "method names became labels");

    // Finding 2: a job may not override a whole settings section.
    for bad in [
        "data={raw_dir: /etc}",
        "store={url: \"sqlite:///tmp/x.db\"}",
        "store.mlflow_url=http://evil",
    ] {
        let (status, body) = call(
            &b,
            "POST",
            &format!("{url}/v1/training-jobs"),
            Some(&admin),
            Some((
                "application/json",
                json!({"agent": "ppo-mlp", "settings": [bad]}).to_string(),
            )),
        );
        assert_eq!(status, 422, "{bad}: {body}");
    }

    // Finding 12: a job's symbol naming a file in the server's folder is
    // looked up among the instruments; the file is never read.
    // (Read as a path, its first field would come back in the error.)
    std::fs::write(
        d.join("secret.csv"),
        "date,open,high,low,close\ntop-secret-value,1,2,0.5,1\n",
    )
    .unwrap();
    let (status, body) = call(
        &b,
        "POST",
        &format!("{url}/v1/training-jobs"),
        Some(&admin),
        Some((
            "application/json",
            json!({"agent": "ppo-mlp", "symbols": ["secret.csv"], "steps": 64}).to_string(),
        )),
    );
    assert_eq!(status, 202, "{body}");
    let job = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let ended = loop {
        let (_, body) = call(&b, "GET", &format!("{url}/v1/jobs/{job}"), Some(&admin), None);
        let j: Value = serde_json::from_str(&body).unwrap();
        if j["status"] == "failed" || j["status"] == "finished" {
            break j;
        }
        assert!(Instant::now() < deadline, "the job did not end: {j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ended["status"], "failed", "{ended}");
    let error = ended["error"].as_str().unwrap_or_default();
    assert!(
        !error.contains("top-secret") && error.contains("no instrument matches"),
        "{error}"
    );

    // Finding 6: a portfolio whose figures overflow is a 422, and it fails
    // no other decision in its audit batch.
    let model_dir = trained
        .split("registered: sec version 1 (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap();
    let meta: Value = serde_json::from_slice(&std::fs::read(d.join(model_dir).join("metadata.json")).unwrap()).unwrap();
    let features = meta["features"].as_array().unwrap().len();
    let window = meta["config"]["window"].as_u64().unwrap() as usize;
    let decision = |portfolio: Value| {
        json!({
            "instrument": "nvda-1999-2014", "timeframe": "1d",
            "window": vec![vec![0.1; features]; window],
            "portfolio": portfolio,
        })
        .to_string()
    };
    let good = decision(json!({"cash": 100000.0, "price": 50.0, "initial_equity": 100000.0}));
    let bad = decision(
        json!({"cash": 1.0, "price": 1e300, "position_units": 1e300, "avg_price": 1.0, "initial_equity": 100000.0}),
    );
    let decide = format!("{url}/v1/models/sec/1/decide");
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let body = if i % 4 == 0 { bad.clone() } else { good.clone() };
                let (decide, admin) = (&decide, &admin);
                scope.spawn(move || {
                    call(
                        &Browser::new(),
                        "POST",
                        decide,
                        Some(admin),
                        Some(("application/json", body)),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (status, body)) in answers.iter().enumerate() {
        let expected = if i % 4 == 0 { 422 } else { 200 };
        assert_eq!(*status, expected, "decision {i}: {body}");
    }

    // Issue 21: raw bars instead of a normalised window. The server builds
    // the observation with the model's features and the normalisation its
    // checkpoint recorded, the environment's own code path.
    assert!(meta["normalisation"][0]["mean"].as_array().unwrap().len() == features);
    let (nvda, _) = tradelab_data::load_file(
        &root().join("data/raw/nvda-1999-2014.txt"),
        &tradelab_data::LoadOptions::default(),
    )
    .unwrap();
    let bars = |n: usize| -> Vec<Value> {
        (nvda.len() - n..nvda.len())
            .map(|i| json!({"open": nvda.open[i], "high": nvda.high[i], "low": nvda.low[i], "close": nvda.close[i], "volume": nvda.volume[i]}))
            .collect()
    };
    let from_bars = |n: usize| {
        let body = json!({
            "instrument": "nvda-1999-2014", "timeframe": "1d", "bars": bars(n),
            "portfolio": {"cash": 100000.0, "price": nvda.close[nvda.len() - 1], "initial_equity": 100000.0},
        });
        call(
            &b,
            "POST",
            &decide,
            Some(&admin),
            Some(("application/json", body.to_string())),
        )
    };
    let (status, body) = from_bars(400);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["probabilities"]["HOLD"].as_f64().is_some(), "{answer}");
    let (status, body) = from_bars(window + 3);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("send at least"), "{body}");

    // Issue 21: a paper session started over the API (scope `trade`),
    // followed to its end, its events streamed.
    let sessions = format!("{url}/v1/trading-sessions");
    let start = |token: &str, body: Value| {
        call(
            &b,
            "POST",
            &sessions,
            Some(token),
            Some(("application/json", body.to_string())),
        )
    };
    let (status, body) = start(&admin, json!({"model": "sec", "symbols": ["nvda-1999-2014"]}));
    assert_eq!(status, 202, "{body}");
    let started: Value = serde_json::from_str(&body).unwrap();
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["account"], "paper:default");
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let (status, body) = call(&b, "GET", &format!("{sessions}/{id}"), Some(&admin), None);
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["status"] == "finished" {
            break v;
        }
        assert!(Instant::now() < deadline, "the session did not finish: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(finished["checkpoint"]["ticks"], 602, "nvda's test split: {finished}");
    assert_eq!(finished["alive"], false);
    let (status, stream) = call(&b, "GET", &format!("{sessions}/{id}/events"), Some(&admin), None);
    assert_eq!(status, 200, "{stream}");
    assert!(
        stream.contains("event: trading") && stream.contains("event: end"),
        "{stream}"
    );
    assert!(stream.contains("\"kind\":\"end\""), "{stream}");
    let (status, listed) = call(&b, "GET", &sessions, Some(&admin), None);
    assert!(status == 200 && listed.contains(&id), "{listed}");
    // Bad requests: a path for a symbol, an unknown model, no `trade` scope.
    let (status, body) = start(&admin, json!({"model": "sec", "symbols": ["../../etc/passwd"]}));
    assert!(status == 422 && body.contains("no paths"), "{status} {body}");
    let (status, body) = start(&admin, json!({"model": "nope", "symbols": ["nvda-1999-2014"]}));
    assert_eq!(status, 404, "{body}");
    // A feed or broker by an unknown name, history asked of a live feed,
    // the real broker on replayed bars: refused by name before anything.
    for (body, needle) in [
        (
            json!({"model": "sec", "symbols": ["nvda-1999-2014"], "feed": "ws"}),
            "feed `ws`",
        ),
        (
            json!({"model": "sec", "symbols": ["nvda-1999-2014"], "broker": "ib"}),
            "broker `ib`",
        ),
        (
            json!({"model": "sec", "symbols": ["nvda-1999-2014"], "feed": "alpaca", "from": "2013-01-02"}),
            "real time",
        ),
        (
            json!({"model": "sec", "symbols": ["nvda-1999-2014"], "broker": "alpaca"}),
            "alpaca feed",
        ),
    ] {
        let (status, answer) = start(&admin, body);
        assert!(status == 422 && answer.contains(needle), "{status} {answer}");
    }
    let (status, body) = call(&b, "POST", &format!("{sessions}/{id}/stop"), Some(&admin), None);
    assert_eq!(status, 200, "stopping an ended session changes nothing: {body}");
    // The scope guard answers before reading the body, and the server then
    // closes that connection: a browser of its own, so `b`'s pool keeps
    // only connections that stay open.
    let other = Browser::new();
    let reader = token(&other, &url, "svc", &svc, "data:read");
    let (status, body) = call(
        &other,
        "POST",
        &sessions,
        Some(&reader),
        Some((
            "application/json",
            json!({"model": "sec", "symbols": ["nvda-1999-2014"]}).to_string(),
        )),
    );
    assert_eq!(status, 403, "{body}");

    // Finding 9: device authorization is rate-limited per address.
    let statuses: Vec<u16> = (0..80)
        .map(|_| {
            call(
                &b,
                "POST",
                &format!("{url}/oauth/device_authorization"),
                None,
                Some(form(&[("client_id", "tradelab-cli"), ("scope", "data:read")])),
            )
            .0
        })
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");

    // Finding 15: only resource servers introspect.
    let introspect = |client: &str, secret: &str| {
        call(
            &b,
            "POST",
            &format!("{url}/oauth/introspect"),
            None,
            Some(form(&[
                ("token", &admin),
                ("client_id", client),
                ("client_secret", secret),
            ])),
        )
    };
    assert_eq!(introspect("svc", &svc).0, 403);
    let (status, body) = introspect("api", &api);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["active"], true);

    // Finding 20: a planted CSRF cookie equal to the form field is refused.
    let mut planted = Browser::new();
    let start = format!(
        "{url}/oauth/authorize?response_type=code&client_id=tradelab-cli&redirect_uri=http://127.0.0.1:1/callback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let page = planted.get(&start);
    let nonce = "n".repeat(43);
    planted.cookies.insert("tradelab_csrf".into(), nonce.clone());
    let mut fields: Vec<(String, String)> = page
        .hidden()
        .into_iter()
        .map(|(k, v)| if k == "csrf" { (k, nonce.clone()) } else { (k, v) })
        .collect();
    fields.extend([
        ("username".into(), "ada".into()),
        ("password".into(), "ada-password-123".into()),
    ]);
    let forged = planted
        .agent
        .post(&format!("{url}/oauth/authorize"))
        .header("Cookie", &format!("tradelab_csrf={nonce}"))
        .send_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);

    // Finding 16: a signed-in session cannot change the password alone.
    let mut ada = Browser::new();
    let page = ada.get(&start);
    let consent = ada.submit(
        &format!("{url}/oauth/authorize"),
        &page,
        &[("username", "ada"), ("password", "ada-password-123")],
    );
    assert!(consent.body.contains("asks to:"), "{}", consent.body);
    let change = ada.submit(
        &format!("{url}/oauth/password"),
        &consent,
        &[
            ("new_password", "an-attackers-password"),
            ("confirm", "an-attackers-password"),
        ],
    );
    assert_eq!(change.status, 401, "{}", change.body);

    // Finding 10: ada's own sign-in still works after someone else's
    // failed guesses at another user.
    let mut guesser = Browser::new();
    for i in 0..6 {
        let page = guesser.get(&start);
        guesser.submit(
            &format!("{url}/oauth/authorize"),
            &page,
            &[("username", "admin"), ("password", &format!("guess-{i}-xxxxxxx"))],
        );
    }
    let mut again = Browser::new();
    let page = again.get(&start);
    let consent = again.submit(
        &format!("{url}/oauth/authorize"),
        &page,
        &[("username", "ada"), ("password", "ada-password-123")],
    );
    assert!(consent.body.contains("asks to:"), "{}", consent.body);

    // The server survived all of it.
    assert_eq!(health(), 200);
    let log = server.output();
    assert!(
        !log.contains(&svc) && !log.contains(&api) && !log.contains(KEK),
        "a secret reached the log"
    );
}

#[test]
fn attacks_fail_against_a_real_server_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sec.db");
    attack_journey(&format!("sqlite://{}", file.display()), Some(&file));
}

#[test]
fn attacks_fail_against_a_real_server_on_postgres() {
    let Ok(base) = std::env::var("TRADELAB_TEST_POSTGRES_URL") else {
        eprintln!("skipped: TRADELAB_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = TestDatabase::create(&base, format!("tradelab_security_{}", std::process::id()));
    attack_journey(&db.url, None);
}
