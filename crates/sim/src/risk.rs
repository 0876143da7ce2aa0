//! The risk layer: every entry order passes through it before it fills.
//!
//! Limits (from `risk:` in settings): maximum units per instrument, maximum
//! share of equity in one instrument (25% by default), maximum gross
//! leverage, a daily loss limit that blocks new entries for the rest of the
//! day, and a drawdown circuit breaker that flattens everything and halts.
//! Orders that reduce risk (exits) are never blocked. Every refusal or cut is
//! recorded as a [`RiskEvent`] with its reason.

use std::borrow::Cow;

use crate::settings::RiskSettings;
use serde::Serialize;
use tradelab_core::time::{day_of, MS_PER_DAY};
use tradelab_core::Action;

use crate::account::Account;

/// The limits the risk layer enforces (`risk:` in settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskLimits {
    /// Off: every entry passes unchecked and neither the daily loss limit
    /// nor the breaker trips.
    pub enabled: bool,
    /// 0 = no limit.
    pub max_position_units: f64,
    /// Largest position value in one instrument as a share of equity
    /// (0.25 = 25%).
    pub max_asset_fraction: f64,
    /// Largest sum of `|position value|` as a multiple of equity.
    pub max_gross_leverage: f64,
    /// 0 = off.
    pub daily_loss_limit: f64,
    /// 0 = off.
    pub max_drawdown: f64,
}

impl RiskLimits {
    /// The limits `risk:` describes.
    pub fn from_settings(s: &RiskSettings) -> Self {
        RiskLimits {
            enabled: s.enabled,
            max_position_units: s.max_position_units,
            max_asset_fraction: s.max_asset_fraction,
            max_gross_leverage: s.max_gross_leverage,
            daily_loss_limit: s.daily_loss_limit,
            max_drawdown: s.max_drawdown,
        }
    }

    /// Share of equity one unit of an agent's action quantity commits: the
    /// single-asset cap (or gross leverage, if lower); all of equity when
    /// the layer is off.
    pub fn budget(&self) -> f64 {
        if self.enabled {
            self.max_asset_fraction.min(self.max_gross_leverage)
        } else {
            1.0
        }
    }

    /// No limits at all.
    pub fn off() -> Self {
        RiskLimits {
            enabled: false,
            max_position_units: 0.0,
            max_asset_fraction: f64::INFINITY,
            max_gross_leverage: f64::INFINITY,
            daily_loss_limit: 0.0,
            max_drawdown: 0.0,
        }
    }
}

/// The rule behind a [`RiskEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskRule {
    /// The cap on units held in one instrument.
    MaxPositionUnits,
    /// The cap on one instrument's share of equity.
    MaxAssetFraction,
    /// The cap on gross exposure over equity.
    MaxGrossLeverage,
    /// The daily loss limit: its tripping, or an entry refused for the rest
    /// of the day.
    DailyLossLimit,
    /// The drawdown breaker: its tripping, or an entry refused after the halt.
    DrawdownCircuitBreaker,
    /// An entry refused because equity is zero or negative.
    NonPositiveEquity,
    /// An entry skipped because the sizing method could not size it yet
    /// (volatility estimate not ready).
    SizingUnavailable,
}

/// A refusal, a cut, or the breaker tripping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskEvent {
    /// Timestamp of the bar, in UTC milliseconds.
    pub ts: i64,
    /// `None` for account-wide events (daily loss limit, breaker).
    pub instrument: Option<usize>,
    /// The order's action; `HOLD` for account-wide events.
    pub action: Action,
    /// The rule that acted.
    pub rule: RiskRule,
    /// Units the order asked to open (0 for account-wide events).
    pub requested: f64,
    /// Units allowed (0 = refused).
    pub allowed: f64,
    /// Fixed reasons are static strings: refusing costs no allocation.
    pub reason: Cow<'static, str>,
}

/// Stateful risk checks for one run.
#[derive(Debug, Clone)]
pub struct RiskLayer {
    /// The limits it enforces.
    pub limits: RiskLimits,
    peak_equity: f64,
    /// The current UTC day as `[start, end)` in ms: comparing against it
    /// avoids a 64-bit division on every bar.
    day_start: i64,
    day_end: i64,
    day_start_equity: f64,
    last_equity: f64,
    daily_blocked: bool,
    halted: bool,
    /// Every refusal, cut and breaker trip so far, in order.
    pub events: Vec<RiskEvent>,
}

impl RiskLayer {
    /// A layer enforcing `limits` on a run that starts with
    /// `initial_equity` (its first peak and day's opening equity).
    pub fn new(limits: RiskLimits, initial_equity: f64) -> Self {
        RiskLayer {
            limits,
            peak_equity: initial_equity,
            day_start: i64::MAX,
            day_end: i64::MIN,
            day_start_equity: initial_equity,
            last_equity: initial_equity,
            daily_blocked: false,
            halted: false,
            events: Vec::new(),
        }
    }

