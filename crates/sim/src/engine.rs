//! The event-driven backtesting engine.
//!
//! Bars from every feed are replayed in timestamp order (ties in feed
//! order); all instruments share one cash
//! [`Account`](crate::account::Account). For each bar:
//!
//! 1. pending orders for that instrument are checked against the bar
//!    (market orders fill at the open; limit and stop orders follow
//!    [`Order::trigger_price`]: a gap through the level fills at the open,
//!    otherwise at the level if the bar's range reaches it);
//! 2. attached stop-loss / take-profit levels are checked. When both lie in
//!    one bar's range the stop-loss is assumed to fill first, and on the bar
//!    an entry filled at the open or intrabar only the stop-loss is checked:
//!    bar data cannot say which came first, so the engine assumes the worse;
//! 3. the position is marked at the close and the strategy sees the bar;
//! 4. its market orders fill under the fill policy: `next_open` (default)
//!    queues them for the next bar's open, so nothing can trade on a price
//!    it has not seen; `signal_close` fills them at this close;
//! 5. once all feeds at this timestamp are done, the risk layer sees the
//!    marked equity (drawdown breaker, daily loss limit) and the equity curve
//!    gets a point.
//!
//! Entries pass the risk layer and are rounded down to whole lots; exits are
//! never blocked. The loop allocates nothing per bar: order queues and the
//! equity curve are allocated up front.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use tradelab_core::{Action, Bar, BarSeries};
use tradelab_data::settings::DataSettings;

use crate::account::{Fill, Position, Trade};
use crate::broker::Broker;
use crate::costs::{CostModel, Slippage};
use crate::order::{Order, OrderKind};
use crate::risk::{RiskEvent, RiskLimits};
use crate::settings::{BacktestSettings, FillPolicy, RiskSettings};
use crate::sizing::{Lots, Sizing};
use crate::strategy::{BarContext, Strategy};

/// Everything the engine needs from settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Starting cash of the shared account.
    pub initial_cash: f64,
    /// When market orders fill.
    pub fill: FillPolicy,
    /// Commissions charged on each fill.
    pub costs: CostModel,
    /// How far each fill lands from the trigger price.
    pub slippage: Slippage,
    /// Bars in the average true range that ATR slippage uses.
    pub atr_period: usize,
    /// Units an entry opens when its order does not give them.
    pub sizing: Sizing,
    /// Lot rules for instruments without an entry in `instrument_lots`.
    pub lots: Lots,
    /// Per-instrument lot rules, keyed by instrument name.
    pub instrument_lots: BTreeMap<String, Lots>,
    /// Limits of the risk layer every entry passes.
    pub risk: RiskLimits,
}

impl EngineConfig {
    /// The broker that `backtest:`, `risk:` and the instruments' lot rules
    /// in `data:` describe.
    pub fn new(b: &BacktestSettings, risk: &RiskSettings, data: &DataSettings) -> Self {
        EngineConfig {
            initial_cash: b.initial_cash,
            fill: b.fill,
            costs: CostModel::from_settings(&b.costs),
            slippage: Slippage::from_settings(&b.slippage),
            atr_period: b.slippage.atr_period,
            sizing: Sizing::from_settings(&b.sizing),
            lots: Lots {
                size: data.lot_size,
                fractional: data.fractional,
            },
            instrument_lots: data
                .instruments
                .iter()
                .map(|(name, i)| {
                    let lots = Lots {
                        size: i.lot_size.unwrap_or(data.lot_size),
                        fractional: i.fractional.unwrap_or(data.fractional),
                    };
                    (name.clone(), lots)
                })
                .collect(),
            risk: RiskLimits::from_settings(risk),
        }
    }
}

impl Default for EngineConfig {
    /// The broker of the compiled-in default settings.
    fn default() -> Self {
        EngineConfig::new(
            &BacktestSettings::default(),
            &RiskSettings::default(),
            &DataSettings::default(),
        )
    }
}

