//! The whole of `config/settings.yaml`: each crate's section composed into
//! one [`Settings`], loaded in layers and validated section by section;
//! where a process's settings come from ([`SettingsSource`]); and the
//! settings a trained model runs under ([`model_settings`]).
//!
//! The sections and their checks live with the crates that read them
//! (`tradelab_data::settings`, `tradelab_sim::settings`, ...); this module
//! only composes them, so a new section is a field here and a file there.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tradelab_agents::meta_learning::MetaSetup;
use tradelab_agents::settings::{GbtSettings, HrmSettings, LogRegSettings, MetaSettings, MoeSettings, PpoSettings};
use tradelab_auth::AuthSettings;
use tradelab_bus::BusSettings;
use tradelab_core::settings::{layered, parse_yaml, read_file, Validator};
use tradelab_core::{BarSeries, Result};
use tradelab_data::settings::{DataSettings, FeatureSettings};
use tradelab_env::settings::EnvSettings;
use tradelab_env::{EnvConfig, EnvError, MarketData};
use tradelab_regime::RegimeSettings;
use tradelab_sim::engine::EngineConfig;
use tradelab_sim::settings::{
    BacktestSettings, MonteCarloSettings, ReportSettings, RiskSettings, StrategySettings, WalkForwardSettings,
};
use tradelab_store::{AuditSettings, StoreSettings};
use tradelab_trade::TradeSettings;

mod source;
pub use source::{ensure_dir, model_settings, SettingsSource, DEFAULT_CONFIG};

/// Every section of `config/settings.yaml`, under its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The seed every random stream derives from.
    pub seed: u64,
    /// Folders, repair policy, lot rules (`tradelab_data`).
    pub data: DataSettings,
    /// Indicator periods (`tradelab_data`).
    pub features: FeatureSettings,
    /// The simulated broker (`tradelab_sim`).
    pub backtest: BacktestSettings,
    /// The risk layer (`tradelab_sim`).
    pub risk: RiskSettings,
    /// The rule baselines (`tradelab_sim`).
    pub strategies: StrategySettings,
    /// The RL environment (`tradelab_env`).
    pub env: EnvSettings,
    /// PPO (`tradelab_agents`).
    pub ppo: PpoSettings,
    /// The Hierarchical Reasoning Model (`tradelab_agents`).
    pub hierarchical_reasoning_model: HrmSettings,
    /// Walk-forward windows (`tradelab_sim`).
    pub walk_forward: WalkForwardSettings,
    /// Stress paths (`tradelab_sim`).
    pub monte_carlo: MonteCarloSettings,
    /// Where reports go (`tradelab_sim`).
    pub report: ReportSettings,
    /// Where runs and models are recorded (`tradelab_store`). Absent from
    /// models saved before the store existed: they get the defaults.
    #[serde(default)]
    pub store: StoreSettings,
    /// The API's OAuth 2.0 authorization and resource server (`tradelab_auth`).
    #[serde(default)]
    pub auth: AuthSettings,
    /// Regime detection (`tradelab_regime`).
    #[serde(default)]
    pub regime: RegimeSettings,
    /// The mixture of experts (`tradelab_agents`).
    #[serde(default)]
    pub moe: MoeSettings,
    /// Meta-learning across markets (`tradelab_agents`).
    #[serde(default)]
    pub meta: MetaSettings,
    /// The supervised baseline (`tradelab_agents`).
    #[serde(default)]
    pub logreg: LogRegSettings,
    /// The boosted-trees baseline (`tradelab_agents`).
    #[serde(default)]
    pub gbt: GbtSettings,
    /// Trading sessions: checkpoints and circuit breakers (`tradelab_trade`).
    #[serde(default)]
    pub trade: TradeSettings,
    /// Where trading sessions' events go (`tradelab_bus`).
    #[serde(default)]
    pub bus: BusSettings,
    /// How long the audit trail is kept (`tradelab_store`).
    #[serde(default)]
    pub audit: AuditSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_layers(None, &[]).expect("the compiled-in default settings are valid")
    }
}

impl Settings {
    /// Loads `path` over the compiled-in defaults, then applies `overrides`
    /// (each `key.path=value`, the value read as YAML).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Settings> {
        Settings::from_layers(Some(read_file(path)?), overrides)
    }

    /// The compiled-in defaults with `overrides` applied.
    pub fn defaults_with(overrides: &[String]) -> Result<Settings> {
        Settings::from_layers(None, overrides)
    }

    /// Parses settings from YAML text laid over the defaults.
    pub fn from_yaml_str(text: &str, overrides: &[String]) -> Result<Settings> {
        Settings::from_layers(Some(parse_yaml(text, Path::new("<string>"))?), overrides)
    }

    fn from_layers(user: Option<serde_json::Value>, overrides: &[String]) -> Result<Settings> {
        let settings: Settings = layered(user, overrides)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Every section's range checks; the first failure is returned.
    pub fn validate(&self) -> Result<()> {
        let mut v = Validator::default();
        self.features.validate(&mut v);
        self.backtest.validate(&mut v);
        self.risk.validate(&mut v);
        self.data.validate(&mut v);
        self.strategies.validate(&mut v);
        self.walk_forward.validate(&mut v);
        self.env.validate(&mut v);
        self.ppo.validate(&mut v);
        self.hierarchical_reasoning_model.validate(&mut v);
        self.monte_carlo.validate(&mut v);
        self.store.validate(&mut v);
        self.regime.validate(&mut v);
        self.meta.validate(&mut v);
        self.moe.validate(&mut v);
        self.logreg.validate(&mut v);
        self.gbt.validate(&mut v);
        self.auth.validate(&mut v);
        self.trade.validate(&mut v);
        self.bus.validate(&mut v);
        self.audit.validate(&mut v);
        v.finish()
    }

    /// The broker `backtest:`, `risk:` and `data:` describe.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig::new(&self.backtest, &self.risk, &self.data)
    }

    /// The environment `env:` describes, trading through that broker.
    pub fn env_config(&self) -> EnvConfig {
        EnvConfig::new(&self.env, self.engine_config())
    }

    /// `series` prepared as the environment reads it (features, window,
    /// splits, regime columns).
    pub fn market_data(&self, series: BarSeries) -> std::result::Result<MarketData, EnvError> {
        MarketData::new(series, &self.features, &self.env, &self.regime)
    }

    /// What meta-learning reads: the environment, `meta:`, the seed and the
    /// outer step's gradient clip.
    pub fn meta_setup(&self) -> MetaSetup {
        MetaSetup {
            env: self.env_config(),
            meta: self.meta.clone(),
            seed: self.seed,
            max_grad_norm: self.ppo.max_grad_norm,
        }
    }
}

#[cfg(test)]
mod tests;