    /// Back to the state of a new run starting with `equity`, keeping allocations.
    pub fn reset(&mut self, equity: f64) {
        self.peak_equity = equity;
        self.day_start = i64::MAX;
        self.day_end = i64::MIN;
        self.day_start_equity = equity;
        self.last_equity = equity;
        self.daily_blocked = false;
        self.halted = false;
        self.events.clear();
    }

    /// True once the drawdown breaker has tripped.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Call at the start of every bar: resets the daily loss limit at a new day.
    #[inline]
    pub fn begin_bar(&mut self, ts: i64) {
        if ts < self.day_start || ts >= self.day_end {
            self.day_start = day_of(ts) * MS_PER_DAY;
            self.day_end = self.day_start + MS_PER_DAY;
            self.day_start_equity = self.last_equity;
            self.daily_blocked = false;
        }
    }

    /// Call at every bar's close with the marked equity. Returns true when
    /// the drawdown breaker trips now: the caller must flatten everything.
    #[inline(always)]
    pub fn end_bar(&mut self, ts: i64, equity: f64) -> bool {
        self.last_equity = equity;
        if equity > self.peak_equity {
            self.peak_equity = equity;
        }
        if !self.limits.enabled {
            return false;
        }
        let l = &self.limits;
        if l.daily_loss_limit > 0.0
            && !self.daily_blocked
            && equity < self.day_start_equity * (1.0 - l.daily_loss_limit)
        {
            self.daily_blocked = true;
            self.events.push(RiskEvent {
                ts,
                instrument: None,
                action: Action::Hold,
                rule: RiskRule::DailyLossLimit,
                requested: 0.0,
                allowed: 0.0,
                reason: Cow::Owned(format!(
                    "equity {equity:.2} is more than {:.1}% below the day's start {:.2}: no new entries until tomorrow",
                    l.daily_loss_limit * 100.0,
                    self.day_start_equity
                )),
            });
        }
        if l.max_drawdown > 0.0 && !self.halted && equity < self.peak_equity * (1.0 - l.max_drawdown) {
            self.halted = true;
            self.events.push(RiskEvent {
                ts,
                instrument: None,
                action: Action::Hold,
                rule: RiskRule::DrawdownCircuitBreaker,
                requested: 0.0,
                allowed: 0.0,
                reason: Cow::Owned(format!(
                    "equity {equity:.2} is more than {:.1}% below its peak {:.2}: flattening and halting",
                    l.max_drawdown * 100.0,
                    self.peak_equity
                )),
            });
            return true;
        }
        false
    }

    /// Records a refusal that happened outside the limit checks.
    pub fn record(
        &mut self,
        ts: i64,
        instrument: usize,
        action: Action,
        rule: RiskRule,
        requested: f64,
        reason: impl Into<Cow<'static, str>>,
    ) {
        self.events.push(RiskEvent {
            ts,
            instrument: Some(instrument),
            action,
            rule,
            requested,
            allowed: 0.0,
            reason: reason.into(),
        });
    }

