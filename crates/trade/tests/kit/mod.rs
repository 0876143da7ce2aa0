//! The trading layer's test kit: markets, a session runner that records
//! what the session reported, and fakes that inject faults.

#![allow(dead_code)]

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tradelab_core::{Bar, BarSeries};
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_sim::account::Fill;
use tradelab_sim::engine::{BacktestResult, EngineConfig};
use tradelab_sim::order::Order;
use tradelab_sim::strategies::SmaCrossover;
use tradelab_sim::strategy::BarContext;
use tradelab_store::trading::TradingOrderRecord;
use tradelab_trade::journal::{Journal, MemoryJournal};
use tradelab_trade::*;

pub const DAY: i64 = 86_400_000;

/// Three synthetic instruments on one calendar; the third misses every
/// seventh bar, so timestamps merge unevenly.
pub fn markets() -> Vec<BarSeries> {
    let make = |seed: u64, name: &str| {
        generate(&SyntheticConfig {
            bars: 320,
            seed,
            instrument: name.into(),
            ..Default::default()
        })
        .series
    };
    let a = make(1, "alpha");
    let b = make(2, "beta");
    let full = make(3, "gamma");
    let mut c = BarSeries::new("gamma");
    c.timeframe = full.timeframe;
    for k in 0..full.len() {
        if k % 7 != 3 {
            c.push(full.bar(k));
        }
    }
    vec![a, b, c]
}

pub fn strategy() -> SmaCrossover {
    SmaCrossover::new(5, 20, true)
}

pub fn spec(id: &str, settings: TradeSettings) -> SessionSpec {
    SessionSpec {
        id: id.into(),
        symbols: vec!["alpha".into(), "beta".into(), "gamma".into()],
        timeframe_ms: DAY,
        speed: 0.0,
        settings,
    }
}

/// What a session left: the broker's result, the journal, events seen.
pub struct Ran {
    pub result: BacktestResult<'static>,
    pub outcome: Result<SessionOutcome, SessionError>,
    pub events: Vec<String>,
}

/// Runs a session over `feed` and `broker` with `decider` into `journal`.
pub fn run_session(
    spec: SessionSpec,
    feed: &mut dyn Feed,
    broker: &mut dyn Broker,
    decider: &mut dyn Decider,
    journal: &mut dyn Journal,
    resume: Option<(Option<&Checkpoint>, &[tradelab_store::trading::TradingOrderRecord])>,
) -> (Result<SessionOutcome, SessionError>, Vec<String>) {
    let mut events = Vec::new();
    let mut observe = |e: &SessionEvent<'_>| match e {
        SessionEvent::Breaker { transition, reason, .. } => events.push(format!(
            "breaker {} {}->{}: {reason}",
            transition.kind.name(),
            transition.from.name(),
            transition.to.name()
        )),
        SessionEvent::Restart { component, ok, detail } => events.push(format!("restart {component} {ok}: {detail}")),
        SessionEvent::Reconciled { differences } => events.push(format!("reconciled {}", differences.len())),
        _ => {}
    };
    let mut session = Session::new(spec, feed, broker, decider, journal, &mut observe);
    if let Some((cp, orders)) = resume {
        session.resume(cp, orders).unwrap();
    }
    let outcome = session.run(&AtomicBool::new(false));
    (outcome, events)
}

/// A paper session with the rule strategy over all three markets.
pub fn paper_run(settings: TradeSettings, cfg: EngineConfig) -> (Ran, MemoryJournal) {
    let m = markets();
    let feeds: Vec<&BarSeries> = m.iter().collect();
    let mut feed = ReplayFeed::new(feeds.clone(), &[0, 0, 0], 0.0);
    let mut broker = PaperBroker::new("test", cfg, &feeds);
    let mut decider = StrategyDecider::new(strategy());
    decider.start(&feeds);
    let mut journal = MemoryJournal::default();
    let (outcome, events) = run_session(
        spec("s", settings),
        &mut feed,
        &mut broker,
        &mut decider,
        &mut journal,
        None,
    );
    let result = broker.into_result("sma".into(), &feeds);
    (
        Ran {
            result,
            outcome,
            events,
        },
        journal,
    )
}

pub fn same_trading(a: &BacktestResult<'_>, b: &BacktestResult<'_>) {
    assert_eq!(a.fills.len(), b.fills.len());
    for (x, y) in a.fills.iter().zip(&b.fills) {
        assert_eq!(x, y);
    }
    assert_eq!(a.equity, b.equity);
    assert_eq!(a.timestamps, b.timestamps);
}

