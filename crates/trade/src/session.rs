//! The trading loop: each timestamp's bars from the feed are checked by the
//! loader's rules, reach the broker (a paper broker fills waiting orders on
//! them), go to the decider, and its orders go through the breakers to the
//! broker, written to the journal first under client order ids that are
//! the same however often the bar is decided (`<session>-<instrument>-<bar
//! time>-<n>`). The session's state is checkpointed as it changes; a
//! restarted session rebuilds from the checkpoint and the recorded orders
//! ([`Session::resume`]) and sends nothing twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tradelab_bus::event::{BreakerEvent, DecisionEvent, EventBody, FillEvent, ModelEvent, OrderEvent};
use tradelab_bus::event::{RiskVerdict, SessionNote};
use tradelab_bus::Publisher;
use tradelab_core::{Action, Bar};
use tradelab_data::load::bar_problem;
use tradelab_sim::account::Fill;
use tradelab_sim::order::{Order, OrderKind, OrderQty};
use tradelab_sim::strategy::BarContext;
use tradelab_store::trading::{TradingEventRecord, TradingOrderRecord};

use crate::breakers::{BreakerKind, BreakerState, Breakers, Transition};
use crate::broker::{Broker, BrokerError, OrderState};
use crate::correlation::{CorrelationTracker, RiskSnapshot};
use crate::decider::Decider;
use crate::feed::{Feed, FeedStatus};
use crate::journal::{Journal, JournalError};
use crate::latency::LatencyHistogram;
use crate::settings::{BreakerPolicy, TradeSettings};

/// What a session is.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Its id (the client order ids start with it).
    pub id: String,
    /// The instruments, in the feed's and the broker's order.
    pub symbols: Vec<String>,
    /// The bars' spacing, in milliseconds.
    pub timeframe_ms: i64,
    /// The feed's speed relative to real time (0: as fast as possible), for
    /// the stale-feed breaker.
    pub speed: f64,
    /// Checkpoints and breakers.
    pub settings: TradeSettings,
}

/// The state a session checkpoints and resumes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last timestamp processed.
    pub ts: i64,
    /// Timestamps processed.
    pub ticks: u64,
    /// Each instrument's last bar time.
    pub last_ts: Vec<Option<i64>>,
    /// Positions after it, as the broker held them.
    pub positions: Vec<f64>,
    /// Cash after it.
    pub cash: f64,
    /// Equity after it.
    pub equity: f64,
    /// The highest equity seen.
    pub equity_peak: f64,
    /// The breakers.
    pub breakers: Breakers,
    /// The last event's sequence number.
    pub event_seq: i64,
    /// Fault counters (in a row): model errors, latency breaches, rejections.
    pub in_a_row: [u64; 3],
    /// The instruments, in the order of `positions`.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Equity when the session started.
    #[serde(default)]
    pub initial_equity: f64,
    /// Bar in to order out so far (this process), microseconds: p50, p99.
    #[serde(default, deserialize_with = "or_default")]
    pub latency_us: (f64, f64),
    /// The portfolio's correlations and volatility contributions, as last
    /// computed.
    #[serde(default, deserialize_with = "or_default")]
    pub risk: Option<RiskSnapshot>,
}

/// A figure for display that JSON cannot hold as it was (NaN is written as
/// null) reads back as its default: a resume never fails on one.
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let v = Value::deserialize(d)?;
    Ok(T::deserialize(v).unwrap_or_default())
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The feed ended.
    Finished,
    /// Asked to stop.
    Stopped,
    /// A breaker with the `halt` policy ended it.
    Halted,
}

/// What a session reports as it runs.
#[derive(Debug)]
pub enum SessionEvent<'a> {
    /// A timestamp was processed.
    Tick {
        /// Its time.
        ts: i64,
        /// Equity after it.
        equity: f64,
        /// Timestamps processed.
        ticks: u64,
    },
    /// An order went to the broker (or was refused by it).
    Order {
        /// Its client id.
        client_order_id: &'a str,
        /// The instrument's symbol.
        symbol: &'a str,
        /// What it asked.
        order: &'a Order,
        /// The broker's answer.
        outcome: Result<&'a OrderState, &'a BrokerError>,
    },
    /// An order filled.
    Fill {
        /// The instrument's symbol.
        symbol: &'a str,
        /// The fill.
        fill: &'a Fill,
    },
    /// A breaker changed state.
    Breaker {
        /// The change.
        transition: Transition,
        /// What it does while open.
        policy: BreakerPolicy,
        /// Why.
        reason: &'a str,
    },
    /// A component restarted, or failed to.
    Restart {
        /// `feed`, `broker` or `model`.
        component: &'static str,
        /// Whether it came back.
        ok: bool,
        /// What happened.
        detail: &'a str,
    },
    /// After a restart, the broker's positions compared with the
    /// checkpoint's.
    Reconciled {
        /// Instruments whose positions differed (the broker's are kept).
        differences: &'a [(String, f64, f64)],
    },
}

