//! The schema of `config/settings.yaml`, and its loading and validation.
//!
//! Loading works in layers so that a user's file only needs the keys it
//! changes: the defaults (the repository's `config/settings.yaml`, compiled
//! in) are merged with the user's file, then `--set key.path=value` overrides
//! are applied, then the result is deserialised strictly (unknown keys and
//! wrong types are refused with their key path) and range-checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result, Timeframe};

mod hrm;
pub use hrm::{hrm_preset, HrmSettings, WeightsDtype};

/// The defaults: the repository's settings file, compiled into the binary.
pub const DEFAULT_SETTINGS_YAML: &str = include_str!("../../../config/settings.yaml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub seed: u64,
    pub data: DataSettings,
    pub features: FeatureSettings,
    pub backtest: BacktestSettings,
    pub risk: RiskSettings,
    pub strategies: StrategySettings,
    pub env: EnvSettings,
    pub ppo: PpoSettings,
    pub hierarchical_reasoning_model: HrmSettings,
    pub walk_forward: WalkForwardSettings,
    pub monte_carlo: MonteCarloSettings,
    pub report: ReportSettings,
    /// Absent from models saved before the store existed: they get the defaults.
    #[serde(default)]
    pub store: StoreSettings,
    /// The API's OAuth 2.0 authorization and resource server.
    #[serde(default)]
    pub auth: AuthSettings,
    /// Regime detection (a Gaussian HMM over causal features).
    #[serde(default)]
    pub regime: RegimeSettings,
    /// The mixture of experts (`tradelab train --agent moe`).
    #[serde(default)]
    pub moe: MoeSettings,
    /// Meta-learning across markets (`tradelab meta-train`).
    #[serde(default)]
    pub meta: MetaSettings,
}

/// Meta-learning (MAML, first-order MAML, Reptile) over tasks of
/// (instrument, timeframe) markets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaSettings {
    /// `maml` (second order), `fomaml` or `reptile`.
    pub mode: String,
    /// Meta-iterations (outer updates).
    pub iterations: usize,
    /// Tasks per outer update.
    pub tasks_per_batch: usize,
    /// Inner-loop gradient steps and their size.
    pub inner_steps: usize,
    pub inner_lr: f64,
    /// Outer step size for the MAML modes (on the clipped meta-gradient).
    pub outer_lr: f64,
    /// Reptile's interpolation toward the adapted weights (0..1].
    pub reptile_step: f64,
    /// Bars in a task's support and query windows.
    pub support_bars: usize,
    pub query_bars: usize,
    /// Bars between them; 0 means the observation window.
    pub embargo: usize,
    /// Instruments kept for meta-test; empty holds out the last one by name.
    pub holdout: Vec<String>,
}

impl Default for MetaSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        MetaSettings {
            mode: "maml".into(),
            iterations: 30,
            tasks_per_batch: 4,
            inner_steps: 2,
            inner_lr: 0.01,
            outer_lr: 0.003,
            reptile_step: 0.5,
            support_bars: 500,
            query_bars: 250,
            embargo: 0,
            holdout: Vec::new(),
        }
    }
}

/// The mixture of experts: four specialist policies and a gate over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoeSettings {
    /// The specialists' encoder: `lstm`, `transformer` or `mlp`.
    pub encoder: String,
    /// Hidden units of the gating network.
    pub gate_hidden: usize,
    /// Weight of each specialist's own clipped objective and value loss on
    /// the samples of its regimes (regime-weighted data), beside the
    /// mixture's.
    pub specialist_coef: f64,
    /// Weight of the cross-entropy pulling the gate toward the specialist
    /// weights the regime probabilities imply; 0 leaves the gate to the
    /// policy gradient alone.
    pub gate_prior_coef: f64,
}

impl Default for MoeSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        MoeSettings {
            encoder: "lstm".into(),
            gate_hidden: 32,
            specialist_coef: 0.5,
            gate_prior_coef: 0.1,
        }
    }
}

/// Regime detection: the hidden Markov model's size and its features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegimeSettings {
    /// The number of states is chosen by BIC within this range.
    pub min_states: usize,
    pub max_states: usize,
    /// Bars in the realised-volatility and trend-strength windows.
    pub vol_window: usize,
    pub trend_window: usize,
    /// The filter's probability floor, so it recovers after a switch.
    pub floor: f64,
    /// Append p(state k | bars up to t) for k < max_states to every
    /// market's observation features (`regime_p0`, ...; states ordered by
    /// volatility, missing states 0), from a model fitted on the training
    /// split: a policy can then condition on the regime.
    pub features: bool,
}

