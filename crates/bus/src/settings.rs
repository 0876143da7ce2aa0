//! `bus:`: where a trading session's events go.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tradelab_core::settings::Validator;

use crate::jetstream::JetStreamOptions;

/// `bus:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusSettings {
    /// Publish every decision, order, fill, risk verdict, breaker
    /// transition and model change (the audit trail). Needs the store
    /// (`store.record`) when `url` is empty.
    pub events: bool,
    /// Empty: the in-process bus (events are written to the store's audit
    /// trail by the session's own process). `nats://host:port`: NATS
    /// JetStream; `tradelab forensics` workers write the trail.
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// Subjects are `<subject_prefix>.<session>`.
    pub subject_prefix: String,
    /// Days JetStream keeps an event (the store keeps the audit trail for
    /// `audit.retention_years`).
    pub retention_days: f64,
    /// Milliseconds to wait for JetStream's acknowledgement before events
    /// go to the spool instead.
    pub ack_timeout_ms: u64,
    /// Where events wait while the bus is unreachable.
    pub spool_dir: String,
    /// The spool's limit per session, in MB; past it events are dropped
    /// (and counted in the session's report).
    pub spool_max_mb: f64,
}

impl Default for BusSettings {
    fn default() -> Self {
        BusSettings {
            events: true,
            url: String::new(),
            stream: "TRADELAB_EVENTS".into(),
            subject_prefix: "tradelab.events".into(),
            retention_days: 30.0,
            ack_timeout_ms: 2000,
            spool_dir: "spool".into(),
            spool_max_mb: 1024.0,
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl BusSettings {
    /// Range and form checks.
    pub fn validate(&self, v: &mut Validator) {
        v.check(
            self.url.is_empty() || self.url.starts_with("nats://") || self.url.starts_with("tls://"),
            "bus.url",
            &self.url,
            "is not a NATS URL",
            "empty (the in-process bus) or nats://host:port",
        );
        v.check(
            is_token(&self.stream),
            "bus.stream",
            &self.stream,
            "is not a stream name",
            "letters, digits, _ and -",
        );
        v.check(
            !self.subject_prefix.is_empty() && self.subject_prefix.split('.').all(is_token),
            "bus.subject_prefix",
            &self.subject_prefix,
            "is not a subject prefix",
            "dot-separated tokens of letters, digits, _ and - (tradelab.events)",
        );
        v.range("bus.retention_days", self.retention_days, 0.001, 36_500.0);
        v.int_range("bus.ack_timeout_ms", self.ack_timeout_ms as usize, 10, 600_000);
        v.check(
            !self.spool_dir.trim().is_empty(),
            "bus.spool_dir",
            &self.spool_dir,
            "is empty",
            "a folder",
        );
        v.range("bus.spool_max_mb", self.spool_max_mb, 0.001, 1e7);
    }

    /// The JetStream options these settings describe (`url` must be set).
    pub fn jetstream(&self) -> JetStreamOptions {
        JetStreamOptions {
            url: self.url.clone(),
            stream: self.stream.clone(),
            subject_prefix: self.subject_prefix.clone(),
            max_age: Duration::from_secs_f64(self.retention_days * 86_400.0),
            max_bytes: -1,
            ack_timeout: Duration::from_millis(self.ack_timeout_ms),
        }
    }

    /// The spool's limit in bytes.
    pub fn spool_max_bytes(&self) -> u64 {
        (self.spool_max_mb * 1024.0 * 1024.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::settings::refused_key;

    #[test]
    fn the_default_is_the_files_section() {
        let from_file: BusSettings = tradelab_core::settings::default_section("bus");
        assert_eq!(from_file, BusSettings::default());
    }

    #[test]
    fn bad_bus_settings_are_refused_by_key() {
        assert!(tradelab_core::settings::first_error(|v| BusSettings::default().validate(v)).is_none());
        let refused = |edit: fn(&mut BusSettings)| refused_key(edit, BusSettings::validate);
        assert_eq!(refused(|s| s.url = "http://x".into()).as_deref(), Some("bus.url"));
        assert_eq!(refused(|s| s.stream = "a.b".into()).as_deref(), Some("bus.stream"));
        assert_eq!(
            refused(|s| s.subject_prefix = "a..b".into()).as_deref(),
            Some("bus.subject_prefix")
        );
        assert_eq!(
            refused(|s| s.retention_days = 0.0).as_deref(),
            Some("bus.retention_days")
        );
        assert_eq!(refused(|s| s.ack_timeout_ms = 1).as_deref(), Some("bus.ack_timeout_ms"));
        assert_eq!(refused(|s| s.spool_dir = " ".into()).as_deref(), Some("bus.spool_dir"));
        assert_eq!(refused(|s| s.spool_max_mb = -1.0).as_deref(), Some("bus.spool_max_mb"));
        assert!(refused(|s| s.url = "nats://127.0.0.1:4222".into()).is_none());
    }
}
