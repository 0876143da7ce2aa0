//! Collecting a rollout: `rollout_steps` lockstep steps of every
//! environment into buffers allocated once.

use tradelab_core::Action;
use tradelab_env::{EnvAction, VecEnv, ACCOUNT_FEATURES};

use super::{PpoAgent, PpoConfig};
use crate::agent::MarketKey;
use crate::error::AgentError;

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
    // Scratch for one step.
    env_actions: Vec<EnvAction>,
    final_windows: Vec<f32>,
    final_accounts: Vec<f32>,
    final_keys: Vec<MarketKey>,
    final_slots: Vec<usize>,
}

impl RolloutBuffer {
    pub fn new(c: &PpoConfig) -> Self {
        let (n, t) = (c.ppo.envs, c.ppo.rollout_steps);
        let total = n * t;
        RolloutBuffer {
            envs: n,
            steps: t,
            windows: vec![0.0; total * c.window * c.features],
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
            env_actions: vec![EnvAction::new(Action::Hold, 0.0); n],
            final_windows: Vec::new(),
            final_accounts: Vec::new(),
            final_keys: Vec::new(),
            final_slots: Vec::new(),
        }
    }

    /// Copies every environment's current observation into step `t`'s slots.
    fn record_observations(&mut self, t: usize, envs: &VecEnv, markets: &[MarketKey]) {
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

impl PpoAgent {
    /// Steps the environments `rollout_steps` times with the sampling
    /// policy. Returns the raw returns of the episodes that finished.
    pub(crate) fn collect(
        &mut self,
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
        let wlen = self.config.window * self.config.features;
        let mut finished = Vec::new();
        for t in 0..b.steps {
            b.record_observations(t, envs, markets);
            let r = b.step_range(t);
            let acted = self.act(
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

            envs.step(&b.env_actions);

            let (term, trunc) = (&envs.terminated, &envs.truncated);
            if self.config.ppo.normalize_rewards {
                self.scaler
                    .scale(&mut b.rewards[r.clone()], &envs.rewards, |e| term[e] || trunc[e]);
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
                let v = self.values(&b.final_windows, &b.final_accounts, &b.final_keys)?;
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
        b.last_values = self.values(&windows, &accounts, &keys)?;
        Ok(finished)
    }
}
