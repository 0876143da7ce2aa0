//! Running jobs: an apalis worker takes tickets from the queue and, for
//! each, claims the job's lease in the store and runs the job as a child
//! `tradelab` process (the same code path as the command line), while
//! renewing the lease and watching for a cancel request.
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
use tokio::io::AsyncReadExt;
use tradelab_store::jobs::{Claim, JobStatus};
use tradelab_store::Store;

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
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
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
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        // Keep the tail of stderr: its last `error:` line is the job's error.
        let mut stderr = child.stderr.take().context("the child's stderr")?;
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        let mut beat = tokio::time::interval(self.heartbeat());
        beat.tick().await;
        let outcome = loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status.context("waiting for the job's process")?;
                    let err = reader.await.unwrap_or_default();
                    break if status.success() {
                        Outcome::Finished
                    } else {
                        let line = err
                            .lines()
                            .rev()
                            .find(|l| l.starts_with("error"))
                            .map(|l| l.trim_start_matches("error: ").to_string())
                            .unwrap_or_else(|| format!("the job's process ended with {status}"));
                        Outcome::Failed(line)
                    };
                }
                _ = beat.tick() => {
                    match self.store.heartbeat_job(id, &self.name).await {
                        Ok(Some(JobStatus::CancelRequested)) => {
                            let _ = child.kill().await;
                            break Outcome::Cancelled;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            let _ = child.kill().await;
                            break Outcome::Lost;
                        }
                        // A database hiccup: keep working; the lease allows for it.
                        Err(e) => eprintln!("warning: job {id}: lease renewal failed: {e}"),
                    }
                }
            }
        };
        Ok(outcome)
    }
}

async fn handle(ticket: Ticket, ctx: Data<Arc<WorkerContext>>) -> Result<(), apalis::prelude::Error> {
    ctx.execute(&ticket.job_id).await.map_err(|e| {
        eprintln!("error: job {}: {e:#}", ticket.job_id);
        apalis::prelude::Error::Failed(Arc::new(e.into()))
    })
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
