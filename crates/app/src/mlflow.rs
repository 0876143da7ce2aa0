//! An optional mirror of runs, parameters and metrics to an MLflow
//! tracking server (`store.mlflow_url`), through MLflow's REST API
//! (`/api/2.0/mlflow/...`). The store stays the record; the mirror is a
//! convenience for teams that already read MLflow, so a failing mirror
//! warns once and never stops a run.

use std::cell::Cell;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tradelab_core::time::now_ms;

/// MLflow's limits per log-batch request.
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
/// MLflow refuses longer parameter values.
const MAX_PARAM_CHARS: usize = 6000;

/// A client of one MLflow tracking server's REST API.
pub struct Mirror {
    base: String,
    agent: ureq::Agent,
    /// Whether a failure has been reported (once is enough).
    pub(crate) warned: Cell<bool>,
}

/// A mirrored run.
pub struct MirroredRun {
    /// MLflow's id of the run.
    pub run_id: String,
}

/// `{"a": {"b": 1}}` → `[("a.b", "1")]`, for MLflow's flat parameters.
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

impl Mirror {
    /// A mirror to the server at `url` (nothing is sent until a run starts).
    pub fn new(url: &str) -> Mirror {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        Mirror {
            base: url.trim_end_matches('/').to_string(),
            agent: config.into(),
            warned: Cell::new(false),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            (_, Some(b)) => self.agent.post(&url).send_json(b),
            (_, None) => self.agent.post(&url).send_empty(),
        };
        let mut response = response.with_context(|| format!("MLflow at {} did not answer", self.base))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            let code = value["error_code"].as_str().unwrap_or("");
            bail!(
                "MLflow answered {status} {code} to {path}: {}",
                value["message"].as_str().unwrap_or(&text)
            );
        }
        Ok(value)
    }

    /// The id of the experiment called `name`, created if missing.
    fn experiment(&self, name: &str) -> Result<String> {
        let path = format!("experiments/get-by-name?experiment_name={}", encode(name));
        match self.call("GET", &path, None) {
            Ok(v) => v["experiment"]["experiment_id"]
                .as_str()
                .map(String::from)
                .context("MLflow's experiment has no id"),
            Err(_) => {
                let v = self.call("POST", "experiments/create", Some(&json!({"name": name})))?;
                v["experiment_id"]
                    .as_str()
                    .map(String::from)
                    .context("MLflow created no experiment id")
            }
        }
    }

    /// Creates the run and logs its parameters (flattened) and tags.
    pub fn start_run(&self, experiment: &str, name: &str, params: &Value, tags: &Value) -> Result<MirroredRun> {
        let experiment_id = self.experiment(experiment)?;
        let mut tag_list = vec![json!({"key": "mlflow.runName", "value": name})];
        if let Some(t) = tags.as_object() {
            for (k, v) in t {
                tag_list
                    .push(json!({"key": k, "value": v.as_str().map(String::from).unwrap_or_else(|| v.to_string())}));
            }
        }
        let created = self.call(
            "POST",
            "runs/create",
            Some(&json!({
                "experiment_id": experiment_id,
                "run_name": name,
                "start_time": now_ms(),
                "tags": tag_list,
            })),
        )?;
        let run_id = created["run"]["info"]["run_id"]
            .as_str()
            .context("MLflow created no run id")?
            .to_string();
        let mut flat = Vec::new();
        flatten("", params, &mut flat);
        let params: Vec<Value> = flat
            .into_iter()
            .map(|(k, v)| {
                let v: String = v.chars().take(MAX_PARAM_CHARS).collect();
                json!({"key": k, "value": v})
            })
            .collect();
        for chunk in params.chunks(MAX_PARAMS) {
            self.call(
                "POST",
                "runs/log-batch",
                Some(&json!({"run_id": run_id, "params": chunk})),
            )?;
        }
        Ok(MirroredRun { run_id })
    }

    /// Sends metric points to the mirrored run.
    pub fn log_metrics(&self, run: &MirroredRun, points: &[(&str, i64, f64)]) -> Result<()> {
        let now = now_ms();
        let metrics: Vec<Value> = points
            .iter()
            .map(|(k, step, v)| json!({"key": k, "value": v, "timestamp": now, "step": step}))
            .collect();
        for chunk in metrics.chunks(MAX_METRICS) {
            self.call(
                "POST",
                "runs/log-batch",
                Some(&json!({"run_id": run.run_id, "metrics": chunk})),
            )?;
        }
        Ok(())
    }

    /// Ends the run: `FINISHED`, `FAILED` or `KILLED`.
    pub fn finish(&self, run: &MirroredRun, status: &str) -> Result<()> {
        self.call(
            "POST",
            "runs/update",
            Some(&json!({"run_id": run.run_id, "status": status, "end_time": now_ms()})),
        )?;
        Ok(())
    }

    /// Reports a mirror failure once; the run goes on.
    pub fn warn(&self, e: &anyhow::Error) {
        if !self.warned.replace(true) {
            eprintln!(
                "warning: MLflow mirror at {}: {e:#}; the run is recorded in the store regardless",
                tradelab_store::redact(&self.base)
            );
        }
    }
}

