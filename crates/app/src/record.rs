//! Recording runs, metrics, models and backtests in the store from the
//! synchronous commands.
//!
//! The store's API is async; the commands are not. A [`Recorder`]
//! owns a single-threaded runtime and blocks on each call. Opening fails
//! loudly (a wrong URL is a setting to fix before hours of training), but a
//! metric write that fails mid-training only warns once: losing a point of
//! a loss curve must not lose the model.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::settings::Settings;
use anyhow::{Context, Result};
use serde_json::Value;
use tradelab_store::tracking::RunStatus;
use tradelab_store::Store;

use crate::jobs::worker::JOB_ID_ENV;
use crate::mlflow::{Mirror, MirroredRun};
use crate::runtime::runtime;

/// Records one command's runs, metrics, models and backtests in the configured store.
pub struct Recorder {
    runtime: tokio::runtime::Runtime,
    store: Store,
    experiment: String,
    model_dir: PathBuf,
    warned: Cell<bool>,
    /// The job this process runs for a worker (`TRADELAB_JOB_ID`), if any.
    job: Option<String>,
    last_progress: Cell<Option<std::time::Instant>>,
    /// The MLflow mirror (`store.mlflow_url`), and its run for each of ours.
    mirror: Option<Mirror>,
    mirrored: RefCell<HashMap<String, MirroredRun>>,
}

/// Progress reports to a job's row at most this often (the last one always goes).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Opens the configured store (`TRADELAB_DATABASE_URL` or `store.url`).
pub fn open_store(runtime: &tokio::runtime::Runtime, settings: &Settings) -> Result<Store> {
    let url = settings.store.database_url();
    runtime.block_on(Store::open(&url)).with_context(|| {
        format!(
            "opening the store (set store.url or {} to a reachable database, or --set store.record=false to record nothing)",
            tradelab_store::DATABASE_URL_ENV
        )
    })
}

/// The URL of the SQLite database `settings` name when its file does not
/// exist yet: what [`discard_unused`] may remove should the command fail.
pub fn not_yet_created(settings: &Settings) -> Option<String> {
    let url = settings.store.database_url();
    let path = tradelab_store::sqlite_file(&url)?;
    (!path.exists()).then_some(url)
}

/// Removes an SQLite database this process created and left empty (its
/// schema only) because the command failed before recording anything, so
/// that a mistaken run in the wrong folder leaves no stray `tradelab.db`.
/// Returns whether it removed it; anything recorded is kept.
pub fn discard_unused(url: &str) -> Result<bool> {
    let Some(path) = tradelab_store::sqlite_file(url) else {
        return Ok(false);
    };
    if !path.is_file() {
        return Ok(false);
    }
    let runtime = runtime()?;
    let holds = runtime.block_on(async {
        let store = Store::open(url).await?;
        let holds = store.holds_records().await;
        store.close().await;
        holds
    })?;
    if holds {
        return Ok(false);
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.clone().into_os_string();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing the unused {}", path.display())),
        }
    }
    Ok(true)
}

impl Recorder {
    /// The recorder for `settings`, or `None` when `store.record` is false.
    pub fn open(settings: &Settings) -> Result<Option<Recorder>> {
        if !settings.store.record {
            return Ok(None);
        }
        let runtime = runtime()?;
        let store = open_store(&runtime, settings)?;
        Ok(Some(Recorder {
            runtime,
            store,
            experiment: settings.store.experiment.clone(),
            model_dir: settings.store.model_dir.clone(),
            warned: Cell::new(false),
            job: std::env::var(JOB_ID_ENV).ok().filter(|j| !j.is_empty()),
            last_progress: Cell::new(None),
            mirror: (!settings.store.mlflow_url.is_empty()).then(|| Mirror::new(&settings.store.mlflow_url)),
            mirrored: RefCell::new(HashMap::new()),
        }))
    }

    /// Starts a run in the experiment; returns its id.
    pub fn start_run(&self, name: &str, params: &Value, tags: &Value) -> Result<String> {
        // Where it runs, so a run whose process dies is seen as failed.
        let tags = &crate::run_liveness::with_process(tags);
        let id = self
            .runtime
            .block_on(self.store.start_run(&self.experiment, name, params, tags))
            .context("recording the run's start")?;
        if let Some(m) = &self.mirror {
            let mut tags = tags.clone();
            if let Some(t) = tags.as_object_mut() {
                t.insert("tradelab.run_id".into(), Value::String(id.clone()));
            }
            match m.start_run(&self.experiment, name, params, &tags) {
                Ok(run) => {
                    self.mirrored.borrow_mut().insert(id.clone(), run);
                }
                Err(e) => m.warn(&e),
            }
        }
        Ok(id)
    }

