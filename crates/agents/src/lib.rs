//! Learning agents for tradelab.
//!
//! So far this crate holds PPO's rollout arithmetic, written to the
//! reference in `shared/docs/algorithms.md` section 4: [`gae`] (generalised
//! advantage estimation that bootstraps truncated episodes from their final
//! observation and cuts the trace on either flag) and
//! [`normalize_advantages`] (per minibatch). The PPO agent, its trainer and
//! checkpoints build on these next.
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

mod gae;

pub use gae::{gae, normalize_advantages, Rollout};
