//! Learning agents for tradelab.
//!
//! - [`agent`]: the [`Agent`] trait every agent implements (select an
//!   action, learn from environments, save, load), with the inputs and
//!   decisions it exchanges;
//! - [`ppo`]: proximal policy optimisation over LSTM, Transformer or MLP
//!   encoders, written to `shared/docs/algorithms.md` section 4;
//! - [`hrm`]: the Hierarchical Reasoning Model agent (adaptive segments
//!   per bar with Q-halting, segment-wise PPO), algorithms.md section 2;
//! - [`hindsight`]: hindsight-optimal action labels by dynamic
//!   programming over future prices net of costs (pre-training targets);
//! - [`gae`](mod@gae): generalised advantage estimation with truncation
//!   bootstrapping, and per-minibatch advantage normalisation;
//! - [`adam`]: Adam with global gradient clipping and checkpointable state;
//! - [`checkpoint`] and [`metadata`]: the checkpoint directory
//!   (`model.safetensors`, `optimizer.safetensors`, `metadata.json`),
//!   written atomically and verified by checksum on load;
//! - [`trainer`]: the training loop with periodic validation, best-model
//!   keeping and early stopping;
//! - [`evaluate`]: a trained agent as a backtesting strategy, acting
//!   greedily through the same engine, costs and risk layer as the rule
//!   baselines.
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

pub mod adam;
pub mod agent;
pub mod checkpoint;
mod epochs;
mod error;
pub mod evaluate;
mod gae;
pub mod hindsight;
pub mod hrm;
mod inputs;
pub mod meta;
pub mod meta_learning;
pub mod meta_tasks;
pub mod metadata;
pub mod ppo;
mod reward_scale;
mod rollout;
mod sampling;
pub mod trainer;
pub mod transitions;

pub use agent::{Agent, AgentInput, Decision, LearnStats, MarketKey};
pub use error::AgentError;
pub use gae::{gae, normalize_advantages, Rollout};
pub use ppo::{PpoAgent, PpoConfig};
pub use reward_scale::RewardScaler;
