//! The sections the backtester reads: `backtest:` (cash, fills, costs,
//! slippage, sizing), `risk:`, `strategies:` (the rule baselines),
//! `walk_forward:`, `monte_carlo:` and `report:`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tradelab_core::settings::{default_section, Validator};

/// `backtest:`: the simulated broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSettings {
    /// Starting cash, in `currency`.
    pub initial_cash: f64,
    /// A label for reports (INR, USD); no conversion is made.
    pub currency: String,
    /// When a market order fills.
    pub fill: FillPolicy,
    /// Annual risk-free rate for the Sharpe and Sortino ratios.
    pub risk_free_rate: f64,
    /// Commissions.
    pub costs: CostSettings,
    /// Price impact of a fill.
    pub slippage: SlippageSettings,
    /// How many units an entry opens.
    pub sizing: SizingSettings,
}

/// When a market order submitted at bar `t` fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillPolicy {
    /// At bar `t+1`'s open: the default, never looks ahead.
    NextOpen,
    /// At bar `t`'s close (backtrader's cheat-on-close).
    SignalClose,
}

impl FillPolicy {
    /// As the settings file spells it (`next_open`, `signal_close`).
    pub fn name(self) -> &'static str {
        match self {
            FillPolicy::NextOpen => "next_open",
            FillPolicy::SignalClose => "signal_close",
        }
    }
}

/// `backtest.costs:`: the fee of each order is the sum of its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSettings {
    /// Fixed fee per order that opens or adds to a position (25 INR by default).
    pub entry_fixed: f64,
    /// Fixed fee per order that reduces or closes a position (35 INR by default).
    pub exit_fixed: f64,
    /// Fee as a fraction of traded notional (0.0005 = 5 bps).
    pub percent: f64,
    /// Fee per unit traded.
    pub per_unit: f64,
    /// Minimum total fee per order.
    pub minimum: f64,
}

/// `backtest.slippage:`: how far a fill lands from the quoted price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlippageSettings {
    /// Which model applies; the other keys parameterise them.
    pub model: SlippageModel,
    /// Basis points against the trader (`fixed_bps`).
    pub bps: f64,
    /// Fraction of the average true range (`atr_fraction`).
    pub atr_fraction: f64,
    /// Bars in that average true range.
    pub atr_period: usize,
    /// Impact per unit of volume participation (`volume_participation`).
    pub impact: f64,
}

/// The slippage models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlippageModel {
    /// Fills at the quoted price.
    None,
    /// A fixed number of basis points.
    FixedBps,
    /// A fraction of the average true range.
    AtrFraction,
    /// Proportional to the order's share of the bar's volume.
    VolumeParticipation,
}

/// `backtest.sizing:`: how many units an entry opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizingSettings {
    /// Which rule applies; the other keys parameterise them.
    pub method: SizingMethod,
    /// Units per entry (`fixed_quantity`).
    pub quantity: f64,
    /// Share of equity per entry (`fraction_of_equity`).
    pub fraction: f64,
    /// Annualised volatility aimed at (`volatility_target`).
    pub target_volatility: f64,
    /// Bars of realised volatility it is measured over.
    pub volatility_window: usize,
    /// Bars of returns behind the covariance (`hierarchical_risk_parity`).
    /// Absent from settings saved before it existed (models' metadata): 60.
    #[serde(default = "default_hrp_window")]
    pub hrp_window: usize,
    /// Bars between recomputations of the HRP weights (absent before: 20).
    #[serde(default = "default_hrp_rebalance")]
    pub hrp_rebalance: usize,
}

fn default_hrp_window() -> usize {
    60
}

fn default_hrp_rebalance() -> usize {
    20
}

/// The position-sizing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizingMethod {
    /// Always the same number of units.
    FixedQuantity,
    /// A fixed share of equity, commission included.
    FractionOfEquity,
    /// Units that aim for a target annualised volatility.
    VolatilityTarget,
    /// `fraction` of equity shared across the instruments by hierarchical
    /// risk parity over a Ledoit-Wolf covariance of recent returns.
    HierarchicalRiskParity,
}

