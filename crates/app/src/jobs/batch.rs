//! A batch of jobs run to the end: queued together, run by a worker in
//! this process (and any `tradelab worker` sharing the database), waited
//! for, and returned in the order given. What `train --seeds K` uses.

use std::time::Duration;

use anyhow::{Context, Result};
use tradelab_store::jobs::JobRecord;
use tradelab_store::Store;

use super::queue::Queue;
use super::spec::JobSpec;
use super::worker::{with_local_worker, WorkerContext};

/// Queues `specs`, runs them with `worker`'s slots (none: other processes
/// run them), and waits until every one has ended, calling `on_end` as
/// each does. Ctrl-C or SIGTERM stops the wait with an error; jobs still
/// queued stay queued for other workers.
pub async fn run_batch(
    store: &Store,
    queue: &Queue,
    specs: &[JobSpec],
    worker: Option<(WorkerContext, usize)>,
    poll: Duration,
    mut on_end: impl FnMut(usize, &JobRecord),
) -> Result<Vec<JobRecord>> {
    for s in specs {
        s.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut ids = Vec::with_capacity(specs.len());
    for s in specs {
        ids.push(queue.submit(store, s).await.context("queueing a job")?);
    }
    let wait = async {
        let mut done: Vec<Option<JobRecord>> = vec![None; ids.len()];
        while done.iter().any(Option::is_none) {
            for (i, id) in ids.iter().enumerate() {
                if done[i].is_some() {
                    continue;
                }
                let job = store.job(id).await?;
                if job.status.is_terminal() {
                    on_end(i, &job);
                    done[i] = Some(job);
                }
            }
            if done.iter().any(Option::is_none) {
                tokio::time::sleep(poll).await;
            }
        }
        Ok(done.into_iter().flatten().collect::<Vec<_>>())
    };
    with_local_worker(queue, worker, wait, || {
        "interrupted; the jobs go on under any running `tradelab worker` (tradelab runs list shows them)".into()
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;
    use tradelab_store::jobs::JobStatus;

    use super::*;
    use crate::jobs::spec::BacktestJob;

    #[tokio::test]
    async fn a_batch_runs_every_job_with_the_local_worker_and_returns_them_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::testing::sqlite_settings(dir.path());
        let (store, queue) = crate::jobs::queue::open_platform(&settings).await.unwrap();
        let spec = |s: &str| {
            JobSpec::Backtest(BacktestJob {
                strategy: s.into(),
                symbols: vec!["x".into()],
                fill: None,
                settings: vec![],
            })
        };
        // The "binary" is sh: the momentum job fails, the others succeed.
        let ctx = WorkerContext {
            store: store.clone(),
            binary: PathBuf::from("/bin/sh"),
            global_args: vec![
                "-c".into(),
                "case \"$*\" in *momentum*) echo 'error: no data' >&2; exit 3;; esac".into(),
                "tradelab".into(),
            ],
            name: "batch-worker".into(),
            lease: Duration::from_millis(500),
            metrics: None,
        };
        let specs = [spec("buy_and_hold"), spec("momentum"), spec("sma_crossover")];
        let mut seen = Vec::new();
        let jobs = run_batch(
            &store,
            &queue,
            &specs,
            Some((ctx, 2)),
            Duration::from_millis(20),
            |i, _| seen.push(i),
        )
        .await
        .unwrap();
        let statuses: Vec<JobStatus> = jobs.iter().map(|j| j.status).collect();
        assert_eq!(
            statuses,
            vec![JobStatus::Finished, JobStatus::Failed, JobStatus::Finished]
        );
        assert_eq!(jobs[1].error.as_deref(), Some("no data"));
        assert_eq!(jobs[0].payload, json!(specs[0]));
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2]);

        let bad = JobSpec::Backtest(BacktestJob {
            strategy: "nope".into(),
            symbols: vec!["x".into()],
            fill: None,
            settings: vec![],
        });
        let e = run_batch(&store, &queue, &[bad], None, Duration::from_millis(20), |_, _| {})
            .await
            .unwrap_err();
        assert!(e.to_string().contains("unknown strategy"), "{e}");
    }
}
