//! One trading environment: an instrument, a split, a broker, an episode.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tradelab_core::Action;
use tradelab_sim::settings::FillPolicy;

use crate::settings::InvalidActions;
use tradelab_sim::broker::Broker;
use tradelab_sim::order::Order;

use crate::account_inputs::{account_features, Holding, SeedOrder};
use crate::config::EnvConfig;
use crate::market_data::{MarketData, Split, ACCOUNT_FEATURES};
use crate::reward::RewardTracker;

/// Bars fed to the broker's estimators before an episode starts.
const WARM_UP_BARS: usize = 64;

/// Problems setting up an environment. Stepping never fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    /// A non-empty split is too short for the feature warm-up, one window
    /// and one step, or the training split leaves fewer than two rows to fit
    /// the normalisation on.
    #[error("{instrument}: the {split} split has {bars} bars but needs at least {needed} (feature warm-up plus the observation window plus one step); use more data, a shorter env.window or other split fractions")]
    SplitTooShort {
        /// The series' instrument name.
        instrument: String,
        /// The split's name (`train`, `validation`, `test`).
        split: &'static str,
        /// Bars the split has.
        bars: usize,
        /// Bars it would need.
        needed: usize,
    },
    /// An environment was asked to run on a split with no steps; the value
    /// is the split's name.
    #[error("the {0} split is empty; adjust env.train_fraction and env.validation_fraction")]
    EmptySplit(&'static str),
    /// `regime.features` is on and the regime detector could not be fitted
    /// on the training split.
    #[error("{instrument}: the regime model (regime.features) could not be fitted: {message}")]
    Regime {
        /// The series' instrument name.
        instrument: String,
        /// The regime crate's error, as text.
        message: String,
    },
}

/// An action and its quantity: the fraction in (0, 1] of the risk budget an
/// entry commits. Close actions close the whole position; HOLD ignores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvAction {
    /// What to do; an action invalid for the position acts as HOLD.
    pub action: Action,
    /// Fraction of the risk budget for an entry; clamped to [0, 1], and a
    /// non-finite value counts as 0 (no order).
    pub quantity: f64,
}

impl EnvAction {
    /// `action` with `quantity`.
    pub fn new(action: Action, quantity: f64) -> Self {
        EnvAction { action, quantity }
    }
}

/// What an agent sees: the feature window (rows oldest first, a view into
/// the precomputed matrix) and the account values.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// `window × features` normalised values, row-major, oldest bar first.
    pub window: &'a [f32],
    /// Equity relative to the start, signed exposure and unrealised P&L
    /// over equity (see [`account_features`](crate::account_features)).
    pub account: [f32; ACCOUNT_FEATURES],
}

impl Observation<'_> {
    /// Writes the observation as one flat vector (window, then account).
    pub fn write_to(&self, out: &mut [f32]) {
        let n = self.window.len();
        out[..n].copy_from_slice(self.window);
        out[n..n + ACCOUNT_FEATURES].copy_from_slice(&self.account);
    }
}

/// Diagnostics of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Marked equity at the end of the step, in account currency.
    pub equity: f64,
    /// Signed position at the end of the step, in units (negative: short).
    pub position: f64,
    /// The chosen action was invalid for the position and acted as HOLD.
    pub invalid_action: bool,
    /// Fees paid during the step, in account currency.
    pub fees: f64,
    /// The risk layer cut or refused something this step.
    pub risk_intervened: bool,
    /// The bar the step ended on.
    pub bar: usize,
}

/// Gymnasium's step tuple (the observation is read with
/// [`TradingEnv::observation`] to avoid copying it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepResult {
    /// The step's reward, as configured by `env.reward` and its penalties.
    pub reward: f64,
    /// Ruin or the drawdown breaker: the episode is over, do not bootstrap.
    pub terminated: bool,
    /// The episode window ended: bootstrap from the last observation.
    pub truncated: bool,
    /// Diagnostics of the step.
    pub info: StepInfo,
}

