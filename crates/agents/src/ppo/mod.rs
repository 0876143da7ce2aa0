//! Proximal policy optimisation (Schulman et al. 2017) with the details of
//! algorithms.md section 4: GAE with truncation bootstrapping, per-minibatch
//! advantage normalisation, the clipped objective, an unclipped value loss,
//! an entropy bonus, orthogonal initialisation, Adam (eps 1e-5) with linear
//! learning-rate annealing and global gradient clipping, minibatches split
//! by environment, and approx-KL, clip fraction and explained variance
//! logged every update.
//!
//! The action is composite: one of five actions from a masked categorical
//! head and a quantity from a Beta head. Its log-probability is the sum of
//! the parts, the quantity's counted only for entries (it has no effect on
//! closes and HOLD, so it must not get credit or blame for them).
//!
//! The encoders read the whole observation window at every step (no state
//! is carried from one step to the next), so a minibatch of whole
//! per-environment sequences needs no stored hidden state; splitting by
//! environment still keeps each minibatch's samples from one trajectory.
//!
//! The same agent runs the mixture of experts (`mixture.rs`: specialists
//! under a gate, one loss, one optimiser) and exposes what meta-learning
//! needs (`meta.rs`: flat parameters, a task's rollout as a batch).
//! The MLP policy trains on hand-written kernels instead of candle
//! (`fused.rs`, the same loss; about 4x faster at its sizes).

mod explain;
mod fused;
mod meta;
mod mixture;
mod persist;
mod update;

use crate::settings::PpoSettings;
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tradelab_core::Action;
use tradelab_env::{VecEnv, ACCOUNT_FEATURES};
use tradelab_nn::fused_mlp::MlpShape;
use tradelab_nn::moe::MixturePolicy;
use tradelab_nn::params::Params;
use tradelab_nn::policy::{EncoderKind, PolicyConfig, PolicyNet, PolicyOutput};

use crate::adam::Adam;
use crate::agent::{Agent, AgentInput, Decision, LearnStats, MarketKey};
use crate::error::AgentError;
use crate::explanation::{Attribution, Internals};
use crate::inputs::{input_tensors, InputShape};
use crate::metadata::Provenance;
use crate::reward_scale::RewardScaler;

pub use crate::checkpoint::read_model_kind;
use crate::rollout::{collect, Acted, Actor, RolloutBuffer};
use crate::sampling::{decide, Heads};
pub(crate) use meta::TaskBatch;
pub use mixture::{transition_disruption, GateLog, MixtureConfig, MixtureView, MOE_KIND};
pub use persist::PpoMetadata;

/// Everything that fixes a PPO agent's shape and training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoConfig {
    /// `lstm`, `transformer` or `mlp`.
    pub encoder: String,
    /// Feature columns per bar of the observation window.
    pub features: usize,
    /// Bars in the observation window.
    pub window: usize,
    /// Instrument embedding rows: the vocabulary's instrument count.
    pub instruments: usize,
    /// Timeframe embedding rows: the vocabulary's timeframe count.
    pub timeframes: usize,
    /// Seeds the weight initialisation and the agent's random streams.
    pub seed: u64,
    /// Network sizes, rollout shape, update hyper-parameters and budget.
    pub ppo: PpoSettings,
    /// Present for the mixture of experts (`moe`): specialists of the
    /// `encoder`'s kind under a gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixture: Option<MixtureConfig>,
}

impl PpoConfig {
    /// The agent type's name, as `tradelab train --agent` spells it.
    pub fn kind(&self) -> Result<&'static str, AgentError> {
        Ok(match self.mixture {
            Some(_) => MOE_KIND,
            None => kind_name(self.encoder_kind()?),
        })
    }

    /// The encoder `encoder` names; an [`AgentError::Invalid`] for an
    /// unknown name.
    pub fn encoder_kind(&self) -> Result<EncoderKind, AgentError> {
        EncoderKind::parse(&self.encoder).ok_or_else(|| {
            AgentError::Invalid(format!(
                "unknown PPO encoder `{}`; use lstm, transformer or mlp",
                self.encoder
            ))
        })
    }

    fn policy(&self) -> Result<PolicyConfig, AgentError> {
        Ok(PolicyConfig {
            encoder: self.encoder_kind()?,
            features: self.features,
            window: self.window,
            account: ACCOUNT_FEATURES,
            hidden: self.ppo.hidden,
            heads: self.ppo.heads,
            layers: self.ppo.layers,
            instruments: self.instruments,
            timeframes: self.timeframes,
        })
    }

    /// Updates the budget allows: the learning-rate schedule's length.
    pub fn total_updates(&self) -> usize {
        let batch = self.ppo.envs * self.ppo.rollout_steps;
        self.ppo.total_steps.div_ceil(batch).max(1)
    }
}

/// Name `tradelab train --agent` uses for an encoder.
pub fn kind_name(encoder: EncoderKind) -> &'static str {
    crate::kinds::AgentKind::of_encoder(encoder).name()
}

/// One policy, or specialists under a gate.
enum Net {
    Single(PolicyNet),
    Mixture(MixturePolicy),
}

/// A PPO actor-critic (one policy or a mixture of experts) with its
/// optimiser, reward scaler and counters, on the CPU.
pub struct PpoAgent {
    /// The shape and training settings it was built with.
    pub config: PpoConfig,
    kind: &'static str,
    params: Params,
    net: Net,
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
    /// The mixture's gate weights by regime over the current rollout.
    gate_log: GateLog,
    /// Acts with this specialist alone (evaluating the mixture's parts).
    forced_expert: Option<usize>,
    /// The MLP policy's training form (rollouts and updates without
    /// candle); `None` for the other encoders and the mixture.
    fused: Option<fused::FusedMlp>,
}

