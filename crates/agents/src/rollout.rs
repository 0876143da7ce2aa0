//! Collecting a rollout: `rollout_steps` lockstep steps of every
//! environment into buffers allocated once, for any actor-critic agent
//! (PPO's and the HRM's share it).

use candle_core::{Device, Tensor};
use tradelab_core::Action;
use tradelab_env::{EnvAction, VecEnv, ACCOUNT_FEATURES};

use crate::agent::MarketKey;
use crate::error::AgentError;
use crate::reward_scale::RewardScaler;

/// Per-sample outputs of acting on a batch.
#[derive(Debug, Default)]
pub(crate) struct Acted {
    pub actions: Vec<u32>,
    pub quantities: Vec<f32>,
    pub log_probs: Vec<f32>,
    pub values: Vec<f32>,
    pub probabilities: Vec<[f32; 5]>,
    /// Reasoning segments each decision used (adaptive agents; else empty).
    pub segments: Vec<u32>,
}

/// What [`collect`] needs from an agent.
pub(crate) trait Actor {
    /// Acts on a batch (sampling, recording log-probabilities and values).
    fn act(
        &mut self,
        windows: &[f32],
        accounts: &[f32],
        masks: &[f32],
        keys: &[MarketKey],
        greedy: bool,
    ) -> Result<Acted, AgentError>;
    /// The critic's values of a batch of observations.
    fn values(&mut self, windows: &[f32], accounts: &[f32], keys: &[MarketKey]) -> Result<Vec<f32>, AgentError>;
    /// The running reward scaler, when rewards are normalised.
    fn reward_scaler(&mut self) -> Option<&mut RewardScaler>;
}

/// One rollout, time-major (`[t * envs + e]`).
pub(crate) struct RolloutBuffer {
    pub envs: usize,
    pub steps: usize,
    pub windows: Vec<f32>,
    pub accounts: Vec<f32>,
    pub masks: Vec<f32>,
    pub keys: Vec<MarketKey>,
    pub actions: Vec<u32>,
    pub quantities: Vec<f32>,
    pub log_probs: Vec<f32>,
    pub values: Vec<f32>,
    pub rewards: Vec<f32>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    pub final_values: Vec<f32>,
    pub last_values: Vec<f32>,
    pub segments: Vec<u32>,
    // Scratch for one step.
    env_actions: Vec<EnvAction>,
    final_windows: Vec<f32>,
    final_accounts: Vec<f32>,
    final_keys: Vec<MarketKey>,
    final_slots: Vec<usize>,
}

impl RolloutBuffer {
    /// Buffers for `envs x steps` samples of `window_len` window values each.
    pub fn new(envs: usize, steps: usize, window_len: usize) -> Self {
        let (n, t) = (envs, steps);
        let total = n * t;
        RolloutBuffer {
            envs: n,
            steps: t,
            windows: vec![0.0; total * window_len],
            accounts: vec![0.0; total * ACCOUNT_FEATURES],
            masks: vec![0.0; total * 5],
            keys: vec![
                MarketKey {
                    instrument: 0,
                    timeframe: 0
                };
                total
            ],
            actions: vec![0; total],
            quantities: vec![0.0; total],
            log_probs: vec![0.0; total],
            values: vec![0.0; total],
            rewards: vec![0.0; total],
            terminated: vec![false; total],
            truncated: vec![false; total],
            final_values: vec![0.0; total],
            last_values: vec![0.0; n],
            segments: vec![0; total],
            env_actions: vec![EnvAction::new(Action::Hold, 0.0); n],
            final_windows: Vec::new(),
            final_accounts: Vec::new(),
            final_keys: Vec::new(),
            final_slots: Vec::new(),
        }
    }

    /// Copies every environment's current observation into step `t`'s slots.
    pub(crate) fn record_observations(&mut self, t: usize, envs: &VecEnv, markets: &[MarketKey]) {
        let n = self.envs;
        let wlen = self.windows.len() / (n * self.steps);
        for e in 0..n {
            let i = t * n + e;
            let obs = envs.observation(e);
            self.windows[i * wlen..(i + 1) * wlen].copy_from_slice(obs.window);
            self.accounts[i * ACCOUNT_FEATURES..(i + 1) * ACCOUNT_FEATURES].copy_from_slice(&obs.account);
            for (k, m) in envs.masks[e].iter().enumerate() {
                self.masks[i * 5 + k] = if *m { 1.0 } else { 0.0 };
            }
            self.keys[i] = markets[envs.market(e)];
        }
    }

    fn step_range(&self, t: usize) -> std::ops::Range<usize> {
        t * self.envs..(t + 1) * self.envs
    }
}