/// The end of a session.
#[derive(Debug, Clone)]
pub struct SessionOutcome {
    /// How it ended.
    pub end: SessionEnd,
    /// Why, in words.
    pub reason: String,
    /// Timestamps processed (after a resume: including those before it).
    pub ticks: u64,
    /// Orders sent to the broker by this process.
    pub orders_sent: u64,
    /// Bar in to orders out per instrument bar, in microseconds: median
    /// and 99th percentile.
    pub latency_us: (f64, f64),
    /// The last checkpoint's state.
    pub checkpoint: Checkpoint,
}

/// Why a session stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The journal failed: nothing more may be sent.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The broker failed in a way the session cannot ride out.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A recorded order cannot be read back.
    #[error("recorded order {0}")]
    Record(String),
}

/// Restart attempts spaced by doubling delays.
struct Backoff {
    base: Duration,
    max: Duration,
    delay: Duration,
    next_at: Option<Instant>,
}

impl Backoff {
    fn new(settings: &TradeSettings) -> Self {
        let base = Duration::from_secs_f64(settings.backoff_seconds);
        Backoff {
            base,
            max: Duration::from_secs_f64(settings.max_backoff_seconds),
            delay: base,
            next_at: None,
        }
    }

    /// True when an attempt is due now; the next one is then a delay away,
    /// twice as long as this one's.
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.next_at.is_some_and(|t| now < t) {
            return false;
        }
        self.next_at = Some(now + self.delay);
        self.delay = (self.delay * 2).min(self.max);
        true
    }

    fn reset(&mut self) {
        self.delay = self.base;
        self.next_at = None;
    }
}

const MODEL: usize = 0;
const LATENCY: usize = 1;
const REJECTIONS: usize = 2;

/// Which order of its bar a client order id's last part names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderTag {
    /// The decision's `n`th order (`0`, `1`, ...).
    Decision(usize),
    /// A breaker's flatten during a timestamp, sent after its bars (`f`).
    Flatten,
    /// A breaker's flatten between timestamps (`g`).
    FlattenAfter,
}

impl OrderTag {
    /// The tag of `client_order_id` (a decision's for ids from before the
    /// flatten tags).
    fn of(client_order_id: &str) -> OrderTag {
        match client_order_id.rsplit('-').next() {
            Some("f") => OrderTag::Flatten,
            Some("g") => OrderTag::FlattenAfter,
            Some(n) => OrderTag::Decision(n.parse().unwrap_or(0)),
            None => OrderTag::Decision(0),
        }
    }

    fn is_decision(self) -> bool {
        matches!(self, OrderTag::Decision(_))
    }
}

impl std::fmt::Display for OrderTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderTag::Decision(n) => write!(f, "{n}"),
            OrderTag::Flatten => f.write_str("f"),
            OrderTag::FlattenAfter => f.write_str("g"),
        }
    }
}

/// A running session over a feed, a broker, a decider and a journal.
pub struct Session<'a> {
    spec: SessionSpec,
    feed: &'a mut dyn Feed,
    broker: &'a mut dyn Broker,
    decider: &'a mut dyn Decider,
    journal: &'a mut dyn Journal,
    observer: &'a mut dyn FnMut(&SessionEvent<'_>),
    breakers: Breakers,
    last_ts: Vec<Option<i64>>,
    /// Bars each instrument has had (the index a strategy sees).
    bar_counts: Vec<usize>,
    ts: i64,
    ticks: u64,
    equity_peak: f64,
    event_seq: i64,
    in_a_row: [u64; 3],
    orders_sent: u64,
    latency: LatencyHistogram,
    // Buffers reused bar after bar: the loop allocates nothing per bar.
    bars: Vec<(usize, Bar)>,
    orders: Vec<Order>,
    fills: Vec<Fill>,
    transitions: Vec<Transition>,
    model_backoff: Backoff,
    feed_backoff: Backoff,
    broker_backoff: Backoff,
    broker_down: bool,
    /// Orders whose connection dropped: asked about after a reconnect.
    unconfirmed: Vec<String>,
    halting: Option<String>,
    /// True while a timestamp's bars are handled.
    in_tick: bool,
    /// A flatten asked for during them, sent once they are all in.
    flatten_due: bool,
    /// The feed said the market was closed since the last timestamp: the
    /// gap to the next bars is the closure, not missing data.
    closed_since_tick: bool,
    correlation: CorrelationTracker,
    risk: Option<RiskSnapshot>,
    initial_equity: f64,
    /// Where the session's events go (the audit trail), if anywhere.
    events: Option<SessionEvents<'a>>,
}

/// A session's publisher, the model's name for its events, and the last
/// event number used.
struct SessionEvents<'a> {
    publisher: &'a Publisher,
    model: String,
    seq: u64,
}

/// How long a checkpoint waits for the session's events to be sent or
/// spooled: a checkpoint past events that could still be lost would let a
/// resumed session skip them.
const EVENTS_FLUSH_WAIT: Duration = Duration::from_secs(10);

