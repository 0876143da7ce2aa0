//! Background jobs across real processes: `tradelab serve` takes a job
//! over HTTP, a `tradelab worker` runs it, the worker is killed mid-job
//! (SIGKILL: no chance to clean up), and a second worker picks the job up
//! and finishes it. Against SQLite always, and against a fresh PostgreSQL
//! database when TRADELAB_TEST_POSTGRES_URL is set.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

/// The kit's small model, with the update size and evaluation spacing this
/// test's kill timing was tuned on, and a short lease so recovery is quick.
const JOB_SETTINGS: [&str; 6] = [
    "--set",
    "ppo.minibatches=4",
    "--set",
    "ppo.eval_every=4",
    "--set",
    "store.job_lease_secs=2",
];

fn tradelab(cwd: &Path, db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradelab"));
    c.current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("TRADELAB_DATABASE_URL", db)
        // PostgreSQL has no default key-encryption key for signing keys.
        .env("TRADELAB_KEY_ENCRYPTION_KEY", "11".repeat(32))
        .args(common::SMALL_MODEL)
        .args(JOB_SETTINGS);
    c
}

fn ok(o: Output) {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Kills the process when dropped, so a failing test leaves nothing behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a long-running command and waits for its first stdout line.
fn start(mut cmd: Command) -> (Running, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Running(child), line)
}

/// `tradelab serve` without auth or in-process workers on a free port, in
/// `cwd` over `db`; returns the process and its `host:port`.
fn serve(cwd: &Path, db: &str) -> (Running, String) {
    let (server, line) = start({
        let mut c = tradelab(cwd, db);
        c.args(["serve", "--addr", "127.0.0.1:0", "--workers", "0", "--insecure-no-auth"]);
        c
    });
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (server, addr)
}

/// One HTTP/1.1 request on loopback; returns the status and the JSON body.
fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> Option<Value>) -> Value {
    let start = Instant::now();
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn killed_worker_journey(db: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("data/raw")).unwrap();
    ok(tradelab(d, db)
        .args(["data", "synth", "--bars", "1500", "--out", "data/raw/synth.csv"])
        .output()
        .unwrap());
    ok(tradelab(d, db).args(["data", "prepare"]).output().unwrap());

    let (server, addr) = serve(d, db);
    let (status, job) = http(
        &addr,
        "POST",
        "/v1/training-jobs",
        // Long enough (and no early stop) that A is killed mid-job.
        Some(
            &json!({"agent": "ppo-mlp", "symbols": ["synth"], "steps": 400000, "name": "recovered", "seed": 5, "settings": ["ppo.patience=0"]}),
        ),
    );
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();

    // Worker A starts the job; once it reports progress, it is killed.
    let (mut a, _) = start({
        let mut c = tradelab(d, db);
        c.arg("worker");
        c
    });
    let running = wait_for("worker A to report progress", Duration::from_secs(60), || {
        let (_, j) = http(&addr, "GET", &format!("/v1/jobs/{id}"), None);
        (j["status"] == "running" && j["progress"]["step"].as_u64().unwrap_or(0) > 0).then_some(j)
    });
    let worker_a = running["worker"].as_str().unwrap().to_string();
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let step_at_kill = running["progress"]["step"].as_u64().unwrap();

    // Worker B takes the job over once A's lease lapses, and finishes it.
    let (_b, _) = start({
        let mut c = tradelab(d, db);
        c.arg("worker");
        c
    });
    let done = wait_for("worker B to finish the job", Duration::from_secs(240), || {
        let (_, j) = http(&addr, "GET", &format!("/v1/jobs/{id}"), None);
        let s = j["status"].as_str().unwrap_or("").to_string();
        assert!(s != "failed" && s != "cancelled", "{j}");
        (s == "finished").then_some(j)
    });
    assert_eq!(done["attempts"], 2, "run once by A, once by B: {done}");
    assert_ne!(done["worker"].as_str().unwrap(), worker_a, "{done}");
    assert_eq!(done["result"]["model"], "recovered");
    assert_eq!(done["progress"]["phase"], "done", "{done}");
    assert!(step_at_kill < 400000, "A was killed mid-job (step {step_at_kill})");
    let (_, model) = http(&addr, "GET", "/v1/models/recovered/latest", None);
    assert_eq!(model["version"], 1, "registered once: {model}");

    // The job's log holds both attempts: each worker's note of what it
    // ran, the process's output, and how the attempt that finished ended.
    let (_, log) = http(&addr, "GET", &format!("/v1/jobs/{id}/logs?limit=5000"), None);
    let lines = log["lines"].as_array().unwrap();
    let of = |attempt: i64, stream: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|l| l["attempt"] == attempt && l["stream"] == stream)
            .map(|l| l["line"].as_str().unwrap())
            .collect()
    };
    assert!(
        of(1, "worker")[0].contains(&worker_a) && of(1, "worker")[0].contains("train"),
        "{log}"
    );
    assert!(of(2, "worker")[0].starts_with("attempt 2 on worker"), "{log}");
    assert!(of(2, "stdout").iter().any(|l| l.contains("registered")), "{log}");
    assert_eq!(of(2, "worker").last(), Some(&"finished"), "{log}");
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "numbered in order");

    // Cancelling a running job stops it through its worker.
    let (_, job) = http(
        &addr,
        "POST",
        "/v1/training-jobs",
        // No early stop: training is fast enough to plateau and end before
        // the cancel arrives otherwise.
        Some(&json!({"agent": "ppo-mlp", "symbols": ["synth"], "steps": 10000000, "settings": ["ppo.patience=0"]})),
    );
    let id = job["id"].as_str().unwrap().to_string();
    wait_for("the second job to start", Duration::from_secs(60), || {
        let (_, j) = http(&addr, "GET", &format!("/v1/jobs/{id}"), None);
        (j["status"] == "running").then_some(j)
    });
    let (status, _) = http(&addr, "POST", &format!("/v1/jobs/{id}/cancel"), None);
    assert_eq!(status, 200);
    let cancelled = wait_for("the cancel to take effect", Duration::from_secs(30), || {
        let (_, j) = http(&addr, "GET", &format!("/v1/jobs/{id}"), None);
        (j["status"] == "cancelled").then_some(j)
    });
    assert_eq!(cancelled["attempts"], 1);
    let (_, log) = http(&addr, "GET", &format!("/v1/jobs/{id}/logs"), None);
    let last = log["lines"].as_array().unwrap().last().unwrap();
    assert!(
        last["stream"] == "worker" && last["line"].as_str().unwrap().starts_with("cancelled"),
        "{log}"
    );

    // SIGTERM: the server stops accepting, finishes what is in flight, exits 0.
    let mut server = server;
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(server.0.id() as i32, libc::SIGTERM);
    }
    let status = server.0.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits cleanly: {status}");
}