/// The outcome of a backtest: enough to compute every metric and report.
///
/// With a single feed, `timestamps` borrows the feed's own column instead
/// of copying it (a million-bar copy is a measurable share of a run).
#[derive(Debug, Clone, Serialize)]
pub struct BacktestResult<'a> {
    /// The strategy's [`name`](Strategy::name).
    pub strategy: String,
    /// Feed names in feed order; instrument indices elsewhere refer to it.
    pub instruments: Vec<String>,
    /// Cash at the start.
    pub initial_cash: f64,
    /// Equity after the last bar, positions marked at their last closes.
    pub final_equity: f64,
    /// One point per distinct timestamp, after that timestamp's bars.
    pub timestamps: Cow<'a, [i64]>,
    /// Marked equity at each of `timestamps`.
    pub equity: Vec<f64>,
    /// Timestamps at which any position was open.
    pub exposed_points: usize,
    /// Closed round trips, in the order they closed.
    pub trades: Vec<Trade>,
    /// Every execution, in order.
    pub fills: Vec<Fill>,
    /// Every refusal, cut and breaker trip of the risk layer.
    pub risk_events: Vec<RiskEvent>,
    /// The position in each instrument at the end (zero when flat).
    pub open_positions: Vec<Position>,
    /// Commissions paid over the run.
    pub fees_paid: f64,
    /// Sum of `|qty| * price` over every fill.
    pub traded_notional: f64,
    /// Periods per year used to annualise: the largest over the feeds
    /// (252 with no feeds).
    pub periods_per_year: f64,
    /// Bars replayed, summed over every feed.
    pub bars_processed: usize,
    /// Per instrument, entries that whole lots rounded to zero units (an
    /// order smaller than one lot): nothing traded, and the reports warn
    /// and name `data.fractional`.
    pub orders_rounded_to_zero: Vec<usize>,
}

impl BacktestResult<'_> {
    /// A warning for each instrument whose entries rounded to zero units,
    /// naming the setting that fixes it.
    pub fn rounding_warnings(&self) -> Vec<String> {
        self.instruments
            .iter()
            .zip(&self.orders_rounded_to_zero)
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| {
                format!(
                    "{n} order(s) on {name} rounded to 0 units (less than one whole lot at the position cap); set data.fractional: true (or data.instruments.{name}.fractional) to trade fractions, or a smaller lot_size"
                )
            })
            .collect()
    }
}

/// Orders the strategy just submitted, and those waiting for a later bar.
struct Queues {
    new_orders: Vec<Order>,
    pending: Vec<Order>,
}

impl Queues {
    /// Room for a bar's orders up front: the loop allocates nothing per bar.
    fn new() -> Self {
        Queues {
            new_orders: Vec::with_capacity(16),
            pending: Vec::with_capacity(16),
        }
    }
}

/// The equity curve being recorded.
///
/// With one feed the timestamps are the feed's own, copied once at the end,
/// and equity goes into a pre-sized vector: no per-bar capacity checks.
struct Curve {
    timestamps: Vec<i64>,
    equity: Vec<f64>,
    points: usize,
    record_timestamps: bool,
    exposed: usize,
}

/// The engine's steps, on top of the broker.
impl Broker {
    /// Steps 1-4 of the module docs for bar `k` of instrument `i`.
    #[inline(always)]
    fn bar<S: Strategy + ?Sized>(&mut self, strategy: &mut S, q: &mut Queues, i: usize, k: usize, bar: Bar) {
        self.begin_bar(&bar);
        if !q.pending.is_empty() {
            let mut j = 0;
            while j < q.pending.len() {
                if q.pending[j].instrument != i {
                    j += 1;
                    continue;
                }
                let o = q.pending[j];
                match o.trigger_price(bar.open, bar.high, bar.low) {
                    Some(p) => {
                        q.pending.remove(j);
                        // Filled at the open or inside the bar: the rest of
                        // this bar happened after the fill.
                        self.execute(&o, p, &bar, k, true);
                    }
                    None => j += 1,
                }
            }
        }
        let st = &mut self.state[i];
        if st.bracket.is_some() {
            self.check_bracket(i, &bar, k);
        }
        self.close_bar(i, &bar);

        let mut ctx = BarContext {
            instrument: i,
            index: k,
            bar,
            position: self.account.position(i).qty,
            equity: self.account.equity(),
            cash: self.account.cash(),
            unrealized_pnl: self.account.unrealized_pnl(i),
            halted: self.risk.halted(),
            orders: &mut q.new_orders,
        };
        strategy.on_bar(&mut ctx);
        if !q.new_orders.is_empty() {
            for j in 0..q.new_orders.len() {
                let o = q.new_orders[j];
                if self.cfg.fill == FillPolicy::SignalClose && o.kind == OrderKind::Market {
                    self.execute(&o, bar.close, &bar, k, false);
                } else {
                    q.pending.push(o);
                }
            }
            q.new_orders.clear();
        }
    }

    /// Step 5: once every feed at `ts` is done, the risk layer sees the
    /// marked equity and the curve gets its point.
    #[inline(always)]
    fn close_timestamp(&mut self, q: &mut Queues, out: &mut Curve, ts: i64, k: usize) {
        self.settle_timestamp(q, ts, k);
        if self.account.has_positions() {
            out.exposed += 1;
        }
        if out.record_timestamps {
            out.timestamps.push(ts);
        }
        out.equity[out.points] = self.account.equity();
        out.points += 1;
    }

    /// The risk layer's end of a timestamp: the breaker trips here.
    #[inline(always)]
    fn settle_timestamp(&mut self, q: &mut Queues, ts: i64, k: usize) {
        if self.end_timestamp(ts) {
            self.trip_breaker(q, ts, k);
        }
    }