    /// How many of `requested` units (> 0) an entry of `action` in
    /// `instrument` at `price` may open. Records a [`RiskEvent`] whenever the
    /// answer is less than asked.
    pub fn allow_entry(
        &mut self,
        ts: i64,
        instrument: usize,
        action: Action,
        requested: f64,
        price: f64,
        account: &Account,
    ) -> f64 {
        if !self.limits.enabled {
            return requested;
        }
        let refuse = |rule: RiskRule, allowed: f64, reason: Cow<'static, str>, events: &mut Vec<RiskEvent>| {
            events.push(RiskEvent {
                ts,
                instrument: Some(instrument),
                action,
                rule,
                requested,
                allowed,
                reason,
            });
            allowed
        };
        if self.halted {
            return refuse(
                RiskRule::DrawdownCircuitBreaker,
                0.0,
                "trading halted by the drawdown circuit breaker".into(),
                &mut self.events,
            );
        }
        if self.daily_blocked {
            return refuse(
                RiskRule::DailyLossLimit,
                0.0,
                "daily loss limit reached: no new entries today".into(),
                &mut self.events,
            );
        }
        let equity = account.equity();
        if equity <= 0.0 {
            return refuse(
                RiskRule::NonPositiveEquity,
                0.0,
                Cow::Owned(format!("equity is {equity:.2}: no new entries")),
                &mut self.events,
            );
        }
        let held = account.position(instrument).qty.abs();
        let l = self.limits;
        let mut allowed = requested;
        let mut binding = None;
        // Rooms are plain numbers; the reason is only formatted for the cap
        // that binds, so allowed orders cost no allocation.
        let mut cap = |room: f64, rule: RiskRule| {
            let room = room.max(0.0);
            if room < allowed {
                allowed = room;
                binding = Some(rule);
            }
        };
        if l.max_position_units > 0.0 {
            cap(l.max_position_units - held, RiskRule::MaxPositionUnits);
        }
        cap(l.max_asset_fraction * equity / price - held, RiskRule::MaxAssetFraction);
        let other_gross = account.gross_exposure() - held * price;
        cap(
            (l.max_gross_leverage * equity - other_gross) / price - held,
            RiskRule::MaxGrossLeverage,
        );
        if let Some(rule) = binding {
            let why = match rule {
                RiskRule::MaxPositionUnits => format!("position limit {} units", l.max_position_units),
                RiskRule::MaxAssetFraction => {
                    format!(
                        "at most {:.1}% of equity in one instrument",
                        l.max_asset_fraction * 100.0
                    )
                }
                _ => format!("gross leverage at most {}x", l.max_gross_leverage),
            };
            let verb = if allowed <= 0.0 { "refused" } else { "cut" };
            let reason = format!("{verb}: {requested:.4} units requested, {allowed:.4} allowed by {why}");
            refuse(rule, allowed, Cow::Owned(reason), &mut self.events);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::CostModel;

    fn limits() -> RiskLimits {
        RiskLimits::from_settings(&RiskSettings::default())
    }

    #[test]
    fn single_asset_cap_cuts_orders_to_a_quarter_of_equity() {
        let a = Account::new(100_000.0, 2, CostModel::free());
        let mut r = RiskLayer::new(limits(), 100_000.0);
        let allowed = r.allow_entry(0, 0, Action::BuyLong, 1000.0, 100.0, &a);
        assert_eq!(allowed, 250.0);
        assert_eq!(r.events[0].rule, RiskRule::MaxAssetFraction);
        assert!(r.events[0].reason.contains("25.0%"));
        assert_eq!(r.allow_entry(0, 0, Action::BuyLong, 100.0, 100.0, &a), 100.0);
        assert_eq!(r.events.len(), 1, "allowed orders record nothing");
    }

    #[test]
    fn position_and_leverage_limits_bind_when_tighter() {
        let mut a = Account::new(100_000.0, 2, CostModel::free());
        let mut l = limits();
        l.max_position_units = 50.0;
        let mut r = RiskLayer::new(l, 100_000.0);
        assert_eq!(r.allow_entry(0, 0, Action::BuyLong, 100.0, 100.0, &a), 50.0);
        assert_eq!(r.events[0].rule, RiskRule::MaxPositionUnits);
        // 90% of equity already in instrument 1 leaves room for 10% in 0.
        let mut l = limits();
        l.max_asset_fraction = 1.0;
        let mut r = RiskLayer::new(l, 100_000.0);
        a.execute(0, 1, Action::BuyLong, 100.0, 900.0).unwrap();
        let allowed = r.allow_entry(0, 0, Action::BuyLong, 500.0, 100.0, &a);
        assert!((allowed - 100.0).abs() < 1e-9, "{allowed}");
        assert_eq!(r.events[0].rule, RiskRule::MaxGrossLeverage);
    }

    #[test]
    fn drawdown_breaker_trips_once_and_blocks_entries() {
        let a = Account::new(100_000.0, 1, CostModel::free());
        let mut r = RiskLayer::new(limits(), 100_000.0);
        r.begin_bar(0);
        assert!(!r.end_bar(0, 120_000.0));
        assert!(r.end_bar(1, 89_000.0), "25% below the 120k peak");
        assert!(!r.end_bar(2, 80_000.0), "trips once");
        assert!(r.halted());
        assert_eq!(r.allow_entry(3, 0, Action::BuyLong, 1.0, 1.0, &a), 0.0);
        // Repeated refusals carry a static reason: recording them allocates
        // no string (they can happen on every bar of a halted run).
        assert!(matches!(r.events.last().unwrap().reason, Cow::Borrowed(_)));
        assert!(r
            .events
            .iter()
            .any(|e| e.rule == RiskRule::DrawdownCircuitBreaker && e.reason.contains("halted")));
    }

    #[test]
    fn daily_loss_limit_blocks_until_the_next_day() {
        let a = Account::new(100_000.0, 1, CostModel::free());
        let mut r = RiskLayer::new(limits(), 100_000.0);
        let day = tradelab_core::time::MS_PER_DAY;
        r.begin_bar(0);
        r.end_bar(0, 94_000.0);
        assert_eq!(r.allow_entry(1, 0, Action::BuyLong, 1.0, 1.0, &a), 0.0);
        assert_eq!(r.events.last().unwrap().rule, RiskRule::DailyLossLimit);
        r.begin_bar(day);
        assert_eq!(r.allow_entry(day, 0, Action::BuyLong, 1.0, 1.0, &a), 1.0);
    }

    #[test]
    fn disabled_layer_allows_everything() {
        let a = Account::new(100.0, 1, CostModel::free());
        let mut r = RiskLayer::new(RiskLimits::off(), 100.0);
        assert_eq!(r.allow_entry(0, 0, Action::BuyLong, 1e6, 100.0, &a), 1e6);
        assert!(!r.end_bar(0, 1.0));
    }
}
