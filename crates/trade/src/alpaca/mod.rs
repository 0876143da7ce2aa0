//! Alpaca (<https://alpaca.markets>), the first real broker: its trading
//! API v2 as a [`Broker`](crate::Broker) ([`AlpacaBroker`]), its historical
//! bars ([`AlpacaMarketData`]) and its live bar stream as a
//! [`Feed`](crate::Feed) ([`AlpacaFeed`]).
//!
//! Credentials come from `APCA_API_KEY_ID` and `APCA_API_SECRET_KEY` and
//! never appear in an error or a log.

use std::time::Duration;

use serde_json::Value;

pub mod broker;
pub mod market_data;
pub mod stream;

pub use broker::AlpacaBroker;
pub use market_data::AlpacaMarketData;
pub use stream::{AlpacaFeed, BarAssembler, StreamConfig};

/// The environment variables holding the credentials.
pub const KEY_ID_ENV: &str = "APCA_API_KEY_ID";
/// The secret's variable.
pub const SECRET_ENV: &str = "APCA_API_SECRET_KEY";
/// Alpaca's paper-trading endpoint.
pub const PAPER_URL: &str = "https://paper-api.alpaca.markets";
/// Alpaca's market-data endpoint (historical bars).
pub const DATA_URL: &str = "https://data.alpaca.markets";
/// Alpaca's real-time stream of the free IEX feed (`.../v2/sip` is the
/// paid consolidated tape).
pub const STREAM_URL: &str = "wss://stream.data.alpaca.markets/v2/iex";

/// The key id and secret from `lookup` (the environment):
/// [`BrokerError::Credentials`](crate::BrokerError::Credentials) naming the
/// variable that is missing.
pub fn credentials(lookup: impl Fn(&str) -> Option<String>) -> Result<(String, String), crate::BrokerError> {
    let key = |name: &str| {
        lookup(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            crate::BrokerError::Credentials(format!("{name} is not set; export your Alpaca key id and secret"))
        })
    };
    Ok((key(KEY_ID_ENV)?, key(SECRET_ENV)?))
}

/// One HTTP client setting for every Alpaca REST call: a 10 s limit, and
/// error statuses answered as values (their bodies carry Alpaca's reason).
fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Alpaca's error body's message, or the raw text.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// A decimal string or number as f64.
fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// RFC 3339 (`2024-01-02T14:30:00Z`) of UTC milliseconds, as Alpaca reads.
fn rfc3339(ts_ms: i64) -> String {
    format!("{}Z", tradelab_core::time::format_datetime(ts_ms))
}

/// UTC milliseconds of Alpaca's RFC 3339 times.
fn parse_time(v: &Value) -> Option<i64> {
    tradelab_data::load::timestamp::TimestampFormat::Iso.parse(v.as_str()?.as_bytes())
}