/// Percent-encoding for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_flatten_to_dotted_keys() {
        let mut out = Vec::new();
        flatten(
            "",
            &json!({"agent": "hrm", "ppo": {"lr": 0.001, "envs": 8}, "gone": null, "list": [1, 2]}),
            &mut out,
        );
        out.sort();
        assert_eq!(
            out,
            vec![
                ("agent".to_string(), "hrm".to_string()),
                ("list".to_string(), "[1,2]".to_string()),
                ("ppo.envs".to_string(), "8".to_string()),
                ("ppo.lr".to_string(), "0.001".to_string()),
            ]
        );
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn a_server_that_does_not_answer_is_an_error_naming_it_and_warned_of_once() {
        let mirror = Mirror::new("http://127.0.0.1:9/");
        let e = mirror.start_run("unit", "run", &json!({}), &json!({})).err().unwrap();
        assert!(
            format!("{e:#}").contains("MLflow at http://127.0.0.1:9 did not answer"),
            "{e:#}"
        );
        assert!(!mirror.warned.get());
        mirror.warn(&e);
        mirror.warn(&e);
        assert!(mirror.warned.get());
    }

    #[test]
    fn runs_parameters_tags_metrics_and_status_reach_a_real_mlflow_server() {
        let Some(server) = tradelab_testkit::mlflow::MlflowServer::start("MLflow mirror round trip") else {
            return;
        };
        let mirror = Mirror::new(&format!("{}/", server.url()));
        // More parameters and points than one request may carry, a value
        // longer than MLflow keeps, and an experiment name to encode.
        let mut params = serde_json::Map::new();
        for i in 0..250 {
            params.insert(format!("p{i:03}"), json!(i));
        }
        params.insert("long".into(), json!("x".repeat(7000)));
        params.insert("nested".into(), json!({"a": {"b": true}}));
        let experiment = "unit runs/ü";
        let run = mirror
            .start_run(
                experiment,
                "run one",
                &Value::Object(params),
                &json!({"tradelab.run_id": "abc", "n": 3}),
            )
            .unwrap();
        let second = mirror.start_run(experiment, "run two", &json!({}), &json!({})).unwrap();
        let points: Vec<(&str, i64, f64)> = (0..1500).map(|i| ("loss", i, 1.0 / (i + 1) as f64)).collect();
        mirror.log_metrics(&run, &points).unwrap();
        mirror.finish(&run, "FINISHED").unwrap();
        mirror.finish(&second, "KILLED").unwrap();

        let get = |id: &str| server.api(&format!("runs/get?run_id={id}"), None)["run"].clone();
        let one = get(&run.run_id);
        assert_eq!(one["info"]["status"], "FINISHED");
        assert_eq!(get(&second.run_id)["info"]["status"], "KILLED");
        assert_eq!(
            one["info"]["experiment_id"],
            get(&second.run_id)["info"]["experiment_id"],
            "the second run found the experiment the first created"
        );
        let pairs = |key: &str| -> Vec<(String, String)> {
            one["data"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["key"].as_str().unwrap().into(), p["value"].as_str().unwrap().into()))
                .collect()
        };
        let params = pairs("params");
        assert_eq!(params.len(), 252, "every parameter, in batches of {MAX_PARAMS}");
        let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(param("p249").as_deref(), Some("249"));
        assert_eq!(param("nested.a.b").as_deref(), Some("true"));
        assert_eq!(param("long").map(|v| v.len()), Some(MAX_PARAM_CHARS));
        let tags = pairs("tags");
        for (k, v) in [("mlflow.runName", "run one"), ("tradelab.run_id", "abc"), ("n", "3")] {
            assert!(tags.contains(&(k.into(), v.into())), "{k}: {tags:?}");
        }
        let history = server.api(
            &format!("metrics/get-history?run_id={}&metric_key=loss", run.run_id),
            None,
        );
        let history = history["metrics"].as_array().unwrap();
        assert_eq!(history.len(), 1500, "every point, in batches of {MAX_METRICS}");
        let step = |p: &Value| p["step"].as_i64().or_else(|| p["step"].as_str()?.parse().ok());
        assert_eq!(history.iter().filter_map(step).max(), Some(1499));

        // What MLflow refuses comes back with its status and error code.
        let unknown = MirroredRun { run_id: "0".repeat(32) };
        let e = mirror.finish(&unknown, "FINISHED").unwrap_err().to_string();
        assert!(
            e.starts_with("MLflow answered 4") && e.contains("to runs/update"),
            "{e}"
        );
    }
}