/// `risk:`: the pre-trade risk layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSettings {
    /// Off: orders reach the broker unchecked.
    pub enabled: bool,
    /// Largest position in units; 0 for no limit.
    pub max_position_units: f64,
    /// Largest share of equity in one asset (0.25: the 25% cap).
    pub max_asset_fraction: f64,
    /// Largest gross exposure over equity.
    pub max_gross_leverage: f64,
    /// Day's loss, as a share of the day's opening equity, that stops new
    /// entries for the day; 0 for off.
    pub daily_loss_limit: f64,
    /// Drawdown from the peak at which everything is flattened and trading
    /// halts; 0 for off.
    pub max_drawdown: f64,
}

/// `strategies:`: the rule baselines agents are compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySettings {
    /// Moving-average crossover.
    pub sma_crossover: SmaCrossoverSettings,
    /// RSI mean reversion.
    pub rsi_mean_reversion: RsiMeanReversionSettings,
    /// Time-series momentum.
    pub momentum: MomentumSettings,
    /// The volatility-targeted baselines (buy-and-hold and momentum);
    /// models saved before they existed read the file's values.
    #[serde(default = "default_volatility_target")]
    pub volatility_target: VolatilityTargetSettings,
}

fn default_volatility_target() -> VolatilityTargetSettings {
    StrategySettings::default().volatility_target
}

/// Position sizes that aim for a constant annualised volatility, for the
/// volatility-targeted buy-and-hold and time-series momentum baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolatilityTargetSettings {
    /// Annualised volatility aimed at (0.10 = 10%).
    pub target: f64,
    /// Bars of returns the realised volatility is measured over.
    pub window: usize,
    /// The largest share of equity in one position.
    pub max_weight: f64,
    /// Resize only when the position is off its aim by more than this
    /// share of it (fees are charged on every resize).
    pub rebalance_band: f64,
    /// Bars the momentum version's return is measured over (the sign of
    /// that return is the side it holds).
    pub momentum_lookback: usize,
}

/// Long when the fast average is above the slow one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmaCrossoverSettings {
    /// Fast average, bars.
    pub fast: usize,
    /// Slow average, bars.
    pub slow: usize,
    /// Short when the fast average is below (else flat).
    pub allow_short: bool,
}

/// Long when oversold, short when overbought, out at the exit level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RsiMeanReversionSettings {
    /// RSI period, bars.
    pub period: usize,
    /// Level below which it buys.
    pub oversold: f64,
    /// Level above which it shorts (if allowed).
    pub overbought: f64,
    /// Level at which a position is closed.
    pub exit_level: f64,
    /// Whether it shorts when overbought.
    pub allow_short: bool,
}

/// Long when the return over `lookback` bars exceeds `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumSettings {
    /// Bars the return is measured over.
    pub lookback: usize,
    /// Return that triggers an entry.
    pub threshold: f64,
    /// Short on a return below `-threshold`.
    pub allow_short: bool,
}

/// `walk_forward:`: rolling out-of-sample windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkForwardSettings {
    /// Bars in each training window.
    pub train_bars: usize,
    /// Bars in each test window that follows it.
    pub test_bars: usize,
    /// Bars dropped between them, so features cannot leak across.
    pub embargo_bars: usize,
}

/// `monte_carlo:`: block-bootstrap stress paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonteCarloSettings {
    /// Resampled paths.
    pub paths: usize,
    /// Bars per resampled block (keeps autocorrelation).
    pub block_size: usize,
    /// Volatility multipliers each path is run under.
    pub vol_scales: Vec<f64>,
}

/// `report:`: where reports are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// The folder for JSON and SVG reports.
    pub out_dir: PathBuf,
}

macro_rules! defaults_from_the_file {
    ($($ty:ty => $key:literal),* $(,)?) => {$(
        impl Default for $ty {
            /// The compiled-in `config/settings.yaml`'s section.
            fn default() -> Self {
                default_section($key)
            }
        }
    )*};
}

defaults_from_the_file! {
    BacktestSettings => "backtest",
    RiskSettings => "risk",
    StrategySettings => "strategies",
    WalkForwardSettings => "walk_forward",
    MonteCarloSettings => "monte_carlo",
    ReportSettings => "report",
}