impl<'a> Session<'a> {
    /// A session about to start: nothing processed, every breaker closed.
    pub fn new(
        spec: SessionSpec,
        feed: &'a mut dyn Feed,
        broker: &'a mut dyn Broker,
        decider: &'a mut dyn Decider,
        journal: &'a mut dyn Journal,
        observer: &'a mut dyn FnMut(&SessionEvent<'_>),
    ) -> Self {
        let n = spec.symbols.len();
        let s = &spec.settings;
        let equity = if n > 0 { broker.view(0).equity } else { 0.0 };
        let window = s.correlation_window;
        Session {
            breakers: Breakers::new(s),
            model_backoff: Backoff::new(s),
            feed_backoff: Backoff::new(s),
            broker_backoff: Backoff::new(s),
            equity_peak: equity,
            spec,
            feed,
            broker,
            decider,
            journal,
            observer,
            last_ts: vec![None; n],
            bar_counts: vec![0; n],
            ts: i64::MIN,
            ticks: 0,
            event_seq: 0,
            in_a_row: [0; 3],
            orders_sent: 0,
            latency: LatencyHistogram::new(),
            bars: Vec::with_capacity(n),
            orders: Vec::with_capacity(4),
            fills: Vec::with_capacity(16),
            transitions: Vec::with_capacity(BreakerKind::ALL.len()),
            broker_down: false,
            unconfirmed: Vec::new(),
            halting: None,
            in_tick: false,
            flatten_due: false,
            closed_since_tick: false,
            correlation: CorrelationTracker::new(n, window),
            risk: None,
            initial_equity: equity,
            events: None,
        }
    }

    /// Publishes the session's events through `publisher`, numbered after
    /// `last_seq` (the last event the bus, the spool or the audit trail
    /// holds for this session), naming the model `model`.
    pub fn with_events(mut self, publisher: &'a Publisher, model: &str, last_seq: u64) -> Self {
        self.events = Some(SessionEvents {
            publisher,
            model: model.to_string(),
            seq: last_seq,
        });
        self
    }

    /// Hands `body` to the publisher (returns at once).
    fn publish(&mut self, bar_ts: Option<i64>, body: impl FnOnce(&str) -> EventBody) {
        let Some(ev) = self.events.as_mut() else {
            return;
        };
        ev.seq += 1;
        let body = body(&ev.model);
        ev.publisher.publish(
            ev.seq,
            tradelab_core::time::now_ms(),
            bar_ts.filter(|t| *t != i64::MIN),
            body,
        );
    }

    /// Picks up where `checkpoint` left off: the feed (which must start
    /// where the session first started) is replayed up to the checkpoint
    /// into a broker that fills from the session's bars, with `recorded`
    /// orders sent at the bars they were decided on; then the broker's
    /// positions are reconciled with the checkpoint's. Orders recorded
    /// after the checkpoint are decided again, under the same client ids,
    /// and go to the broker only if it never had them.
    pub fn resume(
        &mut self,
        checkpoint: Option<&Checkpoint>,
        recorded: &[TradingOrderRecord],
    ) -> Result<(), SessionError> {
        self.event(None, "resume", json!({"from": checkpoint.map(|c| c.ts)}));
        let Some(cp) = checkpoint else {
            return Ok(());
        };
        let mut next = 0;
        let mut bars = std::mem::take(&mut self.bars);
        let rebuilt = self.rebuild(cp.ts, recorded, &mut bars, &mut next);
        self.bars = bars;
        rebuilt?;
        // Fills before the checkpoint were reported before the restart.
        self.fills.clear();
        self.broker.poll_fills(&mut self.fills)?;
        self.fills.clear();
        self.ts = cp.ts;
        self.ticks = cp.ticks;
        self.last_ts = cp.last_ts.clone();
        self.equity_peak = cp.equity_peak;
        self.breakers = cp.breakers.clone();
        self.event_seq = self.event_seq.max(cp.event_seq);
        self.in_a_row = cp.in_a_row;
        if cp.initial_equity > 0.0 {
            self.initial_equity = cp.initial_equity;
        }
        self.risk = cp.risk.clone();
        let held = self.broker.positions()?;
        let differences: Vec<(String, f64, f64)> = self
            .spec
            .symbols
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let was = cp.positions.get(i).copied().unwrap_or(0.0);
                let now = held.get(i).copied().unwrap_or(0.0);
                ((was - now).abs() > 1e-9 * was.abs().max(1.0)).then(|| (s.clone(), was, now))
            })
            .collect();
        (self.observer)(&SessionEvent::Reconciled {
            differences: &differences,
        });
        self.event(
            Some(cp.ts),
            "reconcile",
            json!({"differences": differences.iter().map(|(s, was, now)| json!({"symbol": s, "checkpoint": was, "broker": now})).collect::<Vec<_>>()}),
        );
        Ok(())
    }

    /// Replays the feed up to `until`: each bar reaches the decider (whose
    /// own state, such as a rule's moving averages, must see every bar)
    /// and, when the broker fills from the session's bars, the broker too,
    /// with the recorded orders sent at the bars they were decided on (the
    /// decider's orders are dropped: the recorded ones are what was sent).
    /// A real broker kept its own state and gets nothing.
    fn rebuild(
        &mut self,
        until: i64,
        recorded: &[TradingOrderRecord],
        bars: &mut Vec<(usize, Bar)>,
        next: &mut usize,
    ) -> Result<(), SessionError> {
        let replay_broker = self.broker.fills_from_session_bars();
        self.feed.catch_up_until(until);
        loop {
            let ts = match self.feed.next(Duration::from_millis(100), bars) {
                Ok(FeedStatus::Tick(ts)) if ts <= until => ts,
                Ok(FeedStatus::Waiting) => continue,
                Ok(_) => {
                    return Err(SessionError::Record(format!(
                    "the feed ended before the checkpoint's last bar ({}); resume with the feed the session started on",
                    tradelab_core::time::format_datetime(until)
                )))
                }
                Err(e) => {
                    return Err(SessionError::Record(format!(
                        "the feed failed while rebuilding the paper account: {e}"
                    )))
                }
            };
            while recorded.get(*next).is_some_and(|o| o.bar_ts < ts) {
                *next += 1;
            }
            let first = *next;
            while recorded.get(*next).is_some_and(|o| o.bar_ts == ts) {
                *next += 1;
            }
            let at_ts = &recorded[first..*next];
            for &(i, bar) in bars.iter() {
                if bar_problem(&bar, self.last_ts[i]).is_some() {
                    continue;
                }
                self.last_ts[i] = Some(bar.ts);
                self.correlation.on_close(i, bar.close);
                if replay_broker {
                    self.broker.on_bar(i, bar);
                }
                let view = self.broker.view(i);
                self.orders.clear();
                let mut ctx = BarContext {
                    instrument: i,
                    index: self.bar_counts[i],
                    bar,
                    position: view.position,
                    equity: view.equity,
                    cash: view.cash,
                    unrealized_pnl: view.unrealized_pnl,
                    halted: view.halted,
                    orders: &mut self.orders,
                };
                let _ = self.decider.decide(&mut ctx);
                self.orders.clear();
                self.bar_counts[i] += 1;
                for o in at_ts.iter().filter(|_| replay_broker) {
                    if OrderTag::of(&o.client_order_id).is_decision() && self.instrument_of(&o.instrument)? == i {
                        // A refusal now was a refusal then.
                        let _ = self.broker.submit(&o.client_order_id, recorded_order(o, i)?);
                    }
                }
            }
            // Flattens where they were sent: after the timestamp's bars, or
            // after it closed.
            let flattens = |tag: OrderTag| at_ts.iter().filter(move |o| OrderTag::of(&o.client_order_id) == tag);
            if replay_broker {
                for o in flattens(OrderTag::Flatten) {
                    let i = self.instrument_of(&o.instrument)?;
                    let _ = self.broker.submit(&o.client_order_id, recorded_order(o, i)?);
                }
                self.broker.end_timestamp(ts);
                for o in flattens(OrderTag::FlattenAfter) {
                    let i = self.instrument_of(&o.instrument)?;
                    let _ = self.broker.submit(&o.client_order_id, recorded_order(o, i)?);
                }
            }
            self.correlation.end_timestamp();
            if ts == until {
                return Ok(());
            }
        }
    }

    fn instrument_of(&self, symbol: &str) -> Result<usize, SessionError> {
        self.spec
            .symbols
            .iter()
            .position(|s| s == symbol)
            .ok_or_else(|| SessionError::Record(format!("names {symbol}, which this session does not trade")))
    }

    /// Runs until the feed ends, `stop` is set or a breaker halts it.
    pub fn run(mut self, stop: &AtomicBool) -> Result<SessionOutcome, SessionError> {
        let wait = Duration::from_millis(100);
        let stale_after = (self.spec.speed > 0.0).then(|| {
            Duration::from_secs_f64(
                self.spec.settings.stale_after_bars * self.spec.timeframe_ms as f64 / 1000.0 / self.spec.speed,
            )
        });
        let mut last_arrival = Instant::now();
        self.model_changed("loaded");
        let mut bars = std::mem::take(&mut self.bars);
        let (end, reason) = loop {
            if stop.load(Ordering::SeqCst) {
                break (SessionEnd::Stopped, "stopped on request".to_string());
            }
            if let Some(why) = self.halting.clone() {
                if self.is_flat()? {
                    break (SessionEnd::Halted, why);
                }
            }
            match self.feed.next(wait, &mut bars) {
                Ok(FeedStatus::Tick(ts)) => {
                    last_arrival = Instant::now();
                    self.feed_backoff.reset();
                    self.tick(ts, &bars)?;
                }
                Ok(FeedStatus::Ended) => {
                    if self.halting.is_some() {
                        break (SessionEnd::Halted, self.halting.clone().unwrap_or_default());
                    }
                    break (SessionEnd::Finished, "the feed ended".to_string());
                }
                Ok(FeedStatus::Waiting) if self.feed.market_closed() => {
                    // No bar is due while the market is closed.
                    last_arrival = Instant::now();
                    self.closed_since_tick = true;
                }
                Ok(FeedStatus::Waiting) => {
                    if let Some(limit) = stale_after {
                        let quiet = last_arrival.elapsed();
                        if quiet > limit {
                            let why = format!(
                                "no bar for {:.1} s; one was due every {:.1} s",
                                quiet.as_secs_f64(),
                                limit.as_secs_f64() / self.spec.settings.stale_after_bars
                            );
                            self.trip(BreakerKind::StaleFeed, &why)?;
                        }
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    self.trip(BreakerKind::StaleFeed, &why)?;
                    if self.feed_backoff.due() {
                        let back = self.feed.reconnect();
                        let detail = back.as_ref().map_or_else(|e| e.to_string(), |_| "reconnected".into());
                        self.restarted("feed", back.is_ok(), &detail);
                    } else {
                        std::thread::sleep(wait);
                    }
                }
            }
        };
        self.bars = bars;
        self.event(
            Some(self.ts),
            "end",
            json!({"end": format!("{end:?}"), "reason": reason}),
        );
        let checkpoint = self.checkpoint()?;
        Ok(SessionOutcome {
            end,
            reason,
            ticks: self.ticks,
            orders_sent: self.orders_sent,
            latency_us: (self.latency.quantile(0.5), self.latency.quantile(0.99)),
            checkpoint,
        })
    }

    fn is_flat(&mut self) -> Result<bool, SessionError> {
        Ok(self.broker.positions()?.iter().all(|q| *q == 0.0))
    }

    /// One timestamp's bars.
    fn tick(&mut self, ts: i64, bars: &[(usize, Bar)]) -> Result<(), SessionError> {
        self.ticks += 1;
        self.in_tick = true;
        self.ts = ts;
        self.breakers.advance(self.ticks, &mut self.transitions);
        for j in 0..self.transitions.len() {
            let t = self.transitions[j];
            self.report_transition(t, "cooldown or probation over");
        }
        self.transitions.clear();
        if self.broker_down && self.broker_backoff.due() {
            let back = self.broker.reconnect();
            self.broker_down = back.is_err();
            let detail = back.as_ref().map_or_else(|e| e.to_string(), |_| "reconnected".into());
            self.restarted("broker", back.is_ok(), &detail);
            if back.is_ok() {
                self.confirm_orders()?;
            }
        }
        for &(i, bar) in bars {
            let arrived = Instant::now();
            if let Some(problem) = bar_problem(&bar, self.last_ts[i]) {
                let why = format!("{} bar refused: {problem}", self.spec.symbols[i]);
                self.trip(BreakerKind::BadBar, &why)?;
                continue;
            }
            if let Some(prev) = self.last_ts[i].filter(|_| !self.closed_since_tick) {
                let gap = (bar.ts - prev) as f64 / self.spec.timeframe_ms as f64;
                if gap > self.spec.settings.max_gap_bars {
                    let why = format!(
                        "{}: {gap:.1} timeframes since its previous bar (more than trade.max_gap_bars = {})",
                        self.spec.symbols[i], self.spec.settings.max_gap_bars
                    );
                    self.trip(BreakerKind::DataGap, &why)?;
                }
            }
            self.last_ts[i] = Some(bar.ts);
            self.correlation.on_close(i, bar.close);
            self.broker.on_bar(i, bar);
            self.report_fills()?;
            self.decide(i, bar)?;
            let us = arrived.elapsed().as_secs_f64() * 1e6;
            self.latency.record(us);
            if us > self.spec.settings.latency_budget_ms * 1000.0 {
                self.in_a_row[LATENCY] += 1;
                if self.in_a_row[LATENCY] >= self.spec.settings.latency_breaches as u64 {
                    let why = format!(
                        "{} decisions in a row over the {} ms budget (last {:.2} ms)",
                        self.in_a_row[LATENCY],
                        self.spec.settings.latency_budget_ms,
                        us / 1000.0
                    );
                    self.trip(BreakerKind::Latency, &why)?;
                }
            } else {
                self.in_a_row[LATENCY] = 0;
            }
        }
        self.in_tick = false;
        self.closed_since_tick = false;
        if std::mem::take(&mut self.flatten_due) {
            self.close_all(OrderTag::Flatten)?;
        }
        let halted = self.broker.end_timestamp(ts);
        self.correlation.end_timestamp();
        self.report_fills()?;
        if halted && self.breakers.state(BreakerKind::Drawdown) == BreakerState::Closed && self.halting.is_none() {
            self.trip(
                BreakerKind::Drawdown,
                "the risk layer's drawdown limit (risk.max_drawdown) was reached",
            )?;
        }
        let equity = self.broker.view(0).equity;
        self.equity_peak = self.equity_peak.max(equity);
        if self.ticks.is_multiple_of(self.spec.settings.correlation_every as u64) {
            let held = self.broker.positions()?;
            self.risk = self.correlation.snapshot(&held, equity);
        }
        (self.observer)(&SessionEvent::Tick {
            ts,
            equity,
            ticks: self.ticks,
        });
        if self.ticks.is_multiple_of(self.spec.settings.checkpoint_every as u64) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Instrument `i`'s decision and its orders.
    fn decide(&mut self, i: usize, bar: Bar) -> Result<(), SessionError> {
        let view = self.broker.view(i);
        self.orders.clear();
        let mut ctx = BarContext {
            instrument: i,
            index: 0,
            bar,
            position: view.position,
            equity: view.equity,
            cash: view.cash,
            unrealized_pnl: view.unrealized_pnl,
            halted: view.halted || self.halting.is_some(),
            orders: &mut self.orders,
        };
        ctx.index = self.bar_counts[i];
        self.bar_counts[i] += 1;
        match self.decider.decide(&mut ctx) {
            Ok(()) => {
                self.in_a_row[MODEL] = 0;
                self.model_backoff.reset();
                self.publish_decision(i, bar.ts);
            }
            Err(e) => {
                self.orders.clear();
                self.in_a_row[MODEL] += 1;
                if self.in_a_row[MODEL] >= self.spec.settings.model_errors as u64 {
                    let why = format!("{} failed decisions in a row; last: {e}", self.in_a_row[MODEL]);
                    self.trip(BreakerKind::ModelErrors, &why)?;
                    if self.model_backoff.due() {
                        let back = self.decider.restart();
                        let detail = back.as_ref().map_or_else(Clone::clone, |_| "model reloaded".into());
                        self.restarted("model", back.is_ok(), &detail);
                        if back.is_ok() {
                            self.model_changed("reloaded");
                        }
                    }
                }
            }
        }
        let allowed = self.breakers.allow_orders() && self.halting.is_none();
        if !self.orders.is_empty() && self.events.is_some() {
            let reason = if allowed {
                "breakers closed or on probation; the broker's risk layer sizes and checks each order".to_string()
            } else if let Some(why) = &self.halting {
                format!("halting: {why}")
            } else {
                let open: Vec<&str> = BreakerKind::ALL
                    .iter()
                    .filter(|k| matches!(self.breakers.state(**k), BreakerState::Open { .. }))
                    .map(|k| k.name())
                    .collect();
                format!("breakers open: {}", open.join(", "))
            };
            let (symbol, orders) = (self.spec.symbols[i].clone(), self.orders.len() as u32);
            self.publish(Some(self.ts), |_| {
                EventBody::RiskVerdict(RiskVerdict {
                    instrument: symbol,
                    orders,
                    allowed,
                    reason,
                })
            });
        }
        if !allowed {
            self.orders.clear();
            return Ok(());
        }
        for n in 0..self.orders.len() {
            let order = self.orders[n];
            self.send(order, OrderTag::Decision(n))?;
        }
        self.orders.clear();
        Ok(())
    }

    /// Sends `order`, the `n`th of its bar, unless the broker has it.
    fn send(&mut self, order: Order, tag: OrderTag) -> Result<(), SessionError> {
        let i = order.instrument;
        let symbol = self.spec.symbols[i].clone();
        let id = format!("{}-{i}-{}-{tag}", self.spec.id, self.ts);
        if order.kind != OrderKind::Market || order.stop_loss.is_some() || order.take_profit.is_some() {
            let reason = "trading sessions send plain market orders only";
            self.event(
                Some(self.ts),
                "order_skipped",
                json!({"symbol": symbol, "reason": reason}),
            );
            self.publish_order(&id, &symbol, &order, "skipped", Some(reason.to_string()));
            return Ok(());
        }
        let record = TradingOrderRecord {
            client_order_id: id.clone(),
            session_id: self.spec.id.clone(),
            instrument: symbol.clone(),
            bar_ts: self.ts,
            action: order.action.as_str().to_string(),
            qty: match order.qty {
                OrderQty::Units(u) => Some(u),
                _ => None,
            },
            status: "intended".into(),
            detail: None,
        };
        let fresh = self.journal.intend(&record)?;
        if !fresh && self.broker.order_state(&id)?.is_some() {
            // Sent before the restart, and the broker has it.
            return Ok(());
        }
        let mut outcome = self.broker.submit(&id, order);
        if let Err(BrokerError::RateLimited { retry_after_ms }) = outcome {
            std::thread::sleep(Duration::from_millis(retry_after_ms.min(5_000)));
            outcome = self.broker.submit(&id, order);
        }
        (self.observer)(&SessionEvent::Order {
            client_order_id: &id,
            symbol: &symbol,
            order: &order,
            outcome: outcome.as_ref(),
        });
        let published = match &outcome {
            Ok(_) => ("submitted", None),
            Err(e @ (BrokerError::Disconnected(_) | BrokerError::Unreachable(_))) => {
                ("unconfirmed", Some(e.to_string()))
            }
            Err(e) => ("rejected", Some(e.to_string())),
        };
        self.publish_order(&id, &symbol, &order, published.0, published.1);
        match &outcome {
            Ok(_) => {
                self.orders_sent += 1;
                self.in_a_row[REJECTIONS] = 0;
                self.journal.order_status(&id, "submitted", None)?;
            }
            Err(e) => {
                let why = e.to_string();
                // A dropped connection leaves the order's fate unknown: it
                // may have reached the broker (order_state tells, by its id).
                let status = match e {
                    BrokerError::Disconnected(_) | BrokerError::Unreachable(_) => {
                        self.unconfirmed.push(id.clone());
                        "unconfirmed"
                    }
                    _ => "rejected",
                };
                self.journal.order_status(&id, status, Some(&why))?;
                match e {
                    BrokerError::Rejected { .. } | BrokerError::RateLimited { .. } => {
                        self.in_a_row[REJECTIONS] += 1;
                        if self.in_a_row[REJECTIONS] >= self.spec.settings.broker_rejections as u64 {
                            let why = format!("{} orders refused in a row; last: {why}", self.in_a_row[REJECTIONS]);
                            self.trip(BreakerKind::Broker, &why)?;
                        }
                    }
                    BrokerError::Credentials(_) => return Err(SessionError::Broker(e.clone())),
                    BrokerError::Disconnected(_) | BrokerError::Unreachable(_) => {
                        self.broker_down = true;
                        self.trip(BreakerKind::Broker, &why)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// After a reconnect, asks the broker about each order whose
    /// connection dropped: `submitted` if it arrived, `not_sent` if not (the
    /// decider decides again on the next bar).
    fn confirm_orders(&mut self) -> Result<(), SessionError> {
        for id in std::mem::take(&mut self.unconfirmed) {
            let status = match self.broker.order_state(&id) {
                Ok(Some(_)) => "submitted",
                Ok(None) => "not_sent",
                Err(_) => {
                    self.unconfirmed.push(id);
                    continue;
                }
            };
            self.journal
                .order_status(&id, status, Some("confirmed after the reconnect"))?;
            self.event(
                Some(self.ts),
                "order_confirmed",
                json!({"client_order_id": id, "status": status}),
            );
        }
        Ok(())
    }

    /// A fault of `kind`: the breaker opens (or stays open) and its policy
    /// applies.
    fn trip(&mut self, kind: BreakerKind, reason: &str) -> Result<(), SessionError> {
        let Some(t) = self.breakers.trip(kind, self.ticks) else {
            return Ok(());
        };
        self.report_transition(t, reason);
        match kind.policy(&self.spec.settings) {
            BreakerPolicy::Hold => {}
            BreakerPolicy::Flatten => self.flatten()?,
            BreakerPolicy::Halt => {
                self.flatten()?;
                self.halting = Some(format!("{} breaker: {reason}", kind.name()));
            }
        }
        Ok(())
    }

    /// Closes every position. During a timestamp's bars it waits until
    /// they are all in: an order decided at one instrument's bar must not
    /// fill at another's open of the same timestamp, and a resumed session
    /// replays it at that same point. Otherwise it goes at once.
    fn flatten(&mut self) -> Result<(), SessionError> {
        if self.in_tick {
            self.flatten_due = true;
            return Ok(());
        }
        self.close_all(OrderTag::FlattenAfter)
    }

    /// Sends a close of every position, under ids of their own.
    fn close_all(&mut self, tag: OrderTag) -> Result<(), SessionError> {
        let held = self.broker.positions()?;
        for (i, q) in held.into_iter().enumerate() {
            if q == 0.0 {
                continue;
            }
            let action = if q > 0.0 { Action::CloseLong } else { Action::CloseShort };
            self.send(Order::market(i, action), tag)?;
        }
        Ok(())
    }

    fn report_transition(&mut self, t: Transition, reason: &str) {
        let policy = t.kind.policy(&self.spec.settings);
        self.publish(Some(self.ts), |_| {
            EventBody::Breaker(BreakerEvent {
                breaker: t.kind.name().to_string(),
                from: t.from.name().to_string(),
                to: t.to.name().to_string(),
                policy: policy.name().to_string(),
                reason: reason.to_string(),
            })
        });
        (self.observer)(&SessionEvent::Breaker {
            transition: t,
            policy,
            reason,
        });
        self.event(
            Some(self.ts),
            "breaker",
            json!({"breaker": t.kind.name(), "from": t.from.name(), "to": t.to.name(), "policy": policy.name(), "reason": reason}),
        );
    }

    fn restarted(&mut self, component: &'static str, ok: bool, detail: &str) {
        (self.observer)(&SessionEvent::Restart { component, ok, detail });
        self.event(
            Some(self.ts),
            "restart",
            json!({"component": component, "ok": ok, "detail": detail}),
        );
    }

    fn report_fills(&mut self) -> Result<(), SessionError> {
        self.fills.clear();
        self.broker.poll_fills(&mut self.fills)?;
        for j in 0..self.fills.len() {
            let f = self.fills[j].clone();
            let symbol = self.spec.symbols[f.instrument].clone();
            (self.observer)(&SessionEvent::Fill {
                symbol: &symbol,
                fill: &f,
            });
            self.event(
                Some(f.ts),
                "fill",
                json!({"symbol": symbol, "action": f.action.as_str(), "qty": f.qty, "side": f.side, "price": f.price, "fee": f.fee}),
            );
            self.publish(Some(f.ts), |_| {
                EventBody::Fill(FillEvent {
                    instrument: symbol,
                    action: f.action.as_str().to_string(),
                    qty: f.qty,
                    side: if f.side.sign() > 0.0 { "buy" } else { "sell" }.to_string(),
                    price: f.price,
                    fee: f.fee,
                })
            });
        }
        Ok(())
    }

    fn event(&mut self, bar_ts: Option<i64>, kind: &str, detail: Value) {
        // Fills and breakers are published with bodies of their own.
        if !matches!(kind, "fill" | "breaker") && self.events.is_some() {
            let note = SessionNote {
                note: kind.to_string(),
                detail: detail.clone(),
            };
            self.publish(bar_ts, |_| EventBody::Session(note));
        }
        self.event_seq += 1;
        self.journal.event(TradingEventRecord {
            seq: self.event_seq,
            at_ms: tradelab_core::time::now_ms(),
            bar_ts: bar_ts.filter(|t| *t != i64::MIN),
            kind: kind.to_string(),
            detail,
        });
    }

    fn checkpoint(&mut self) -> Result<Checkpoint, SessionError> {
        let positions = self.broker.positions()?;
        let (cash, equity) = self.broker.balances()?;
        let cp = Checkpoint {
            ts: self.ts,
            ticks: self.ticks,
            last_ts: self.last_ts.clone(),
            positions,
            cash,
            equity,
            equity_peak: self.equity_peak.max(equity),
            breakers: self.breakers.clone(),
            event_seq: self.event_seq,
            in_a_row: self.in_a_row,
            symbols: self.spec.symbols.clone(),
            initial_equity: self.initial_equity,
            latency_us: (self.latency.quantile(0.5), self.latency.quantile(0.99)),
            risk: self.risk.clone(),
        };
        let state = serde_json::to_value(&cp).map_err(|e| JournalError(e.to_string()))?;
        if let Some(ev) = &self.events {
            // Not flushed in time (the spool's disk is stuck): the
            // publisher's stats say so, and the checkpoint goes ahead.
            ev.publisher.flush(EVENTS_FLUSH_WAIT);
        }
        self.journal.checkpoint(&state)?;
        Ok(cp)
    }

    /// The decider's last decision on instrument `i`'s bar, if it asked a
    /// model.
    fn publish_decision(&mut self, i: usize, bar_ts: i64) {
        if self.events.is_none() {
            return;
        }
        let Some(t) = self.decider.last_decision() else {
            return;
        };
        let Some(d) = t.decision else {
            return;
        };
        // The copy is the decision path's share; the digest and encoding
        // happen on the publisher's thread.
        let inputs = t.inputs.clone();
        let symbol = self.spec.symbols[i].clone();
        self.publish(Some(bar_ts), |model| {
            EventBody::Decision(DecisionEvent {
                instrument: symbol,
                model: model.to_string(),
                action: d.action.as_str().to_string(),
                quantity: d.quantity,
                probabilities: d.probabilities,
                value: d.value,
                inputs,
            })
        });
    }

    fn publish_order(&mut self, id: &str, symbol: &str, order: &Order, status: &str, detail: Option<String>) {
        if self.events.is_none() {
            return;
        }
        let body = OrderEvent {
            client_order_id: id.to_string(),
            instrument: symbol.to_string(),
            action: order.action.as_str().to_string(),
            qty: match order.qty {
                OrderQty::Units(u) => Some(u),
                _ => None,
            },
            status: status.to_string(),
            detail,
        };
        self.publish(Some(self.ts), |_| EventBody::Order(body));
    }

    /// The model deciding changed (`loaded`, `reloaded`).
    fn model_changed(&mut self, change: &str) {
        let Some((kind, weights_sha256)) = self.decider.model_identity() else {
            return;
        };
        let change = change.to_string();
        self.publish(None, |model| {
            EventBody::Model(ModelEvent {
                change,
                model: model.to_string(),
                kind,
                weights_sha256,
            })
        });
    }
}

/// A recorded order as the broker gets it again.
fn recorded_order(o: &TradingOrderRecord, i: usize) -> Result<Order, SessionError> {
    let action: Action = o
        .action
        .parse()
        .map_err(|_| SessionError::Record(format!("{}: unknown action {}", o.client_order_id, o.action)))?;
    let order = Order::market(i, action);
    Ok(match o.qty {
        Some(u) => order.units(u),
        None => order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_with_undefined_figures_reads_back() {
        let cp = Checkpoint {
            ts: 5,
            ticks: 1,
            last_ts: vec![Some(5), None],
            positions: vec![1.0, 0.0],
            cash: 10.0,
            equity: 11.0,
            equity_peak: 11.0,
            breakers: Breakers::new(&TradeSettings::default()),
            event_seq: 3,
            in_a_row: [0, 1, 0],
            symbols: vec!["a".into(), "b".into()],
            initial_equity: 10.0,
            latency_us: (f64::NAN, f64::NAN),
            risk: Some(RiskSnapshot {
                returns: 2,
                correlation: vec![vec![1.0, f64::NAN], vec![f64::NAN, f64::NAN]],
                weights: vec![0.1, 0.0],
                contributions: vec![0.0, 0.0],
                volatility: 0.0,
            }),
        };
        let json = serde_json::to_value(&cp).unwrap();
        let back: Checkpoint = serde_json::from_value(json).unwrap();
        assert_eq!(back.latency_us, (0.0, 0.0));
        assert_eq!(back.risk, None, "recomputed at the next correlation_every");
        assert_eq!(
            (back.positions, back.in_a_row, back.breakers),
            (cp.positions, cp.in_a_row, cp.breakers)
        );
    }
}
