//! Running jobs: an apalis worker takes tickets from the queue and, for
//! each, claims the job's lease in the store and runs the job as a child
//! `tradelab` process (the same code path as the command line), while
//! renewing the lease and watching for a cancel request. What the process
//! prints is the job's log ([`super::log`]).
//!
//! A child process, not a thread: a cancel is a kill, a crash in one job
//! cannot take the worker down, and the child dies with its worker
//! (`PR_SET_PDEATHSIG`), so a killed worker leaves nothing running. Its
//! job's lease then lapses and the next worker to see the ticket (apalis
//! re-enqueues a dead worker's tickets) starts it again.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{Data, Monitor, WorkerBuilder, WorkerFactoryFn};
use tradelab_store::job_logs::stream;
use tradelab_store::jobs::{Claim, JobStatus};
use tradelab_store::Store;

use super::log::JobLog;
use super::queue::{Queue, Ticket};
use super::spec::JobSpec;
use crate::metrics::Metrics;
use crate::settings::{Settings, SettingsSource};

/// The environment variable that tells a child `tradelab` which job it runs.
pub const JOB_ID_ENV: &str = "TRADELAB_JOB_ID";

/// What a worker needs to run jobs: the store, the binary and its arguments, its name and lease.
pub struct WorkerContext {
    /// Where jobs, leases and progress live.
    pub store: Store,
    /// The `tradelab` binary the jobs run.
    pub binary: PathBuf,
    /// Global arguments (`--config`, `--set`) every child gets, so it reads
    /// the same settings and database as this worker.
    pub global_args: Vec<String>,
    /// This worker's identity in leases: host and process.
    pub name: String,
    /// How long a silent lease stays valid (`store.job_lease_secs`); it is
    /// renewed five times as often.
    pub lease: Duration,
    /// The server's metrics, when the worker runs inside `tradelab serve`.
    pub metrics: Option<Arc<Metrics>>,
}

/// How a job's child process ended.
enum Outcome {
    Finished,
    Failed(String),
    Cancelled,
    /// The lease passed to another worker (this one was presumed dead).
    Lost,
}

impl WorkerContext {
    fn heartbeat(&self) -> Duration {
        (self.lease / 5).max(Duration::from_millis(100))
    }

    /// Runs job `id` if this worker can claim it; waits while another
    /// worker's live lease holds it, so a ticket delivered twice runs once.
    pub async fn execute(&self, id: &str) -> Result<()> {
        let attempt = loop {
            match self
                .store
                .claim_job(id, &self.name, self.lease.as_millis() as i64)
                .await?
            {
                Claim::Claimed { attempt } => break attempt,
                Claim::Ended(_) => return Ok(()),
                Claim::Busy => tokio::time::sleep(self.heartbeat()).await,
            }
        };
        let job = self.store.job(id).await?;
        let started = Instant::now();
        let outcome = match serde_json::from_value::<JobSpec>(job.payload.clone()) {
            Ok(spec) => self.run_child(id, &spec, attempt).await?,
            Err(e) => Outcome::Failed(format!("the job's payload is not a job this build knows: {e}")),
        };
        let (status, error) = match &outcome {
            Outcome::Finished => (JobStatus::Finished, None),
            Outcome::Failed(e) => (JobStatus::Failed, Some(e.as_str())),
            Outcome::Cancelled => (JobStatus::Cancelled, None),
            Outcome::Lost => return Ok(()),
        };
        if let Outcome::Failed(e) = &outcome {
            // A payload refused before any process ran has no log yet.
            if self.store.job_log(id, 0, 1).await.is_ok_and(|l| l.is_empty()) {
                JobLog::start(self.store.clone(), id.to_string(), attempt, &format!("failed: {e}"))
                    .await
                    .close()
                    .await;
            }
        }
        self.store.finish_job(id, &self.name, status, error).await?;
        if let Some(m) = &self.metrics {
            m.observe_job(&job.kind, status.as_str(), started.elapsed().as_secs_f64());
        }
        eprintln!("job {id} ({}): {}", job.kind, status.as_str());
        Ok(())
    }

