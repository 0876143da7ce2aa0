//! `tradelab forensics`: a worker that moves the trading sessions' events
//! from NATS JetStream into the store's audit trail, until Ctrl-C (or
//! until the stream is idle).

use anyhow::Result;
use tradelab_app::audit::ingest;

use crate::cli::{ForensicsArgs, GlobalArgs};
use crate::context::load_settings;

pub fn run(g: &GlobalArgs, a: &ForensicsArgs) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let stop = crate::interrupt::install("\nstopping after the batch in hand\n");
    eprintln!(
        "forensics worker: {} (stream {}) -> the audit trail in {}",
        settings.bus.url,
        settings.bus.stream,
        tradelab_store::redact(&settings.store.database_url())
    );
    let stats = ingest::run(&settings, a.until_idle, stop, |s| {
        eprintln!(
            "{} events received, {} stored, {} already stored, {} not events",
            s.received, s.stored, s.duplicates, s.malformed
        );
    })?;
    println!(
        "{} events received, {} stored, {} already stored, {} not events",
        stats.received, stats.stored, stats.duplicates, stats.malformed
    );
    Ok(())
}
