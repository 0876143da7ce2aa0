//! The training loop: learn, report progress, validate greedily every
//! `eval_every` updates, keep the best model, stop early when validation
//! stops improving, and checkpoint so a killed run can resume.
//!
//! Output layout under the run directory:
//!
//! ```text
//! last/   the latest checkpoint (resume from here)
//! best/   the checkpoint with the best validation return
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tradelab_env::{EnvConfig, MarketData, Split, VecEnv};

use crate::agent::{Agent, LearnStats, MarketKey};
use crate::error::AgentError;
use crate::evaluate::greedy_episode;
use crate::metadata::ValidationMetrics;

/// One market the agent trains on.
#[derive(Clone)]
pub struct TrainingMarket {
    /// The market's data; its train split is learnt from, its validation
    /// split scores the agent.
    pub data: Arc<MarketData>,
    /// The market's ids in the agent's vocabulary.
    pub key: MarketKey,
}

pub use crate::trainable::Trainable;

/// Budget and cadence.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    /// Where `last/` and `best/` are written.
    pub run_dir: PathBuf,
    /// Budget in environment steps, counting those done before a resume.
    pub total_steps: usize,
    /// Validate every this many updates (0: only at the end).
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement (0: never).
    pub patience: usize,
    /// Seeds the environments, together with the updates already done.
    pub seed: u64,
}

/// Progress after one update, for the display.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// What the update did.
    pub stats: &'a LearnStats,
    /// Updates done so far, across resumes.
    pub updates: usize,
    /// Environment steps done so far, across resumes.
    pub env_steps: usize,
    /// The plan's budget in environment steps.
    pub total_steps: usize,
    /// Return of the latest episode finished in this call (`None` until
    /// one finishes).
    pub last_episode_return: Option<f64>,
    /// Mean of the last 100 finished episodes' returns.
    pub return_moving_average: Option<f64>,
    /// Environment steps per second of wall-clock time since training
    /// (this call) started.
    pub steps_per_second: f64,
    /// Seconds left to the budget at that rate.
    pub eta_seconds: f64,
}

/// Things the trainer reports as they happen.
pub enum Event<'a> {
    /// An update finished.
    Update(Progress<'a>),
    /// A greedy validation finished.
    Validation {
        /// Its result.
        metrics: &'a ValidationMetrics,
        /// It beat the best so far, so the model is saved to `best/`.
        improved: bool,
    },
}

/// Why training ended, and the best result.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Updates done in all, across resumes.
    pub updates: usize,
    /// Environment steps done in all, across resumes.
    pub env_steps: usize,
    /// Wall-clock seconds of this call.
    pub seconds: f64,
    /// Validation stopped improving for `patience` evaluations before the
    /// budget was spent.
    pub stopped_early: bool,
    /// The best validation (`None` when there was no validation split).
    pub best: Option<ValidationMetrics>,
    /// The latest checkpoint, to resume from.
    pub last_dir: PathBuf,
    /// The checkpoint with the best validation return (the last one when
    /// nothing was validated).
    pub best_dir: PathBuf,
    /// Mean return of the last 100 finished training episodes.
    pub return_moving_average: Option<f64>,
}

/// `run_dir/last`: where the latest checkpoint goes.
pub fn last_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("last")
}

/// `run_dir/best`: where the best-validated checkpoint goes.
pub fn best_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("best")
}

/// Greedy return on every market's validation split, averaged.
pub fn validate<A: Agent + ?Sized>(
    agent: &mut A,
    markets: &[TrainingMarket],
    env: &EnvConfig,
    at_update: usize,
) -> Result<ValidationMetrics, AgentError> {
    let mut sum = 0.0;
    let mut trades = 0;
    for m in markets {
        let o = greedy_episode(agent, &m.data, m.key, Split::Validation, env)?;
        sum += o.return_pct;
        trades += o.trades;
    }
    Ok(ValidationMetrics {
        return_pct: sum / markets.len().max(1) as f64,
        trades,
        at_update,
    })
}

