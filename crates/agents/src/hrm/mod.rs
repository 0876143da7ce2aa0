//! The Hierarchical Reasoning Model agent (algorithms.md 2): the HRM
//! network of `tradelab_nn::hrm` as an actor-critic that decides per bar
//! how long to think, trained by segment-wise PPO.
//!
//! - **Acting.** Every bar starts from the fixed initial states and runs
//!   segments until the Q-head says halt (after M_min) or M_max is
//!   reached; the halting segment's heads give the action, quantity and
//!   value, and the rollout records the segments used.
//! - **Learning.** Per minibatch, segments 1..M_max are re-run from the
//!   initial states with the carry detached between them (deep
//!   supervision); every segment gets a PPO loss against the recorded
//!   behaviour policy plus the Q-halting loss, and one optimiser step
//!   follows the mean (see `update.rs`).
//! - **Memory.** The one-step gradient keeps a segment's graph to one L
//!   and one H step, so memory is flat in N x T; the update keeps the
//!   M_max segment graphs of one minibatch until its backward pass.

mod explain;
pub mod halting;
mod persist;
pub mod pretrain;
mod supervision;
mod update;

use crate::settings::{HrmSettings, PpoSettings};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tradelab_core::Action;
use tradelab_env::{VecEnv, ACCOUNT_FEATURES};
use tradelab_nn::hrm::infer::HrmInference;
use tradelab_nn::hrm::{HrmNet, HrmNetConfig};
use tradelab_nn::params::Params;

use crate::adam::Adam;
use crate::agent::{Agent, AgentInput, Decision, LearnStats, MarketKey};
use crate::error::AgentError;
use crate::explanation::{Attribution, Internals};
use crate::inputs::{check_inputs, InputShape};
use crate::metadata::Provenance;
use crate::reward_scale::RewardScaler;
use crate::rollout::{collect, Acted, Actor, RolloutBuffer};
use crate::sampling::{decide, Heads};
use halting::{draw_min_segments, should_halt};

pub use persist::HrmMetadata;

/// The name `tradelab train --agent` uses.
pub const KIND: &str = crate::kinds::HRM;

/// Everything that fixes an HRM agent's shape and training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HrmConfig {
    /// Feature columns per bar of the observation window.
    pub features: usize,
    /// Bars in the observation window (one token each).
    pub window: usize,
    /// Instrument embedding rows: the vocabulary's instrument count.
    pub instruments: usize,
    /// Timeframe embedding rows: the vocabulary's timeframe count.
    pub timeframes: usize,
    /// Seeds the weight initialisation and the agent's random streams.
    pub seed: u64,
    /// Rollout shape, discount, clipping and budget.
    pub ppo: PpoSettings,
    /// The model, halting and learning rates.
    pub model: HrmSettings,
}

impl HrmConfig {
    fn net(&self) -> HrmNetConfig {
        let m = &self.model;
        HrmNetConfig {
            features: self.features,
            window: self.window,
            account: ACCOUNT_FEATURES,
            d_model: m.d_model,
            heads: m.heads,
            h_layers: m.h_layers,
            l_layers: m.l_layers,
            h_cycles: m.h_cycles,
            l_cycles: m.l_cycles,
            instruments: self.instruments,
            timeframes: self.timeframes,
            instrument_embedding: m.instrument_embedding,
            timeframe_embedding: m.timeframe_embedding,
        }
    }

    fn input_shape(&self) -> InputShape {
        InputShape {
            window: self.window,
            features: self.features,
            instruments: self.instruments,
            timeframes: self.timeframes,
        }
    }

    /// Updates the budget allows: the learning-rate schedule's length.
    pub fn total_updates(&self) -> usize {
        let batch = self.ppo.envs * self.ppo.rollout_steps;
        self.ppo.total_steps.div_ceil(batch).max(1)
    }
}

/// The HRM actor-critic with its optimiser, reward scaler and counters,
/// on the CPU.
pub struct HrmAgent {
    /// The shape and training settings it was built with.
    pub config: HrmConfig,
    params: Params,
    net: HrmNet,
    adam: Adam,
    rng: ChaCha8Rng,
    scaler: RewardScaler,
    /// Updates done so far (across resumes).
    pub updates: usize,
    /// Environment steps done so far (across resumes).
    pub env_steps: usize,
    /// Filled in by the trainer; saved in metadata.json.
    pub provenance: Provenance,
    buffer: Option<RolloutBuffer>,
    device: Device,
    /// Decisions that halted after 1, 2, ... M_max segments, since creation
    /// or the last `take_segment_counts`.
    segment_counts: Vec<u64>,
    /// The weights as plain arrays for acting; `None` once they changed.
    inference: Option<HrmInference>,
}