impl BacktestSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let b = self;
        v.int_range("backtest.slippage.atr_period", b.slippage.atr_period, 1, 100_000);
        v.int_range(
            "backtest.sizing.volatility_window",
            b.sizing.volatility_window,
            1,
            100_000,
        );
        v.check(
            b.initial_cash.is_finite() && b.initial_cash > 0.0,
            "backtest.initial_cash",
            b.initial_cash,
            "must be positive",
            "a number > 0",
        );
        v.check(
            !b.currency.trim().is_empty(),
            "backtest.currency",
            &b.currency,
            "is empty",
            "a currency label like INR or USD",
        );
        v.range("backtest.risk_free_rate", b.risk_free_rate, -0.5, 1.0);
        let c = &b.costs;
        v.range("backtest.costs.entry_fixed", c.entry_fixed, 0.0, 1e9);
        v.range("backtest.costs.exit_fixed", c.exit_fixed, 0.0, 1e9);
        v.range("backtest.costs.percent", c.percent, 0.0, 0.5);
        v.range("backtest.costs.per_unit", c.per_unit, 0.0, 1e6);
        v.range("backtest.costs.minimum", c.minimum, 0.0, 1e9);
        let s = &b.slippage;
        v.range("backtest.slippage.bps", s.bps, 0.0, 10_000.0);
        v.range("backtest.slippage.atr_fraction", s.atr_fraction, 0.0, 100.0);
        v.range("backtest.slippage.impact", s.impact, 0.0, 100.0);
        let z = &b.sizing;
        v.check(
            z.quantity.is_finite() && z.quantity > 0.0,
            "backtest.sizing.quantity",
            z.quantity,
            "must be positive",
            "a number > 0",
        );
        v.check(
            z.fraction.is_finite() && z.fraction > 0.0 && z.fraction <= 10.0,
            "backtest.sizing.fraction",
            z.fraction,
            "is out of range",
            "a number in (0, 10]",
        );
        v.check(
            z.target_volatility.is_finite() && z.target_volatility > 0.0 && z.target_volatility <= 10.0,
            "backtest.sizing.target_volatility",
            z.target_volatility,
            "is out of range",
            "a number in (0, 10]",
        );
        v.check(
            z.volatility_window >= 2,
            "backtest.sizing.volatility_window",
            z.volatility_window,
            "is too short",
            "an integer >= 2",
        );
        v.int_range("backtest.sizing.hrp_window", z.hrp_window, 10, 100_000);
        v.int_range("backtest.sizing.hrp_rebalance", z.hrp_rebalance, 1, 100_000);
    }
}

impl RiskSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let r = self;
        v.range("risk.max_position_units", r.max_position_units, 0.0, 1e15);
        v.check(
            r.max_asset_fraction > 0.0 && r.max_asset_fraction <= 10.0,
            "risk.max_asset_fraction",
            r.max_asset_fraction,
            "is out of range",
            "a number in (0, 10], e.g. 0.25 for 25%",
        );
        v.check(
            r.max_gross_leverage > 0.0 && r.max_gross_leverage <= 100.0,
            "risk.max_gross_leverage",
            r.max_gross_leverage,
            "is out of range",
            "a number in (0, 100]",
        );
        v.range("risk.daily_loss_limit", r.daily_loss_limit, 0.0, 1.0);
        v.range("risk.max_drawdown", r.max_drawdown, 0.0, 1.0);
    }
}