/// Faults a feed injects, by timestamp number (0 = the first).
#[derive(Debug, Clone, Default)]
pub struct FeedFaults {
    /// Instrument 0's bar at this tick arrives with a negative high.
    pub corrupt_at: Option<usize>,
    /// Before this tick the feed goes quiet for the duration.
    pub stall: Option<(usize, Duration)>,
    /// Before this tick the connection drops once.
    pub drop_at: Option<usize>,
    /// This instrument's bars over these ticks never arrive.
    pub lose: Option<(usize, Range<usize>)>,
}

/// A replay that misbehaves as told.
pub struct FaultyFeed<'a> {
    inner: ReplayFeed<&'a BarSeries>,
    faults: FeedFaults,
    tick: usize,
    quiet_until: Option<Instant>,
}

impl Feed for FaultyFeed<'_> {
    fn next(&mut self, wait: Duration, out: &mut Vec<(usize, Bar)>) -> Result<FeedStatus, FeedError> {
        if self.faults.drop_at == Some(self.tick) {
            self.faults.drop_at = None;
            return Err(FeedError::Disconnected("connection reset by peer".into()));
        }
        if let Some((at, quiet)) = self.faults.stall {
            if at == self.tick {
                let until = *self.quiet_until.get_or_insert_with(|| Instant::now() + quiet);
                if Instant::now() < until {
                    out.clear();
                    std::thread::sleep(wait.min(until - Instant::now()));
                    return Ok(FeedStatus::Waiting);
                }
                self.faults.stall = None;
            }
        }
        let status = self.inner.next(wait, out)?;
        if let FeedStatus::Tick(_) = status {
            if self.faults.corrupt_at == Some(self.tick) {
                if let Some((_, bar)) = out.iter_mut().find(|(i, _)| *i == 0) {
                    bar.high = -1.0;
                }
            }
            if let Some((lost, ticks)) = &self.faults.lose {
                if ticks.contains(&self.tick) {
                    out.retain(|(i, _)| i != lost);
                }
            }
            self.tick += 1;
        }
        Ok(status)
    }

    fn reconnect(&mut self) -> Result<(), FeedError> {
        Ok(())
    }
}

/// Faults a broker injects, by submission number (0 = the first).
#[derive(Debug, Clone, Default)]
pub struct BrokerFaults {
    /// These submissions are rejected.
    pub reject: Range<usize>,
    /// This submission finds the connection dropped.
    pub disconnect_at: Option<usize>,
}

/// The paper broker, misbehaving as told; it notes whether the account was
/// flat at each timestamp's end and counts submissions per client order id.
/// `outlives` makes it a broker that outlives the session, as a real one
/// does: not rebuilt from the session's bars, its market seeing each bar
/// once whoever asks again.
pub struct FlakyBroker {
    pub inner: PaperBroker,
    pub faults: BrokerFaults,
    pub submits: usize,
    pub reconnects: usize,
    pub flat_at: Vec<(i64, bool)>,
    pub submissions: HashMap<String, usize>,
    pub outlives: bool,
    seen: Vec<Option<i64>>,
    ended: Option<i64>,
}

impl FlakyBroker {
    /// A paper account over `feeds` under `cfg`, with `faults`.
    pub fn new(cfg: EngineConfig, feeds: &[&BarSeries], faults: BrokerFaults) -> Self {
        FlakyBroker {
            inner: PaperBroker::new("test", cfg, feeds),
            faults,
            submits: 0,
            reconnects: 0,
            flat_at: Vec::new(),
            submissions: HashMap::new(),
            outlives: false,
            seen: vec![None; feeds.len()],
            ended: None,
        }
    }
}

