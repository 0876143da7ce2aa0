//! What meta-learning needs from a PPO agent (the single policy or the
//! mixture): its parameters as one flat vector, and a rollout on one task's
//! window turned into a training batch.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tradelab_env::{EnvConfig, MarketData, Split, VecEnv};

use super::PpoAgent;
use crate::agent::MarketKey;
use crate::error::AgentError;
use crate::rollout::{collect, Batch, RolloutBuffer};

/// A rollout on one window as a batch, with its advantages normalised over
/// the whole batch.
pub(crate) struct TaskBatch {
    pub batch: Batch,
    pub advantages: Vec<f32>,
}

impl PpoAgent {
    /// Every parameter in name order (the layout of the gradients
    /// meta-learning steps with).
    pub fn flat_params(&self) -> Result<Vec<f64>, AgentError> {
        Ok(self.params.flat()?)
    }

    /// Overwrites every parameter from a vector laid out as
    /// [`PpoAgent::flat_params`] (rounded to f32); fails when its length
    /// is not the parameter count.
    pub fn set_flat_params(&mut self, values: &[f64]) -> Result<(), AgentError> {
        Ok(self.params.set_flat(values)?)
    }

    /// Collects one rollout (`ppo.envs` × `ppo.rollout_steps`) on `split`
    /// of `data` with the current weights and a random stream from `seed`.
    pub(crate) fn task_batch(
        &mut self,
        data: &Arc<MarketData>,
        key: MarketKey,
        split: Split,
        env: &EnvConfig,
        seed: u64,
    ) -> Result<TaskBatch, AgentError> {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        let (n, t) = (self.config.ppo.envs, self.config.ppo.rollout_steps);
        let mut envs = VecEnv::new(std::slice::from_ref(data), n, split, env, seed)?;
        let mut buffer = RolloutBuffer::new(n, t, self.config.window * self.config.features);
        collect(self, &mut buffer, &mut envs, &[key])?;
        let (mut advantages, returns) = buffer.advantages(self.config.ppo.gamma, self.config.ppo.gae_lambda);
        let len = advantages.len().max(1) as f32;
        let mean = advantages.iter().sum::<f32>() / len;
        let std = (advantages.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / len).sqrt();
        for a in &mut advantages {
            *a = (*a - mean) / (std + 1e-8);
        }
        let batch = buffer.batch(self.config.window, self.config.features, &returns, &self.device)?;
        Ok(TaskBatch { batch, advantages })
    }
}
