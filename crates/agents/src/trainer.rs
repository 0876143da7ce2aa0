//! The training loop: learn, report progress, validate greedily every
//! `eval_every` updates, keep the best model, stop early when validation
//! stops improving, and checkpoint so a killed run can resume.
//!
//! Models are chosen by their validation [`Scoring`]: by default the
//! Sharpe ratio after costs averaged over several windows, because a raw
//! return makes never trading (exactly 0%) the winner of every falling
//! validation period (measured: docs/notes, agents diagnosis).
//!
//! Output layout under the run directory:
//!
//! ```text
//! last/   the latest checkpoint (resume from here)
//! best/   the checkpoint with the best validation score
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tradelab_env::{EnvConfig, MarketData, Split, VecEnv};

use crate::agent::{Agent, LearnStats, MarketKey};
use crate::error::AgentError;
use crate::evaluate::greedy_episode_in_windows;
use crate::metadata::ValidationMetrics;
use crate::settings::{PpoSettings, Selection};

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
    /// What validation chooses the best model by.
    pub scoring: Scoring,
    /// Embedding dropout towards the unknown-instrument row, for models
    /// that have one (`ppo.instrument_dropout`).
    pub instrument_dropout: Option<InstrumentDropout>,
    /// Also save `last/` every this many updates, between validations
    /// (`ppo.checkpoint_every`; 0: at validations and the end only).
    pub checkpoint_every: usize,
    /// Set (by a Ctrl-C handler, say) to stop after the update in progress:
    /// `last/` is saved and the summary says `interrupted`.
    pub interrupt: Option<&'static AtomicBool>,
}

impl TrainPlan {
    fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|f| f.load(Ordering::SeqCst))
    }
}

/// Each update, each market trains under the unknown-instrument embedding
/// row with probability `rate` instead of its own (drawn from the plan's
/// seed and the update count, so a resumed run continues the sequence).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstrumentDropout {
    /// Probability per market and update.
    pub rate: f64,
    /// The unknown instrument's embedding row.
    pub unknown: u32,
}

impl InstrumentDropout {
    /// Writes into `out` the keys an update learns under: `keys`, each
    /// instrument replaced by the unknown row with probability `rate`.
    pub fn apply(&self, keys: &[MarketKey], out: &mut [MarketKey], rng: &mut ChaCha8Rng) {
        for (o, k) in out.iter_mut().zip(keys) {
            *o = *k;
            if rng.random::<f64>() < self.rate {
                o.instrument = self.unknown;
            }
        }
    }
}

/// How a validation scores a model (`ppo.selection`,
/// `ppo.selection_windows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scoring {
    /// The figure compared.
    pub selection: Selection,
    /// Stretches of each validation split scored separately.
    pub windows: usize,
}

impl Scoring {
    /// The scoring `ppo` asks for.
    pub fn from_settings(ppo: &PpoSettings) -> Self {
        Scoring {
            selection: ppo.selection,
            windows: ppo.selection_windows,
        }
    }

    /// Whether `candidate` should replace `best`: a higher score, or under
    /// Sharpe selection an equal one from a policy that trades where the
    /// best so far is flat (a flat policy never wins a tie). The first
    /// validation always becomes the best.
    pub fn improves(&self, candidate: &ValidationMetrics, best: Option<&ValidationMetrics>) -> bool {
        let Some(best) = best else { return true };
        match self.selection {
            Selection::Return => candidate.score > best.score,
            Selection::Sharpe => {
                candidate.score > best.score
                    || (candidate.score == best.score && best.is_flat() && !candidate.is_flat())
            }
        }
    }
}

impl Default for Scoring {
    /// The settings file's scoring.
    fn default() -> Self {
        Scoring::from_settings(&PpoSettings::default())
    }
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
    /// Environment steps per second of training since this call started
    /// (time spent validating excluded: it is not training speed).
    pub steps_per_second: f64,
    /// Seconds left to the budget at that rate.
    pub eta_seconds: f64,
}

impl Progress<'_> {
    /// Share of the budget done, in percent, at most 100 (the last update
    /// may step past the budget: updates are whole rollouts).
    pub fn percent(&self) -> f64 {
        (100.0 * self.env_steps as f64 / self.total_steps.max(1) as f64).min(100.0)
    }
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
    /// [`TrainPlan::interrupt`] stopped it before the budget was spent
    /// (`last/` holds the latest state, to resume from).
    pub interrupted: bool,
    /// The best validation (`None` when there was no validation split).
    pub best: Option<ValidationMetrics>,
    /// The latest checkpoint, to resume from.
    pub last_dir: PathBuf,
    /// The checkpoint with the best validation score (the last one when
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