#[test]
fn a_killed_workers_job_is_finished_by_another_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("shared.db").display());
    killed_worker_journey(&db);
}

#[test]
fn a_killed_workers_job_is_finished_by_another_on_postgres() {
    let Ok(base) = std::env::var("TRADELAB_TEST_POSTGRES_URL") else {
        eprintln!("skipped: TRADELAB_TEST_POSTGRES_URL is not set");
        return;
    };
    // A database of its own: apalis keeps its queue in a fixed schema.
    let db = common::TestDatabase::create(&base, format!("tradelab_jobs_{}", std::process::id()));
    killed_worker_journey(&db.url);
}

/// A folder with a shared SQLite database (its URL) and 1,500 synthetic
/// bars as `data/raw/synth.csv`.
fn synth_folder() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let db = format!("sqlite://{}", d.join("shared.db").display());
    std::fs::create_dir_all(d.join("data/raw")).unwrap();
    ok(tradelab(d, &db)
        .args(["data", "synth", "--bars", "1500", "--out", "data/raw/synth.csv"])
        .output()
        .unwrap());
    (tmp, db)
}

#[test]
fn an_optimisation_job_reports_progress_and_its_best_combination() {
    let (tmp, db) = synth_folder();
    let d = tmp.path();
    let (_server, addr) = serve(d, &db);
    let (status, job) = http(
        &addr,
        "POST",
        "/v1/optimizations",
        Some(&json!({
            "strategy": "sma_crossover",
            "symbols": ["synth"],
            "params": ["fast=5:20:5", "slow=30:60:10"],
            "constraints": ["fast < slow"],
            "metric": "total_return",
            "walk_forward": 2
        })),
    );
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let (_worker, _) = start({
        let mut c = tradelab(d, &db);
        c.arg("worker");
        c
    });
    let done = wait_for("the optimisation to finish", Duration::from_secs(120), || {
        let (_, j) = http(&addr, "GET", &format!("/v1/jobs/{id}"), None);
        let s = j["status"].as_str().unwrap_or("").to_string();
        assert!(s != "failed" && s != "cancelled", "{j}");
        (s == "finished").then_some(j)
    });
    // 16 combinations, searched once over every bar and once per fold.
    assert_eq!(done["result"]["combinations"], 16, "{done}");
    assert_eq!(done["progress"]["done"], 48, "{done}");
    assert_eq!(done["progress"]["total"], 48, "{done}");
    let best = &done["result"]["best"];
    assert!(
        best["fast"].as_i64().unwrap() < best["slow"].as_i64().unwrap(),
        "{done}"
    );
    let report = done["result"]["report"].as_str().unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(d.join(report)).unwrap()).unwrap();
    assert_eq!(report["results"]["rows"][0]["params"], *best);
    assert_eq!(report["walk_forward"]["folds"].as_array().unwrap().len(), 2);
}