    /// Appends metric points; a failure is reported once and otherwise ignored.
    pub fn log_metrics(&self, run: &str, points: &[(&str, i64, f64)]) {
        // Non-finite values (a loss before the first update) are skipped, not refused.
        let finite: Vec<_> = points.iter().copied().filter(|(_, _, v)| v.is_finite()).collect();
        if let Err(e) = self.runtime.block_on(self.store.log_metrics(run, &finite)) {
            if !self.warned.replace(true) {
                eprintln!("warning: metrics are not being recorded ({e}); training goes on");
            }
        }
        if let (Some(m), Some(mirrored)) = (&self.mirror, self.mirrored.borrow().get(run)) {
            if let Err(e) = m.log_metrics(mirrored, &finite) {
                m.warn(&e);
            }
        }
    }

    /// Reports progress to the job this process runs, if any; at most
    /// every half second unless `force`. Failures warn once.
    pub fn job_progress(&self, progress: &Value, force: bool) {
        let Some(job) = &self.job else { return };
        let due = self.last_progress.get().is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if !(due || force) {
            return;
        }
        self.last_progress.set(Some(std::time::Instant::now()));
        if let Err(e) = self.runtime.block_on(self.store.set_job_progress(job, progress)) {
            if !self.warned.replace(true) {
                eprintln!("warning: job progress is not being recorded ({e})");
            }
        }
    }

    /// The job this process runs for a worker, if any.
    pub fn job(&self) -> Option<&str> {
        self.job.as_deref()
    }

    /// Records what the job this process runs produced.
    pub fn job_result(&self, result: &Value) -> Result<()> {
        let Some(job) = &self.job else { return Ok(()) };
        self.runtime
            .block_on(self.store.set_job_result(job, result))
            .context("recording the job's result")
    }

    /// Marks a run finished, failed or killed.
    pub fn finish_run(&self, run: &str, status: RunStatus) -> Result<()> {
        if let (Some(m), Some(mirrored)) = (&self.mirror, self.mirrored.borrow_mut().remove(run)) {
            let status = match status {
                RunStatus::Finished => "FINISHED",
                RunStatus::Failed => "FAILED",
                RunStatus::Killed => "KILLED",
                RunStatus::Running => "RUNNING",
            };
            if let Err(e) = m.finish(&mirrored, status) {
                m.warn(&e);
            }
        }
        self.runtime
            .block_on(self.store.finish_run(run, status))
            .context("recording the run's end")
    }

    /// Copies a checkpoint's model files into the registry folder and
    /// registers them as the next version of `name`; returns the version
    /// and where the files now are.
    pub fn register_checkpoint(&self, name: &str, checkpoint: &Path, run: Option<&str>) -> Result<(i64, PathBuf)> {
        self.runtime.block_on(crate::registry::register_checkpoint(
            &self.store,
            &self.model_dir,
            name,
            checkpoint,
            run,
        ))
    }