    async fn run_child(&self, id: &str, spec: &JobSpec, attempt: i64) -> Result<Outcome> {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args(&self.global_args)
            .args(spec.args())
            .env(JOB_ID_ENV, id)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a cancel stops whatever it started
            // too (a shell's children would keep its output pipes open).
            .process_group(0)
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        eprintln!("job {id} ({}, attempt {attempt}): starting", spec.kind());
        let opening = format!(
            "attempt {attempt} on worker {}: tradelab {}",
            self.name,
            spec.args().join(" ")
        );
        let log = JobLog::start(self.store.clone(), id.to_string(), attempt, &opening).await;
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                log.note(format!("the job's process did not start: {e}"));
                log.close().await;
                return Err(e).with_context(|| format!("starting {}", self.binary.display()));
            }
        };
        let mut stdout = log.pump(child.stdout.take().context("the child's stdout")?, stream::STDOUT);
        // Stderr's last `error:` line is the job's error.
        let mut stderr = log.pump(child.stderr.take().context("the child's stderr")?, stream::STDERR);
        let mut beat = tokio::time::interval(self.heartbeat());
        beat.tick().await;
        let outcome = loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status.context("waiting for the job's process")?;
                    break if status.success() {
                        Outcome::Finished
                    } else {
                        Outcome::Failed(format!("the job's process ended with {status}"))
                    };
                }
                _ = beat.tick() => {
                    match self.store.heartbeat_job(id, &self.name).await {
                        Ok(Some(JobStatus::CancelRequested)) => {
                            kill_group(&mut child).await;
                            break Outcome::Cancelled;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            kill_group(&mut child).await;
                            break Outcome::Lost;
                        }
                        // A database hiccup: keep working; the lease allows for it.
                        Err(e) => eprintln!("warning: job {id}: lease renewal failed: {e}"),
                    }
                }
            }
        };
        // The process is gone, so its pipes end: every line is read before
        // the job is marked ended, and a reader of a finished job's log
        // sees all of it.
        let error = match tokio::time::timeout(DRAIN, async {
            let _ = (&mut stdout).await;
            (&mut stderr).await.ok().flatten()
        })
        .await
        {
            Ok(error) => error,
            // Something outside the group still holds the pipes open.
            Err(_) => {
                stdout.abort();
                stderr.abort();
                None
            }
        };
        let outcome = match (outcome, error) {
            (Outcome::Failed(_), Some(error)) => Outcome::Failed(error),
            (outcome, _) => outcome,
        };
        log.note(match &outcome {
            Outcome::Finished => "finished".to_string(),
            Outcome::Failed(e) => format!("failed: {e}"),
            Outcome::Cancelled => "cancelled: the process was stopped on request".to_string(),
            Outcome::Lost => "stopped: the lease passed to another worker, which runs the job now".to_string(),
        });
        log.close().await;
        Ok(outcome)
    }
}

/// How long the output of an ended job's process may take to be read.
const DRAIN: Duration = Duration::from_secs(5);

/// Kills the job's process and every process it started (its group).
async fn kill_group(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on the process group this worker created for its
        // own child (`process_group(0)`: the group id is the child's pid).
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    let _ = child.kill().await;
}

async fn handle(ticket: Ticket, ctx: Data<Arc<WorkerContext>>) -> Result<(), apalis::prelude::Error> {
    ctx.execute(&ticket.job_id).await.map_err(|e| {
        eprintln!("error: job {}: {e:#}", ticket.job_id);
        apalis::prelude::Error::Failed(Arc::new(e.into()))
    })
}