/// A single-instrument trading environment over one split of a
/// [`MarketData`], trading through a backtest's broker.
pub struct TradingEnv {
    data: Arc<MarketData>,
    cfg: EnvConfig,
    split: Split,
    broker: Broker,
    rewards: RewardTracker,
    rng: ChaCha8Rng,
    /// The bar whose close the agent has just seen.
    t: usize,
    /// The last bar the episode may act on (exclusive).
    end: usize,
}

impl TradingEnv {
    /// An environment over `split` of `data`, seeded for its episode starts.
    pub fn new(data: Arc<MarketData>, split: Split, cfg: &EnvConfig, seed: u64) -> Result<Self, EnvError> {
        if data.steps(split).is_empty() {
            return Err(EnvError::EmptySplit(split.name()));
        }
        let cfg = cfg.clone();
        let broker = Broker::new(cfg.engine.clone(), &[&data.series]);
        let rewards = RewardTracker::new(&cfg.env, cfg.risk_budget(), data.train_bar_return_variance());
        let t = data.steps(split).start;
        Ok(TradingEnv {
            data,
            broker,
            rewards,
            rng: ChaCha8Rng::seed_from_u64(seed),
            t,
            end: t + 1,
            split,
            cfg,
        })
    }

    /// The market data it trades.
    pub fn data(&self) -> &MarketData {
        &self.data
    }

    /// What it runs under: `env:` and the broker's rules.
    pub fn config(&self) -> &EnvConfig {
        &self.cfg
    }

    /// The broker, with the episode's account, positions and risk events.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The bar whose close the agent has just seen.
    pub fn bar_index(&self) -> usize {
        self.t
    }

