//! Alpaca's historical bars (`GET /v2/stocks/{symbol}/bars`, paged by
//! `next_page_token`): the history that warms a live session's features
//! up, and the bars a stream missed while it was down.

use std::time::Duration;

use serde_json::Value;
use tradelab_core::Bar;

use super::{http_agent, message, number, parse_time, rfc3339, KEY_ID_ENV, SECRET_ENV};
use crate::feed::FeedError;

/// Requests answered 429 are retried this many times, a second apart.
const RATE_LIMIT_RETRIES: usize = 5;

/// A client of Alpaca's market-data REST API.
pub struct AlpacaMarketData {
    base: String,
    key_id: String,
    secret: String,
    /// `iex` (free) or `sip`.
    source: String,
    agent: ureq::Agent,
    /// Waited after a 429 (shortened by tests).
    rate_limit_wait: Duration,
}

/// Alpaca's name of a bar size: `1Min`, `15Min`, `1Hour`, `1Day`; `None`
/// for sizes it does not serve (not whole minutes, or over a day).
pub fn alpaca_timeframe(timeframe_ms: i64) -> Option<String> {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    match timeframe_ms {
        DAY => Some("1Day".into()),
        t if t > 0 && t % HOUR == 0 && t / HOUR <= 23 => Some(format!("{}Hour", t / HOUR)),
        t if t > 0 && t % MIN == 0 && t / MIN <= 59 => Some(format!("{}Min", t / MIN)),
        _ => None,
    }
}

/// `t` floored to the start of its `timeframe_ms` bucket (Alpaca stamps a
/// daily bar at New York's midnight; the session's daily bars are UTC days).
pub fn bucket_of(t: i64, timeframe_ms: i64) -> i64 {
    t.div_euclid(timeframe_ms) * timeframe_ms
}

/// One bar of Alpaca's JSON (`t`, `o`, `h`, `l`, `c`, `v`); a missing or
/// unreadable price becomes NaN, which the session's checks refuse.
pub(super) fn bar_of(v: &Value) -> Option<Bar> {
    Some(Bar {
        ts: parse_time(&v["t"])?,
        open: number(&v["o"]),
        high: number(&v["h"]),
        low: number(&v["l"]),
        close: number(&v["c"]),
        volume: number(&v["v"]),
    })
}

impl AlpacaMarketData {
    /// A client of `base` (e.g. [`DATA_URL`](super::DATA_URL)) reading the
    /// `source` feed (`iex` or `sip`).
    pub fn new(base: &str, key_id: String, secret: String, source: &str) -> Self {
        AlpacaMarketData {
            base: base.trim_end_matches('/').to_string(),
            key_id,
            secret,
            source: source.to_string(),
            agent: http_agent(),
            rate_limit_wait: Duration::from_secs(1),
        }
    }

    /// Waits `wait` after a 429 instead of a second.
    pub fn with_rate_limit_wait(mut self, wait: Duration) -> Self {
        self.rate_limit_wait = wait;
        self
    }

    /// `symbol`'s bars of `timeframe_ms` starting in `[start, end)`, oldest
    /// first, each stamped at the start of its bucket.
    pub fn bars(&self, symbol: &str, timeframe_ms: i64, start: i64, end: i64) -> Result<Vec<Bar>, FeedError> {
        self.fetch(symbol, timeframe_ms, start, end, None)
    }

    /// The last `n` bars of `symbol` starting before `end` (searched back
    /// from `earliest`), oldest first.
    pub fn last_bars(
        &self,
        symbol: &str,
        timeframe_ms: i64,
        n: usize,
        earliest: i64,
        end: i64,
    ) -> Result<Vec<Bar>, FeedError> {
        let mut bars = self.fetch(symbol, timeframe_ms, earliest, end, Some(n))?;
        bars.reverse();
        Ok(bars)
    }

    /// Whether the market is open now, by the trading API's clock
    /// (`GET {trading_url}/v2/clock`, `is_open`).
    pub fn market_is_open(&self, trading_url: &str) -> Result<bool, FeedError> {
        let url = format!("{}/v2/clock", trading_url.trim_end_matches('/'));
        let clock = self.get(&url, "the market clock")?;
        clock["is_open"]
            .as_bool()
            .ok_or_else(|| FeedError::Disconnected(format!("Alpaca's clock has no is_open: {clock}")))
    }

