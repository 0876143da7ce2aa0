//! A seeded run of the trading environment, step by step: what
//! `tradelab env-trace` prints, so that any front end (the Python
//! package, a user's own harness) can be checked against it bar for bar.

use std::sync::Arc;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tradelab_core::{Action, BarSeries};
use tradelab_env::{EnvAction, Split, TradingEnv};

use crate::Settings;

/// One step of a traced run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    /// The action's index (0..4, `Action::index`).
    pub action: usize,
    /// The quantity it was given.
    pub quantity: f64,
    /// The step's reward.
    pub reward: f64,
    /// Ruin or the breaker ended the episode.
    pub terminated: bool,
    /// The episode window ended.
    pub truncated: bool,
    /// Equity after the step.
    pub equity: f64,
    /// Signed units held after the step.
    pub position: f64,
    /// Fees paid during the step.
    pub fees: f64,
    /// The bar the step ended on.
    pub bar: usize,
}

/// Runs `steps` steps of the environment over `split` of `series`, seeded
/// `seed`, with actions and quantities drawn uniformly from a stream seeded
/// `seed` too (invalid actions included: they act as HOLD, as configured);
/// an ended episode is reset, as a training loop would.
pub fn trace(settings: &Settings, series: BarSeries, split: Split, seed: u64, steps: usize) -> Result<Vec<TraceStep>> {
    let name = series.instrument.clone();
    let data = settings
        .market_data(series)
        .with_context(|| format!("preparing {name} for the environment"))?;
    let mut env = TradingEnv::new(Arc::new(data), split, &settings.env_config(), seed)?;
    let mut actions = ChaCha8Rng::seed_from_u64(seed);
    env.reset();
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        let index = actions.random_range(0..Action::ALL.len());
        let quantity: f64 = actions.random_range(0.05..=1.0);
        let r = env.step(EnvAction::new(Action::ALL[index], quantity));
        out.push(TraceStep {
            action: index,
            quantity,
            reward: r.reward,
            terminated: r.terminated,
            truncated: r.truncated,
            equity: r.info.equity,
            position: r.info.position,
            fees: r.info.fees,
            bar: r.info.bar,
        });
        if r.terminated || r.truncated {
            env.reset();
        }
    }
    Ok(out)
}
