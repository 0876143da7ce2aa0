//! Reward scaling by the running standard deviation of the discounted
//! return (algorithms.md 4.9): per-bar P&L is tiny and its scale differs by
//! instrument, so the critic's targets would otherwise be badly scaled.
//! Scaled rewards are clipped (to ±10 by default, as Stable-Baselines3's
//! `VecNormalize` does): one extreme bar must not dominate an update.

use serde::{Deserialize, Serialize};

/// Divides rewards by the running standard deviation of each environment's
/// discounted return; serialisable so a resumed run keeps its statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardScaler {
    gamma: f64,
    /// Discounted return in progress, per environment.
    returns: Vec<f64>,
    /// Running moments of those returns (Chan et al.'s parallel update).
    mean: f64,
    var: f64,
    count: f64,
    /// Scaled rewards are clipped to ±clip (0: not clipped; checkpoints
    /// written before clipping existed read as 0).
    #[serde(default)]
    clip: f64,
}

impl RewardScaler {
    /// A scaler for `envs` lockstep environments discounting by `gamma`,
    /// starting from unit variance, clipping scaled rewards to ±`clip` (0:
    /// never).
    pub fn new(envs: usize, gamma: f64, clip: f64) -> Self {
        RewardScaler {
            gamma,
            returns: vec![0.0; envs],
            mean: 0.0,
            var: 1.0,
            count: 1e-4,
            clip,
        }
    }

    /// Scales one lockstep batch of rewards in place; `done[i]` ends env
    /// `i`'s discounted return after this step.
    pub fn scale(&mut self, rewards: &mut [f32], raw: &[f64], done: impl Fn(usize) -> bool) {
        let n = raw.len() as f64;
        for (i, r) in raw.iter().enumerate() {
            self.returns[i] = self.returns[i] * self.gamma + r;
        }
        let batch_mean = self.returns.iter().sum::<f64>() / n;
        let batch_var = self.returns.iter().map(|x| (x - batch_mean).powi(2)).sum::<f64>() / n;
        let total = self.count + n;
        let delta = batch_mean - self.mean;
        self.mean += delta * n / total;
        self.var = (self.var * self.count + batch_var * n + delta * delta * self.count * n / total) / total;
        self.count = total;
        let std = (self.var + 1e-8).sqrt();
        for (i, r) in raw.iter().enumerate() {
            let scaled = r / std;
            rewards[i] = if self.clip > 0.0 {
                scaled.clamp(-self.clip, self.clip)
            } else {
                scaled
            } as f32;
            if done(i) {
                self.returns[i] = 0.0;
            }
        }
    }

    /// The standard deviation rewards are currently divided by (variance
    /// plus 1e-8, square-rooted).
    pub fn std(&self) -> f64 {
        (self.var + 1e-8).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_end_up_divided_by_the_discounted_return_std() {
        let mut s = RewardScaler::new(2, 0.0, 10.0);
        let mut out = [0f32; 2];
        // With gamma 0 the discounted return is the reward itself: after many
        // batches of +-3 the std converges to 3 and rewards scale to +-1.
        for _ in 0..2000 {
            s.scale(&mut out, &[3.0, -3.0], |_| false);
        }
        assert!((s.std() - 3.0).abs() < 1e-3, "{}", s.std());
        assert!((out[0] - 1.0).abs() < 1e-3 && (out[1] + 1.0).abs() < 1e-3);
    }

    #[test]
    fn an_extreme_reward_is_clipped_to_the_bound_and_zero_turns_clipping_off() {
        let mut out = [0f32; 2];
        let mut clipped = RewardScaler::new(2, 0.0, 10.0);
        let mut open = RewardScaler::new(2, 0.0, 0.0);
        // Rewards of ±1 for a while, then one of 120,000 (the old DSR's
        // entry bar): it moves the std to about 1,900, so it scales to about 63.
        for s in [&mut clipped, &mut open] {
            for _ in 0..2000 {
                s.scale(&mut out, &[1.0, -1.0], |_| false);
            }
        }
        clipped.scale(&mut out, &[120_000.0, -1.0], |_| false);
        assert_eq!(out[0], 10.0);
        assert!(out[1] < 0.0 && out[1] > -10.0);
        open.scale(&mut out, &[120_000.0, -1.0], |_| false);
        assert!(out[0] > 10.0, "{}", out[0]);
    }

    #[test]
    fn a_scaler_saved_before_clipping_existed_reads_as_unclipped() {
        let json = r#"{"gamma":0.99,"returns":[0.0],"mean":0.0,"var":1.0,"count":0.0001}"#;
        let s: RewardScaler = serde_json::from_str(json).unwrap();
        assert_eq!(s, RewardScaler::new(1, 0.99, 0.0));
    }
}
