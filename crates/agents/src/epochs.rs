//! The schedule of one PPO update, shared by every PPO-trained agent:
//! `epochs` passes, each a fresh partition of the environments into
//! minibatches of whole per-environment sequences (as recurrent PPO needs),
//! advantages normalised per minibatch, and an early stop once an epoch's
//! mean approx-KL passes the target.

use crate::settings::PpoSettings;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::agent::LearnStats;
use crate::error::AgentError;
use crate::gae::{explained_variance, normalize_advantages};
use crate::rollout::RolloutBuffer;

/// Per-minibatch figures, averaged over the update by [`run_epochs`].
pub(crate) const FIGURES: usize = 7;
/// Index of approx-KL in a minibatch's figures (the early-stop signal).
pub(crate) const APPROX_KL: usize = 3;

pub(crate) struct Schedule {
    pub envs: usize,
    pub steps: usize,
    pub epochs: usize,
    pub minibatches: usize,
    pub target_kl: f64,
}

/// Runs `step(sample indices, normalised advantages)` over the schedule.
/// Returns the mean of each figure and the epochs run.
pub(crate) fn run_epochs(
    s: &Schedule,
    rng: &mut ChaCha8Rng,
    advantages: &[f32],
    mut step: impl FnMut(&[u32], Vec<f32>) -> Result<[f64; FIGURES], AgentError>,
) -> Result<([f64; FIGURES], usize), AgentError> {
    let (n, t) = (s.envs, s.steps);
    let per_minibatch = n / s.minibatches;
    let mut order: Vec<usize> = (0..n).collect();
    let mut sums = [0f64; FIGURES];
    let mut count = 0f64;
    let mut epochs = 0;
    for _epoch in 0..s.epochs {
        // Fisher-Yates over environments: every epoch partitions all of
        // them, each minibatch holding whole sequences.
        for i in (1..n).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut epoch_kl = 0f64;
        for mb in 0..s.minibatches {
            let envs = &order[mb * per_minibatch..(mb + 1) * per_minibatch];
            let idx: Vec<u32> = envs
                .iter()
                .flat_map(|&e| (0..t).map(move |s| (s * n + e) as u32))
                .collect();
            let mut adv: Vec<f32> = idx.iter().map(|&i| advantages[i as usize]).collect();
            normalize_advantages(&mut adv);
            let r = step(&idx, adv)?;
            for (s, v) in sums.iter_mut().zip(r) {
                *s += v;
            }
            epoch_kl += r[APPROX_KL];
            count += 1.0;
        }
        epochs += 1;
        if s.target_kl > 0.0 && epoch_kl / s.minibatches as f64 > s.target_kl {
            break;
        }
    }
    Ok((sums.map(|v| v / count.max(1.0)), epochs))
}

/// The learning rate of update number `updates`: `base`, annealed linearly
/// to 0 over `total_updates` when `anneal`.
pub(crate) fn learning_rate(base: f64, anneal: bool, updates: usize, total_updates: usize) -> f64 {
    if anneal {
        base * (1.0 - updates as f64 / total_updates as f64).max(0.0)
    } else {
        base
    }
}

/// One PPO update of any agent: GAE over the rollout, the rollout in the
/// form the agent's steps read (`tensors`; the fused MLP keeps only the
/// returns), the schedule of minibatch `step`s at `lr`, and the
/// figures the progress line shows (figure 6 is the halting loss of
/// adaptive agents, 0 for the others).
pub(crate) fn ppo_update<B>(
    b: &RolloutBuffer,
    p: &PpoSettings,
    lr: f64,
    rng: &mut ChaCha8Rng,
    tensors: impl FnOnce(&[f32]) -> Result<B, AgentError>,
    mut step: impl FnMut(&B, &[u32], Vec<f32>) -> Result<[f64; FIGURES], AgentError>,
) -> Result<LearnStats, AgentError> {
    let (advantages, returns) = b.advantages(p.gamma, p.gae_lambda);
    let batch = tensors(&returns)?;
    let schedule = Schedule {
        envs: b.envs,
        steps: b.steps,
        epochs: p.epochs,
        minibatches: p.minibatches,
        target_kl: p.target_kl,
    };
    let (means, epochs) = run_epochs(&schedule, rng, &advantages, |idx, adv| step(&batch, idx, adv))?;
    Ok(LearnStats {
        learning_rate: lr,
        epochs,
        policy_loss: means[0],
        value_loss: means[1],
        entropy: means[2],
        approx_kl: means[APPROX_KL],
        clip_fraction: means[4],
        grad_norm: means[5],
        halt_loss: means[6],
        explained_variance: explained_variance(&b.values, &returns),
        ..Default::default()
    })
}