    /// Stores a backtest report: the summary and metrics, the trades and
    /// the equity curve as separate documents.
    pub fn record_backtest(&self, run: Option<&str>, strategy: &str, report: &Value) -> Result<String> {
        let mut summary = report.clone();
        let trades = summary
            .as_object_mut()
            .and_then(|o| o.remove("trades"))
            .unwrap_or(Value::Null);
        let equity = summary
            .as_object_mut()
            .and_then(|o| o.remove("equity_curve"))
            .unwrap_or(Value::Null);
        self.runtime
            .block_on(self.store.record_backtest(run, strategy, &summary, &trades, &equity))
            .context("recording the backtest")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tradelab_store::audit::BacktestPart;

    use super::*;

    fn settings(dir: &Path, record: bool) -> Settings {
        let mut s = crate::testing::sqlite_settings(dir);
        s.store.experiment = "unit".into();
        s.store.record = record;
        s
    }

    #[test]
    fn an_unused_database_is_discarded_and_one_that_recorded_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), true);
        let url = s.store.database_url();
        assert!(!discard_unused(&url).unwrap(), "no file, nothing to do");
        drop(Recorder::open(&s).unwrap().unwrap());
        assert!(dir.path().join("tradelab.db").is_file());
        assert!(discard_unused(&url).unwrap());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "no -wal or -shm left: {left:?}");
        let rec = Recorder::open(&s).unwrap().unwrap();
        rec.start_run("kept", &serde_json::json!({}), &serde_json::json!({}))
            .unwrap();
        drop(rec);
        assert!(!discard_unused(&url).unwrap());
        assert!(dir.path().join("tradelab.db").is_file());
        assert!(!discard_unused("sqlite::memory:").unwrap());
    }

    #[test]
    fn nothing_is_opened_when_recording_is_off() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Recorder::open(&settings(dir.path(), false)).unwrap().is_none());
        assert!(!dir.path().join("tradelab.db").exists());
    }

    #[test]
    fn a_run_keeps_its_finite_metrics_and_a_backtest_is_stored_as_three_documents() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::open(&settings(dir.path(), true)).unwrap().unwrap();
        let run = rec
            .start_run("unit-run", &json!({"lr": 0.1}), &json!({"kind": "test"}))
            .unwrap();
        // A loss before the first update is NaN: skipped, not refused.
        rec.log_metrics(&run, &[("loss", 1, 0.5), ("loss", 2, f64::NAN), ("loss", 3, 0.25)]);
        rec.finish_run(&run, RunStatus::Finished).unwrap();
        let stored = rec.runtime.block_on(rec.store.run(&run)).unwrap();
        assert_eq!((stored.name.as_str(), stored.experiment.as_str()), ("unit-run", "unit"));
        assert_eq!(stored.status, RunStatus::Finished);
        assert_eq!(stored.params["lr"], 0.1);
        let loss = rec.runtime.block_on(rec.store.metric_history(&run, "loss")).unwrap();
        assert_eq!(
            loss.iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(),
            [(1, 0.5), (3, 0.25)]
        );

        let report = json!({"portfolio_end": 101.0, "trades": [{"pnl": 1.0}], "equity_curve": [100.0, 101.0]});
        let id = rec
            .record_backtest(Some(&run), "sma_crossover(10,30)", &report)
            .unwrap();
        let part = |p| rec.runtime.block_on(rec.store.backtest_part(&id, p)).unwrap();
        let summary = part(BacktestPart::Report);
        assert_eq!(summary["portfolio_end"], 101.0);
        assert!(summary.get("trades").is_none() && summary.get("equity_curve").is_none());
        assert_eq!(part(BacktestPart::Trades), json!([{"pnl": 1.0}]));
        assert_eq!(part(BacktestPart::Equity), json!([100.0, 101.0]));
        // Outside a job, progress and results have nowhere to go and are no error.
        rec.job_progress(&json!({"step": 1}), true);
        rec.job_result(&json!({"ok": true})).unwrap();
    }

    #[test]
    fn a_job_child_reports_progress_at_most_twice_a_second_unless_forced_and_its_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::open(&settings(dir.path(), true)).unwrap().unwrap();
        let job = rec
            .runtime
            .block_on(rec.store.enqueue_job("train", &json!({"kind": "train"})))
            .unwrap();
        // As a worker claims it and sets `TRADELAB_JOB_ID` for its child.
        rec.runtime
            .block_on(rec.store.claim_job(&job, "unit-worker", 60_000))
            .unwrap();
        rec.job = Some(job.clone());
        let progress = || rec.runtime.block_on(rec.store.job(&job)).unwrap().progress;
        rec.job_progress(&json!({"step": 1}), false);
        assert_eq!(progress(), json!({"step": 1}));
        rec.job_progress(&json!({"step": 2}), false);
        assert_eq!(progress(), json!({"step": 1}), "too soon: skipped");
        rec.job_progress(&json!({"step": 3}), true);
        assert_eq!(progress(), json!({"step": 3}), "the last report always goes");
        rec.job_result(&json!({"model": "m@1"})).unwrap();
        let row = rec.runtime.block_on(rec.store.job(&job)).unwrap();
        assert_eq!(row.result, Some(json!({"model": "m@1"})));
    }

    #[test]
    fn a_mirror_that_does_not_answer_never_stops_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), true);
        s.store.mlflow_url = "http://127.0.0.1:9".into();
        let rec = Recorder::open(&s).unwrap().unwrap();
        let run = rec.start_run("unit-run", &json!({}), &json!({})).unwrap();
        rec.log_metrics(&run, &[("loss", 1, 0.5)]);
        rec.finish_run(&run, RunStatus::Failed).unwrap();
        assert!(rec.mirror.as_ref().unwrap().warned.get());
        assert_eq!(
            rec.runtime.block_on(rec.store.run(&run)).unwrap().status,
            RunStatus::Failed
        );
    }

    #[test]
    fn a_recorded_run_is_mirrored_to_mlflow_with_our_run_id_and_its_end() {
        let Some(server) = tradelab_testkit::mlflow::MlflowServer::start("recorder's MLflow mirror") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), true);
        s.store.mlflow_url = server.url();
        let rec = Recorder::open(&s).unwrap().unwrap();
        let ours = rec
            .start_run("train hrm", &json!({"agent": "hrm"}), &json!({"symbol": "x"}))
            .unwrap();
        rec.log_metrics(&ours, &[("loss", 1, 0.5), ("loss", 2, f64::NAN), ("loss", 3, 0.25)]);
        rec.finish_run(&ours, RunStatus::Killed).unwrap();
        assert!(!rec.mirror.as_ref().unwrap().warned.get());

        let experiment = server.api("experiments/get-by-name?experiment_name=unit", None);
        let id = experiment["experiment"]["experiment_id"].clone();
        let found = server.api("runs/search", Some(&json!({"experiment_ids": [id]})));
        let run = &found["runs"][0];
        assert_eq!(run["info"]["status"], "KILLED", "{run}");
        let tags = run["data"]["tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .any(|t| t["key"] == "tradelab.run_id" && t["value"] == ours.as_str()),
            "{run}"
        );
        let run_id = run["info"]["run_id"].as_str().unwrap();
        let history = server.api(&format!("metrics/get-history?run_id={run_id}&metric_key=loss"), None);
        assert_eq!(
            history["metrics"].as_array().unwrap().len(),
            2,
            "the NaN is skipped: {history}"
        );
    }
}
