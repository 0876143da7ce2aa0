//! Learning agents for tradelab, in four layers; imports point down the
//! list, never up (a test in `crates/cli/tests/architecture.rs` reads the
//! `use` lines to keep it so).
//!
//! 1. Interface: [`agent`] (the [`Agent`] trait: select an action, learn
//!    from environments, save, load; the inputs and decisions it
//!    exchanges), [`explanation`] (attributions and a model's internals
//!    for the audit trail), [`trainable`] (what the trainer needs beyond that),
//!    [`kinds`] (the one list of agent kinds), [`metadata`] (what
//!    `metadata.json` records: vocabulary, provenance, validation).
//! 2. Machinery: rollout storage and sampling, `attribution` (integrated
//!    gradients through candle), `gae`
//!    (generalised advantage estimation with truncation bootstrapping),
//!    [`adam`] (with global clipping and checkpointable state),
//!    [`checkpoint`] (`model.safetensors`, `optimizer.safetensors`,
//!    `metadata.json`, written atomically and verified by checksum),
//!    [`hindsight`] (hindsight-optimal labels for pre-training), [`maml`]
//!    (MAML, first-order MAML and Reptile over flat parameters).
//! 3. Algorithms: [`ppo`] (proximal policy optimisation over LSTM,
//!    Transformer or MLP encoders, and the mixture of experts;
//!    `shared/docs/algorithms.md` section 4) and [`hrm`] (the Hierarchical
//!    Reasoning Model with Q-halting and segment-wise PPO, section 2), and
//!    [`logistic`] (the supervised baseline: a regularised logistic
//!    regression of the next bar's direction, trading target positions)
//!    and [`gbt`] (gradient-boosted trees on the same inputs and labels).
//! 4. Drivers: [`trainer`] (the training loop with validation, best-model
//!    keeping and early stopping), [`evaluate`] (a trained agent as a
//!    backtesting strategy), [`ensemble`] (several models deciding from
//!    their averaged action distributions), [`load`] (any checkpoint by its kind),
//!    [`meta_learning`] and [`meta_tasks`] (meta-training across markets),
//!    [`supervised`] (fitting the logistic baseline, strength chosen on
//!    validation),
//!    [`transitions`] (behaviour at regime switches).
//!
//! ```
//! use tradelab_agents::{gae, Rollout};
//! // One environment, two steps, no episode end: bootstrap from the last value.
//! let r = Rollout { envs: 1, rewards: &[1.0, 1.0], values: &[0.5, 0.5], terminated: &[false, false],
//!     truncated: &[false, false], final_values: &[0.0, 0.0], last_values: &[0.5] };
//! let (adv, ret) = gae(&r, 0.99, 0.95);
//! assert!((ret[1] - (1.0 + 0.99 * 0.5)).abs() < 1e-6);
//! assert_eq!(adv.len(), 2);
//! ```

#![warn(missing_docs)]

// Interface.
pub mod agent;
mod error;
pub mod explanation;
mod inputs;
pub mod kinds;
pub mod metadata;
pub mod settings;
#[cfg(test)]
mod testing;
pub mod trainable;

// Machinery.
pub mod adam;
mod attribution;
pub mod checkpoint;
mod epochs;
mod gae;
pub mod hindsight;
pub mod maml;
mod reward_scale;
mod rollout;
mod sampling;

// Algorithms.
pub mod gbt;
pub mod hrm;
pub mod logistic;
pub mod ppo;

// Drivers.
pub mod complexity;
pub mod ensemble;
pub mod evaluate;
pub mod load;
pub mod meta_learning;
pub mod meta_tasks;
pub mod supervised;
pub mod trainer;
pub mod transitions;

pub use agent::{Agent, AgentInput, Decision, LearnStats, MarketKey};
pub use error::AgentError;
pub use gae::{gae, normalize_advantages, Rollout};
pub use load::load_agent;
pub use ppo::{PpoAgent, PpoConfig};
pub use reward_scale::RewardScaler;