impl StrategySettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let st = self;
        v.int_range("strategies.sma_crossover.fast", st.sma_crossover.fast, 1, 100_000);
        v.int_range("strategies.sma_crossover.slow", st.sma_crossover.slow, 1, 100_000);
        v.int_range(
            "strategies.rsi_mean_reversion.period",
            st.rsi_mean_reversion.period,
            1,
            100_000,
        );
        v.int_range("strategies.momentum.lookback", st.momentum.lookback, 1, 100_000);
        v.check(
            st.sma_crossover.fast < st.sma_crossover.slow,
            "strategies.sma_crossover.fast",
            st.sma_crossover.fast,
            "must be below strategies.sma_crossover.slow",
            "an integer smaller than slow",
        );
        let rsi = &st.rsi_mean_reversion;
        v.range("strategies.rsi_mean_reversion.oversold", rsi.oversold, 0.0, 100.0);
        v.range("strategies.rsi_mean_reversion.overbought", rsi.overbought, 0.0, 100.0);
        v.range("strategies.rsi_mean_reversion.exit_level", rsi.exit_level, 0.0, 100.0);
        v.check(
            rsi.oversold < rsi.overbought,
            "strategies.rsi_mean_reversion.oversold",
            rsi.oversold,
            "must be below overbought",
            "a level in [0, overbought)",
        );
        v.range("strategies.momentum.threshold", st.momentum.threshold, -1.0, 10.0);
        let vt = &st.volatility_target;
        v.check(
            vt.target.is_finite() && vt.target > 0.0 && vt.target <= 10.0,
            "strategies.volatility_target.target",
            vt.target,
            "is out of range",
            "an annualised volatility in (0, 10], like 0.10",
        );
        v.int_range("strategies.volatility_target.window", vt.window, 2, 100_000);
        v.check(
            vt.max_weight.is_finite() && vt.max_weight > 0.0 && vt.max_weight <= 10.0,
            "strategies.volatility_target.max_weight",
            vt.max_weight,
            "is out of range",
            "a share of equity in (0, 10], like 0.25",
        );
        v.range(
            "strategies.volatility_target.rebalance_band",
            vt.rebalance_band,
            0.0,
            10.0,
        );
        v.int_range(
            "strategies.volatility_target.momentum_lookback",
            vt.momentum_lookback,
            1,
            100_000,
        );
    }
}

impl WalkForwardSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        v.int_range("walk_forward.train_bars", self.train_bars, 1, 100_000);
        v.int_range("walk_forward.test_bars", self.test_bars, 1, 100_000);
    }
}