/// Steps the environments `b.steps` times with the actor's sampling
/// policy. Returns the raw returns of the episodes that finished.
pub(crate) fn collect<A: Actor>(
    actor: &mut A,
    b: &mut RolloutBuffer,
    envs: &mut VecEnv,
    markets: &[MarketKey],
) -> Result<Vec<f64>, AgentError> {
    if let Some(bad) = (0..envs.len()).find(|&e| envs.market(e) >= markets.len()) {
        return Err(AgentError::Invalid(format!(
            "environment {bad} trades market {} but only {} market keys were given",
            envs.market(bad),
            markets.len()
        )));
    }
    let n = b.envs;
    let wlen = b.windows.len() / (n * b.steps);
    let mut finished = Vec::new();
    for t in 0..b.steps {
        b.record_observations(t, envs, markets);
        let r = b.step_range(t);
        let acted = actor.act(
            &b.windows[r.start * wlen..r.end * wlen],
            &b.accounts[r.start * ACCOUNT_FEATURES..r.end * ACCOUNT_FEATURES],
            &b.masks[r.start * 5..r.end * 5],
            &b.keys[r.clone()],
            false,
        )?;
        for e in 0..n {
            let action = Action::from_index(acted.actions[e] as usize).unwrap_or(Action::Hold);
            b.env_actions[e] = EnvAction::new(action, acted.quantities[e] as f64);
        }
        b.actions[r.clone()].copy_from_slice(&acted.actions);
        b.quantities[r.clone()].copy_from_slice(&acted.quantities);
        b.log_probs[r.clone()].copy_from_slice(&acted.log_probs);
        b.values[r.clone()].copy_from_slice(&acted.values);
        if acted.segments.len() == n {
            b.segments[r.clone()].copy_from_slice(&acted.segments);
        }

        envs.step(&b.env_actions);

        let (term, trunc) = (&envs.terminated, &envs.truncated);
        if let Some(scaler) = actor.reward_scaler() {
            scaler.scale(&mut b.rewards[r.clone()], &envs.rewards, |e| term[e] || trunc[e]);
        } else {
            for (dst, src) in b.rewards[r.clone()].iter_mut().zip(&envs.rewards) {
                *dst = *src as f32;
            }
        }
        b.terminated[r.clone()].copy_from_slice(term);
        b.truncated[r.clone()].copy_from_slice(trunc);
        finished.extend(envs.finished_returns.iter().flatten());

        // Truncated episodes bootstrap from the value of their last
        // observation, taken before the automatic reset.
        b.final_windows.clear();
        b.final_accounts.clear();
        b.final_keys.clear();
        b.final_slots.clear();
        for (e, final_state) in envs.finals.iter().enumerate() {
            if let (true, Some(f)) = (trunc[e], final_state) {
                b.final_windows.extend_from_slice(envs.env(e).data().window(f.bar));
                b.final_accounts.extend_from_slice(&f.account);
                b.final_keys.push(markets[f.market]);
                b.final_slots.push(r.start + e);
            }
        }
        if !b.final_slots.is_empty() {
            let v = actor.values(&b.final_windows, &b.final_accounts, &b.final_keys)?;
            for (slot, value) in b.final_slots.iter().zip(v) {
                b.final_values[*slot] = value;
            }
        }
    }
    // Values of the observations the rollout stopped at.
    let mut windows = Vec::with_capacity(n * wlen);
    let mut accounts = Vec::with_capacity(n * ACCOUNT_FEATURES);
    let mut keys = Vec::with_capacity(n);
    for e in 0..n {
        let obs = envs.observation(e);
        windows.extend_from_slice(obs.window);
        accounts.extend_from_slice(&obs.account);
        keys.push(markets[envs.market(e)]);
    }
    b.last_values = actor.values(&windows, &accounts, &keys)?;
    Ok(finished)
}

/// The rollout as tensors, built once per update and indexed per minibatch.
pub(crate) struct Batch {
    pub windows: Tensor,
    pub accounts: Tensor,
    pub masks: Tensor,
    pub instruments: Tensor,
    pub timeframes: Tensor,
    pub actions: Tensor,
    pub quantities: Tensor,
    /// 1.0 where the action is an entry (its quantity counts), else 0.0.
    pub entries: Tensor,
    pub old_log_probs: Tensor,
    pub returns: Tensor,
}

impl RolloutBuffer {
    /// GAE advantages and value targets (returns) of the rollout.
    pub fn advantages(&self, gamma: f64, lambda: f64) -> (Vec<f32>, Vec<f32>) {
        crate::gae::gae(
            &crate::gae::Rollout {
                envs: self.envs,
                rewards: &self.rewards,
                values: &self.values,
                terminated: &self.terminated,
                truncated: &self.truncated,
                final_values: &self.final_values,
                last_values: &self.last_values,
            },
            gamma as f32,
            lambda as f32,
        )
    }

    /// The rollout as tensors, with `returns` as the value targets.
    pub fn batch(&self, window: usize, features: usize, returns: &[f32], d: &Device) -> Result<Batch, AgentError> {
        let total = self.envs * self.steps;
        let entries: Vec<f32> = self.actions.iter().map(|a| entry(*a as usize)).collect();
        Ok(Batch {
            windows: Tensor::from_slice(&self.windows, (total, window, features), d)?,
            accounts: Tensor::from_slice(&self.accounts, (total, ACCOUNT_FEATURES), d)?,
            masks: Tensor::from_slice(&self.masks, (total, 5), d)?,
            instruments: Tensor::from_vec(self.keys.iter().map(|k| k.instrument).collect::<Vec<_>>(), total, d)?,
            timeframes: Tensor::from_vec(self.keys.iter().map(|k| k.timeframe).collect::<Vec<_>>(), total, d)?,
            actions: Tensor::from_slice(&self.actions, total, d)?,
            quantities: Tensor::from_slice(&self.quantities, total, d)?,
            entries: Tensor::from_vec(entries, total, d)?,
            old_log_probs: Tensor::from_slice(&self.log_probs, total, d)?,
            returns: Tensor::from_slice(returns, total, d)?,
        })
    }
}

/// 1.0 for the actions whose quantity matters (entries), else 0.0.
pub(crate) fn entry(action: usize) -> f32 {
    if action == Action::BuyLong.index() || action == Action::SellShort.index() {
        1.0
    } else {
        0.0
    }
}