impl Broker for FlakyBroker {
    fn account_id(&self) -> String {
        self.inner.account_id()
    }
    fn fills_from_session_bars(&self) -> bool {
        !self.outlives
    }
    fn on_bar(&mut self, i: usize, bar: Bar) {
        if self.seen[i].is_none_or(|t| bar.ts > t) {
            self.seen[i] = Some(bar.ts);
            self.inner.on_bar(i, bar)
        }
    }
    fn end_timestamp(&mut self, ts: i64) -> bool {
        if self.ended.is_some_and(|t| ts <= t) {
            return false;
        }
        self.ended = Some(ts);
        let halted = self.inner.end_timestamp(ts);
        let flat = self.inner.positions().unwrap().iter().all(|q| *q == 0.0);
        self.flat_at.push((ts, flat));
        halted
    }
    fn view(&self, i: usize) -> AccountView {
        self.inner.view(i)
    }
    fn submit(&mut self, id: &str, order: Order) -> Result<OrderState, BrokerError> {
        let n = self.submits;
        self.submits += 1;
        *self.submissions.entry(id.to_string()).or_default() += 1;
        if self.faults.reject.contains(&n) {
            return Err(BrokerError::Rejected {
                client_order_id: id.into(),
                reason: "insufficient buying power".into(),
            });
        }
        if self.faults.disconnect_at == Some(n) {
            return Err(BrokerError::Disconnected("connection reset".into()));
        }
        self.inner.submit(id, order)
    }
    fn cancel(&mut self, id: &str) -> Result<bool, BrokerError> {
        self.inner.cancel(id)
    }
    fn order_state(&mut self, id: &str) -> Result<Option<OrderState>, BrokerError> {
        self.inner.order_state(id)
    }
    fn positions(&mut self) -> Result<Vec<f64>, BrokerError> {
        self.inner.positions()
    }
    fn balances(&mut self) -> Result<(f64, f64), BrokerError> {
        self.inner.balances()
    }
    fn poll_fills(&mut self, out: &mut Vec<Fill>) -> Result<(), BrokerError> {
        self.inner.poll_fills(out)
    }
    fn reconnect(&mut self) -> Result<(), BrokerError> {
        self.reconnects += 1;
        Ok(())
    }
}

/// Faults a model injects, by decision number (0 = the first).
#[derive(Debug, Clone, Default)]
pub struct ModelFaults {
    /// These decisions fail.
    pub fail: Range<u64>,
    /// These decisions take `slow_by`.
    pub slow: Range<u64>,
    /// How long a slow decision takes.
    pub slow_by: Duration,
    /// Restarts that fail first (a corrupt model file), before one works.
    pub failed_restarts: usize,
}

/// The rule strategy, failing as told.
pub struct FlakyDecider {
    inner: StrategyDecider<SmaCrossover>,
    faults: ModelFaults,
    calls: u64,
    pub restarts: Vec<bool>,
}

impl FlakyDecider {
    /// The rule strategy over `feeds`, failing as `faults` say.
    pub fn new(feeds: &[&BarSeries], faults: ModelFaults) -> Self {
        let mut inner = StrategyDecider::new(strategy());
        inner.start(feeds);
        FlakyDecider {
            inner,
            faults,
            calls: 0,
            restarts: Vec::new(),
        }
    }
}

impl Decider for FlakyDecider {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn start(&mut self, feeds: &[&BarSeries]) {
        self.inner.start(feeds)
    }
    fn decide(&mut self, ctx: &mut BarContext<'_>) -> Result<(), String> {
        let n = self.calls;
        self.calls += 1;
        if self.faults.slow.contains(&n) {
            std::thread::sleep(self.faults.slow_by);
        }
        let out = self.inner.decide(ctx);
        if self.faults.fail.contains(&n) {
            ctx.orders.clear();
            return Err("NaN in the policy's logits".into());
        }
        out
    }
    fn restart(&mut self) -> Result<(), String> {
        let ok = self.restarts.iter().filter(|ok| !**ok).count() >= self.faults.failed_restarts;
        self.restarts.push(ok);
        if ok {
            Ok(())
        } else {
            Err("model.safetensors: header is not valid JSON".into())
        }
    }
    fn decisions(&self) -> u64 {
        self.inner.decisions()
    }
}

/// Everything a faulty run injects.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub feed: FeedFaults,
    pub broker: BrokerFaults,
    pub model: ModelFaults,
}

/// What a faulty run left.
pub struct Faulted {
    pub outcome: Result<SessionOutcome, SessionError>,
    pub events: Vec<String>,
    pub journal: MemoryJournal,
    pub broker: FlakyBroker,
    pub decider: FlakyDecider,
}

impl Faulted {
    /// The timestamp of the first event that starts with `prefix`.
    pub fn when(&self, prefix: &str) -> Option<usize> {
        self.events.iter().position(|e| e.starts_with(prefix))
    }

    /// Orders written at bars in `[from, to)`.
    pub fn orders_between(&self, from: i64, to: i64) -> Vec<&TradingOrderRecord> {
        self.journal
            .orders
            .iter()
            .filter(|o| o.bar_ts >= from && o.bar_ts < to)
            .collect()
    }

