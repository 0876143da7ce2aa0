//! Where a trading session's events go. Without `bus.url`, the in-process
//! bus: the publisher's thread writes each batch to the store's audit
//! trail (one transaction) and then hands it to this process's
//! subscribers, so a batch counts as sent only once it is stored. With
//! `bus.url`, NATS JetStream: the stream is the durable record, and
//! `tradelab forensics` workers write it to the store.

use anyhow::{Context, Result};
use tradelab_bus::jetstream::JetStream;
use tradelab_bus::memory::MemoryBus;
use tradelab_bus::publisher::PublisherOptions;
use tradelab_bus::{ChainHead, Event, Publisher, Spool, Transport, TransportError};
use tradelab_store::Store;

use super::event_row;
use crate::settings::Settings;

/// The in-process bus behind the store: events are stored, then passed to
/// this process's subscribers.
pub struct StoreTransport {
    runtime: tokio::runtime::Runtime,
    store: Store,
    local: MemoryBus,
}

impl StoreTransport {
    /// Writes to the store at `url` (a connection of its own), then to
    /// `local`'s subscribers.
    pub fn open(url: &str, local: MemoryBus) -> Result<StoreTransport> {
        let runtime = crate::runtime::runtime()?;
        let store = runtime
            .block_on(Store::open(url))
            .context("opening the store for the audit trail")?;
        Ok(StoreTransport { runtime, store, local })
    }
}

impl Transport for StoreTransport {
    fn describe(&self) -> String {
        "the audit trail in the store".into()
    }

    fn send(&mut self, events: &[Event]) -> Result<(), TransportError> {
        let rows: Vec<_> = events.iter().map(event_row).collect();
        self.runtime
            .block_on(self.store.record_audit_events(&rows))
            .map_err(|e| TransportError(e.to_string()))?;
        self.local.send(events)
    }

    fn head(&mut self, session: &str) -> Result<Option<ChainHead>, TransportError> {
        let failed = |e: tradelab_store::StoreError| TransportError(e.to_string());
        let stored = self.runtime.block_on(self.store.audit_head(session)).map_err(failed)?;
        // Retention may have archived every stored event of the session.
        let archived = self
            .runtime
            .block_on(self.store.audit_archived_head(session))
            .map_err(failed)?;
        let newest = match (stored, archived) {
            (Some(s), Some(a)) => Some(if s.0 >= a.0 { s } else { a }),
            (s, a) => s.or(a),
        };
        Ok(newest.map(|(seq, hash)| ChainHead { seq: seq as u64, hash }))
    }
}

/// A session's publisher, and the number of the last event already
/// recorded for it (a resumed session numbers on from there).
pub struct SessionPublisher {
    /// The publisher.
    pub publisher: Publisher,
    /// The last event already held by the trail, the bus or the spool.
    pub last_seq: u64,
    /// Where the events go, in words.
    pub destination: String,
}

/// The publisher for session `session` under `settings`, or `None` when
/// events are off (`bus.events: false`, or the in-process bus without the
/// store). `local` receives every event this process sends in-process.
/// A resumed session (`resuming`) must learn where its chain ends: if the
/// bus cannot say, it is refused rather than number events twice.
pub fn session_publisher(
    settings: &Settings,
    session: &str,
    resuming: bool,
    local: MemoryBus,
) -> Result<Option<SessionPublisher>> {
    let bus = &settings.bus;
    if !bus.events || (bus.url.is_empty() && !settings.store.record) {
        return Ok(None);
    }
    let mut transport: Box<dyn Transport> = if bus.url.is_empty() {
        Box::new(StoreTransport::open(&settings.store.database_url(), local)?)
    } else {
        Box::new(JetStream::new(bus.jetstream()).map_err(anyhow::Error::new)?)
    };
    let spool = Spool::open(std::path::Path::new(&bus.spool_dir), session, bus.spool_max_bytes())
        .with_context(|| format!("opening the event spool in {} (bus.spool_dir)", bus.spool_dir))?;
    // The chain goes on from the newest event anything holds: the spool
    // (not yet sent) or the bus.
    let mut head = spool.head()?.unwrap_or_else(ChainHead::genesis);
    match transport.head(session) {
        Ok(Some(h)) if h.seq > head.seq => head = h,
        Ok(_) => {}
        Err(e) if resuming => {
            anyhow::bail!(
                "{} did not answer ({e}), so where session {session}'s event chain ends is unknown; resume once it answers, or with --set bus.events=false",
                transport.describe()
            )
        }
        // A new session has no events anywhere yet: they wait in the spool.
        Err(e) => eprintln!(
            "warning: {} did not answer ({e}); session {session}'s events are spooled until it does",
            transport.describe()
        ),
    }
    let destination = transport.describe();
    let last_seq = head.seq;
    let publisher = Publisher::start(session, head, transport, spool, PublisherOptions::default());
    Ok(Some(SessionPublisher {
        publisher,
        last_seq,
        destination,
    }))
}
