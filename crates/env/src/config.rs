//! The environment's resolved configuration: its own section and the
//! broker it trades through.

use tradelab_sim::engine::EngineConfig;

use crate::settings::EnvSettings;

/// What an environment runs under: `env:` as written and the broker a
/// backtest would use (costs, fills, lots, risk layer).
#[derive(Debug, Clone, PartialEq)]
pub struct EnvConfig {
    /// The `env:` section.
    pub env: EnvSettings,
    /// The broker's rules: the same as a backtest's.
    pub engine: EngineConfig,
}

impl EnvConfig {
    /// An environment trading through `engine` under `env`.
    pub fn new(env: &EnvSettings, engine: EngineConfig) -> Self {
        EnvConfig {
            env: env.clone(),
            engine,
        }
    }

    /// Share of equity one unit of action quantity commits: the risk
    /// layer's single-asset cap (or all of equity when the layer is off).
    pub fn risk_budget(&self) -> f64 {
        self.engine.risk.budget()
    }
}

impl Default for EnvConfig {
    /// The compiled-in default settings' environment and broker.
    fn default() -> Self {
        EnvConfig::new(&EnvSettings::default(), EngineConfig::default())
    }
}
