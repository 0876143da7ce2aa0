//! Environment settings, resolved once from `env:` in settings.

use tradelab_core::settings::{EnvSettings, InvalidActions, RewardKind};
use tradelab_core::Settings;
use tradelab_sim::engine::EngineConfig;

#[derive(Debug, Clone, PartialEq)]
pub struct EnvConfig {
    pub window: usize,
    pub reward: RewardKind,
    pub reward_scale: f64,
    pub dsr_eta: f64,
    pub drawdown_penalty: f64,
    pub risk_penalty: f64,
    pub invalid_actions: InvalidActions,
    pub invalid_penalty: f64,
    pub episode_bars: usize,
    pub random_start: bool,
    pub ruin_fraction: f64,
    /// The broker's rules: the same as a backtest's.
    pub engine: EngineConfig,
    /// Share of equity one unit of action quantity commits: the risk
    /// layer's single-asset cap (or all of equity when the layer is off).
    pub risk_budget: f64,
}

impl EnvConfig {
    pub fn from_settings(s: &Settings) -> Self {
        let e: &EnvSettings = &s.env;
        let risk_budget = if s.risk.enabled {
            s.risk.max_asset_fraction.min(s.risk.max_gross_leverage)
        } else {
            1.0
        };
        EnvConfig {
            window: e.window,
            reward: e.reward,
            reward_scale: e.reward_scale,
            dsr_eta: e.dsr_eta,
            drawdown_penalty: e.drawdown_penalty,
            risk_penalty: e.risk_penalty,
            invalid_actions: e.invalid_actions,
            invalid_penalty: e.invalid_penalty,
            episode_bars: e.episode_bars,
            random_start: e.random_start,
            ruin_fraction: e.ruin_fraction,
            engine: EngineConfig::from_settings(s),
            risk_budget,
        }
    }
}