    /// The drawdown breaker: drop what was queued and close everything.
    #[cold]
    fn trip_breaker(&mut self, q: &mut Queues, ts: i64, k: usize) {
        q.pending.clear();
        for (j, p) in self.account.positions().to_vec().iter().enumerate() {
            if p.qty == 0.0 {
                continue;
            }
            let action = if p.qty > 0.0 {
                Action::CloseLong
            } else {
                Action::CloseShort
            };
            let exit = Order::market(j, action);
            if self.cfg.fill == FillPolicy::SignalClose {
                let mark = self.account.mark(j);
                let b = Bar {
                    ts,
                    open: mark,
                    high: mark,
                    low: mark,
                    close: mark,
                    volume: 0.0,
                };
                self.execute(&exit, mark, &b, k, false);
            } else {
                q.pending.push(exit);
            }
        }
    }
}

/// The engine one bar at a time, for bars that arrive as they happen (the
/// trading loop replays or streams them): the same steps as [`run`], on the
/// same broker, so a replay through a stepper gives a backtest's fills and
/// equity. Call [`on_bar`](Stepper::on_bar) for each instrument's bar at a
/// timestamp, then [`end_timestamp`](Stepper::end_timestamp) once.
pub struct Stepper {
    broker: Broker,
    queues: Queues,
    /// Each instrument's last bar and its index, for orders submitted
    /// after it (see [`submit`](Stepper::submit)).
    last_bar: Vec<Option<(usize, Bar)>>,
    /// Bars seen per instrument: the next bar's index.
    seen: Vec<usize>,
    /// The index of the last bar stepped (as `run` passes it to step 5).
    last_index: usize,
    /// Curve points with a position open.
    exposed: usize,
    timestamps: Vec<i64>,
    equity: Vec<f64>,
}

impl Stepper {
    /// A stepper for instruments described by `feeds` (names, lots,
    /// timeframe and calendar; their bars are not replayed), after
    /// `strategy.start(feeds)`.
    pub fn new<S: Strategy + ?Sized>(cfg: EngineConfig, feeds: &[&BarSeries], strategy: &mut S) -> Stepper {
        strategy.start(feeds);
        Stepper {
            broker: Broker::new(cfg, feeds),
            queues: Queues::new(),
            last_bar: vec![None; feeds.len()],
            seen: vec![0; feeds.len()],
            last_index: 0,
            exposed: 0,
            timestamps: Vec::new(),
            equity: Vec::new(),
        }
    }

    /// Instrument `instrument`'s next bar: pending orders, brackets, the
    /// mark, the strategy's decision and its orders (engine steps 1-4).
    pub fn on_bar<S: Strategy + ?Sized>(&mut self, strategy: &mut S, instrument: usize, bar: Bar) {
        let k = self.seen[instrument];
        self.seen[instrument] += 1;
        self.last_index = k;
        self.last_bar[instrument] = Some((k, bar));
        self.broker.bar(strategy, &mut self.queues, instrument, k, bar);
    }

    /// Instrument `instrument`'s next bar with no strategy deciding on it:
    /// pending orders fill, brackets trigger, the mark moves. Whoever
    /// decides does so afterwards and [`submit`](Stepper::submit)s, which
    /// is the same order of events as [`on_bar`](Stepper::on_bar).
    pub fn on_market_bar(&mut self, instrument: usize, bar: Bar) {
        self.on_bar(&mut NoDecisions, instrument, bar);
    }

    /// An order decided at instrument `order.instrument`'s last bar, as a
    /// strategy would have submitted it there: a market order under the
    /// signal-close fill policy fills at that close now, any other waits
    /// for a later bar. False (and nothing queued) before the instrument's
    /// first bar.
    pub fn submit(&mut self, order: Order) -> bool {
        let Some(&Some((k, bar))) = self.last_bar.get(order.instrument) else {
            return false;
        };
        if self.broker.cfg.fill == FillPolicy::SignalClose && order.kind == OrderKind::Market {
            self.broker.execute(&order, bar.close, &bar, k, false);
        } else {
            self.queues.pending.push(order);
        }
        true
    }

    /// Drops a waiting order; true when there was one equal to `order`.
    pub fn cancel(&mut self, order: &Order) -> bool {
        match self.queues.pending.iter().position(|o| o == order) {
            Some(j) => {
                self.queues.pending.remove(j);
                true
            }
            None => false,
        }
    }

    /// Every instrument's bar at `ts` is in: the risk layer and the equity
    /// curve (engine step 5).
    pub fn end_timestamp(&mut self, ts: i64) {
        self.broker.settle_timestamp(&mut self.queues, ts, self.last_index);
        if self.broker.account.has_positions() {
            self.exposed += 1;
        }
        self.timestamps.push(ts);
        self.equity.push(self.broker.account.equity());
    }