/// The halting segment's heads for a batch, and the segments each used.
struct Halted {
    logits: Tensor,
    raw_alpha: Tensor,
    raw_beta: Tensor,
    value: Tensor,
    segments: Vec<u32>,
}

impl HrmAgent {
    /// A freshly initialised agent (weights from `config.seed`, zero Adam
    /// moments with the model's weight decay), untrained.
    pub fn new(config: HrmConfig) -> Result<Self, AgentError> {
        let device = Device::Cpu;
        let mut params = Params::new(config.seed, device.clone());
        let net = HrmNet::new(&mut params, config.net())?;
        let mut adam = Adam::new(params.named_vars(), 1e-5)?;
        adam.weight_decay = config.model.weight_decay;
        Ok(HrmAgent {
            net,
            adam,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            scaler: RewardScaler::new(config.ppo.envs, config.ppo.gamma, config.ppo.reward_clip),
            updates: 0,
            env_steps: 0,
            provenance: Provenance::default(),
            buffer: None,
            device,
            params,
            segment_counts: vec![0; config.model.max_segments],
            inference: None,
            config,
        })
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.params.count()
    }

    /// Grows the vocabulary to `instruments` and `timeframes` ids: new
    /// markets get zero embedding rows (the neutral context every market
    /// started from) and everything else, learned weights and optimiser
    /// state, is kept, so adding a market needs no retraining of the rest.
    pub fn extend_vocabulary(&mut self, instruments: usize, timeframes: usize) -> Result<(), AgentError> {
        if instruments == self.config.instruments && timeframes == self.config.timeframes {
            return Ok(());
        }
        let weights = persist::pad_embeddings(&self.params.tensors(), instruments, timeframes)?;
        let moments = persist::pad_embeddings(&self.adam.state(), instruments, timeframes)?;
        let mut config = self.config.clone();
        config.instruments = instruments;
        config.timeframes = timeframes;
        let mut grown = HrmAgent::new(config)?;
        let (z_h, z_l) = {
            let [(_, z_h), (_, z_l)] = self.net.buffers();
            (z_h.clone(), z_l.clone())
        };
        grown.net.set_buffers(z_h, z_l)?;
        grown.params.assign(&weights).map_err(AgentError::Invalid)?;
        grown
            .adam
            .restore(&moments, self.adam.step)
            .map_err(AgentError::Invalid)?;
        grown.updates = self.updates;
        grown.env_steps = self.env_steps;
        grown.scaler = self.scaler.clone();
        grown.provenance = std::mem::take(&mut self.provenance);
        *self = grown;
        Ok(())
    }

    fn reseed(&mut self) {
        let stream = self.config.seed ^ (self.updates as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.rng = ChaCha8Rng::seed_from_u64(stream);
    }

    /// Runs segments until each sample halts; `training` draws the random
    /// M_min of algorithms.md 1.5, inference uses the configured minimum.
    /// Acting uses the plain-array forward pass (a snapshot of the weights,
    /// retaken after every update).
    fn think(
        &mut self,
        windows: &[f32],
        accounts: &[f32],
        keys: &[MarketKey],
        training: bool,
    ) -> Result<Halted, AgentError> {
        let n = keys.len();
        check_inputs(self.config.input_shape(), windows, accounts, keys)?;
        if self.inference.is_none() {
            self.inference = Some(HrmInference::from_net(&self.net)?);
        }
        let m = self.config.model.clone();
        let mins: Vec<usize> = (0..n)
            .map(|_| draw_min_segments(&mut self.rng, training, m.epsilon, m.min_segments, m.max_segments))
            .collect();
        let inference = self.inference.as_mut().expect("snapshot taken above");
        let instruments: Vec<u32> = keys.iter().map(|k| k.instrument).collect();
        let timeframes: Vec<u32> = keys.iter().map(|k| k.timeframe).collect();
        let x = inference.embed(windows, accounts, &instruments, &timeframes);
        let (mut z_h, mut z_l) = inference.initial(n);
        let mut logits = vec![0f32; n * 5];
        let (mut alpha, mut beta, mut value) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        let mut segments = vec![0u32; n];
        let mut open = n;
        for seg in 1..=m.max_segments {
            let out = inference.segment(&mut z_h, &mut z_l, &x, n);
            for s in 0..n {
                if segments[s] == 0
                    && should_halt(seg, out.q_halt[s], out.q_continue[s], mins[s], m.max_segments, m.act)
                {
                    logits[s * 5..(s + 1) * 5].copy_from_slice(&out.logits[s * 5..(s + 1) * 5]);
                    (alpha[s], beta[s], value[s]) = (out.raw_alpha[s], out.raw_beta[s], out.value[s]);
                    segments[s] = seg as u32;
                    self.segment_counts[seg - 1] += 1;
                    open -= 1;
                }
            }
            if open == 0 {
                break;
            }
        }
        let d = &self.device;
        Ok(Halted {
            logits: Tensor::from_vec(logits, (n, 5), d)?,
            raw_alpha: Tensor::from_vec(alpha, n, d)?,
            raw_beta: Tensor::from_vec(beta, n, d)?,
            value: Tensor::from_vec(value, n, d)?,
            segments,
        })
    }

    /// Drops the acting snapshot after the weights changed outside an update.
    pub(crate) fn weights_changed(&mut self) {
        self.inference = None;
    }
}

impl Actor for HrmAgent {
    fn act(
        &mut self,
        windows: &[f32],
        accounts: &[f32],
        masks: &[f32],
        keys: &[MarketKey],
        greedy: bool,
    ) -> Result<Acted, AgentError> {
        let halted = self.think(windows, accounts, keys, !greedy)?;
        let mask = Tensor::from_slice(masks, (keys.len(), 5), &self.device)?;
        let heads = Heads {
            logits: &halted.logits,
            raw_alpha: &halted.raw_alpha,
            raw_beta: &halted.raw_beta,
            value: &halted.value,
        };
        let mut acted = decide(heads, &mask, greedy, &mut self.rng)?;
        acted.segments = halted.segments;
        Ok(acted)
    }