impl MonteCarloSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        v.int_range("monte_carlo.paths", self.paths, 1, 100_000);
        v.int_range("monte_carlo.block_size", self.block_size, 1, 100_000);
        v.check(
            !self.vol_scales.is_empty(),
            "monte_carlo.vol_scales",
            format!("{:?}", self.vol_scales),
            "is empty",
            "a list of positive multipliers, like [1.0, 1.5]",
        );
        for (i, x) in self.vol_scales.iter().enumerate() {
            v.check(
                x.is_finite() && *x > 0.0 && *x <= 10.0,
                &format!("monte_carlo.vol_scales[{i}]"),
                x,
                "is out of range",
                "a number in (0, 10]",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::settings::{first_error, refused_key};

    #[test]
    fn the_files_sections_pass_their_own_checks_and_carry_the_seed_costs() {
        assert_eq!(first_error(|v| BacktestSettings::default().validate(v)), None);
        assert_eq!(first_error(|v| RiskSettings::default().validate(v)), None);
        assert_eq!(first_error(|v| StrategySettings::default().validate(v)), None);
        assert_eq!(first_error(|v| WalkForwardSettings::default().validate(v)), None);
        assert_eq!(first_error(|v| MonteCarloSettings::default().validate(v)), None);
        let b = BacktestSettings::default();
        assert_eq!((b.costs.entry_fixed, b.costs.exit_fixed), (25.0, 35.0));
        assert_eq!(b.fill, FillPolicy::NextOpen);
        assert_eq!(RiskSettings::default().max_asset_fraction, 0.25);
        assert!(!ReportSettings::default().out_dir.as_os_str().is_empty());
    }

    #[test]
    fn every_backtest_bound_is_refused_with_its_key() {
        type Edit = fn(&mut BacktestSettings);
        let cases: [(Edit, &str); 12] = [
            (|b| b.initial_cash = 0.0, "backtest.initial_cash"),
            (|b| b.currency = "  ".into(), "backtest.currency"),
            (|b| b.risk_free_rate = 2.0, "backtest.risk_free_rate"),
            (|b| b.costs.entry_fixed = -1.0, "backtest.costs.entry_fixed"),
            (|b| b.costs.percent = 0.6, "backtest.costs.percent"),
            (|b| b.slippage.bps = f64::NAN, "backtest.slippage.bps"),
            (|b| b.slippage.atr_period = 0, "backtest.slippage.atr_period"),
            (|b| b.sizing.quantity = 0.0, "backtest.sizing.quantity"),
            (|b| b.sizing.fraction = 11.0, "backtest.sizing.fraction"),
            (
                |b| b.sizing.target_volatility = 0.0,
                "backtest.sizing.target_volatility",
            ),
            (|b| b.sizing.volatility_window = 1, "backtest.sizing.volatility_window"),
            (|b| b.costs.minimum = 2e9, "backtest.costs.minimum"),
        ];
        for (edit, key) in cases {
            assert_eq!(refused_key(edit, BacktestSettings::validate).as_deref(), Some(key));
        }
    }

    #[test]
    fn risk_strategy_walk_forward_and_monte_carlo_bounds_are_refused_with_their_keys() {
        type RiskEdit = fn(&mut RiskSettings);
        let risk: [(RiskEdit, &str); 4] = [
            (|r| r.max_asset_fraction = 0.0, "risk.max_asset_fraction"),
            (|r| r.max_gross_leverage = 101.0, "risk.max_gross_leverage"),
            (|r| r.daily_loss_limit = -0.1, "risk.daily_loss_limit"),
            (|r| r.max_drawdown = 1.5, "risk.max_drawdown"),
        ];
        for (edit, key) in risk {
            assert_eq!(refused_key(edit, RiskSettings::validate).as_deref(), Some(key));
        }
        type StrategyEdit = fn(&mut StrategySettings);
        let strategies: [(StrategyEdit, &str); 10] = [
            (
                |s| s.sma_crossover.fast = s.sma_crossover.slow,
                "strategies.sma_crossover.fast",
            ),
            (|s| s.sma_crossover.slow = 0, "strategies.sma_crossover.slow"),
            (
                |s| s.rsi_mean_reversion.oversold = s.rsi_mean_reversion.overbought,
                "strategies.rsi_mean_reversion.oversold",
            ),
            (
                |s| s.rsi_mean_reversion.exit_level = 101.0,
                "strategies.rsi_mean_reversion.exit_level",
            ),
            (|s| s.momentum.threshold = 20.0, "strategies.momentum.threshold"),
            (
                |s| s.volatility_target.target = 0.0,
                "strategies.volatility_target.target",
            ),
            (
                |s| s.volatility_target.window = 1,
                "strategies.volatility_target.window",
            ),
            (
                |s| s.volatility_target.max_weight = f64::NAN,
                "strategies.volatility_target.max_weight",
            ),
            (
                |s| s.volatility_target.rebalance_band = -0.1,
                "strategies.volatility_target.rebalance_band",
            ),
            (
                |s| s.volatility_target.momentum_lookback = 0,
                "strategies.volatility_target.momentum_lookback",
            ),
        ];
        for (edit, key) in strategies {
            assert_eq!(refused_key(edit, StrategySettings::validate).as_deref(), Some(key));
        }
        assert_eq!(
            refused_key(
                |w: &mut WalkForwardSettings| w.test_bars = 0,
                WalkForwardSettings::validate
            )
            .as_deref(),
            Some("walk_forward.test_bars")
        );
        assert_eq!(
            refused_key(
                |m: &mut MonteCarloSettings| m.vol_scales.clear(),
                MonteCarloSettings::validate
            )
            .as_deref(),
            Some("monte_carlo.vol_scales")
        );
        assert_eq!(
            refused_key(
                |m: &mut MonteCarloSettings| m.vol_scales = vec![1.0, -2.0],
                MonteCarloSettings::validate
            )
            .as_deref(),
            Some("monte_carlo.vol_scales[1]")
        );
    }

    #[test]
    fn closed_choices_read_as_the_file_writes_them() {
        let read = |name: &str| serde_json::json!(name);
        assert_eq!(
            serde_json::from_value::<FillPolicy>(read("signal_close")).unwrap(),
            FillPolicy::SignalClose
        );
        assert_eq!(
            serde_json::from_value::<SlippageModel>(read("volume_participation")).unwrap(),
            SlippageModel::VolumeParticipation
        );
        assert_eq!(
            serde_json::from_value::<SizingMethod>(read("volatility_target")).unwrap(),
            SizingMethod::VolatilityTarget
        );
        assert!(serde_json::from_value::<FillPolicy>(read("tomorrow")).is_err());
    }
}
