//! Alpaca's real-time bar stream as a [`Feed`]: a websocket
//! (`wss://stream.data.alpaca.markets/v2/{iex|sip}`) that says
//! `connected`, takes `{"action":"auth",...}` and
//! `{"action":"subscribe","bars":[...]}`, then sends each symbol's
//! one-minute bar (`{"T":"b","S":..,"o":..,"t":..}`) as it closes.
//!
//! Minute bars are assembled into the session's bar size (a bucket of
//! `timeframe_ms` is complete once each symbol's last minute of it, or a
//! later bar, arrived, or a grace period after its end passed), and each
//! timestamp's bars are handed over together. On every (re)connection the
//! bars since the last one handed over are read from the REST history
//! first, so a dropped stream leaves no gap and a restarted session catches
//! up from its first bar; a bar seen twice is taken once.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tradelab_core::time::now_ms;
use tradelab_core::Bar;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::market_data::{bar_of, bucket_of, AlpacaMarketData};
use super::{KEY_ID_ENV, SECRET_ENV};
use crate::feed::{Feed, FeedError, FeedStatus};

const MINUTE: i64 = 60_000;

/// Minute bars in, whole bars of the session's size out, in time order.
#[derive(Debug, Clone)]
pub struct BarAssembler {
    timeframe_ms: i64,
    /// Bars being assembled, by bucket start, one slot per instrument.
    pending: BTreeMap<i64, Vec<Option<Bar>>>,
    /// Per instrument: the end of the time its merged bars cover (a bar
    /// starting before it was seen already).
    covered_until: Vec<i64>,
    /// Per instrument: every bucket up to this one is complete.
    closed_through: Vec<i64>,
    /// Buckets up to this one were handed over; a bar for one is late.
    emitted_through: i64,
    late: u64,
}

impl BarAssembler {
    /// For `instruments` instruments of `timeframe_ms` bars, the first
    /// wanted bucket starting at or after `from`.
    pub fn new(instruments: usize, timeframe_ms: i64, from: i64) -> Self {
        let first = bucket_of(from + timeframe_ms - 1, timeframe_ms);
        BarAssembler {
            timeframe_ms,
            pending: BTreeMap::new(),
            covered_until: vec![i64::MIN; instruments],
            closed_through: vec![first - timeframe_ms; instruments],
            emitted_through: first - timeframe_ms,
            late: 0,
        }
    }

    /// The start of the next bucket to hand over.
    pub fn next_bucket(&self) -> i64 {
        self.emitted_through + self.timeframe_ms
    }

    /// Bars that came after their bucket was handed over (dropped).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Instrument `i`'s bar covering `[bar.ts, bar.ts + span)`: a minute of
    /// the stream (`span` one minute) or a whole bucket from the history.
    pub fn add(&mut self, i: usize, bar: Bar, span: i64) {
        let tf = self.timeframe_ms;
        let bucket = bucket_of(bar.ts, tf);
        if bucket <= self.emitted_through {
            self.late += 1;
            return;
        }
        if bar.ts < self.covered_until[i] {
            return; // seen already (history and stream overlap)
        }
        self.covered_until[i] = bar.ts + span;
        let n = self.covered_until.len();
        let slot = &mut self.pending.entry(bucket).or_insert_with(|| vec![None; n])[i];
        *slot = Some(match *slot {
            None => Bar { ts: bucket, ..bar },
            Some(b) => Bar {
                ts: bucket,
                open: b.open,
                high: b.high.max(bar.high),
                low: b.low.min(bar.low),
                close: bar.close,
                volume: b.volume + bar.volume,
            },
        });
        let through = if bar.ts + span >= bucket + tf {
            bucket
        } else {
            bucket - tf
        };
        self.closed_through[i] = self.closed_through[i].max(through);
    }

    /// The earliest complete bucket's bars into `out` (replacing its
    /// contents) and its start; complete when every instrument closed it or
    /// `grace_ms` passed since its end by `now_ms`.
    pub fn pop(&mut self, now_ms: i64, grace_ms: i64, out: &mut Vec<(usize, Bar)>) -> Option<i64> {
        let (&bucket, _) = self.pending.first_key_value()?;
        let all_closed = self.closed_through.iter().all(|&c| c >= bucket);
        if !all_closed && now_ms < bucket + self.timeframe_ms + grace_ms {
            return None;
        }
        let (_, bars) = self.pending.pop_first()?;
        out.clear();
        out.extend(bars.into_iter().enumerate().filter_map(|(i, b)| b.map(|b| (i, b))));
        self.emitted_through = bucket;
        Some(bucket)
    }
}