    /// The journal's breaker events as `(bar time, breaker, to)`.
    pub fn breaker_log(&self) -> Vec<(i64, String, String)> {
        self.journal
            .events
            .iter()
            .filter(|e| e.kind == "breaker")
            .map(|e| {
                (
                    e.bar_ts.unwrap_or(i64::MIN),
                    e.detail["breaker"].as_str().unwrap().to_string(),
                    e.detail["to"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// The rule strategy over the three markets, paper broker, with `faults`.
pub fn faulty_run(settings: TradeSettings, cfg: EngineConfig, speed: f64, faults: Faults) -> Faulted {
    let m = markets();
    let feeds: Vec<&BarSeries> = m.iter().collect();
    let mut feed = FaultyFeed {
        inner: ReplayFeed::new(feeds.clone(), &[0, 0, 0], speed),
        faults: faults.feed,
        tick: 0,
        quiet_until: None,
    };
    let mut broker = FlakyBroker::new(cfg, &feeds, faults.broker);
    let mut decider = FlakyDecider::new(&feeds, faults.model);
    let mut journal = MemoryJournal::default();
    let mut s = spec("f", settings);
    s.speed = speed;
    let (outcome, events) = run_session(s, &mut feed, &mut broker, &mut decider, &mut journal, None);
    Faulted {
        outcome,
        events,
        journal,
        broker,
        decider,
    }
}

/// Settings for fault tests: short cooldowns, no waiting between restarts.
pub fn quick_breakers() -> TradeSettings {
    TradeSettings {
        cooldown_bars: 4,
        probation_bars: 3,
        backoff_seconds: 0.0,
        max_backoff_seconds: 0.0,
        ..TradeSettings::default()
    }
}
// The fakes of Alpaca (shared with the end-to-end tests); not every test
// binary uses them.
#[allow(unused_imports)]
pub use tradelab_testkit::fake_alpaca;
#[allow(unused_imports)]
pub use tradelab_testkit::fake_alpaca_stream;

pub const MINUTE: i64 = 60_000;
/// 2024-01-02 14:30 UTC, a session's first minute.
pub const OPEN: i64 = 1_704_205_800_000;

/// The three markets as one-minute bars from [`OPEN`] (each timestamp of
/// the merged calendar one minute on), in cents, as a live stream would
/// carry them.
pub fn minute_markets() -> Vec<BarSeries> {
    let daily = markets();
    let mut days: Vec<i64> = daily.iter().flat_map(|s| s.ts.iter().copied()).collect();
    days.sort_unstable();
    days.dedup();
    daily
        .iter()
        .map(|s| {
            let mut m = BarSeries::new(s.instrument.clone());
            m.timeframe = Some(tradelab_core::Timeframe::from_millis(MINUTE));
            for k in 0..s.len() {
                let slot = days.binary_search(&s.ts[k]).unwrap() as i64;
                let b = s.bar(k);
                let cents = |p: f64| (p * 100.0).round() / 100.0;
                m.push(Bar {
                    ts: OPEN + slot * MINUTE,
                    open: cents(b.open),
                    high: cents(b.high),
                    low: cents(b.low),
                    close: cents(b.close),
                    volume: b.volume.round(),
                });
            }
            m
        })
        .collect()
}

/// A bar as Alpaca's JSON (stream and history alike).
pub fn alpaca_bar(symbol: &str, b: &Bar) -> serde_json::Value {
    serde_json::json!({
        "T": "b", "S": symbol, "t": format!("{}Z", tradelab_core::time::format_datetime(b.ts)),
        "o": b.open, "h": b.high, "l": b.low, "c": b.close, "v": b.volume, "n": 1, "vw": b.close,
    })
}

/// A live feed ends only when stopped; this one ends after its bar at
/// `last`, so a test session finishes.
pub struct EndsAfter<F> {
    pub inner: F,
    pub last: i64,
    pub done: bool,
}

impl<F: Feed> Feed for EndsAfter<F> {
    fn market_closed(&mut self) -> bool {
        self.inner.market_closed()
    }

    fn next(&mut self, wait: Duration, out: &mut Vec<(usize, Bar)>) -> Result<FeedStatus, FeedError> {
        if self.done {
            out.clear();
            return Ok(FeedStatus::Ended);
        }
        let status = self.inner.next(wait, out)?;
        if let FeedStatus::Tick(ts) = status {
            self.done = ts >= self.last;
        }
        Ok(status)
    }

    fn reconnect(&mut self) -> Result<(), FeedError> {
        self.inner.reconnect()
    }

    fn catch_up_until(&mut self, ts: i64) {
        self.inner.catch_up_until(ts)
    }
}
