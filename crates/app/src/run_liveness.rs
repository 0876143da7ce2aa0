//! Telling a run whose process died from one still going. Each run's tags
//! record the host and process that run it (`process`); a run still
//! "running" whose process is gone from this host is marked failed when it
//! is next listed (a `kill -9`, a power cut or an OOM kill used to leave a
//! run "running" for ever). Runs of other hosts are left as they are: only
//! their own host can tell.

use serde_json::{json, Value};
use tradelab_store::tracking::{RunRecord, RunStatus};
use tradelab_store::{Store, StoreError};

/// This machine's name, as runs record it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether process `pid` runs on this host; `None` where that cannot be
/// told (then nothing is marked).
fn process_alive(pid: u64) -> Option<bool> {
    if cfg!(target_os = "linux") {
        Some(std::path::Path::new("/proc").join(pid.to_string()).exists())
    } else {
        None
    }
}

/// `tags` with `process: {host, pid}` of this process added.
pub fn with_process(tags: &Value) -> Value {
    let mut tags = tags.clone();
    if let Some(t) = tags.as_object_mut() {
        t.insert(
            "process".into(),
            json!({"host": host_name(), "pid": std::process::id()}),
        );
    }
    tags
}

/// Marks failed (in the store and in `runs`) every running run whose
/// process was on this host and is gone; returns how many.
pub async fn mark_dead_runs(store: &Store, runs: &mut [RunRecord]) -> Result<usize, StoreError> {
    let host = host_name();
    let mut marked = 0;
    for r in runs.iter_mut().filter(|r| r.status == RunStatus::Running) {
        let process = &r.tags["process"];
        let (Some(h), Some(pid)) = (process["host"].as_str(), process["pid"].as_u64()) else {
            continue;
        };
        if h == host && process_alive(pid) == Some(false) {
            store.finish_run(&r.id, RunStatus::Failed).await?;
            r.status = RunStatus::Failed;
            marked += 1;
        }
    }
    Ok(marked)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_running_run_whose_process_is_gone_is_marked_failed_and_others_are_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
            .await
            .unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let host = host_name();
        let tagged = |h: &str, pid: u32| json!({"process": {"host": h, "pid": pid}});
        let gone = store
            .start_run("e", "gone", &json!({}), &tagged(&host, dead))
            .await
            .unwrap();
        let alive = store
            .start_run("e", "alive", &json!({}), &with_process(&json!({})))
            .await
            .unwrap();
        let elsewhere = store
            .start_run("e", "elsewhere", &json!({}), &tagged("another-host", dead))
            .await
            .unwrap();
        let untagged = store.start_run("e", "old", &json!({}), &json!({})).await.unwrap();
        let mut runs = store.recent_runs(10).await.unwrap();
        assert_eq!(mark_dead_runs(&store, &mut runs).await.unwrap(), 1);
        let status = |id: &str| runs.iter().find(|r| r.id == id).unwrap().status;
        assert_eq!(status(&gone), RunStatus::Failed);
        assert_eq!(store.run(&gone).await.unwrap().status, RunStatus::Failed, "saved");
        for id in [&alive, &elsewhere, &untagged] {
            assert_eq!(status(id), RunStatus::Running);
        }
        assert_eq!(mark_dead_runs(&store, &mut runs).await.unwrap(), 0, "once");
    }
}
