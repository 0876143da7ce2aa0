//! The MLflow mirror against a real `mlflow server` (PyPI mlflow 3.17.2):
//! a training run's parameters, tags, metric series and final status appear
//! in MLflow as in the store. Runs where TRADELAB_TEST_MLFLOW names the
//! `mlflow` executable (`.ci/run` installs it when the package index
//! answers); skipped, saying so, elsewhere.

use std::process::Command;

use serde_json::json;
use tradelab_testkit::mlflow::MlflowServer;

mod common;

use common::{text, SMALL_MODEL};

#[test]
fn training_runs_are_mirrored_to_mlflow() {
    let Some(mlflow) = MlflowServer::start("MLflow mirror test") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

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
    let url = format!("store.mlflow_url={}", mlflow.url());
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

    let e = mlflow.api("experiments/get-by-name?experiment_name=default", None);
    let experiment = e["experiment"]["experiment_id"].as_str().unwrap().to_string();
    let found = mlflow.api("runs/search", Some(&json!({"experiment_ids": [experiment]})));
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
    let history = mlflow.api(
        &format!("metrics/get-history?run_id={run_id}&metric_key=policy_loss"),
        None,
    );
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

    // Stopping the server leaves none of its processes behind.
    let group = format!("-{}", mlflow.process_group());
    drop(mlflow);
    let alive = Command::new("kill")
        .args(["-0", "--", &group])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!alive.success(), "mlflow processes outlived the server");
}