/// Trains until the budget is spent or validation stops improving.
pub fn train<A: Trainable>(
    agent: &mut A,
    markets: &[TrainingMarket],
    env: &EnvConfig,
    plan: &TrainPlan,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<TrainSummary, AgentError> {
    if markets.is_empty() {
        return Err(AgentError::Invalid("no markets to train on".into()));
    }
    let datas: Vec<Arc<MarketData>> = markets.iter().map(|m| m.data.clone()).collect();
    let keys: Vec<MarketKey> = markets.iter().map(|m| m.key).collect();
    // Environments are seeded from the seed and the update count, so a
    // resumed run does not replay the episodes it already learnt from.
    let env_seed = plan.seed.wrapping_add(agent.updates_done() as u64 * 1_000_003);
    let mut envs = VecEnv::new(&datas, agent.lockstep_envs(), Split::Train, env, env_seed)?;
    let (last, best) = (last_dir(&plan.run_dir), best_dir(&plan.run_dir));
    let started = Instant::now();
    let steps_at_start = agent.env_steps_done();
    let mut recent: std::collections::VecDeque<f64> = std::collections::VecDeque::with_capacity(100);
    let mut last_return = None;
    let mut stopped_early = false;
    let has_validation = markets.iter().all(|m| !m.data.steps(Split::Validation).is_empty());

    while agent.env_steps_done() < plan.total_steps {
        let stats = agent.learn(&mut envs, &keys)?;
        for r in &stats.episode_returns {
            if recent.len() == 100 {
                recent.pop_front();
            }
            recent.push_back(*r);
            last_return = Some(*r);
        }
        let ma = (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64);
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let done_now = agent.env_steps_done() - steps_at_start;
        let sps = done_now as f64 / elapsed;
        let remaining = plan.total_steps.saturating_sub(agent.env_steps_done());
        on_event(Event::Update(Progress {
            stats: &stats,
            updates: agent.updates_done(),
            env_steps: agent.env_steps_done(),
            total_steps: plan.total_steps,
            last_episode_return: last_return,
            return_moving_average: ma,
            steps_per_second: sps,
            eta_seconds: remaining as f64 / sps.max(1e-9),
        }));
        {
            let p = agent.provenance_mut();
            p.train = Some(LearnStats {
                episode_returns: Vec::new(),
                ..stats.clone()
            });
            p.train_return_moving_average = ma;
        }
        let finished = agent.env_steps_done() >= plan.total_steps;
        let due = plan.eval_every > 0 && agent.updates_done().is_multiple_of(plan.eval_every);
        if has_validation && (due || finished) {
            let m = validate(agent, markets, env, agent.updates_done())?;
            let best_so_far = agent.provenance_mut().best_validation.clone();
            let improved = best_so_far.as_ref().is_none_or(|b| m.return_pct > b.return_pct);
            {
                let p = agent.provenance_mut();
                p.validation = Some(m.clone());
                if improved {
                    p.best_validation = Some(m.clone());
                    p.evaluations_since_best = 0;
                } else {
                    p.evaluations_since_best += 1;
                }
            }
            on_event(Event::Validation { metrics: &m, improved });
            if improved {
                agent.save(&best)?;
            }
            agent.save(&last)?;
            let since = agent.provenance_mut().evaluations_since_best;
            if plan.patience > 0 && since >= plan.patience && !finished {
                stopped_early = true;
                break;
            }
        }
    }
    agent.save(&last)?;
    if !best.exists() {
        // No validation split (or none run): the last model is the best known.
        agent.save(&best)?;
    }
    let (updates, env_steps) = (agent.updates_done(), agent.env_steps_done());
    let p = agent.provenance_mut();
    Ok(TrainSummary {
        updates,
        env_steps,
        seconds: started.elapsed().as_secs_f64(),
        stopped_early,
        best: p.best_validation.clone(),
        last_dir: last,
        best_dir: best,
        return_moving_average: p.train_return_moving_average,
    })
}
