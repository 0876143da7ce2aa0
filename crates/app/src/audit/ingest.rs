//! The worker that moves events from NATS JetStream into the store's audit
//! trail: a durable consumer (any number of workers share it, each event
//! going to one), each batch stored in one transaction and acknowledged
//! only then, so a worker killed mid-batch leaves its events to be
//! delivered again, and the store keeps each once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tradelab_bus::jetstream::JetStreamConsumer;
use tradelab_store::Store;

use super::event_row;
use crate::settings::Settings;

/// The durable consumer's name: every worker shares it.
pub const CONSUMER: &str = "tradelab-audit";

/// What a worker has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Messages received.
    pub received: u64,
    /// Events stored for the first time.
    pub stored: u64,
    /// Events the store held already (delivered again).
    pub duplicates: u64,
    /// Messages that were not events (acknowledged and skipped).
    pub malformed: u64,
}

/// Moves events until `stop` is set or, with `until_idle`, until a fetch
/// finds none. Calls `progress` after each batch.
pub fn run(
    settings: &Settings,
    until_idle: bool,
    stop: &AtomicBool,
    mut progress: impl FnMut(&IngestStats),
) -> Result<IngestStats> {
    if settings.bus.url.is_empty() {
        bail!("bus.url is empty: sessions write their events to the store themselves; a forensics worker reads them from NATS JetStream (set bus.url=nats://HOST:PORT)");
    }
    let runtime = crate::runtime::runtime()?;
    let store = crate::record::open_store(&runtime, settings)?;
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
        let added = store_rows(&runtime, &store, &rows)?;
        stats.stored += added;
        stats.duplicates += rows.len() as u64 - added;
        consumer.ack(&batch).map_err(anyhow::Error::new)?;
        progress(&stats);
    }
    runtime.block_on(store.close());
    Ok(stats)
}

fn store_rows(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    rows: &[tradelab_store::audit_events::AuditEventRow],
) -> Result<u64> {
    runtime
        .block_on(store.record_audit_events(rows))
        .context("writing events to the audit trail (they stay in JetStream and are delivered again)")
}
