//! Hyperparameter sweeps (`tradelab sweep SPACE.yaml`): a search space
//! over any settings keys, random search or successive halving on the
//! validation score, every trial a training job on the queue and a
//! recorded run, resumable after a kill, ranked with the statistics that
//! say how much of the winner is luck.
//!
//! - [`space`]: the sweep file, its checks, and the trials drawn from it;
//! - [`state`]: what the sweep decided and learnt, saved atomically;
//! - [`runner`]: queueing trials rung by rung and waiting for them;
//! - [`report`]: the ranking, the deflated Sharpe ratio of the best, the
//!   probability of backtest overfitting, and the best settings file.

pub mod report;
pub mod runner;
pub mod space;
pub mod state;
