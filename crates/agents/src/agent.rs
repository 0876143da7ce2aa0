//! The interface every learning agent implements (the seed's `BaseAgent`).

use std::path::Path;

use tradelab_core::Action;
use tradelab_env::{VecEnv, ACCOUNT_FEATURES};

use crate::error::AgentError;
use crate::explanation::{Attribution, Internals};
pub use crate::metadata::MarketKey;
use crate::metadata::Provenance;

/// What an agent decides from: the normalised feature window (oldest row
/// first, `window x features` values), the account values, the valid
/// actions, and the market's embedding ids.
#[derive(Debug, Clone, Copy)]
pub struct AgentInput<'a> {
    /// The normalised feature window, row-major: `window x features`
    /// values, oldest bar first.
    pub window: &'a [f32],
    /// Equity relative to the start, signed exposure and unrealised P&L
    /// over equity, as the environment computes them.
    pub account: [f32; ACCOUNT_FEATURES],
    /// Which actions are valid now, indexed by [`Action::index`]; masked
    /// actions get probability 0.
    pub mask: [bool; 5],
    /// The market's instrument and timeframe ids in the model's vocabulary.
    pub market: MarketKey,
}

/// One decision, with what the audit trail needs to explain it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The action taken; always one the input's mask allows.
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
    /// PPO's clipped surrogate loss, averaged over the update's minibatches.
    pub policy_loss: f64,
    /// Half the mean squared error of the value against the returns,
    /// averaged over the minibatches.
    pub value_loss: f64,
    /// Mean entropy of the action and quantity distributions, in nats.
    pub entropy: f64,
    /// Mean of `(r - 1) - log r` over the minibatches, `r` the probability
    /// ratio to the rollout's policy (the HRM's deepest segment's).
    pub approx_kl: f64,
    /// Mean fraction of samples whose ratio left `1 ± clip` (the HRM's
    /// deepest segment's).
    pub clip_fraction: f64,
    /// `1 - Var(returns - values) / Var(returns)` over the rollout: 1 is a
    /// perfect critic, 0 or less no better than the mean.
    pub explained_variance: f64,
    /// Mean global gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// The learning rate the update ran at, after annealing.
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

    /// Restarts the random stream that sampled (not greedy) decisions draw
    /// from, so each sampled evaluation path is reproducible from its seed.
    /// Training reseeds it itself at every update.
    fn seed_sampling(&mut self, seed: u64);

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

    /// Integrated gradients of `action`'s log-probability at `input` over
    /// `steps` points (see [`Attribution`]); `None` for agents without
    /// gradients (the tree and logistic baselines).
    fn attribute(
        &mut self,
        _input: &AgentInput<'_>,
        _action: Action,
        _steps: usize,
    ) -> Result<Option<Attribution>, AgentError> {
        Ok(None)
    }

    /// What the model's parts said about `input` (a mixture's specialists,
    /// the HRM's segments); empty for a single policy.
    fn internals(&mut self, _input: &AgentInput<'_>) -> Result<Internals, AgentError> {
        Ok(Internals::default())
    }
}