/// The dashboard's "evaluate a model": a registered logistic regression,
/// evaluated over the API as a job in two folds, comes back as two stored
/// backtests named after the model, linked to its training run, with the
/// baselines and the deflated Sharpe ratio; a job never opens a folder a
/// client names, only registered models.
#[test]
fn a_registered_model_is_evaluated_as_a_job_into_stored_backtests() {
    let (tmp, db) = synth_folder();
    let d = tmp.path();
    ok(tradelab(d, &db)
        .args(["train", "--agent", "logreg", "--symbol", "synth"])
        .output()
        .unwrap());
    // A folder called like a model: a client's name must not reach it.
    std::fs::create_dir_all(d.join("logreg-folder")).unwrap();
    let (_server, addr) = serve(d, &db);
    let submit = |body: Value| {
        let (status, job) = http(&addr, "POST", "/v1/evaluations", Some(&body));
        assert_eq!(status, 202, "{job}");
        job["id"].as_str().unwrap().to_string()
    };
    let id = submit(json!({"model": "logreg@1", "folds": 2, "settings": ["backtest.costs.entry_fixed=25"]}));
    let folder = submit(json!({"model": "logreg-folder"}));
    let (_worker, _) = start({
        let mut c = tradelab(d, &db);
        c.arg("worker");
        c
    });
    let ended = |id: &str| {
        wait_for("the evaluation to end", Duration::from_secs(180), || {
            let (_, j) = http(&addr, "GET", &format!("/v1/jobs/{id}"), None);
            let s = j["status"].as_str().unwrap_or("").to_string();
            (s == "finished" || s == "failed" || s == "cancelled").then_some(j)
        })
    };
    let done = ended(&id);
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(done["result"]["model"], "logreg@1", "{done}");
    let ids: Vec<String> = done["result"]["backtest_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "one stored backtest per fold: {done}");
    assert_eq!(done["result"]["backtest_id"], ids[0].as_str());
    assert_eq!(done["result"]["verdicts"].as_array().unwrap().len(), 2);
    // Progress counted the backtests: per fold the model, four rules, the boosted trees.
    assert_eq!(
        (done["progress"]["done"].as_u64(), done["progress"]["total"].as_u64()),
        (Some(12), Some(12)),
        "{done}"
    );
    let (_, models) = http(&addr, "GET", "/v1/models", None);
    let training_run = models[0]["run_id"].clone();
    assert!(training_run.is_string(), "{models}");
    let (_, listed) = http(&addr, "GET", "/v1/backtests", None);
    for id in &ids {
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id.as_str())
            .unwrap();
        assert_eq!(row["strategy"], "model logreg@1", "{row}");
        assert_eq!(row["run_id"], training_run, "linked to the training run: {row}");
        let (status, r) = http(&addr, "GET", &format!("/v1/backtests/{id}"), None);
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["model_used"], "logreg", "{r}");
        let names: Vec<&str> = r["baselines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        let expected = [
            "buy_and_hold",
            "sma_crossover",
            "buy_and_hold_vol_target",
            "momentum_vol_target",
            "gbt",
        ];
        assert_eq!(names.len(), expected.len(), "{names:?}");
        for (name, baseline) in names.iter().zip(expected) {
            assert!(name.starts_with(baseline), "{names:?}");
        }
        let st = &r["statistics"];
        assert_eq!(st["trials"], 1, "{st}");
        assert!(
            st["deflated_sharpe"].is_number() && st["sharpe_low"].is_number(),
            "{st}"
        );
        assert_eq!(r["evaluation"]["split"], "test");
        assert!(r["evaluation"]["run"].as_str().unwrap().contains("(fold "), "{r}");
        let (status, trades) = http(&addr, "GET", &format!("/v1/backtests/{id}/trades"), None);
        assert_eq!(status, 200, "{trades}");
        let (status, equity) = http(&addr, "GET", &format!("/v1/backtests/{id}/equity"), None);
        assert_eq!(status, 200, "{equity}");
        assert!(equity.as_array().is_some_and(|e| !e.is_empty()), "{equity}");
    }
    let refused = ended(&folder);
    assert_eq!(refused["status"], "failed", "{refused}");
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(why.contains("logreg-folder"), "named as a registered model only: {why}");
}