    fn values(&mut self, windows: &[f32], accounts: &[f32], keys: &[MarketKey]) -> Result<Vec<f32>, AgentError> {
        Ok(self.think(windows, accounts, keys, false)?.value.to_vec1::<f32>()?)
    }

    fn reward_scaler(&mut self) -> Option<&mut RewardScaler> {
        self.config.ppo.normalize_rewards.then_some(&mut self.scaler)
    }
}

impl Agent for HrmAgent {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn seed_sampling(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    fn select_action(&mut self, input: &AgentInput<'_>, greedy: bool) -> Result<Decision, AgentError> {
        let mask: [f32; 5] = input.mask.map(|m| if m { 1.0 } else { 0.0 });
        let acted = self.act(input.window, &input.account, &mask, &[input.market], greedy)?;
        Ok(Decision {
            action: Action::from_index(acted.actions[0] as usize).unwrap_or(Action::Hold),
            quantity: acted.quantities[0] as f64,
            probabilities: acted.probabilities[0],
            value: acted.values[0],
        })
    }

    fn learn(&mut self, envs: &mut VecEnv, markets: &[MarketKey]) -> Result<LearnStats, AgentError> {
        if envs.len() != self.config.ppo.envs {
            return Err(AgentError::Invalid(format!(
                "the agent was configured for {} environments but got {}",
                self.config.ppo.envs,
                envs.len()
            )));
        }
        self.reseed();
        let (n, t) = (self.config.ppo.envs, self.config.ppo.rollout_steps);
        let wlen = self.config.window * self.config.features;
        let mut buffer = self.buffer.take().unwrap_or_else(|| RolloutBuffer::new(n, t, wlen));
        let result =
            collect(self, &mut buffer, envs, markets).and_then(|episodes| self.update(&buffer).map(|s| (episodes, s)));
        let segments = buffer.segments.iter().map(|&s| s as f64).sum::<f64>() / buffer.segments.len().max(1) as f64;
        self.buffer = Some(buffer);
        let (episode_returns, mut stats) = result?;
        stats.episode_returns = episode_returns;
        stats.segments_per_decision = segments;
        stats.env_steps = n * t;
        self.env_steps += stats.env_steps;
        self.updates += 1;
        Ok(stats)
    }

    fn save(&self, dir: &std::path::Path) -> Result<(), AgentError> {
        persist::save(self, dir)
    }

    fn load(dir: &std::path::Path) -> Result<Self, AgentError> {
        persist::load(dir)
    }

    fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    fn take_segment_counts(&mut self) -> Vec<u64> {
        std::mem::replace(&mut self.segment_counts, vec![0; self.config.model.max_segments])
    }

    fn attribute(
        &mut self,
        input: &AgentInput<'_>,
        action: Action,
        steps: usize,
    ) -> Result<Option<Attribution>, AgentError> {
        self.attribute_decision(input, action, steps).map(Some)
    }

    fn internals(&mut self, input: &AgentInput<'_>) -> Result<Internals, AgentError> {
        self.decision_internals(input)
    }
}

crate::trainable::trainable_agent!(HrmAgent);

#[cfg(test)]
mod tests;
