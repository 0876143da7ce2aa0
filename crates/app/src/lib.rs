//! tradelab's application layer: the use-cases the command line, the API
//! server and the job workers share, above the libraries and below every
//! front end.
//!
//! - [`settings`]: where a process's settings come from (`--config`,
//!   `--set`, `--seed`) and the settings a trained model runs under;
//! - [`data_sources`]: the price files a model was trained on, found again
//!   by path or, after a move, by content;
//! - [`markets`]: loading series by name or path, baselines, the training
//!   vocabulary and market data ready for the environment;
//! - [`backtest_statistics`]: a backtest beside buy-and-hold, and its
//!   Sharpe ratio's interval;
//! - [`evaluation`]: a trained model out of sample beside every
//!   baseline, with intervals and the deflated Sharpe ratio, and its
//!   runs in the form the store keeps;
//! - [`registry`]: model references, registering checkpoints, verifying
//!   files, garbage collection;
//! - [`record`]: the synchronous recorder of runs, metrics, models,
//!   backtests and job progress; [`mlflow`] mirrors runs to MLflow;
//! - [`audit`]: trading sessions' events on their way to the audit trail
//!   (the in-process bus or NATS JetStream), and the trail read back,
//!   verified and exported;
//! - [`trading`]: paper trading a trained agent on replayed instruments in
//!   one account, recorded in the store so a killed session resumes;
//! - [`jobs`]: what a job is, the queue that carries it, the worker that
//!   runs it;
//! - [`metrics`]: the Prometheus counters the server and workers update;
//! - [`auth_setup`]: signing keys, the first administrator, the command
//!   line's client; [`users`]: adding and disabling users, removing
//!   clients, with the checks the command line and the API share;
//! - [`optimize`]: parameter searches over the rule baselines on every
//!   core, their reports, heatmaps and walk-forward optimisation;
//! - [`sweep`]: hyperparameter sweeps as jobs, their state, ranking and
//!   overfitting statistics;
//! - [`regimes`]: a market's regime model, fitted on its training split,
//!   and the filtered probabilities of every bar;
//! - [`adapt`]: online updates of a trained model on its newest bars,
//!   kept only past a validation guard, and the decay they answer;
//! - [`training`]: the shape of a new PPO agent or mixture for a set of
//!   markets; [`walk_forward`]: walk-forward evaluation with retraining,
//!   the folds stitched into one out-of-sample curve;
//! - [`run_liveness`]: runs whose process died are marked failed;
//! - [`runtime`]: async runtimes and the shutdown signal.
//!
//! Architecture invariant: no HTTP framework and no command-line parser
//! here (the `openapi` feature only derives schemas for the server); the
//! server and the binary depend on this crate, never the other way.

#![warn(missing_docs)]

pub mod adapt;
pub mod audit;
pub mod auth_setup;
pub mod backtest_statistics;
pub mod data_sources;
pub mod env_trace;
pub mod evaluation;
pub mod jobs;
pub mod markets;
pub mod metrics;
pub mod mlflow;
pub mod optimize;
pub mod record;
pub mod regimes;
pub mod registry;
pub mod run_liveness;
pub mod runtime;
pub mod settings;
pub mod sweep;
pub mod trading;
pub mod training;
pub mod users;
pub mod walk_forward;
pub use settings::Settings;

#[cfg(test)]
mod testing;