/// Runs `work` to its end with `worker`'s slots (none: other processes run
/// the jobs) serving `queue` meanwhile, or until Ctrl-C / SIGTERM, which
/// ends it with `interrupted` as the error; then stops the worker. What
/// the command-line drivers of queued work (sweeps, seed batches) share.
pub async fn with_local_worker<T>(
    queue: &Queue,
    worker: Option<(WorkerContext, usize)>,
    work: impl std::future::Future<Output = Result<T>>,
    interrupted: impl FnOnce() -> String,
) -> Result<T> {
    let work = async {
        tokio::select! {
            r = work => r,
            _ = crate::runtime::shutdown_signal() => Err(anyhow::anyhow!(interrupted())),
        }
    };
    let Some((ctx, slots)) = worker else {
        return work.await;
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(run(queue.clone(), ctx, slots, async move {
        let _ = stopped.await;
    }));
    let result = work.await;
    let _ = stop.send(());
    match handle.await {
        Ok(Err(e)) if result.is_ok() => Err(e),
        Err(e) if result.is_ok() => Err(anyhow::anyhow!("the local worker stopped: {e}")),
        _ => result,
    }
}

/// Runs `concurrency` job slots on `queue` until `shutdown` resolves.
pub async fn run(
    queue: Queue,
    ctx: WorkerContext,
    concurrency: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let ctx = Arc::new(ctx);
    let builder = WorkerBuilder::new(&ctx.name)
        .concurrency(concurrency.max(1))
        .data(ctx.clone());
    let monitor = match queue {
        Queue::Sqlite(s) => Monitor::new().register(builder.backend(s).build_fn(handle)),
        Queue::Postgres(s) => Monitor::new().register(builder.backend(s).build_fn(handle)),
    };
    monitor
        .shutdown_timeout(Duration::from_secs(5))
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await
        .context("running the job worker")
}

impl WorkerContext {
    /// A worker that runs jobs with this process's binary and settings.
    pub fn new(
        store: Store,
        settings: &Settings,
        source: &SettingsSource,
        metrics: Option<Arc<Metrics>>,
    ) -> WorkerContext {
        WorkerContext {
            store,
            binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tradelab")),
            global_args: source.child_args(),
            name: worker_name(),
            lease: Duration::from_secs_f64(settings.store.job_lease_secs),
            metrics,
        }
    }
}

/// This process's worker name: host and process id, unique across machines.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    //! The worker's supervision of a job's child process, with `sh` as the
    //! child: what it is given, how its exit becomes the job's status, and
    //! how cancels, lost leases and duplicate tickets end it. The real
    //! `tradelab` child runs end to end in `crates/cli/tests/jobs.rs`.

    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::jobs::spec::BacktestJob;
    use crate::metrics::JobFacts;

    fn spec() -> JobSpec {
        JobSpec::Backtest(BacktestJob {
            strategy: "momentum".into(),
            symbols: vec!["nvda-1999-2014".into()],
            fill: None,
            settings: Vec::new(),
        })
    }

    /// A worker whose jobs run `script` in `sh` (the job's arguments follow
    /// as `$1...`), with a 500 ms lease renewed every 100 ms.
    fn worker(store: &Store, script: &str, metrics: Option<Arc<Metrics>>) -> WorkerContext {
        WorkerContext {
            store: store.clone(),
            binary: PathBuf::from("/bin/sh"),
            global_args: vec!["-c".into(), script.into(), "tradelab".into()],
            name: "unit-worker".into(),
            lease: Duration::from_millis(500),
            metrics,
        }
    }

    async fn store(dir: &Path) -> Store {
        Store::open(&crate::testing::sqlite_settings(dir).store.url)
            .await
            .unwrap()
    }

    async fn enqueue(store: &Store) -> String {
        store
            .enqueue_job("backtest", &serde_json::to_value(spec()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_job_runs_once_as_a_child_given_its_id_and_arguments_and_its_exit_sets_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let seen = dir.path().join("seen.txt");
        let script = format!(
            "printf '%s|%s|%s\\n' \"$TRADELAB_JOB_ID\" \"$NO_COLOR\" \"$*\" >> '{}'",
            seen.display()
        );
        let metrics = Arc::new(Metrics::default());
        let w = worker(&store, &script, Some(metrics.clone()));
        let id = enqueue(&store).await;
        w.execute(&id).await.unwrap();
        let job = store.job(&id).await.unwrap();
        assert_eq!((job.status, job.error, job.attempts), (JobStatus::Finished, None, 1));
        let line = std::fs::read_to_string(&seen).unwrap();
        assert_eq!(
            line,
            format!("{id}|1|{}\n", spec().args().join(" ")),
            "the child gets the job's id, no colours, and the job's command line"
        );
        let text = metrics.render(&JobFacts::default());
        assert!(
            text.contains("tradelab_job_duration_seconds_count{kind=\"backtest\",outcome=\"finished\"} 1"),
            "{text}"
        );
        // The same ticket delivered again finds the job ended and runs nothing.
        w.execute(&id).await.unwrap();
        assert_eq!(std::fs::read_to_string(&seen).unwrap().lines().count(), 1);
    }

    #[tokio::test]
    async fn a_failed_child_leaves_its_last_error_line_as_the_jobs_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let named = worker(
            &store,
            "echo 'loading' >&2; echo 'error: first' >&2; echo 'error: the symbol `x` has no data file' >&2; echo 'hint: see data/' >&2; exit 2",
            None,
        );
        let id = enqueue(&store).await;
        named.execute(&id).await.unwrap();
        let job = store.job(&id).await.unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.as_deref(), Some("the symbol `x` has no data file"));

        // Its log: the worker's opening note, the process's lines on both
        // streams in order, and how it ended.
        let chatty = worker(
            &store,
            "echo 'step 1'; printf 'half\rdone\n'; echo 'warning: slow' >&2; echo 'error: the disk is full' >&2; exit 1",
            None,
        );
        let id = enqueue(&store).await;
        chatty.execute(&id).await.unwrap();
        let log: Vec<(String, String)> = store
            .job_log(&id, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.stream, l.line))
            .collect();
        assert!(
            log[0].0 == "worker" && log[0].1.starts_with("attempt 1 on worker unit-worker: tradelab"),
            "{log:?}"
        );
        let of = |stream: &str| -> Vec<&str> { log.iter().filter(|l| l.0 == stream).map(|l| l.1.as_str()).collect() };
        assert_eq!(of("stdout"), ["step 1", "done"], "a redrawn line keeps its last state");
        assert_eq!(of("stderr"), ["warning: slow", "error: the disk is full"]);
        assert_eq!(log.last().unwrap().1, "failed: the disk is full");
        assert_eq!(store.job(&id).await.unwrap().error.as_deref(), Some("the disk is full"));

        let silent = worker(&store, "exit 3", None);
        let id = enqueue(&store).await;
        silent.execute(&id).await.unwrap();
        let error = store.job(&id).await.unwrap().error.unwrap();
        assert!(error.contains("ended with") && error.contains('3'), "{error}");
    }

    #[tokio::test]
    async fn a_payload_this_build_does_not_know_fails_without_starting_anything() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let seen = dir.path().join("seen.txt");
        let w = worker(&store, &format!("touch '{}'", seen.display()), None);
        let id = store
            .enqueue_job("optimise", &json!({"kind": "optimise", "grid": []}))
            .await
            .unwrap();
        w.execute(&id).await.unwrap();
        let job = store.job(&id).await.unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert!(job.error.unwrap().contains("not a job this build knows"));
        assert!(!seen.exists());
    }

    #[tokio::test]
    async fn a_cancel_request_kills_the_child_and_ends_the_job_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let w = worker(&store, "sleep 30", None);
        let id = enqueue(&store).await;
        let started = Instant::now();
        let cancel = {
            let store = store.clone();
            let id = id.clone();
            async move {
                while store.job(&id).await.unwrap().status != JobStatus::Running {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                store.request_cancel(&id).await.unwrap()
            }
        };
        let (ran, asked) = tokio::join!(w.execute(&id), cancel);
        ran.unwrap();
        assert_eq!(asked, JobStatus::CancelRequested);
        assert_eq!(store.job(&id).await.unwrap().status, JobStatus::Cancelled);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the child and the sleep it started were killed, not awaited"
        );
        let log = store.job_log(&id, 0, 100).await.unwrap();
        assert!(log.last().unwrap().line.starts_with("cancelled"), "{log:?}");
    }

    #[tokio::test]
    async fn a_worker_whose_lease_passed_to_another_stops_and_leaves_the_job_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let w = worker(&store, "sleep 30", None);
        let id = enqueue(&store).await;
        let take_over = {
            let store = store.clone();
            let id = id.clone();
            async move {
                while store.job(&id).await.unwrap().status != JobStatus::Running {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // As if this worker had gone silent: a zero lease lapses
                // once its last heartbeat is a millisecond old.
                loop {
                    match store.claim_job(&id, "other-worker", 0).await.unwrap() {
                        Claim::Busy => tokio::time::sleep(Duration::from_millis(2)).await,
                        claim => break claim,
                    }
                }
            }
        };
        let started = Instant::now();
        let (ran, claim) = tokio::join!(w.execute(&id), take_over);
        ran.unwrap();
        assert_eq!(claim, Claim::Claimed { attempt: 2 });
        let job = store.job(&id).await.unwrap();
        assert_eq!(job.status, JobStatus::Running, "the new holder runs it");
        assert_eq!(job.worker.as_deref(), Some("other-worker"));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_ticket_held_by_a_live_lease_waits_and_runs_nothing_once_the_holder_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let seen = dir.path().join("seen.txt");
        let w = worker(&store, &format!("touch '{}'", seen.display()), None);
        let id = enqueue(&store).await;
        assert_eq!(
            store.claim_job(&id, "holder", 60_000).await.unwrap(),
            Claim::Claimed { attempt: 1 }
        );
        let holder = {
            let store = store.clone();
            let id = id.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                store
                    .finish_job(&id, "holder", JobStatus::Finished, None)
                    .await
                    .unwrap()
            }
        };
        let (ran, finished) = tokio::join!(w.execute(&id), holder);
        ran.unwrap();
        assert!(finished);
        assert!(!seen.exists(), "the waiting worker did not run it again");
        assert_eq!(store.job(&id).await.unwrap().worker.as_deref(), Some("holder"));
    }

    #[tokio::test]
    async fn a_binary_that_cannot_start_is_the_workers_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let w = WorkerContext {
            binary: dir.path().join("no-such-tradelab"),
            ..worker(&store, "", None)
        };
        let id = enqueue(&store).await;
        let e = format!("{:#}", w.execute(&id).await.unwrap_err());
        assert!(e.contains("starting") && e.contains("no-such-tradelab"), "{e}");
    }

    #[tokio::test]
    async fn the_worker_loop_takes_tickets_from_the_queue_until_shut_down() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::testing::sqlite_settings(dir.path());
        let (store, queue) = crate::jobs::queue::open_platform(&settings).await.unwrap();
        let ids = [
            queue.submit(&store, &spec()).await.unwrap(),
            queue.submit(&store, &spec()).await.unwrap(),
        ];
        let done = {
            let store = store.clone();
            let ids = ids.clone();
            async move {
                for id in &ids {
                    while !store.job(id).await.unwrap().status.is_terminal() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        };
        tokio::time::timeout(
            Duration::from_secs(60),
            run(queue, worker(&store, "exit 0", None), 2, done),
        )
        .await
        .expect("the worker shuts down once both jobs ended")
        .unwrap();
        for id in &ids {
            assert_eq!(store.job(id).await.unwrap().status, JobStatus::Finished);
        }
    }

    #[test]
    fn a_worker_built_from_settings_runs_this_binary_with_the_same_settings() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::runtime::runtime().unwrap();
        let store = rt.block_on(store(dir.path()));
        let mut settings = crate::testing::sqlite_settings(dir.path());
        settings.store.job_lease_secs = 2.0;
        let source = SettingsSource {
            config: Some(dir.path().join("settings.yaml")),
            overrides: vec!["ppo.hidden=16".into()],
            ..SettingsSource::default()
        };
        let w = WorkerContext::new(store, &settings, &source, None);
        assert_eq!(w.binary, std::env::current_exe().unwrap());
        assert_eq!(w.global_args, source.child_args());
        assert_eq!(w.lease, Duration::from_secs(2));
        assert_eq!(w.heartbeat(), Duration::from_millis(400));
        assert!(w.name.ends_with(&format!("-{}", std::process::id())), "{}", w.name);
    }
}