    /// The broker: account, fills, risk events.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The equity curve so far: one point per timestamp ended.
    pub fn curve(&self) -> (&[i64], &[f64]) {
        (&self.timestamps, &self.equity)
    }

    /// Orders waiting for a later bar.
    pub fn pending_orders(&self) -> &[Order] {
        &self.queues.pending
    }

    /// The session's result, as [`run`] reports a backtest: `feeds` are the
    /// instruments it was built for, `strategy` the name to report.
    pub fn into_result(self, strategy: String, feeds: &[&BarSeries]) -> BacktestResult<'static> {
        let total = self.seen.iter().sum();
        self.broker.into_result(
            strategy,
            feeds,
            Cow::Owned(self.timestamps),
            self.equity,
            self.exposed,
            total,
        )
    }
}

/// The strategy of a stepper whose decisions come from outside.
struct NoDecisions;

impl Strategy for NoDecisions {
    fn name(&self) -> String {
        "external".into()
    }

    fn on_bar(&mut self, _: &mut BarContext<'_>) {}
}

/// Runs `strategy` over `feeds` and returns the full result.
pub fn run<'a, S: Strategy + ?Sized>(
    feeds: &[&'a BarSeries],
    strategy: &mut S,
    cfg: &EngineConfig,
) -> BacktestResult<'a> {
    let n = feeds.len();
    let longest = feeds.iter().map(|f| f.len()).max().unwrap_or(0);
    let total: usize = feeds.iter().map(|f| f.len()).sum();
    let mut run = Broker::new(cfg.clone(), feeds);
    strategy.start(feeds);
    let points = if n == 1 { longest } else { total };
    let mut out = Curve {
        timestamps: if n == 1 { Vec::new() } else { Vec::with_capacity(points) },
        equity: vec![0.0; points],
        points: 0,
        record_timestamps: n != 1,
        exposed: 0,
    };
    let mut queues = Queues::new();
    if n == 1 {
        // One feed: every bar is its own timestamp; no merging needed.
        let feed = feeds[0];
        for k in 0..feed.len() {
            let bar = feed.bar(k);
            run.bar(strategy, &mut queues, 0, k, bar);
            run.close_timestamp(&mut queues, &mut out, bar.ts, k);
        }
    } else {
        let mut cursor = vec![0usize; n];
        let next_event = |cursor: &[usize]| -> Option<(usize, i64)> {
            let mut best: Option<(usize, i64)> = None;
            for (i, f) in feeds.iter().enumerate() {
                if let Some(&ts) = f.ts.get(cursor[i]) {
                    if best.is_none_or(|(_, b)| ts < b) {
                        best = Some((i, ts));
                    }
                }
            }
            best
        };
        let mut next = next_event(&cursor);
        while let Some((i, ts)) = next {
            let k = cursor[i];
            cursor[i] += 1;
            run.bar(strategy, &mut queues, i, k, feeds[i].bar(k));
            next = next_event(&cursor);
            if next.is_none_or(|(_, t)| t != ts) {
                run.close_timestamp(&mut queues, &mut out, ts, k);
            }
        }
    }

    let timestamps = if n == 1 {
        Cow::Borrowed(&feeds[0].ts[..])
    } else {
        Cow::Owned(out.timestamps)
    };
    let mut equity = out.equity;
    equity.truncate(out.points);
    run.into_result(strategy.name(), feeds, timestamps, equity, out.exposed, total)
}

impl Broker {
    /// The result of a run that ended: the account's fills, trades and
    /// positions, the risk layer's events and the curve.
    fn into_result<'a>(
        self,
        strategy: String,
        feeds: &[&BarSeries],
        timestamps: Cow<'a, [i64]>,
        equity: Vec<f64>,
        exposed: usize,
        total: usize,
    ) -> BacktestResult<'a> {
        let ppy = self.state.iter().map(|s| s.periods_per_year).fold(0.0, f64::max);
        BacktestResult {
            strategy,
            instruments: feeds.iter().map(|f| f.instrument.clone()).collect(),
            initial_cash: self.cfg.initial_cash,
            final_equity: self.account.equity(),
            equity,
            timestamps,
            exposed_points: exposed,
            open_positions: self.account.positions().to_vec(),
            fees_paid: self.account.fees_paid(),
            traded_notional: self.account.traded_notional(),
            periods_per_year: if ppy > 0.0 { ppy } else { 252.0 },
            bars_processed: total,
            orders_rounded_to_zero: self.state.iter().map(|s| s.rounded_to_zero).collect(),
            trades: self.account.trades,
            fills: self.account.fills,
            risk_events: self.risk.events,
        }
    }
}
