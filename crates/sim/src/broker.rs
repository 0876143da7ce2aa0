//! The broker: one shared cash [`Account`], the risk layer, and the rules
//! for turning an [`Order`] into fills on a bar (costs, slippage, sizing,
//! lots, attached stop-loss / take-profit). The backtesting engine drives it
//! from recorded bars; the RL environment drives it one agent action at a
//! time, so both trade under exactly the same rules.

use tradelab_core::{Action, Bar, BarSeries};
use tradelab_data::features::{Atr, RealizedVolatility};

use crate::account::Account;
use crate::engine::EngineConfig;
use crate::metrics::periods_per_year;
use crate::order::{Order, OrderQty};
use crate::portfolio::RiskBudgets;
use crate::risk::{RiskLayer, RiskRule};
use crate::sizing::{Lots, Sizing};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bracket {
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    /// The bar on which the entry filled at the open or intrabar: only the
    /// stop-loss is checked there.
    entry_bar: Option<usize>,
}

pub(crate) struct InstrumentState {
    pub(crate) atr: Option<Atr>,
    pub(crate) vol: Option<RealizedVolatility>,
    pub(crate) last_atr: f64,
    pub(crate) last_vol: f64,
    pub(crate) bracket: Option<Bracket>,
    pub(crate) lots: Lots,
    pub(crate) periods_per_year: f64,
    /// `sqrt(periods_per_year)`, to annualise per-bar volatility.
    pub(crate) annualise: f64,
    /// Entries sized above zero that whole lots rounded to nothing (a
    /// counter, not events: an agent may try every bar).
    pub(crate) rounded_to_zero: usize,
}

/// Executes orders for a set of instruments against one account.
pub struct Broker {
    pub(crate) cfg: EngineConfig,
    pub(crate) account: Account,
    pub(crate) risk: RiskLayer,
    pub(crate) state: Vec<InstrumentState>,
    /// Risk-parity weights across the feeds, for `Sizing::RiskParity`.
    pub(crate) budgets: Option<RiskBudgets>,
}

impl Broker {
    /// A broker for `feeds` (used for their names, lot rules and timeframe).
    pub fn new(cfg: EngineConfig, feeds: &[&BarSeries]) -> Self {
        let state = feeds
            .iter()
            .map(|f| {
                let ppy = periods_per_year(f);
                let window = match cfg.sizing {
                    Sizing::VolatilityTarget { window, .. } => Some(window),
                    _ => None,
                };
                InstrumentState {
                    atr: cfg.slippage.needs_atr().then(|| Atr::new(cfg.atr_period)),
                    vol: window.map(RealizedVolatility::new),
                    last_atr: f64::NAN,
                    last_vol: f64::NAN,
                    bracket: None,
                    lots: cfg.instrument_lots.get(&f.instrument).copied().unwrap_or(cfg.lots),
                    periods_per_year: ppy,
                    annualise: ppy.sqrt(),
                    rounded_to_zero: 0,
                }
            })
            .collect();
        let budgets = match cfg.sizing {
            Sizing::RiskParity { window, rebalance, .. } => Some(RiskBudgets::new(feeds.len(), window, rebalance)),
            _ => None,
        };
        Broker {
            account: Account::new(cfg.initial_cash, feeds.len(), cfg.costs),
            risk: crate::risk::RiskLayer::new(cfg.risk, cfg.initial_cash),
            state,
            budgets,
            cfg,
        }
    }

    /// Back to a fresh account and risk state, keeping allocations (the RL
    /// environment resets many times).
    pub fn reset(&mut self) {
        self.account.reset();
        self.risk.reset(self.cfg.initial_cash);
        if let Some(b) = self.budgets.as_mut() {
            b.reset();
        }
        for st in &mut self.state {
            if let Some(atr) = st.atr.as_mut() {
                atr.reset();
            }
            if let Some(vol) = st.vol.as_mut() {
                vol.reset();
            }
            st.last_atr = f64::NAN;
            st.last_vol = f64::NAN;
            st.bracket = None;
        }
    }

    /// The shared account: cash, positions, fills and trades.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The risk layer, with its events and halt state.
    pub fn risk(&self) -> &RiskLayer {
        &self.risk
    }

    /// The configuration the broker was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Lot rules of instrument `i`.
    pub fn lots(&self, i: usize) -> Lots {
        self.state[i].lots
    }

    /// Call at the start of each bar, before its orders: the risk layer's day.
    #[inline]
    pub fn begin_bar(&mut self, bar: &Bar) {
        self.risk.begin_bar(bar.ts);
    }

    /// Call at each bar's close of instrument `i`: marks the position and
    /// updates the estimates used by slippage and sizing (known from the next
    /// bar on, so nothing looks ahead).
    #[inline]
    pub fn close_bar(&mut self, i: usize, bar: &Bar) {
        self.account.set_mark(i, bar.close);
        if let Some(b) = self.budgets.as_mut() {
            b.close(i, bar.close);
        }
        let st = &mut self.state[i];
        if let Some(atr) = st.atr.as_mut() {
            st.last_atr = atr.update(bar.high, bar.low, bar.close);
        }
        if let Some(vol) = st.vol.as_mut() {
            st.last_vol = vol.update(bar.close);
        }
    }

    /// Once every instrument at `ts` is closed: the risk layer sees the
    /// marked equity. True when the drawdown breaker trips now.
    #[inline]
    pub fn end_timestamp(&mut self, ts: i64) -> bool {
        if let Some(b) = self.budgets.as_mut() {
            b.end_timestamp();
        }
        let eq = self.account.equity();
        self.risk.end_bar(ts, eq)
    }

