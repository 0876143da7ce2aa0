//! An optional mirror of runs, parameters and metrics to an MLflow
//! tracking server (`store.mlflow_url`), through MLflow's REST API
//! (`/api/2.0/mlflow/...`). The store stays the record; the mirror is a
//! convenience for teams that already read MLflow, so a failing mirror
//! warns once and never stops a run.

use std::cell::Cell;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// MLflow's limits per log-batch request.
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
/// MLflow refuses longer parameter values.
const MAX_PARAM_CHARS: usize = 6000;

/// A client of one MLflow tracking server's REST API.
pub struct Mirror {
    base: String,
    agent: ureq::Agent,
    warned: Cell<bool>,
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
                self.base
            );
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
}