impl Default for RegimeSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        RegimeSettings {
            min_states: 2,
            max_states: 4,
            vol_window: 10,
            trend_window: 20,
            floor: 1e-6,
            features: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub raw_dir: PathBuf,
    pub final_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub repair_policy: RepairPolicy,
    pub lot_size: f64,
    pub fractional: bool,
    /// Per-instrument overrides of `lot_size` and `fractional`, keyed by
    /// instrument name (the file stem).
    pub instruments: BTreeMap<String, InstrumentSettings>,
}

/// Trading rules of one instrument; absent keys fall back to `data.lot_size`
/// and `data.fractional`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSettings {
    #[serde(default)]
    pub lot_size: Option<f64>,
    #[serde(default)]
    pub fractional: Option<bool>,
    /// Declared bar spacing (e.g. `5m`); inferred from timestamps when absent.
    #[serde(default)]
    pub timeframe: Option<Timeframe>,
}

/// What the loaders do with a row that fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairPolicy {
    /// Reject the whole file.
    Refuse,
    /// Skip the bad row.
    Drop,
    /// Fix the row where the fix is unambiguous, otherwise skip it.
    Repair,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    pub sma_fast: usize,
    pub sma_slow: usize,
    pub ema_fast: usize,
    pub ema_slow: usize,
    pub rsi_period: usize,
    pub macd_fast: usize,
    pub macd_slow: usize,
    pub macd_signal: usize,
    pub atr_period: usize,
    pub bollinger_period: usize,
    pub bollinger_width: f64,
    pub roc_period: usize,
    pub volatility_window: usize,
    pub stoch_k: usize,
    pub stoch_slow_k: usize,
    pub stoch_d: usize,
    pub adx_period: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSettings {
    pub initial_cash: f64,
    pub currency: String,
    pub fill: FillPolicy,
    pub risk_free_rate: f64,
    pub costs: CostSettings,
    pub slippage: SlippageSettings,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSettings {
    pub entry_fixed: f64,
    pub exit_fixed: f64,
    pub percent: f64,
    pub per_unit: f64,
    pub minimum: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlippageSettings {
    pub model: SlippageModel,
    pub bps: f64,
    pub atr_fraction: f64,
    pub atr_period: usize,
    pub impact: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlippageModel {
    None,
    FixedBps,
    AtrFraction,
    VolumeParticipation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizingSettings {
    pub method: SizingMethod,
    pub quantity: f64,
    pub fraction: f64,
    pub target_volatility: f64,
    pub volatility_window: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizingMethod {
    FixedQuantity,
    FractionOfEquity,
    VolatilityTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSettings {
    pub enabled: bool,
    pub max_position_units: f64,
    pub max_asset_fraction: f64,
    pub max_gross_leverage: f64,
    pub daily_loss_limit: f64,
    pub max_drawdown: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySettings {
    pub sma_crossover: SmaCrossoverSettings,
    pub rsi_mean_reversion: RsiMeanReversionSettings,
    pub momentum: MomentumSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmaCrossoverSettings {
    pub fast: usize,
    pub slow: usize,
    pub allow_short: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RsiMeanReversionSettings {
    pub period: usize,
    pub oversold: f64,
    pub overbought: f64,
    pub exit_level: f64,
    pub allow_short: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumSettings {
    pub lookback: usize,
    pub threshold: f64,
    pub allow_short: bool,
}

/// The RL trading environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    pub window: usize,
    pub train_fraction: f64,
    pub validation_fraction: f64,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    PortfolioChange,
    LogReturn,
    DifferentialSharpe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidActions {
    Mask,
    Penalize,
}

/// Proximal policy optimisation: network sizes, rollout shape, update
/// hyper-parameters and the training budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoSettings {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub envs: usize,
    pub rollout_steps: usize,
    pub epochs: usize,
    pub minibatches: usize,
    pub learning_rate: f64,
    pub anneal_lr: bool,
    pub gamma: f64,
    pub gae_lambda: f64,
    pub clip: f64,
    pub value_coef: f64,
    pub entropy_coef: f64,
    pub max_grad_norm: f64,
    pub target_kl: f64,
    pub normalize_rewards: bool,
    pub total_steps: usize,
    pub eval_every: usize,
    pub patience: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkForwardSettings {
    pub train_bars: usize,
    pub test_bars: usize,
    pub embargo_bars: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonteCarloSettings {
    pub paths: usize,
    pub block_size: usize,
    pub vol_scales: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    pub out_dir: PathBuf,
}

/// Where runs, metrics, models, backtests and decisions are recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`;
    /// `TRADELAB_DATABASE_URL` takes precedence (see [`StoreSettings::database_url`]).
    pub url: String,
    /// Record training runs and backtests (false: nothing is written).
    pub record: bool,
    /// The experiment runs are filed under.
    pub experiment: String,
    /// Where registered model versions' files are kept.
    pub model_dir: PathBuf,
    /// Retention: `tradelab models gc` keeps the best, the staged and
    /// production ones, and this many most recent versions of each model.
    pub keep_last: usize,
    /// An MLflow tracking server to mirror runs to; empty for none.
    pub mlflow_url: String,
    /// Seconds a running job's worker may go silent before another worker
    /// takes the job over (it renews five times per lease).
    #[serde(default = "default_job_lease_secs")]
    pub job_lease_secs: f64,
}

fn default_job_lease_secs() -> f64 {
    15.0
}

/// `tradelab serve`'s authorization server and the API's token checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The issuer URL tokens carry and clients are told (RFC 8414); empty:
    /// `http://` and the address the server listens on.
    pub issuer: String,
    /// The `aud` every access token carries and the API requires.
    pub audience: String,
    /// Access-token lifetime, seconds.
    pub access_token_secs: u64,
    /// Refresh-token lifetime, days (each use replaces the token).
    pub refresh_token_days: u64,
    /// Clock skew tolerated when checking `exp` and `iat`, seconds.
    pub clock_skew_secs: u64,
    /// A new signing key is made at start when the current one is older.
    pub key_rotation_days: u64,
    /// Login attempts allowed per user name (and ten times this per
    /// address) in `login_window_secs`.
    pub login_attempts: usize,
    pub login_window_secs: u64,
    /// Token-endpoint requests allowed per client and per address a minute.
    pub token_requests_per_minute: usize,
    /// Browser origins (e.g. the dashboard's `https://app.example.com`)
    /// allowed to call the API and the token endpoint; exact matches.
    pub cors_origins: Vec<String>,
}

impl Default for AuthSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        AuthSettings {
            issuer: String::new(),
            audience: "tradelab-api".into(),
            access_token_secs: 300,
            refresh_token_days: 30,
            clock_skew_secs: 30,
            key_rotation_days: 30,
            login_attempts: 5,
            login_window_secs: 300,
            token_requests_per_minute: 60,
            cors_origins: Vec::new(),
        }
    }
}

/// The environment variable that overrides `store.url`, so a secret URL
/// (Neon's, with its password) never has to sit in a settings file.
pub const DATABASE_URL_ENV: &str = "TRADELAB_DATABASE_URL";

impl Default for StoreSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        StoreSettings {
            url: "sqlite://tradelab.db".into(),
            record: true,
            experiment: "default".into(),
            model_dir: PathBuf::from("models"),
            keep_last: 5,
            mlflow_url: String::new(),
            job_lease_secs: default_job_lease_secs(),
        }
    }
}

impl StoreSettings {
    /// The database URL: `TRADELAB_DATABASE_URL` when set and non-empty,
    /// else `store.url`.
    pub fn database_url(&self) -> String {
        match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ => self.url.clone(),
        }
    }
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
        let text = std::fs::read_to_string(path).map_err(|source| Error::SettingsIo {
            path: path.to_path_buf(),
            source,
        })?;
        let user = parse_yaml(&text, path)?;
        Settings::from_layers(Some(user), overrides)
    }

    /// The compiled-in defaults with `overrides` applied.
    pub fn defaults_with(overrides: &[String]) -> Result<Settings> {
        Settings::from_layers(None, overrides)
    }

    /// Parses settings from YAML text laid over the defaults.
    pub fn from_yaml_str(text: &str, overrides: &[String]) -> Result<Settings> {
        let user = parse_yaml(text, Path::new("<string>"))?;
        Settings::from_layers(Some(user), overrides)
    }

    fn from_layers(user: Option<Value>, overrides: &[String]) -> Result<Settings> {
        let mut merged = parse_yaml(DEFAULT_SETTINGS_YAML, Path::new("<defaults>"))?;
        if let Some(user) = user {
            // An empty file parses as null: it means "all defaults".
            if !user.is_null() {
                if !user.is_object() {
                    return Err(invalid(
                        "(top level)",
                        &user,
                        "is not a mapping",
                        "a mapping of sections like `data:` and `backtest:`",
                    ));
                }
                merge(&mut merged, user);
            }
        }
        for o in overrides {
            apply_override(&mut merged, o)?;
        }
        let settings: Settings = serde_path_to_error::deserialize(merged.clone()).map_err(|e| {
            let key = e.path().to_string();
            let value = lookup(&merged, &key).map(short).unwrap_or_else(|| "(missing)".into());
            let inner = e.into_inner().to_string();
            let (problem, allowed) = split_serde_message(&inner);
            Error::SettingsInvalid {
                key,
                value,
                problem,
                allowed,
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Range checks that types alone cannot express.
    pub fn validate(&self) -> Result<()> {
        let mut v = Validator::default();
        let f = &self.features;
        for (key, val) in [
            ("features.sma_fast", f.sma_fast),
            ("features.sma_slow", f.sma_slow),
            ("features.ema_fast", f.ema_fast),
            ("features.ema_slow", f.ema_slow),
            ("features.rsi_period", f.rsi_period),
            ("features.macd_fast", f.macd_fast),
            ("features.macd_slow", f.macd_slow),
            ("features.macd_signal", f.macd_signal),
            ("features.atr_period", f.atr_period),
            ("features.bollinger_period", f.bollinger_period),
            ("features.roc_period", f.roc_period),
            ("features.volatility_window", f.volatility_window),
            ("features.stoch_k", f.stoch_k),
            ("features.stoch_slow_k", f.stoch_slow_k),
            ("features.stoch_d", f.stoch_d),
            ("features.adx_period", f.adx_period),
            ("backtest.slippage.atr_period", self.backtest.slippage.atr_period),
            (
                "backtest.sizing.volatility_window",
                self.backtest.sizing.volatility_window,
            ),
            ("strategies.sma_crossover.fast", self.strategies.sma_crossover.fast),
            ("strategies.sma_crossover.slow", self.strategies.sma_crossover.slow),
            (
                "strategies.rsi_mean_reversion.period",
                self.strategies.rsi_mean_reversion.period,
            ),
            ("strategies.momentum.lookback", self.strategies.momentum.lookback),
            ("walk_forward.train_bars", self.walk_forward.train_bars),
            ("walk_forward.test_bars", self.walk_forward.test_bars),
            ("monte_carlo.paths", self.monte_carlo.paths),
            ("monte_carlo.block_size", self.monte_carlo.block_size),
        ] {
            v.int_range(key, val, 1, 100_000);
        }
        v.check(
            f.macd_fast < f.macd_slow,
            "features.macd_fast",
            f.macd_fast,
            "must be below features.macd_slow",
            "an integer smaller than macd_slow",
        );
        v.check(
            f.bollinger_width.is_finite() && f.bollinger_width > 0.0,
            "features.bollinger_width",
            f.bollinger_width,
            "must be positive",
            "a number > 0, like 2.0",
        );
        v.check(
            f.adx_period >= 2,
            "features.adx_period",
            f.adx_period,
            "is too short",
            "an integer >= 2",
        );
        v.check(
            f.volatility_window >= 2,
            "features.volatility_window",
            f.volatility_window,
            "is too short",
            "an integer >= 2",
        );

        let b = &self.backtest;
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

        let r = &self.risk;
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

        let d = &self.data;
        v.check(
            d.lot_size.is_finite() && d.lot_size > 0.0,
            "data.lot_size",
            d.lot_size,
            "must be positive",
            "a number > 0, like 1",
        );
        for (name, inst) in &d.instruments {
            if let Some(lot) = inst.lot_size {
                let key = format!("data.instruments.{name}.lot_size");
                v.check(
                    lot.is_finite() && lot > 0.0,
                    &key,
                    lot,
                    "must be positive",
                    "a number > 0, like 1",
                );
            }
        }

        let st = &self.strategies;
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

        let e = &self.env;
        v.int_range("env.window", e.window, 1, 10_000);
        v.check(
            e.train_fraction > 0.0 && e.train_fraction < 1.0,
            "env.train_fraction",
            e.train_fraction,
            "is out of range",
            "a fraction in (0, 1)",
        );
        v.check(
            e.validation_fraction >= 0.0 && e.train_fraction + e.validation_fraction < 1.0,
            "env.validation_fraction",
            e.validation_fraction,
            "leaves no test split",
            "a fraction >= 0 with train_fraction + validation_fraction < 1",
        );
        v.check(
            e.reward_scale.is_finite() && e.reward_scale > 0.0,
            "env.reward_scale",
            e.reward_scale,
            "must be positive",
            "a number > 0",
        );
        v.check(
            e.dsr_eta > 0.0 && e.dsr_eta < 1.0,
            "env.dsr_eta",
            e.dsr_eta,
            "is out of range",
            "a number in (0, 1)",
        );
        v.range("env.drawdown_penalty", e.drawdown_penalty, 0.0, 1e6);
        v.range("env.risk_penalty", e.risk_penalty, 0.0, 1e6);
        v.range("env.invalid_penalty", e.invalid_penalty, 0.0, 1e6);
        v.range("env.ruin_fraction", e.ruin_fraction, 0.0, 0.999);

        let p = &self.ppo;
        for (key, val, hi) in [
            ("ppo.hidden", p.hidden, 4096),
            ("ppo.layers", p.layers, 64),
            ("ppo.heads", p.heads, 64),
            ("ppo.envs", p.envs, 4096),
            ("ppo.rollout_steps", p.rollout_steps, 100_000),
            ("ppo.epochs", p.epochs, 100),
            ("ppo.minibatches", p.minibatches, 4096),
            ("ppo.total_steps", p.total_steps, usize::MAX),
        ] {
            v.int_range(key, val, 1, hi);
        }
        v.check(
            p.hidden.is_multiple_of(p.heads),
            "ppo.heads",
            p.heads,
            "does not divide ppo.hidden",
            &format!("a divisor of hidden ({})", p.hidden),
        );
        v.check(
            p.envs.is_multiple_of(p.minibatches),
            "ppo.minibatches",
            p.minibatches,
            "does not divide ppo.envs (minibatches are split by environment)",
            &format!("a divisor of envs ({})", p.envs),
        );
        v.check(
            p.learning_rate.is_finite() && p.learning_rate > 0.0 && p.learning_rate < 1.0,
            "ppo.learning_rate",
            p.learning_rate,
            "is out of range",
            "a number in (0, 1), like 0.0003",
        );
        v.range("ppo.gamma", p.gamma, 0.0, 1.0);
        v.range("ppo.gae_lambda", p.gae_lambda, 0.0, 1.0);
        v.check(
            p.clip > 0.0 && p.clip < 1.0,
            "ppo.clip",
            p.clip,
            "is out of range",
            "a number in (0, 1), like 0.2",
        );
        v.range("ppo.value_coef", p.value_coef, 0.0, 100.0);
        v.range("ppo.entropy_coef", p.entropy_coef, 0.0, 10.0);
        v.check(
            p.max_grad_norm.is_finite() && p.max_grad_norm > 0.0,
            "ppo.max_grad_norm",
            p.max_grad_norm,
            "must be positive",
            "a number > 0, like 0.5",
        );
        v.range("ppo.target_kl", p.target_kl, 0.0, 10.0);
        self.hierarchical_reasoning_model.validate(&mut v);

        let mc = &self.monte_carlo;
        v.check(
            !mc.vol_scales.is_empty(),
            "monte_carlo.vol_scales",
            format!("{:?}", mc.vol_scales),
            "is empty",
            "a list of positive multipliers, like [1.0, 1.5]",
        );
        for (i, x) in mc.vol_scales.iter().enumerate() {
            v.check(
                x.is_finite() && *x > 0.0 && *x <= 10.0,
                &format!("monte_carlo.vol_scales[{i}]"),
                x,
                "is out of range",
                "a number in (0, 10]",
            );
        }
        let st = &self.store;
        let scheme_ok = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| st.url.starts_with(p));
        v.check(
            scheme_ok,
            "store.url",
            &st.url,
            "is not a database URL",
            "sqlite://PATH or postgres://USER@HOST:PORT/DB",
        );
        v.check(
            !st.experiment.trim().is_empty(),
            "store.experiment",
            &st.experiment,
            "is empty",
            "a name, like default",
        );
        v.int_range("store.keep_last", st.keep_last, 1, 1_000_000);
        v.range("store.job_lease_secs", st.job_lease_secs, 1.0, 86_400.0);
        v.check(
            st.mlflow_url.is_empty() || st.mlflow_url.starts_with("http://") || st.mlflow_url.starts_with("https://"),
            "store.mlflow_url",
            &st.mlflow_url,
            "is not an http(s) URL",
            "empty, or a URL like http://127.0.0.1:5000",
        );
        let rg = &self.regime;
        v.int_range("regime.min_states", rg.min_states, 1, 8);
        v.int_range("regime.max_states", rg.max_states, rg.min_states.max(1), 8);
        v.int_range("regime.vol_window", rg.vol_window, 2, 1000);
        v.int_range("regime.trend_window", rg.trend_window, 2, 1000);
        v.range("regime.floor", rg.floor, 0.0, 0.01);
        let me = &self.meta;
        v.check(
            ["maml", "fomaml", "reptile"].contains(&me.mode.as_str()),
            "meta.mode",
            &me.mode,
            "is not a meta-learning mode",
            "maml, fomaml or reptile",
        );
        v.int_range("meta.iterations", me.iterations, 1, 1_000_000);
        v.int_range("meta.tasks_per_batch", me.tasks_per_batch, 1, 1024);
        v.int_range("meta.inner_steps", me.inner_steps, 1, 100);
        v.range("meta.inner_lr", me.inner_lr, 1e-9, 10.0);
        v.range("meta.outer_lr", me.outer_lr, 1e-9, 10.0);
        v.range("meta.reptile_step", me.reptile_step, 1e-6, 1.0);
        v.int_range("meta.support_bars", me.support_bars, 10, 10_000_000);
        v.int_range("meta.query_bars", me.query_bars, 10, 10_000_000);
        v.int_range("meta.embargo", me.embargo, 0, 10_000_000);
        let moe = &self.moe;
        v.check(
            ["lstm", "transformer", "mlp"].contains(&moe.encoder.as_str()),
            "moe.encoder",
            &moe.encoder,
            "is not an encoder",
            "lstm, transformer or mlp",
        );
        v.int_range("moe.gate_hidden", moe.gate_hidden, 1, 4096);
        v.range("moe.specialist_coef", moe.specialist_coef, 0.0, 10.0);
        v.range("moe.gate_prior_coef", moe.gate_prior_coef, 0.0, 10.0);
        let au = &self.auth;
        v.check(
            au.issuer.is_empty() || au.issuer.starts_with("https://") || au.issuer.starts_with("http://"),
            "auth.issuer",
            &au.issuer,
            "is not an http(s) URL",
            "empty (the listen address) or a URL like https://tradelab.example.com",
        );
        v.check(
            !au.issuer.ends_with('/') && !au.issuer.contains(['?', '#']),
            "auth.issuer",
            &au.issuer,
            "ends with / or has a query or fragment",
            "a URL without a trailing slash, query or fragment (RFC 8414)",
        );
        v.check(
            !au.audience.trim().is_empty(),
            "auth.audience",
            &au.audience,
            "is empty",
            "a name, like tradelab-api",
        );
        v.int_range("auth.access_token_secs", au.access_token_secs as usize, 10, 86_400);
        v.int_range("auth.refresh_token_days", au.refresh_token_days as usize, 1, 365);
        v.int_range("auth.clock_skew_secs", au.clock_skew_secs as usize, 0, 300);
        v.int_range("auth.key_rotation_days", au.key_rotation_days as usize, 1, 3650);
        v.int_range("auth.login_attempts", au.login_attempts, 1, 1000);
        v.int_range("auth.login_window_secs", au.login_window_secs as usize, 1, 86_400);
        v.int_range(
            "auth.token_requests_per_minute",
            au.token_requests_per_minute,
            1,
            1_000_000,
        );
        for (i, o) in au.cors_origins.iter().enumerate() {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && o.matches('/').count() == 2
                && !o.ends_with('/')
                && o != "*";
            v.check(
                ok,
                &format!("auth.cors_origins[{i}]"),
                o,
                "is not an origin",
                "scheme://host[:port] with no path, like https://app.example.com (no wildcards)",
            );
        }
        v.finish()
    }
}

/// Collects the first range violation (settings errors are fixed one at a time).
#[derive(Default)]
struct Validator {
    first: Option<Error>,
}

impl Validator {
    fn check(&mut self, ok: bool, key: &str, value: impl std::fmt::Display, problem: &str, allowed: &str) {
        if !ok && self.first.is_none() {
            self.first = Some(Error::SettingsInvalid {
                key: key.to_string(),
                value: value.to_string(),
                problem: problem.to_string(),
                allowed: allowed.to_string(),
            });
        }
    }

    fn range(&mut self, key: &str, value: f64, lo: f64, hi: f64) {
        let ok = value.is_finite() && value >= lo && value <= hi;
        self.check(ok, key, value, "is out of range", &format!("a number in [{lo}, {hi}]"));
    }

    fn int_range(&mut self, key: &str, value: usize, lo: usize, hi: usize) {
        let ok = value >= lo && value <= hi;
        self.check(
            ok,
            key,
            value,
            "is out of range",
            &format!("an integer in [{lo}, {hi}]"),
        );
    }

    fn finish(self) -> Result<()> {
        self.first.map_or(Ok(()), Err)
    }
}

fn parse_yaml(text: &str, path: &Path) -> Result<Value> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| Error::SettingsSyntax {
        path: path.to_path_buf(),
        message: e.to_string().lines().next().unwrap_or("").to_string(),
    })
}

fn invalid(key: &str, value: &Value, problem: &str, allowed: &str) -> Error {
    Error::SettingsInvalid {
        key: key.to_string(),
        value: short(value),
        problem: problem.to_string(),
        allowed: allowed.to_string(),
    }
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else
/// replaces. Unknown keys survive the merge so that deserialisation refuses
/// them with their path.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn apply_override(root: &mut Value, spec: &str) -> Result<()> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| Error::BadOverride(spec.to_string()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Error::BadOverride(spec.to_string()));
    }
    let value = serde_saphyr::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut node = root;
    for part in key.split('.') {
        let obj = node
            .as_object_mut()
            .ok_or_else(|| Error::BadOverride(spec.to_string()))?;
        node = obj.entry(part.to_string()).or_insert(Value::Null);
    }
    *node = value;
    Ok(())
}

fn lookup<'a>(root: &'a Value, dotted: &str) -> Option<&'a Value> {
    let mut node = root;
    for part in dotted.split('.').filter(|p| !p.is_empty() && *p != "?") {
        node = match node {
            Value::Object(o) => o.get(part)?,
            Value::Array(a) => a.get(
                part.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .ok()?,
            )?,
            _ => return None,
        };
    }
    Some(node)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}...", &s[..57])
    } else {
        s
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" or
/// "invalid type: string \"x\", expected f64" into (problem, allowed).
fn split_serde_message(msg: &str) -> (String, String) {
    if let Some((problem, allowed)) = msg.split_once(", expected ") {
        (problem.to_string(), allowed.to_string())
    } else {
        (
            msg.to_string(),
            "see config/settings.yaml for the key and its comment".to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        Settings::from_yaml_str(yaml, &[]).unwrap_err().to_string()
    }

    #[test]
    fn defaults_load_and_carry_the_seed_costs() {
        let s = Settings::default();
        assert_eq!(s.backtest.costs.entry_fixed, 25.0);
        assert_eq!(s.backtest.costs.exit_fixed, 35.0);
        assert_eq!(s.risk.max_asset_fraction, 0.25);
        assert_eq!(s.backtest.fill, FillPolicy::NextOpen);
    }

    #[test]
    fn store_defaults_match_the_file_and_bad_store_settings_are_named() {
        assert_eq!(Settings::default().store, StoreSettings::default());
        assert_eq!(Settings::default().auth, AuthSettings::default());
        assert_eq!(Settings::default().regime, RegimeSettings::default());
        assert_eq!(Settings::default().moe, MoeSettings::default());
        assert_eq!(Settings::default().meta, MetaSettings::default());
        assert!(Settings::defaults_with(&["meta.mode=sgd".into()])
            .unwrap_err()
            .to_string()
            .contains("meta.mode"));
        assert!(Settings::defaults_with(&["moe.specialist_coef=-1".into()])
            .unwrap_err()
            .to_string()
            .contains("moe.specialist_coef"));
        let e = Settings::defaults_with(&["regime.max_states=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("regime.max_states"), "{e}");
        for bad in [
            "auth.issuer=ftp://x",
            "auth.issuer=https://x/",
            "auth.access_token_secs=1",
            "auth.cors_origins=[\"*\"]",
            "auth.cors_origins=[\"https://a/b\"]",
        ] {
            let e = Settings::defaults_with(&[bad.into()]).unwrap_err().to_string();
            assert!(
                e.contains(bad.split('=').next().unwrap().split('.').nth(1).unwrap()),
                "{bad}: {e}"
            );
        }
        // A model saved before the store section existed still loads.
        let mut old = serde_json::to_value(Settings::default()).unwrap();
        old.as_object_mut().unwrap().remove("store");
        let parsed: Settings = serde_json::from_value(old).unwrap();
        assert_eq!(parsed.store, StoreSettings::default());
        let e = Settings::defaults_with(&["store.url=mysql://x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.url") && e.contains("sqlite://"), "{e}");
        let e = Settings::defaults_with(&["store.keep_last=0".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.keep_last"), "{e}");
        let e = Settings::defaults_with(&["store.mlflow_url=ftp://x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.mlflow_url"), "{e}");
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let s = Settings::from_yaml_str("risk:\n  max_asset_fraction: 0.1\n", &[]).unwrap();
        assert_eq!(s.risk.max_asset_fraction, 0.1);
        assert_eq!(s.risk.max_gross_leverage, 1.0);
        assert_eq!(Settings::from_yaml_str("", &[]).unwrap(), Settings::default());
    }

    #[test]
    fn unknown_key_is_refused_with_its_path() {
        let e = err("risk:\n  max_asset_fractoin: 0.1\n");
        assert!(e.contains("risk"), "{e}");
        assert!(e.contains("max_asset_fractoin"), "{e}");
        assert!(e.contains("max_asset_fraction"), "lists allowed keys: {e}");
    }

    #[test]
    fn wrong_type_is_refused_with_path_value_and_expectation() {
        let e = err("backtest:\n  costs:\n    entry_fixed: lots\n");
        assert!(e.contains("backtest.costs.entry_fixed"), "{e}");
        assert!(e.contains("lots"), "{e}");
        assert!(e.contains("f64") || e.contains("float"), "{e}");
    }

    #[test]
    fn out_of_range_value_is_refused_with_allowed_range() {
        let e = err("risk:\n  max_drawdown: 1.5\n");
        assert!(e.contains("risk.max_drawdown"), "{e}");
        assert!(e.contains("1.5"), "{e}");
        assert!(e.contains("[0, 1]"), "{e}");
        let e = err("backtest:\n  fill: tomorrow\n");
        assert!(e.contains("backtest.fill") && e.contains("next_open"), "{e}");
        let e = err("strategies:\n  sma_crossover:\n    fast: 50\n    slow: 20\n");
        assert!(e.contains("strategies.sma_crossover.fast"), "{e}");
    }

    #[test]
    fn overrides_win_over_file_and_are_validated() {
        let s = Settings::from_yaml_str(
            "backtest:\n  initial_cash: 5000\n",
            &["backtest.initial_cash=7000".into(), "backtest.fill=signal_close".into()],
        )
        .unwrap();
        assert_eq!(s.backtest.initial_cash, 7000.0);
        assert_eq!(s.backtest.fill, FillPolicy::SignalClose);
        let e = Settings::defaults_with(&["risk.nope=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        let e = Settings::defaults_with(&["no_equals_sign".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("KEY.PATH=VALUE"), "{e}");
    }

    #[test]
    fn per_instrument_lots_are_read_and_checked() {
        let s = Settings::from_yaml_str(
            "data:\n  instruments:\n    nifty:\n      lot_size: 50\n      timeframe: 5m\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.data.instruments["nifty"].lot_size, Some(50.0));
        assert_eq!(
            s.data.instruments["nifty"].timeframe,
            Some(Timeframe::from_millis(300_000))
        );
        assert_eq!(s.data.instruments["nifty"].fractional, None);
        let e = err("data:\n  instruments:\n    nifty:\n      lot_size: -5\n");
        assert!(e.contains("data.instruments.nifty.lot_size"), "{e}");
        let e = err("data:\n  instruments:\n    nifty:\n      lots: 5\n");
        assert!(e.contains("lots"), "{e}");
    }

    #[test]
    fn environment_splits_and_rewards_are_checked() {
        let e = err("env:\n  train_fraction: 0.8\n  validation_fraction: 0.3\n");
        assert!(
            e.contains("env.validation_fraction") && e.contains("no test split"),
            "{e}"
        );
        let e = err("env:\n  reward: sharpe\n");
        assert!(e.contains("env.reward") && e.contains("differential_sharpe"), "{e}");
        let e = err("env:\n  window: 0\n");
        assert!(e.contains("env.window"), "{e}");
    }

    #[test]
    fn syntax_errors_and_missing_files_are_named() {
        let e = err("risk: [unclosed\n");
        assert!(e.contains("not valid YAML"), "{e}");
        let e = Settings::load(Path::new("/nonexistent/settings.yaml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/settings.yaml") && e.contains("--config"),
            "{e}"
        );
    }
}
