//! The MLflow mirror against a real `mlflow server` (PyPI mlflow 3.17.2):
//! a training run's parameters, tags, metric series and final status appear
//! in MLflow as in the store. Runs where TRADELAB_TEST_MLFLOW names the
//! `mlflow` executable (`.ci/run` installs it when the package index
//! answers); skipped, saying so, elsewhere.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::{text, SMALL_MODEL};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.get(9..12)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    // A chunked body: take the JSON between the first chunk size and the end.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body.split_once("\r\n").map(|(_, rest)| rest).unwrap_or(body)
    } else {
        body
    };
    let end = body.rfind('}').map(|i| i + 1).unwrap_or(body.len());
    Some((status, serde_json::from_str(&body[..end]).unwrap_or(Value::Null)))
}

#[test]
fn training_runs_are_mirrored_to_mlflow() {
    let Ok(mlflow) = std::env::var("TRADELAB_TEST_MLFLOW") else {
        eprintln!("skipped: MLflow mirror test (set TRADELAB_TEST_MLFLOW to the mlflow executable)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(&mlflow)
            .args([
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", d.join("mlflow.db").display()))
            .arg("--default-artifact-root")
            .arg(d.join("artifacts"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mlflow starts"),
    );
    let start = Instant::now();
    while http(port, "GET", "/health", None).is_none_or(|(s, _)| s != 200) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "mlflow server did not come up"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let tradelab = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_tradelab"))
            .current_dir(d)
            .env("NO_COLOR", "1")
            .args(SMALL_MODEL)
            .args(args)
            .output()
            .unwrap();
        let text = text(&o);
        assert!(o.status.success(), "{text}");
        text
    };
    tradelab(&["data", "synth", "--bars", "1200", "--out", "synth.csv"]);
    let url = format!("store.mlflow_url=http://127.0.0.1:{port}");
    let out = tradelab(&[
        "--set",
        &url,
        "train",
        "--agent",
        "ppo-mlp",
        "--symbol",
        "synth.csv",
        "--steps",
        "512",
    ]);
    assert!(!out.contains("MLflow mirror"), "no mirror warning: {out}");
    let ours = out
        .lines()
        .find_map(|l| l.split("run ").nth(1))
        .unwrap()
        .trim()
        .to_string();

    let (_, e) = http(
        port,
        "GET",
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=default",
        None,
    )
    .unwrap();
    let experiment = e["experiment"]["experiment_id"].as_str().unwrap().to_string();
    let (_, found) = http(
        port,
        "POST",
        "/api/2.0/mlflow/runs/search",
        Some(&json!({"experiment_ids": [experiment]})),
    )
    .unwrap();
    let run = &found["runs"][0];
    assert_eq!(run["info"]["status"], "FINISHED", "{run}");
    assert_eq!(run["info"]["run_name"], "train ppo-mlp");
    let params = run["data"]["params"].as_array().unwrap();
    let param = |k: &str| params.iter().find(|p| p["key"] == k).map(|p| p["value"].clone());
    assert_eq!(param("agent"), Some(json!("ppo-mlp")));
    assert_eq!(param("settings.ppo.hidden"), Some(json!("16")));
    let tags = run["data"]["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["key"] == "tradelab.run_id" && t["value"] == ours.as_str()),
        "{run}"
    );
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let (_, history) = http(
        port,
        "GET",
        &format!("/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=policy_loss"),
        None,
    )
    .unwrap();
    let points = history["metrics"].as_array().unwrap();
    assert_eq!(points.len(), 2, "512 steps of 4 x 64: two updates, {history}");
    // MLflow writes int64 as a number or, in proto3 JSON, as a string.
    let step = &points[1]["step"];
    assert_eq!(
        step.as_i64().or_else(|| step.as_str().and_then(|s| s.parse().ok())),
        Some(512),
        "{history}"
    );

    // An MLflow that does not answer costs a warning, never the run.
    let out = tradelab(&[
        "--set",
        "store.mlflow_url=http://127.0.0.1:9",
        "train",
        "--agent",
        "ppo-mlp",
        "--symbol",
        "synth.csv",
        "--steps",
        "256",
    ]);
    assert!(
        out.contains("warning: MLflow mirror") && out.contains("registered:"),
        "{out}"
    );
}
