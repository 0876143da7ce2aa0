//! A running job's log on its way to the store: the lines its process
//! prints on standard output and error, and the worker's own notes, sent
//! through a channel to one writer that stores them in batches (a few a
//! second), so a chatty job costs a handful of transactions, not one per
//! line. Each attempt keeps at most [`MAX_LINES`]; the rest are counted.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tradelab_core::time::now_ms;
use tradelab_store::job_logs::stream;
use tradelab_store::Store;

/// Lines one attempt of a job keeps in its log.
pub const MAX_LINES: usize = 5_000;
/// How often buffered lines are written.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Lines written in one transaction at most.
const BATCH: usize = 200;

type Line = (i64, &'static str, String);

/// The sending side of one attempt's log; the writer ends once every
/// clone is dropped and [`JobLog::close`] is awaited.
pub struct JobLog {
    lines: mpsc::UnboundedSender<Line>,
    writer: JoinHandle<()>,
}

impl JobLog {
    /// Starts the writer of attempt `attempt` of job `job_id`, once
    /// `opening` (the worker's note of what it runs) is stored: a worker
    /// killed a moment later still leaves its attempt's first line.
    pub async fn start(store: Store, job_id: String, attempt: i64, opening: &str) -> JobLog {
        if let Err(e) = store
            .append_job_log(&job_id, attempt, &[(now_ms(), stream::WORKER, opening)])
            .await
        {
            eprintln!("warning: job {job_id}: its log's first line not stored: {e}");
        }
        let (lines, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write(store, job_id, attempt, rx));
        JobLog { lines, writer }
    }

    /// A note of the worker's own.
    pub fn note(&self, text: impl Into<String>) {
        let _ = self.lines.send((now_ms(), stream::WORKER, text.into()));
    }

    /// Copies `source` into the log line by line as `stream` until it
    /// ends; returns the last line starting with `error` (the job's error,
    /// as the command line prints it).
    pub fn pump(
        &self,
        source: impl AsyncRead + Unpin + Send + 'static,
        stream: &'static str,
    ) -> JoinHandle<Option<String>> {
        let lines = self.lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(source);
            let mut buf = Vec::new();
            let mut last_error = None;
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                // A progress line redrawn with carriage returns: its last state.
                let text = text
                    .trim_end_matches(['\n', '\r'])
                    .rsplit('\r')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if text.starts_with("error") {
                    last_error = Some(text.trim_start_matches("error: ").to_string());
                }
                let _ = lines.send((now_ms(), stream, text));
            }
            last_error
        })
    }

    /// Waits until every line sent has been stored (the pumps must have
    /// ended first).
    pub async fn close(self) {
        drop(self.lines);
        let _ = self.writer.await;
    }
}

async fn write(store: Store, job_id: String, attempt: i64, mut rx: mpsc::UnboundedReceiver<Line>) {
    let mut pending: Vec<Line> = Vec::new();
    let mut kept = 0usize;
    let mut dropped = 0usize;
    let mut next_flush = Instant::now() + FLUSH_EVERY;
    loop {
        match tokio::time::timeout_at(next_flush, rx.recv()).await {
            Ok(Some(line)) if kept < MAX_LINES => {
                kept += 1;
                pending.push(line);
            }
            Ok(Some(_)) => dropped += 1,
            Ok(None) => break,
            Err(_) => {} // time to flush
        }
        if pending.len() >= BATCH || Instant::now() >= next_flush {
            flush(&store, &job_id, attempt, &mut pending).await;
            next_flush = Instant::now() + FLUSH_EVERY;
        }
    }
    if dropped > 0 {
        pending.push((
            now_ms(),
            stream::WORKER,
            format!("{dropped} more lines not kept: the log keeps {MAX_LINES} per attempt"),
        ));
    }
    flush(&store, &job_id, attempt, &mut pending).await;
}

async fn flush(store: &Store, job_id: &str, attempt: i64, pending: &mut Vec<Line>) {
    for chunk in pending.chunks(BATCH) {
        let rows: Vec<(i64, &str, &str)> = chunk.iter().map(|(t, s, l)| (*t, *s, l.as_str())).collect();
        // A log is worth less than the job: a write that fails is reported
        // on the worker's stderr and the job goes on.
        if let Err(e) = store.append_job_log(job_id, attempt, &rows).await {
            eprintln!("warning: job {job_id}: {} log lines not stored: {e}", rows.len());
        }
    }
    pending.clear();
}