impl PpoAgent {
    /// A freshly initialised, untrained agent (weights from `config.seed`,
    /// zero Adam moments). Fails on an unknown encoder, or a mixture whose
    /// columns are missing or outside `features`.
    pub fn new(config: PpoConfig) -> Result<Self, AgentError> {
        let kind = config.kind()?;
        let device = Device::Cpu;
        let mut params = Params::new(config.seed, device.clone());
        let net = match &config.mixture {
            None => Net::Single(PolicyNet::new(&mut params, config.policy()?)?),
            Some(m) => {
                m.check(config.features)?;
                Net::Mixture(MixturePolicy::new(
                    &mut params,
                    config.policy()?,
                    m.specialist_columns.len(),
                    m.gate_hidden,
                )?)
            }
        };
        let adam = Adam::new(params.named_vars(), 1e-5)?;
        let fused = match (&net, config.encoder_kind()?) {
            (Net::Single(_), EncoderKind::Mlp) if device.is_cpu() => Some(fused::FusedMlp::new(
                MlpShape {
                    window_len: config.window * config.features,
                    account: ACCOUNT_FEATURES,
                    hidden: config.ppo.hidden,
                    instruments: config.instruments,
                    timeframes: config.timeframes,
                },
                &adam,
            )?),
            _ => None,
        };
        Ok(PpoAgent {
            fused,
            kind,
            net,
            adam,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            scaler: RewardScaler::new(config.ppo.envs, config.ppo.gamma, config.ppo.reward_clip),
            updates: 0,
            env_steps: 0,
            provenance: Provenance::default(),
            buffer: None,
            device,
            gate_log: GateLog::default(),
            forced_expert: None,
            params,
            config,
        })
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.params.count()
    }

    /// The agent's random stream for one update: derived from the seed and
    /// the update number, so a resumed run draws what an uninterrupted one would.
    fn reseed(&mut self) {
        let stream = self.config.seed ^ (self.updates as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.rng = ChaCha8Rng::seed_from_u64(stream);
    }

    fn inputs(
        &self,
        windows: &[f32],
        accounts: &[f32],
        keys: &[MarketKey],
    ) -> Result<crate::inputs::InputTensors, AgentError> {
        let shape = InputShape {
            window: self.config.window,
            features: self.config.features,
            instruments: self.config.instruments,
            timeframes: self.config.timeframes,
        };
        input_tensors(shape, windows, accounts, keys, &self.device)
    }

    fn forward(
        &self,
        net: &PolicyNet,
        windows: &[f32],
        accounts: &[f32],
        keys: &[MarketKey],
    ) -> Result<PolicyOutput, AgentError> {
        let x = self.inputs(windows, accounts, keys)?;
        Ok(net.forward(&x.window, &x.account, &x.instrument, &x.timeframe)?)
    }
}

impl Actor for PpoAgent {
    fn values(&mut self, windows: &[f32], accounts: &[f32], keys: &[MarketKey]) -> Result<Vec<f32>, AgentError> {
        match &self.net {
            Net::Single(net) => Ok(self.forward(net, windows, accounts, keys)?.value.to_vec1::<f32>()?),
            Net::Mixture(mix) => Ok(self
                .forward_mixture(mix, windows, accounts, keys)?
                .value
                .to_vec1::<f32>()?),
        }
    }

    fn reward_scaler(&mut self) -> Option<&mut RewardScaler> {
        self.config.ppo.normalize_rewards.then_some(&mut self.scaler)
    }

    /// Acts on a batch: samples (or, when greedy, takes the most likely
    /// action and the quantity's mode) and records log-probabilities.
    fn act(
        &mut self,
        windows: &[f32],
        accounts: &[f32],
        masks: &[f32],
        keys: &[MarketKey],
        greedy: bool,
    ) -> Result<Acted, AgentError> {
        let n = keys.len();
        let net = match &self.net {
            Net::Single(net) => net,
            Net::Mixture(_) => return self.act_mixture(windows, accounts, masks, keys, greedy),
        };
        let out = self.forward(net, windows, accounts, keys)?;
        let mask = Tensor::from_slice(masks, (n, 5), &self.device)?;
        let heads = Heads {
            logits: &out.logits,
            raw_alpha: &out.raw_alpha,
            raw_beta: &out.raw_beta,
            value: &out.value,
        };
        decide(heads, &mask, greedy, &mut self.rng)
    }
}

impl Agent for PpoAgent {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn seed_sampling(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    fn select_action(&mut self, input: &AgentInput<'_>, greedy: bool) -> Result<Decision, AgentError> {
        let mask: [f32; 5] = input.mask.map(|m| if m { 1.0 } else { 0.0 });
        let acted = self.act(input.window, &input.account, &mask, &[input.market], greedy)?;
        let action = Action::from_index(acted.actions[0] as usize).unwrap_or(Action::Hold);
        Ok(Decision {
            action,
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
        let result = match self.fused.take() {
            Some(mut fused) => {
                let result = self.learn_fused(&mut fused, &mut buffer, envs, markets);
                self.fused = Some(fused);
                result
            }
            None => collect(self, &mut buffer, envs, markets)
                .and_then(|episodes| self.update(&buffer).map(|s| (episodes, s))),
        };
        self.buffer = Some(buffer);
        let (episode_returns, mut stats) = result?;
        stats.episode_returns = episode_returns;
        (stats.gate_weights, stats.gate_by_regime) = std::mem::take(&mut self.gate_log).means();
        stats.env_steps = self.config.ppo.envs * self.config.ppo.rollout_steps;
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

#[cfg(test)]
pub(crate) mod tests;

crate::trainable::trainable_agent!(PpoAgent);