    /// Fills `o` at trigger price `p0` (before slippage) on bar `k`.
    pub fn execute(&mut self, o: &Order, p0: f64, bar: &Bar, k: usize, intrabar: bool) {
        let i = o.instrument;
        let side = o.side();
        let pos = self.account.position(i).qty;
        let st = &self.state[i];
        let (atr, vol_bar) = (st.last_atr, bar.volume);
        match o.action {
            Action::Hold => {}
            Action::CloseLong | Action::CloseShort => {
                let matches =
                    (o.action == Action::CloseLong && pos > 0.0) || (o.action == Action::CloseShort && pos < 0.0);
                if !matches {
                    return;
                }
                let qty = match o.qty {
                    // A partial close trades whole lots, as entries do.
                    OrderQty::Units(u) if u < pos.abs() => self.state[i].lots.round(u),
                    _ => pos.abs(),
                };
                if qty <= 0.0 {
                    return;
                }
                let price = self.cfg.slippage.apply(p0, side, qty, vol_bar, atr);
                self.account.fill(bar.ts, i, o.action, -pos.signum() * qty, price);
                if self.account.position(i).qty == 0.0 {
                    self.state[i].bracket = None;
                }
            }
            Action::BuyLong | Action::SellShort => {
                let dir = if o.action == Action::BuyLong { 1.0 } else { -1.0 };
                if pos * dir < 0.0 {
                    let price = self.cfg.slippage.apply(p0, side, pos.abs(), vol_bar, atr);
                    self.account.fill(bar.ts, i, o.action, -pos, price);
                    self.state[i].bracket = None;
                }
                let est = self.cfg.slippage.apply(p0, side, 0.0, vol_bar, atr);
                let vol_annual = self.state[i].last_vol * self.state[i].annualise;
                let budget = self.budgets.as_ref().map_or(f64::NAN, |b| b.weight(i));
                let wanted = match o.qty {
                    // Under risk parity an instrument's weight caps what a
                    // strategy (an agent) asks for, not only what sizing picks.
                    OrderQty::Units(u) if self.budgets.is_some() => self
                        .cfg
                        .sizing
                        .units(self.account.equity(), est, vol_annual, budget, &self.cfg.costs)
                        .map(|cap| u.min(cap)),
                    OrderQty::Units(u) => Some(u),
                    _ => self
                        .cfg
                        .sizing
                        .units(self.account.equity(), est, vol_annual, budget, &self.cfg.costs),
                };
                let Some(wanted) = wanted.filter(|u| u.is_finite()) else {
                    self.risk.record(
                        bar.ts,
                        i,
                        o.action,
                        RiskRule::SizingUnavailable,
                        0.0,
                        if self.budgets.is_some() {
                            "risk-parity weights not ready (the first backtest.sizing.hrp_window bars): entry skipped"
                        } else {
                            "volatility estimate not ready: entry skipped"
                        },
                    );
                    return;
                };
                let lots = self.state[i].lots;
                let sized = wanted;
                let wanted = lots.round(wanted);
                if wanted <= 0.0 {
                    if sized > 0.0 {
                        self.state[i].rounded_to_zero += 1;
                    }
                    return;
                }
                let allowed = self.risk.allow_entry(bar.ts, i, o.action, wanted, est, &self.account);
                let qty = lots.round(allowed.min(wanted));
                if qty <= 0.0 {
                    if allowed > 0.0 {
                        self.state[i].rounded_to_zero += 1;
                    }
                    return;
                }
                let price = self.cfg.slippage.apply(p0, side, qty, vol_bar, atr);
                self.account.fill(bar.ts, i, o.action, dir * qty, price);
                if o.stop_loss.is_some() || o.take_profit.is_some() {
                    self.state[i].bracket = Some(Bracket {
                        stop_loss: o.stop_loss,
                        take_profit: o.take_profit,
                        entry_bar: intrabar.then_some(k),
                    });
                }
            }
        }
    }

    /// Exits at an attached stop-loss or take-profit if the bar reaches it.
    #[inline(never)]
    pub(crate) fn check_bracket(&mut self, i: usize, bar: &Bar, k: usize) {
        let Some(b) = self.state[i].bracket else { return };
        let pos = self.account.position(i).qty;
        if pos == 0.0 {
            self.state[i].bracket = None;
            return;
        }
        let long = pos > 0.0;
        let close_action = if long { Action::CloseLong } else { Action::CloseShort };
        let exit = Order::market(i, close_action);
        if let Some(sl) = b.stop_loss {
            let hit = if long {
                (bar.open <= sl).then_some(bar.open).or((bar.low <= sl).then_some(sl))
            } else {
                (bar.open >= sl).then_some(bar.open).or((bar.high >= sl).then_some(sl))
            };
            if let Some(p) = hit {
                self.execute(&exit, p, bar, k, true);
                return;
            }
        }
        if b.entry_bar == Some(k) {
            return;
        }
        if let Some(tp) = b.take_profit {
            let hit = if long {
                (bar.open >= tp).then_some(bar.open).or((bar.high >= tp).then_some(tp))
            } else {
                (bar.open <= tp).then_some(bar.open).or((bar.low <= tp).then_some(tp))
            };
            if let Some(p) = hit {
                // A take-profit is a resting limit: no slippage.
                let pos = self.account.position(i).qty;
                self.account.fill(bar.ts, i, close_action, -pos, p);
                self.state[i].bracket = None;
            }
        }
    }
}