    /// Pages through the bars; `newest`: only the newest `n`, newest first.
    fn fetch(
        &self,
        symbol: &str,
        timeframe_ms: i64,
        start: i64,
        end: i64,
        newest: Option<usize>,
    ) -> Result<Vec<Bar>, FeedError> {
        let tf = alpaca_timeframe(timeframe_ms).ok_or_else(|| {
            FeedError::Refused(format!(
                "Alpaca serves bars of whole minutes, hours or one day; {timeframe_ms} ms is none of them"
            ))
        })?;
        let mut out: Vec<Bar> = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let limit = newest.map_or(10_000, |n| (n - out.len()).min(10_000));
            let mut url = format!(
                "{}/v2/stocks/{symbol}/bars?timeframe={tf}&start={}&end={}&limit={limit}&adjustment=raw&feed={}&sort={}",
                self.base,
                rfc3339(start),
                rfc3339(end),
                self.source,
                if newest.is_some() { "desc" } else { "asc" }
            );
            if let Some(p) = &page {
                url.push_str("&page_token=");
                url.push_str(p);
            }
            let body = self.get(&url, symbol)?;
            for b in body["bars"].as_array().into_iter().flatten() {
                let Some(mut bar) = bar_of(b) else {
                    return Err(FeedError::Disconnected(format!(
                        "Alpaca sent a {symbol} bar without a readable time: {b}"
                    )));
                };
                bar.ts = bucket_of(bar.ts, timeframe_ms);
                if bar.ts >= start && bar.ts < end {
                    out.push(bar);
                }
            }
            page = body["next_page_token"].as_str().map(str::to_string);
            if page.is_none() || newest.is_some_and(|n| out.len() >= n) {
                return Ok(out);
            }
        }
    }

    /// One GET, retried while rate limited; Alpaca's statuses as
    /// [`FeedError`]s that name what to do.
    fn get(&self, url: &str, symbol: &str) -> Result<Value, FeedError> {
        for attempt in 0..=RATE_LIMIT_RETRIES {
            let sent = self
                .agent
                .get(url)
                .header("APCA-API-KEY-ID", &self.key_id)
                .header("APCA-API-SECRET-KEY", &self.secret)
                .call();
            let mut response = sent.map_err(|e| {
                FeedError::Disconnected(format!("Alpaca's market data at {} cannot be reached: {e}", self.base))
            })?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            match status {
                200 => {
                    return serde_json::from_str(&text)
                        .map_err(|e| FeedError::Disconnected(format!("Alpaca's {symbol} bars are unreadable: {e}")))
                }
                429 if attempt < RATE_LIMIT_RETRIES => std::thread::sleep(self.rate_limit_wait),
                401 | 403 => {
                    return Err(FeedError::Refused(format!(
                        "Alpaca refused the market-data request ({}); check {KEY_ID_ENV}, {SECRET_ENV} and that the account may read the {} feed",
                        message(&text),
                        self.source
                    )))
                }
                400 | 404 | 422 => {
                    return Err(FeedError::Refused(format!(
                        "Alpaca has no bars for {symbol}: {}; check the symbol",
                        message(&text)
                    )))
                }
                _ => {
                    return Err(FeedError::Disconnected(format!(
                        "Alpaca's market data answered HTTP {status}: {}",
                        message(&text)
                    )))
                }
            }
        }
        Err(FeedError::Disconnected(format!(
            "Alpaca kept limiting the market-data requests for {symbol} after {RATE_LIMIT_RETRIES} retries"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_sizes_map_to_alpacas_names_and_others_are_refused() {
        assert_eq!(alpaca_timeframe(60_000).as_deref(), Some("1Min"));
        assert_eq!(alpaca_timeframe(15 * 60_000).as_deref(), Some("15Min"));
        assert_eq!(alpaca_timeframe(3_600_000).as_deref(), Some("1Hour"));
        assert_eq!(alpaca_timeframe(86_400_000).as_deref(), Some("1Day"));
        assert_eq!(alpaca_timeframe(90_000), None);
        assert_eq!(alpaca_timeframe(7 * 86_400_000), None);
    }

    #[test]
    fn a_daily_bar_stamped_at_new_yorks_midnight_is_its_utc_day() {
        let ny_midnight = parse_time(&Value::from("2024-03-05T05:00:00Z")).unwrap();
        let day = parse_time(&Value::from("2024-03-05")).unwrap();
        assert_eq!(bucket_of(ny_midnight, 86_400_000), day);
    }
}
