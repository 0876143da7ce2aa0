//! Many environments stepped in lockstep, with buffers allocated once.

use std::sync::Arc;

use crate::config::EnvConfig;
use crate::env::{EnvAction, EnvError, Observation, TradingEnv};
use crate::market_data::{MarketData, Split, ACCOUNT_FEATURES};

/// The last state of an episode that just ended (before the automatic
/// reset), for bootstrapping a truncated episode's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinalState {
    /// Which market the environment trades (index into the data list).
    pub market: usize,
    /// The bar the episode ended on; its feature window is the final
    /// observation's.
    pub bar: usize,
    /// The account values of the final observation.
    pub account: [f32; ACCOUNT_FEATURES],
}

/// Environments over one or more markets (environment `i` trades market
/// `i % markets`), each seeded `seed + i`.
pub struct VecEnv {
    envs: Vec<TradingEnv>,
    markets: Vec<usize>,
    /// Per environment: the last step's reward.
    pub rewards: Vec<f64>,
    /// Per environment: whether the last step terminated its episode.
    pub terminated: Vec<bool>,
    /// Per environment: whether the last step truncated its episode.
    pub truncated: Vec<bool>,
    /// Per environment: the valid actions now (after any automatic reset).
    pub masks: Vec<[bool; 5]>,
    /// Set for environments whose episode ended at the last step.
    pub finals: Vec<Option<FinalState>>,
    /// Per environment: the sum of rewards of the episode in progress.
    pub episode_returns: Vec<f64>,
    /// Per environment: the finished episode's return, set only at the step
    /// it ended.
    pub finished_returns: Vec<Option<f64>>,
}

impl VecEnv {
    /// `n` environments over `split`, environment `i` on market `i %
    /// data.len()` seeded `seed + i`, each already reset.
    pub fn new(data: &[Arc<MarketData>], n: usize, split: Split, cfg: &EnvConfig, seed: u64) -> Result<Self, EnvError> {
        let mut envs = Vec::with_capacity(n);
        let mut markets = Vec::with_capacity(n);
        for i in 0..n {
            let m = i % data.len().max(1);
            envs.push(TradingEnv::new(
                data[m].clone(),
                split,
                cfg,
                seed.wrapping_add(i as u64),
            )?);
            markets.push(m);
        }
        let mut v = VecEnv {
            envs,
            markets,
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            masks: vec![[true; 5]; n],
            finals: vec![None; n],
            episode_returns: vec![0.0; n],
            finished_returns: vec![None; n],
        };
        for i in 0..n {
            v.envs[i].reset();
            v.masks[i] = v.envs[i].action_mask();
        }
        Ok(v)
    }

    /// The number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// True when there are no environments.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// Environment `i`.
    pub fn env(&self, i: usize) -> &TradingEnv {
        &self.envs[i]
    }

    /// The market (index into the data list) environment `i` trades.
    pub fn market(&self, i: usize) -> usize {
        self.markets[i]
    }

    /// Environment `i`'s current observation.
    pub fn observation(&self, i: usize) -> Observation<'_> {
        self.envs[i].observation()
    }

    /// Steps every environment with its action; ended episodes are reset
    /// and their last state recorded in `finals`.
    pub fn step(&mut self, actions: &[EnvAction]) {
        for (i, env) in self.envs.iter_mut().enumerate() {
            let r = env.step(actions[i]);
            self.rewards[i] = r.reward;
            self.terminated[i] = r.terminated;
            self.truncated[i] = r.truncated;
            self.episode_returns[i] += r.reward;
            if r.terminated || r.truncated {
                let obs = env.observation();
                self.finals[i] = Some(FinalState {
                    market: self.markets[i],
                    bar: env.bar_index(),
                    account: obs.account,
                });
                self.finished_returns[i] = Some(self.episode_returns[i]);
                self.episode_returns[i] = 0.0;
                env.reset();
            } else {
                self.finals[i] = None;
                self.finished_returns[i] = None;
            }
            self.masks[i] = env.action_mask();
        }
    }
}