/// Where and what a live feed streams.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The websocket, e.g. [`STREAM_URL`](super::STREAM_URL).
    pub url: String,
    /// The key id and secret.
    pub key_id: String,
    /// The secret (never logged).
    pub secret: String,
    /// The symbols, in the session's instrument order.
    pub symbols: Vec<String>,
    /// The session's bar size.
    pub timeframe_ms: i64,
    /// How long after a bucket's end a symbol's missing bar is waited for.
    pub grace: Duration,
    /// The trading API whose clock (`GET /v2/clock`) says whether the
    /// market is open; `None`: never asked (a quiet stream is then stale
    /// whatever the hour).
    pub clock_url: Option<String>,
    /// How often the clock is asked while the stream is quiet.
    pub clock_every: Duration,
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Alpaca's bar stream, backfilled from its history on each connection.
pub struct AlpacaFeed {
    cfg: StreamConfig,
    history: AlpacaMarketData,
    /// The socket and a handle on its TCP stream (for read timeouts).
    socket: Option<(Socket, TcpStream)>,
    assembler: BarAssembler,
    clock: fn() -> i64,
    /// When Alpaca's clock was last asked, and whether it said closed.
    market: Option<(Instant, bool)>,
}

impl AlpacaFeed {
    /// Connects, authenticates, subscribes to `cfg.symbols`' bars and reads
    /// the history from the bucket at `from` on: bad credentials, a second
    /// connection on the account or an unreachable stream fail here.
    pub fn connect(cfg: StreamConfig, history: AlpacaMarketData, from: i64) -> Result<Self, FeedError> {
        Self::connect_with_clock(cfg, history, from, now_ms)
    }

    /// [`connect`](Self::connect) with another clock (tests replay old
    /// days).
    pub fn connect_with_clock(
        cfg: StreamConfig,
        history: AlpacaMarketData,
        from: i64,
        clock: fn() -> i64,
    ) -> Result<Self, FeedError> {
        let assembler = BarAssembler::new(cfg.symbols.len(), cfg.timeframe_ms, from);
        let mut feed = AlpacaFeed {
            cfg,
            history,
            socket: None,
            assembler,
            clock,
            market: None,
        };
        feed.open()?;
        Ok(feed)
    }

    /// Bars that arrived after their timestamp was handed over.
    pub fn late_bars(&self) -> u64 {
        self.assembler.late()
    }

    /// The stream's handshake, then the history since the last bar.
    fn open(&mut self) -> Result<(), FeedError> {
        self.socket = None;
        let (mut ws, tcp) = handshake(&self.cfg.url)?;
        expect(&mut ws, "connected", "connecting")?;
        send(
            &mut ws,
            json!({"action": "auth", "key": self.cfg.key_id, "secret": self.cfg.secret}),
        )?;
        expect(&mut ws, "authenticated", "authenticating")?;
        send(&mut ws, json!({"action": "subscribe", "bars": self.cfg.symbols}))?;
        expect(&mut ws, "subscription", "subscribing")?;
        // Subscribed first, then the history: what arrives meanwhile waits
        // in the socket, and the overlap is taken once.
        self.socket = Some((ws, tcp));
        self.backfill()
    }

    /// The complete buckets since the last one handed over, then the
    /// minutes of the bucket in progress.
    fn backfill(&mut self) -> Result<(), FeedError> {
        let tf = self.cfg.timeframe_ms;
        let now = (self.clock)();
        let current = bucket_of(now, tf);
        let from = self.assembler.next_bucket();
        for (i, symbol) in self.cfg.symbols.iter().enumerate() {
            if from < current {
                for bar in self.history.bars(symbol, tf, from, current)? {
                    self.assembler.add(i, bar, tf);
                }
            }
            if tf > MINUTE {
                for bar in self.history.bars(symbol, MINUTE, current.max(from), now)? {
                    self.assembler.add(i, bar, MINUTE);
                }
            }
        }
        Ok(())
    }

