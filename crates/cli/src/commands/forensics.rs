//! `tradelab forensics`: a worker that explains the trading sessions'
//! decisions (attributions, the model's internals, a paragraph) into the
//! store, and with a bus (`bus.url`) first moves their events from NATS
//! JetStream into the audit trail; until Ctrl-C, or until idle.

use anyhow::Result;
use tradelab_app::audit::ingest::{self, IngestStats};

use crate::cli::{ForensicsArgs, GlobalArgs};
use crate::context::load_settings;

fn line(s: &IngestStats, bus: bool) -> String {
    let explained = format!(
        "{} decisions explained, {} left unexplained",
        s.explained, s.unexplained
    );
    if bus {
        format!(
            "{} events received, {} stored, {} already stored, {} not events; {explained}",
            s.received, s.stored, s.duplicates, s.malformed
        )
    } else {
        explained
    }
}

pub fn run(g: &GlobalArgs, a: &ForensicsArgs) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let stop = crate::interrupt::install("\nstopping after the batch in hand\n");
    let store = tradelab_store::redact(&settings.store.database_url());
    let bus = !settings.bus.url.is_empty();
    if bus {
        eprintln!(
            "forensics worker: {} (stream {}) -> the audit trail and its explanations in {store}",
            settings.bus.url, settings.bus.stream
        );
    } else {
        eprintln!(
            "forensics worker: explaining the decisions in {store} (no bus.url: sessions store their own events)"
        );
    }
    let stats = ingest::run(&settings, a.until_idle, a.steps as usize, stop, |s| {
        eprintln!("{}", line(s, bus))
    })?;
    println!("{}", line(&stats, bus));
    if let (Some(p50), Some(p99)) = (stats.lag_ms(0.5), stats.lag_ms(0.99)) {
        println!("from decision to explanation stored: p50 {p50} ms, p99 {p99} ms");
    }
    Ok(())
}