/// A greedy pass over every market's validation split, averaged over
/// markets and scored as `scoring` says.
pub fn validate<A: Agent + ?Sized>(
    agent: &mut A,
    markets: &[TrainingMarket],
    env: &EnvConfig,
    scoring: Scoring,
    at_update: usize,
) -> Result<ValidationMetrics, AgentError> {
    let windows = match scoring.selection {
        Selection::Sharpe => scoring.windows,
        Selection::Return => 1,
    };
    let (mut ret, mut sharpe, mut exposure) = (0.0, 0.0, 0.0);
    let (mut trades, mut entries) = (0, 0);
    for m in markets {
        let o = greedy_episode_in_windows(agent, &m.data, m.key, Split::Validation, env, windows)?;
        ret += o.return_pct;
        sharpe += o.sharpe;
        exposure += o.exposure;
        trades += o.trades;
        entries += o.entries;
    }
    let n = markets.len().max(1) as f64;
    let (return_pct, sharpe) = (ret / n, sharpe / n);
    Ok(ValidationMetrics {
        return_pct,
        trades,
        at_update,
        score: match scoring.selection {
            Selection::Sharpe => sharpe,
            Selection::Return => return_pct,
        },
        sharpe,
        entries,
        exposure: exposure / n,
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
    let mut interrupted = false;
    let mut validating = std::time::Duration::ZERO;
    let has_validation = markets.iter().all(|m| !m.data.steps(Split::Validation).is_empty());

    let mut learn_keys = keys.clone();
    let mut dropout_rng = ChaCha8Rng::seed_from_u64(plan.seed ^ 0xD809_0F7E ^ ((agent.updates_done() as u64) << 20));
    while agent.env_steps_done() < plan.total_steps {
        if let Some(d) = &plan.instrument_dropout {
            d.apply(&keys, &mut learn_keys, &mut dropout_rng);
        }
        let stats = agent.learn(&mut envs, &learn_keys)?;
        for r in &stats.episode_returns {
            if recent.len() == 100 {
                recent.pop_front();
            }
            recent.push_back(*r);
            last_return = Some(*r);
        }
        let ma = (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64);
        let elapsed = (started.elapsed() - validating).as_secs_f64().max(1e-9);
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
            let validation_started = Instant::now();
            let m = validate(agent, markets, env, plan.scoring, agent.updates_done())?;
            validating += validation_started.elapsed();
            let best_so_far = agent.provenance_mut().best_validation.clone();
            let improved = plan.scoring.improves(&m, best_so_far.as_ref());
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
        } else if plan.checkpoint_every > 0 && agent.updates_done().is_multiple_of(plan.checkpoint_every) {
            agent.save(&last)?;
        }
        if plan.interrupted() && !finished {
            interrupted = true;
            break;
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
        interrupted,
        best: p.best_validation.clone(),
        last_dir: last,
        best_dir: best,
        return_moving_average: p.train_return_moving_average,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instrument_dropout_replaces_instruments_at_its_rate_and_keeps_timeframes() {
        let keys = vec![
            MarketKey {
                instrument: 0,
                timeframe: 0,
            },
            MarketKey {
                instrument: 1,
                timeframe: 1,
            },
        ];
        let mut out = keys.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let never = InstrumentDropout { rate: 0.0, unknown: 2 };
        never.apply(&keys, &mut out, &mut rng);
        assert_eq!(out, keys);
        let always = InstrumentDropout { rate: 1.0, unknown: 2 };
        always.apply(&keys, &mut out, &mut rng);
        assert!(out.iter().all(|k| k.instrument == 2));
        assert_eq!((out[0].timeframe, out[1].timeframe), (0, 1));
        let some = InstrumentDropout { rate: 0.25, unknown: 2 };
        let mut dropped = 0;
        for _ in 0..2000 {
            some.apply(&keys, &mut out, &mut rng);
            dropped += out.iter().filter(|k| k.instrument == 2).count();
            assert!(out.iter().zip(&keys).all(|(o, k)| o.instrument == 2 || o == k));
        }
        let share = dropped as f64 / 4000.0;
        assert!((share - 0.25).abs() < 0.03, "{share}");
    }

    fn scored(score: f64, entries: usize) -> ValidationMetrics {
        ValidationMetrics {
            score,
            entries,
            ..Default::default()
        }
    }

    #[test]
    fn a_flat_policy_never_wins_a_tie_under_sharpe_selection() {
        let sharpe = Scoring {
            selection: Selection::Sharpe,
            windows: 4,
        };
        let (flat, trading) = (scored(0.0, 0), scored(0.0, 3));
        assert!(sharpe.improves(&flat, None), "the first validation is the best so far");
        assert!(sharpe.improves(&trading, Some(&flat)), "a trading tie replaces flat");
        assert!(
            !sharpe.improves(&flat, Some(&trading)),
            "flat does not replace a trading tie"
        );
        assert!(
            !sharpe.improves(&scored(0.0, 5), Some(&trading)),
            "ties between traders keep the first"
        );
        assert!(sharpe.improves(&scored(0.5, 2), Some(&trading)));
        assert!(
            !sharpe.improves(&scored(-0.1, 9), Some(&flat)),
            "losing after costs is worse than flat"
        );
    }

    #[test]
    fn return_selection_keeps_the_earlier_rule_a_strictly_higher_return() {
        let by_return = Scoring {
            selection: Selection::Return,
            windows: 1,
        };
        let (flat, trading) = (scored(0.0, 0), scored(0.0, 3));
        assert!(!by_return.improves(&trading, Some(&flat)));
        assert!(by_return.improves(&scored(0.01, 1), Some(&flat)));
    }

    #[test]
    fn the_default_scoring_is_the_settings_files() {
        assert_eq!(
            Scoring::default(),
            Scoring {
                selection: Selection::Sharpe,
                windows: 4
            }
        );
    }

    /// A set interrupt flag stops training after the update in progress,
    /// with `last/` saved to resume from; `checkpoint_every` saves `last/`
    /// between validations.
    #[test]
    fn an_interrupt_stops_after_the_update_and_leaves_last_to_resume() {
        static STOP: AtomicBool = AtomicBool::new(true);
        let s = crate::ppo::tests::small_settings();
        let data = tradelab_testkit::synthetic_market(800, tradelab_testkit::default_seed(), &s.sections);
        let mut agent = crate::ppo::tests::agent(&s, "mlp", &data);
        let tmp = tempfile::tempdir().unwrap();
        let markets = [TrainingMarket {
            data: data.clone(),
            key: MarketKey {
                instrument: 0,
                timeframe: 0,
            },
        }];
        let plan = TrainPlan {
            run_dir: tmp.path().to_path_buf(),
            total_steps: 1_000_000,
            eval_every: 0,
            patience: 0,
            seed: 1,
            scoring: Scoring::from_settings(&s.ppo),
            instrument_dropout: None,
            checkpoint_every: 0,
            interrupt: Some(&STOP),
        };
        let summary = train(&mut agent, &markets, &s.env_config(), &plan, |_| {}).unwrap();
        assert!(summary.interrupted && !summary.stopped_early);
        assert_eq!(summary.updates, 1, "one update, then stop");
        let resumed = crate::ppo::PpoAgent::load(&summary.last_dir).unwrap();
        assert_eq!(resumed.env_steps_done(), summary.env_steps);

        // Saving last/ every 2 updates, without validations.
        let tmp = tempfile::tempdir().unwrap();
        let mut agent = crate::ppo::tests::agent(&s, "mlp", &data);
        let per_update = s.ppo.envs * s.ppo.rollout_steps;
        let plan = TrainPlan {
            run_dir: tmp.path().to_path_buf(),
            total_steps: 3 * per_update,
            checkpoint_every: 2,
            interrupt: None,
            ..plan
        };
        let mut saved_at = Vec::new();
        train(&mut agent, &markets, &s.env_config(), &plan, |e| {
            if let Event::Update(p) = e {
                let last = last_dir(tmp.path()).join(crate::checkpoint::METADATA_FILE);
                saved_at.push((p.updates, last.exists()));
            }
        })
        .unwrap();
        // The event comes before the update's save: last/ appears after update 2.
        assert_eq!(saved_at, [(1, false), (2, false), (3, true)]);
    }
}
