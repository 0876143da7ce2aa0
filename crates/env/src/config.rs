//! The environment's resolved configuration: its own section and the
//! broker it trades through.

use tradelab_sim::engine::EngineConfig;

use crate::settings::EnvSettings;

/// What an environment runs under: `env:` as written, the broker a
/// backtest would use (costs, fills, lots, risk layer), and the share of
/// equity one unit of action quantity commits.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvConfig {
    /// The `env:` section.
    pub env: EnvSettings,
    /// The broker's rules: the same as a backtest's.
    pub engine: EngineConfig,
    /// Share of equity one unit of action quantity commits: the risk
    /// layer's single-asset cap (or all of equity when the layer is off).
    pub risk_budget: f64,
}

impl EnvConfig {
    /// An environment trading through `engine` under `env`.
    pub fn new(env: &EnvSettings, engine: EngineConfig) -> Self {
        let risk_budget = engine.risk.budget();
        EnvConfig {
            env: env.clone(),
            engine,
            risk_budget,
        }
    }
}

impl Default for EnvConfig {
    /// The compiled-in default settings' environment and broker.
    fn default() -> Self {
        EnvConfig::new(&EnvSettings::default(), EngineConfig::default())
    }
}
