//! The forensics worker. With a bus (`bus.url`), it moves events from NATS
//! JetStream into the store's audit trail through a durable consumer (any
//! number of workers share it, each event going to one), explains the
//! batch's decisions, and acknowledges the batch only once its events and
//! explanations are stored, so a worker killed mid-batch leaves them to be
//! delivered again, and the store keeps each once. Without a bus (the
//! in-process default, where sessions write their events to the store
//! themselves), it explains the stored decisions that have no explanation
//! yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tradelab_bus::jetstream::JetStreamConsumer;
use tradelab_store::explanations::DecisionCursor;
use tradelab_store::Store;

use super::event_row;
use super::forensics::Explainer;
use crate::settings::Settings;

/// The durable consumer's name: every worker shares it.
pub const CONSUMER: &str = "tradelab-audit";

/// Decisions explained per pass in the store's mode.
const PAGE: i64 = 64;

/// What a worker has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Messages received from the bus.
    pub received: u64,
    /// Events stored for the first time.
    pub stored: u64,
    /// Events the store held already (delivered again).
    pub duplicates: u64,
    /// Messages that were not events (acknowledged and skipped).
    pub malformed: u64,
    /// Decisions explained.
    pub explained: u64,
    /// Decisions left unexplained (their model could not be opened or holds
    /// other weights; each reason is warned about).
    pub unexplained: u64,
    /// Milliseconds from decision to explanation stored, for the first
    /// [`LAGS_KEPT`] decisions explained.
    pub lags_ms: Vec<i64>,
}

/// Lags a worker keeps for its report (8 MB at most).
pub const LAGS_KEPT: usize = 1_000_000;

impl IngestStats {
    fn add(&mut self, e: super::forensics::Explained) {
        self.explained += e.explained;
        self.unexplained += e.skipped;
        let room = LAGS_KEPT.saturating_sub(self.lags_ms.len());
        self.lags_ms.extend(e.lags_ms.into_iter().take(room));
    }

    /// The lag from decision to explanation stored at quantile `q` (0 to
    /// 1), milliseconds; `None` before any.
    pub fn lag_ms(&self, q: f64) -> Option<i64> {
        let mut v = self.lags_ms.clone();
        v.sort_unstable();
        let last = v.len().checked_sub(1)?;
        Some(v[(last as f64 * q.clamp(0.0, 1.0)).round() as usize])
    }
}

/// Works until `stop` is set or, with `until_idle`, until there is nothing
/// left to do; explanations integrate over `steps` points. Calls `progress`
/// after each batch.
pub fn run(
    settings: &Settings,
    until_idle: bool,
    steps: usize,
    stop: &AtomicBool,
    mut progress: impl FnMut(&IngestStats),
) -> Result<IngestStats> {
    let runtime = crate::runtime::runtime()?;
    let store = crate::record::open_store(&runtime, settings)?;
    let mut explainer = Explainer::new(steps);
    let stats = if settings.bus.url.is_empty() {
        let mut stats = IngestStats::default();
        explain_stored(
            &runtime,
            &store,
            &mut explainer,
            until_idle,
            stop,
            &mut progress,
            &mut stats,
        )
        .map(|_| stats)
    } else {
        from_bus(
            settings,
            &runtime,
            &store,
            &mut explainer,
            until_idle,
            stop,
            &mut progress,
        )
    };
    runtime.block_on(store.close());
    stats
}

fn warn(message: String) {
    eprintln!("warning: {message}");
}

fn from_bus(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    explainer: &mut Explainer,
    until_idle: bool,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&IngestStats),
) -> Result<IngestStats> {
    let mut consumer = JetStreamConsumer::new(settings.bus.jetstream(), CONSUMER).map_err(anyhow::Error::new)?;
    let mut stats = IngestStats::default();
    while !stop.load(Ordering::SeqCst) {
        let batch = match consumer.fetch(512, Duration::from_millis(500)) {
            Ok(b) => b,
            Err(e) if until_idle => return Err(anyhow::Error::new(e)),
            Err(e) => {
                eprintln!("warning: {e}; trying again");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if batch.is_empty() {
            // Idle: decisions left unexplained (a session's model event
            // stored by another worker after its decisions reached this
            // one, or a worker stopped between storing and explaining).
            explain_stored(runtime, store, explainer, true, stop, progress, &mut stats)?;
            if until_idle {
                break;
            }
            continue;
        }
        stats.received += batch.len() as u64;
        let rows: Vec<_> = batch
            .iter()
            .filter_map(|d| match &d.event {
                Ok(e) => Some(event_row(e)),
                Err(why) => {
                    eprintln!("warning: skipped a message that is not an event: {why}");
                    None
                }
            })
            .collect();
        stats.malformed += (batch.len() - rows.len()) as u64;
        let added = runtime
            .block_on(store.record_audit_events(&rows))
            .context("writing events to the audit trail (they stay in JetStream and are delivered again)")?;
        stats.stored += added;
        stats.duplicates += rows.len() as u64 - added;
        let explained = runtime
            .block_on(explainer.explain_rows(store, &rows, &mut warn))
            .context("explaining decisions (the batch stays in JetStream and is delivered again)")?;
        stats.add(explained);
        consumer.ack(&batch).map_err(anyhow::Error::new)?;
        progress(&stats);
    }
    Ok(stats)
}

/// Explains the stored decisions that have none, oldest first; with
/// `until_idle`, until none is left, otherwise until `stop`.
fn explain_stored(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    explainer: &mut Explainer,
    until_idle: bool,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&IngestStats),
    stats: &mut IngestStats,
) -> Result<()> {
    let mut cursor: Option<DecisionCursor> = None;
    while !stop.load(Ordering::SeqCst) {
        let rows = runtime
            .block_on(store.unexplained_decisions(cursor.as_ref(), PAGE))
            .context("reading decisions waiting for an explanation")?;
        let Some(last) = rows.last() else {
            if until_idle {
                break;
            }
            // From the start again: decisions stored late, behind the cursor.
            cursor = None;
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        cursor = Some((last.at_ms, last.session_id.clone(), last.seq));
        let explained = runtime
            .block_on(explainer.explain_rows(store, &rows, &mut warn))
            .context("explaining decisions")?;
        stats.add(explained);
        progress(stats);
    }
    Ok(())
}
