//! The reinforcement-learning trading environment.
//!
//! [`TradingEnv`] wraps the backtesting [`Broker`](tradelab_sim::broker::Broker),
//! so an agent trades under exactly the costs, fills and risk layer a
//! backtest uses. It follows Gymnasium's semantics: [`TradingEnv::reset`]
//! starts an episode, [`TradingEnv::step`] returns reward, `terminated` (ruin
//! or the drawdown breaker: no bootstrapping) and `truncated` (the end of the
//! episode window: bootstrap from the last observation).
//!
//! - Actions: the five [`Action`](tradelab_core::Action)s plus a quantity in
//!   (0, 1], the fraction of the risk budget (the single-asset cap times
//!   equity) an entry commits. [`TradingEnv::action_mask`] marks the actions
//!   valid for the current position.
//! - Observations ([`Observation`]): a window of normalised features (a view
//!   into one precomputed matrix, so stepping copies nothing) and three
//!   account values: equity relative to the start, signed exposure and
//!   unrealised P&L, both as fractions of equity.
//! - Normalisation ([`MarketData`]): price-level features are divided by the
//!   close, then every feature is z-scored with statistics fitted on the
//!   training split only.
//! - [`VecEnv`] steps many environments in lockstep with preallocated
//!   buffers and automatic resets.
//!
//! ```
//! use std::sync::Arc;
//! use tradelab_core::Action;
//! use tradelab_data::settings::FeatureSettings;
//! use tradelab_data::synthetic::{generate, SyntheticConfig};
//! use tradelab_env::settings::EnvSettings;
//! use tradelab_env::{EnvAction, EnvConfig, MarketData, Split, TradingEnv};
//! use tradelab_regime::RegimeSettings;
//!
//! let (features, env, regime) = (FeatureSettings::default(), EnvSettings::default(), RegimeSettings::default());
//! let market = generate(&SyntheticConfig { bars: 2_000, ..Default::default() });
//! let data = Arc::new(MarketData::new(market.series, &features, &env, &regime).unwrap());
//! // The environment trades through the default broker (costs, lots, risk layer).
//! let mut env = TradingEnv::new(data, Split::Train, &EnvConfig::default(), 7).unwrap();
//! env.reset();
//! let step = env.step(EnvAction::new(Action::BuyLong, 0.5));
//! assert!(step.reward.is_finite() && !step.terminated);
//! assert!(env.action_mask()[Action::CloseLong.index()]);
//! ```

#![warn(missing_docs)]

mod account_inputs;
mod config;
mod env;
mod market_data;
mod reward;
pub mod settings;
mod streaming;
mod vec_env;

pub use account_inputs::{account_features, action_mask, Holding, SeedOrder, EXPOSURE_MASK};
pub use config::EnvConfig;
pub use env::{EnvAction, EnvError, Observation, StepInfo, StepResult, TradingEnv};
pub use market_data::{feature_columns, window_from_bars, MarketData, Split, ACCOUNT_FEATURES, SPECIALIST_COLUMNS};
pub use reward::RewardTracker;
pub use settings::ActionSpace;
pub use streaming::StreamingWindow;
pub use vec_env::{FinalState, VecEnv};