    /// Restarts the random stream episode starts are drawn from, as if the
    /// environment had been created with `seed` (Gymnasium's
    /// `reset(seed=...)`).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Starts an episode: a fresh account at a random (or the first) bar of
    /// the split, running `episode_bars` bars or to the split's end.
    pub fn reset(&mut self) -> Observation<'_> {
        let steps = self.data.steps(self.split);
        let span = match self.cfg.env.episode_bars {
            0 => steps.len(),
            n => n.min(steps.len()),
        };
        let latest_start = steps.end - span;
        self.t = if self.cfg.env.random_start && latest_start > steps.start {
            self.rng.random_range(steps.start..=latest_start)
        } else {
            steps.start
        };
        self.end = self.t + span;
        self.broker.reset();
        // Warm the broker's ATR and volatility estimates (used by slippage
        // and sizing) on the bars just before the start; no position is open,
        // so nothing else changes.
        for k in self.t.saturating_sub(WARM_UP_BARS)..=self.t {
            let bar = self.data.series.bar(k);
            self.broker.close_bar(0, &bar);
        }
        let price = self.data.series.close[self.t];
        self.rewards.reset(self.broker.account().equity(), price);
        self.observation()
    }

    /// What the policy may choose now, indexed by [`Action::index`]: under
    /// `env.actions: trade` flat may open either way, a position may only be
    /// closed, and HOLD is always valid; under `target` long, short and flat
    /// are always valid.
    #[inline]
    pub fn action_mask(&self) -> [bool; 5] {
        self.cfg.env.actions.mask(self.broker.account().position(0).qty)
    }

    /// What the agent sees now: the feature window ending at the current
    /// bar and the account values.
    #[inline]
    pub fn observation(&self) -> Observation<'_> {
        let a = self.broker.account();
        let start = self.broker.config().initial_cash;
        Observation {
            window: self.data.window(self.t),
            account: account_features(a.equity(), start, a.position(0).qty * a.mark(0), a.unrealized_pnl(0)),
        }
    }

    /// Acts at the current bar's close and advances one bar.
    pub fn step(&mut self, act: EnvAction) -> StepResult {
        let mask = self.action_mask();
        let invalid = !mask[act.action.index()];
        let order = if invalid {
            SeedOrder::HOLD
        } else {
            let a = self.broker.account();
            let held = Holding::new(a.position(0).qty, a.mark(0), a.equity(), self.cfg.risk_budget());
            self.cfg
                .env
                .actions
                .carry_out(act.action, act.quantity, held, self.cfg.env.exposure_band)
        };
        let fees_before = self.broker.account().fees_paid();
        let events_before = self.broker.risk().events.len();
        let series = &self.data.series;
        let now = series.bar(self.t);
        let next_index = self.t + 1;
        let next = series.bar(next_index);

        let order = self.order_for(order, &now, &next);
        match self.cfg.engine.fill {
            FillPolicy::SignalClose => {
                if let Some(o) = order {
                    self.broker.execute(&o, now.close, &now, self.t, false);
                }
                self.broker.begin_bar(&next);
            }
            FillPolicy::NextOpen => {
                self.broker.begin_bar(&next);
                if let Some(o) = order {
                    self.broker.execute(&o, next.open, &next, next_index, true);
                }
            }
        }
        self.broker.close_bar(0, &next);
        let tripped = self.broker.end_timestamp(next.ts);
        self.t = next_index;
        let start = self.broker.config().initial_cash;
        let mut terminated = false;
        if tripped || self.broker.account().equity() <= self.cfg.env.ruin_fraction * start {
            // The breaker (or ruin) ends the episode: close out at this bar's
            // close so the final reward carries the exit costs.
            self.flatten(&next);
            terminated = true;
        }
        let a = self.broker.account();
        let equity = a.equity();
        let exposure = if equity > 0.0 {
            (a.position(0).qty * a.mark(0)).abs() / equity
        } else {
            0.0
        };
        let mut reward = self.rewards.step(equity, exposure, next.close);
        if invalid && self.cfg.env.invalid_actions == InvalidActions::Penalize {
            reward -= self.cfg.env.invalid_penalty;
        }
        StepResult {
            reward,
            terminated,
            truncated: !terminated && self.t + 1 >= self.end,
            info: StepInfo {
                equity,
                position: a.position(0).qty,
                invalid_action: invalid,
                fees: a.fees_paid() - fees_before,
                risk_intervened: self.broker.risk().events.len() > events_before,
                bar: self.t,
            },
        }
    }

    /// The order an action means, sized from the risk budget at the price
    /// it will fill near.
    fn order_for(&self, order: SeedOrder, now: &tradelab_core::Bar, next: &tradelab_core::Bar) -> Option<Order> {
        let SeedOrder { action, quantity } = order;
        match action {
            Action::Hold => None,
            Action::CloseLong | Action::CloseShort if quantity >= 1.0 => Some(Order::market(0, action)),
            Action::CloseLong | Action::CloseShort => {
                // Part of the position (exposure targets); the broker rounds
                // it to whole lots.
                let held = self.broker.account().position(0).qty.abs();
                let units = quantity.clamp(0.0, 1.0) * held;
                (units > 0.0).then(|| Order::market(0, action).units(units))
            }
            Action::BuyLong | Action::SellShort => {
                let q = if quantity.is_finite() {
                    quantity.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let price = match self.cfg.engine.fill {
                    FillPolicy::SignalClose => now.close,
                    FillPolicy::NextOpen => next.open,
                };
                let budget = q * self.cfg.risk_budget() * self.broker.account().equity();
                let units = self.cfg.engine.costs.affordable_quantity(budget, price);
                (units > 0.0).then(|| Order::market(0, action).units(units))
            }
        }
    }

    fn flatten(&mut self, bar: &tradelab_core::Bar) {
        let q = self.broker.account().position(0).qty;
        if q != 0.0 {
            let action = if q > 0.0 { Action::CloseLong } else { Action::CloseShort };
            self.broker
                .execute(&Order::market(0, action), bar.close, bar, self.t, false);
        }
    }
}

#[cfg(test)]
mod tests;
