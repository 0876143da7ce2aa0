//! The interface every learning agent implements (the seed's `BaseAgent`).

use std::path::Path;

use tradelab_core::Action;
use tradelab_env::{VecEnv, ACCOUNT_FEATURES};

use crate::error::AgentError;
pub use crate::metadata::MarketKey;
use crate::metadata::Provenance;

/// What an agent decides from: the normalised feature window (oldest row
/// first, `window x features` values), the account values, the valid
/// actions, and the market's embedding ids.
#[derive(Debug, Clone, Copy)]
pub struct AgentInput<'a> {
    pub window: &'a [f32],
    pub account: [f32; ACCOUNT_FEATURES],
    pub mask: [bool; 5],
    pub market: MarketKey,
}

/// One decision, with what the audit trail needs to explain it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub action: Action,
    /// Fraction of the risk budget in (0, 1]; meaningful for entries.
    pub quantity: f64,
    /// Probability of each action (by [`Action::index`]); 0 where masked.
    pub probabilities: [f32; 5],
    /// The critic's estimate of the state's value.
    pub value: f32,
}

/// What one call to [`Agent::learn`] did, for the progress display and the
/// experiment log.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LearnStats {
    /// Environment steps taken in this call.
    pub env_steps: usize,
    /// Returns of the episodes that finished during the call.
    pub episode_returns: Vec<f64>,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub clip_fraction: f64,
    pub explained_variance: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    /// Epochs actually run (fewer than configured when the KL target stopped them).
    pub epochs: usize,
    /// Mean reasoning segments per decision in the rollout (adaptive
    /// agents; 0 for the others).
    #[serde(default)]
    pub segments_per_decision: f64,
    /// Mean Q-halting loss (adaptive agents; 0 for the others).
    #[serde(default)]
    pub halt_loss: f64,
    /// The mixture's mean gate weight per specialist over the rollout
    /// (mixtures; empty for the others).
    #[serde(default)]
    pub gate_weights: Vec<f64>,
    /// The same by the most likely regime (rows: regimes, calmest first;
    /// empty where no sample was in that regime).
    #[serde(default)]
    pub gate_by_regime: Vec<Vec<f64>>,
}

/// A trading agent: decides from observations, learns from environments,
/// and persists itself as a versioned checkpoint.
pub trait Agent {
    /// The agent's type, as `tradelab train --agent` names it.
    fn kind(&self) -> &'static str;

    /// Decides for one observation: sampled from the policy, or its most
    /// likely action (and the quantity's mode) when `greedy`.
    fn select_action(&mut self, input: &AgentInput<'_>, greedy: bool) -> Result<Decision, AgentError>;

    /// One round of learning: collects experience from `envs` (whose
    /// environment `i` trades `markets[envs.market(i)]`) and updates.
    fn learn(&mut self, envs: &mut VecEnv, markets: &[MarketKey]) -> Result<LearnStats, AgentError>;

    /// Writes the checkpoint directory (weights, optimiser state, metadata).
    fn save(&self, dir: &Path) -> Result<(), AgentError>;

    /// Reads a checkpoint written by [`Agent::save`], refusing one of another
    /// agent type or whose checksum does not match.
    fn load(dir: &Path) -> Result<Self, AgentError>
    where
        Self: Sized;

    /// Where the agent came from: vocabulary, features, settings, data.
    fn provenance(&self) -> &Provenance;

    /// Decisions that halted after 1, 2, ... segments since the last call,
    /// for agents that decide how long to think (empty for the others).
    fn take_segment_counts(&mut self) -> Vec<u64> {
        Vec::new()
    }
}
