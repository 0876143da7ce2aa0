//! The event-driven backtesting engine and everything around it.
//!
//! - [`engine`]: replays bars from one or more instruments through a
//!   [`Strategy`](strategy::Strategy), with fills that never look ahead by
//!   default, into one shared [`Account`](account::Account);
//! - [`broker`]: turns orders into fills on a bar under the costs, sizing
//!   and risk rules, for the engine and the RL environment alike;
//! - [`costs`], [`sizing`], [`risk`]: commissions and slippage, position
//!   sizing and lots, and the risk layer every entry passes through;
//! - [`strategies`]: the rule baselines (buy-and-hold, SMA crossover, RSI
//!   mean reversion, momentum);
//! - [`portfolio`]: hierarchical risk parity over a Ledoit-Wolf shrunk
//!   covariance, for risk budgets across instruments;
//! - [`metrics`] and [`report`]: the numbers, and their JSON, terminal,
//!   SVG and HTML forms;
//! - [`stats`]: bootstrap intervals and the probabilistic and deflated
//!   Sharpe ratios, so a figure comes with how far to trust it;
//! - [`walkforward`] and [`montecarlo`]: honest evaluation helpers.
//! - [`optimize`]: parameter grids and random searches over the baselines
//!   on every core, with heatmaps, walk-forward optimisation and the
//!   overfitting statistics.
//!
//! Architecture invariant: nothing here knows about the ML framework, the
//! database or HTTP.
//!
//! ```
//! use tradelab_data::synthetic::{generate, SyntheticConfig};
//! use tradelab_sim::settings::StrategySettings;
//! use tradelab_sim::{engine, metrics, strategies};
//!
//! let market = generate(&SyntheticConfig { bars: 300, ..Default::default() });
//! let mut strategy = strategies::baseline("sma_crossover", &StrategySettings::default()).unwrap();
//! let result = engine::run(&[&market.series], strategy.as_mut(), &engine::EngineConfig::default());
//! let m = metrics::compute(&result, 0.0);
//! assert_eq!(result.equity.len(), 300);
//! assert_eq!(m.trades.total_trades, result.trades.len());
//! ```

#![warn(missing_docs)]

pub mod account;
pub mod broker;
pub mod costs;
pub mod engine;
pub mod metrics;
pub mod montecarlo;
pub mod optimize;
pub mod order;
pub mod portfolio;
pub mod report;
pub mod risk;
pub mod settings;
pub mod sizing;
pub mod stats;
pub mod strategies;
pub mod strategy;
pub mod walkforward;