    /// One stream message: its bars to the assembler; an error message
    /// from Alpaca ends the connection.
    fn take(&mut self, text: &str) -> Result<(), FeedError> {
        let messages: Value = serde_json::from_str(text)
            .map_err(|e| FeedError::Disconnected(format!("Alpaca's stream sent unreadable JSON ({e})")))?;
        for m in messages.as_array().into_iter().flatten() {
            match m["T"].as_str() {
                Some("b") => {
                    let symbol = m["S"].as_str().unwrap_or_default();
                    let Some(i) = self.cfg.symbols.iter().position(|s| s == symbol) else {
                        continue;
                    };
                    // A bar without a readable time cannot be placed; one
                    // with bad prices goes on to the session's checks.
                    if let Some(bar) = bar_of(m) {
                        self.assembler.add(i, bar, MINUTE);
                    }
                }
                Some("error") => {
                    self.socket = None;
                    return Err(stream_error(m));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Feed for AlpacaFeed {
    fn next(&mut self, wait: Duration, out: &mut Vec<(usize, Bar)>) -> Result<FeedStatus, FeedError> {
        let deadline = Instant::now() + wait;
        let grace = self.cfg.grace.as_millis() as i64;
        loop {
            if let Some(ts) = self.assembler.pop((self.clock)(), grace, out) {
                return Ok(FeedStatus::Tick(ts));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some((ws, tcp)) = self.socket.as_mut() else {
                return Err(FeedError::Disconnected("the stream is not connected".into()));
            };
            if left.is_zero() {
                out.clear();
                return Ok(FeedStatus::Waiting);
            }
            // A zero timeout would block for ever.
            let _ = tcp.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match ws.read() {
                Ok(Message::Text(text)) => self.take(text.as_str())?,
                Ok(Message::Close(frame)) => {
                    self.socket = None;
                    let why = frame.map_or_else(|| "no reason given".to_string(), |f| f.reason.to_string());
                    return Err(FeedError::Disconnected(format!("Alpaca closed the stream ({why})")));
                }
                Ok(_) => {} // pings are answered by the socket
                // A timeout, or a signal (Ctrl-C is the session's to see): read on.
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    self.socket = None;
                    return Err(FeedError::Disconnected(format!("Alpaca's stream: {e}")));
                }
            }
        }
    }

    fn reconnect(&mut self) -> Result<(), FeedError> {
        self.open()
    }

    fn market_closed(&mut self) -> bool {
        let Some(url) = self.cfg.clock_url.as_deref() else {
            return false;
        };
        let fresh = self.market.is_some_and(|(at, _)| at.elapsed() < self.cfg.clock_every);
        if !fresh {
            // A clock that cannot be read counts as open: a quiet stream
            // is then judged stale, as it would be without one.
            let closed = self.history.market_is_open(url).is_ok_and(|open| !open);
            self.market = Some((Instant::now(), closed));
        }
        self.market.is_some_and(|(_, closed)| closed)
    }
}

/// Alpaca's `{"T":"error","code":..,"msg":..}` as what to do about it.
fn stream_error(m: &Value) -> FeedError {
    let code = m["code"].as_i64().unwrap_or(0);
    let msg = m["msg"].as_str().unwrap_or("no message");
    match code {
        402 | 401 => FeedError::Refused(format!(
            "Alpaca's stream refused the credentials ({code} {msg}); check {KEY_ID_ENV} and {SECRET_ENV}"
        )),
        406 => FeedError::Refused(format!(
            "Alpaca's stream allows one connection per account and one is open ({code} {msg}); stop the other session or client"
        )),
        405 | 409 => FeedError::Refused(format!(
            "Alpaca's stream refused the subscription ({code} {msg}); the account's data plan does not cover it"
        )),
        _ => FeedError::Disconnected(format!("Alpaca's stream reported an error ({code} {msg})")),
    }
}

/// Opens the websocket (TLS for `wss://`), with 10 s limits.
fn handshake(url: &str) -> Result<(Socket, TcpStream), FeedError> {
    let unreachable = |e: &dyn std::fmt::Display| FeedError::Disconnected(format!("{url} cannot be reached: {e}"));
    let request = url
        .into_client_request()
        .map_err(|e| FeedError::Refused(format!("{url} is not a websocket URL: {e}")))?;
    let uri = request.uri();
    let host = uri.host().unwrap_or_default().to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| unreachable(&e))?
        .next()
        .ok_or_else(|| unreachable(&"no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| unreachable(&e))?;
    let limit = Some(Duration::from_secs(10));
    let _ = tcp.set_read_timeout(limit);
    let _ = tcp.set_write_timeout(limit);
    let _ = tcp.set_nodelay(true);
    let handle = tcp.try_clone().map_err(|e| unreachable(&e))?;
    let (ws, _) = tungstenite::client_tls_with_config(request, tcp, None, None).map_err(|e| unreachable(&e))?;
    Ok((ws, handle))
}

fn send(ws: &mut Socket, message: Value) -> Result<(), FeedError> {
    ws.send(Message::text(message.to_string()))
        .map_err(|e| FeedError::Disconnected(format!("Alpaca's stream: {e}")))
}

/// Reads until a control message `{"T":"success","msg":want}` (or the
/// subscription's `{"T":"subscription"}`); an error message is refused.
fn expect(ws: &mut Socket, want: &str, doing: &str) -> Result<(), FeedError> {
    loop {
        let text = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) => {
                return Err(FeedError::Disconnected(format!(
                    "Alpaca closed the stream while {doing}"
                )))
            }
            Ok(_) => continue,
            Err(e) => return Err(FeedError::Disconnected(format!("Alpaca's stream while {doing}: {e}"))),
        };
        let messages: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
        for m in messages.as_array().into_iter().flatten() {
            match (m["T"].as_str(), m["msg"].as_str()) {
                (Some("error"), _) => return Err(stream_error(m)),
                (Some("success"), Some(msg)) if msg == want => return Ok(()),
                (Some("subscription"), _) if want == "subscription" => return Ok(()),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(ts: i64, close: f64) -> Bar {
        Bar {
            ts,
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 10.0,
        }
    }

    #[test]
    fn one_minute_bars_are_handed_over_once_every_symbol_has_its_bar() {
        let mut a = BarAssembler::new(2, MINUTE, 0);
        let mut out = Vec::new();
        a.add(0, minute(0, 10.0), MINUTE);
        assert_eq!(a.pop(0, 5_000, &mut out), None, "symbol 1 may still come");
        a.add(1, minute(0, 20.0), MINUTE);
        assert_eq!(a.pop(0, 5_000, &mut out), Some(0));
        assert_eq!(
            out.iter().map(|(i, b)| (*i, b.close)).collect::<Vec<_>>(),
            vec![(0, 10.0), (1, 20.0)]
        );
        // A silent symbol is not waited for past the grace period.
        a.add(0, minute(MINUTE, 11.0), MINUTE);
        assert_eq!(a.pop(2 * MINUTE + 4_999, 5_000, &mut out), None);
        assert_eq!(a.pop(2 * MINUTE + 5_000, 5_000, &mut out), Some(MINUTE));
        assert_eq!(out.len(), 1);
        // Its bar then is late, and dropped.
        a.add(1, minute(MINUTE, 21.0), MINUTE);
        assert_eq!(a.late(), 1);
        assert!(a.pending.is_empty());
    }

    #[test]
    fn minutes_make_a_five_minute_bar_and_a_bar_seen_twice_counts_once() {
        let tf = 5 * MINUTE;
        let mut a = BarAssembler::new(1, tf, 0);
        let mut out = Vec::new();
        for k in 0..4 {
            a.add(0, minute(k * MINUTE, 10.0 + k as f64), MINUTE);
            a.add(0, minute(k * MINUTE, 99.0), MINUTE); // the history again
        }
        assert_eq!(a.pop(4 * MINUTE, 5_000, &mut out), None, "its last minute is missing");
        a.add(0, minute(4 * MINUTE, 14.0), MINUTE);
        assert_eq!(a.pop(4 * MINUTE, 5_000, &mut out), Some(0));
        let b = out[0].1;
        assert_eq!(
            (b.ts, b.open, b.high, b.low, b.close, b.volume),
            (0, 10.0, 15.0, 9.0, 14.0, 50.0)
        );
    }

    #[test]
    fn a_later_bar_closes_the_buckets_before_it_and_history_bars_are_whole_buckets() {
        let tf = 5 * MINUTE;
        let mut a = BarAssembler::new(1, tf, 3 * MINUTE); // wants buckets from 5 min on
        let mut out = Vec::new();
        a.add(0, minute(0, 1.0), tf); // before the start: late
        a.add(0, minute(tf, 2.0), tf); // a whole history bucket
        a.add(0, minute(2 * tf + MINUTE, 3.0), MINUTE); // a minute into the next
        assert_eq!(a.pop(0, 0, &mut out), Some(tf));
        assert_eq!(a.pop(0, 0, &mut out), None, "the bucket in progress waits");
        a.add(0, minute(3 * tf, 4.0), MINUTE);
        assert_eq!(a.pop(0, 0, &mut out), Some(2 * tf));
        assert_eq!(a.late(), 1);
    }
}
