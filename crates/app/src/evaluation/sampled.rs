//! The policy sampled as in training, over several seeded paths: the mean
//! and spread of what a greedy pass reports once (a greedy pass can hide a
//! policy that trades, or one that only trades by chance).

use anyhow::{Context, Result};
use serde::Serialize;
use tradelab_agents::evaluate::AgentStrategy;
use tradelab_agents::trainer::TrainingMarket;
use tradelab_agents::Agent;
use tradelab_core::BarSeries;
use tradelab_sim::engine;
use tradelab_sim::stats::equity_returns;
use tradelab_sim::stats::sharpe::{sharpe, ReturnMoments};

use crate::Settings;

/// The sampled policy's figures over its paths.
#[derive(Debug, Clone, Serialize)]
pub struct SampledPaths {
    /// Paths run, seeds `seed .. seed + paths`.
    pub paths: usize,
    /// Mean total return, in percent.
    pub return_pct_mean: f64,
    /// Its standard deviation.
    pub return_pct_std: f64,
    /// Mean annualised Sharpe ratio.
    pub sharpe_mean: f64,
    /// Its standard deviation.
    pub sharpe_std: f64,
    /// Positions opened, on average.
    pub entries_mean: f64,
    /// Paths on which the policy never opened a position.
    pub flat_paths: usize,
}

/// Runs the agent sampled on `slice` (bar 0 = `start` of `m`'s data) once
/// per seed `settings.seed + p`, `p < paths`.
pub(super) fn sampled_paths(
    agent: &mut (dyn Agent + Send),
    m: &TrainingMarket,
    start: usize,
    slice: &BarSeries,
    settings: &Settings,
    paths: usize,
    per_year: f64,
) -> Result<SampledPaths> {
    let cfg = settings.engine_config();
    let (mut returns, mut sharpes, mut entries) = (Vec::new(), Vec::new(), Vec::new());
    for p in 0..paths {
        agent.seed_sampling(settings.seed.wrapping_add(p as u64));
        let mut strategy = AgentStrategy::new(&mut *agent, &m.data, m.key, start, &settings.env_config()).sampled();
        let result = engine::run(&[slice], &mut strategy, &cfg);
        if let Some(e) = strategy.error.take() {
            return Err(e).context("the model failed while deciding (sampled)");
        }
        returns.push((result.final_equity / result.initial_cash - 1.0) * 100.0);
        sharpes.push(sharpe(&equity_returns(&result.equity), per_year));
        entries.push(result.fills.iter().filter(|f| f.is_entry).count() as f64);
    }
    let mean_std = |v: &[f64]| {
        let m = ReturnMoments::of(v);
        (m.mean, m.std)
    };
    let ((return_pct_mean, return_pct_std), (sharpe_mean, sharpe_std)) = (mean_std(&returns), mean_std(&sharpes));
    Ok(SampledPaths {
        paths,
        return_pct_mean,
        return_pct_std,
        sharpe_mean,
        sharpe_std,
        entries_mean: entries.iter().sum::<f64>() / paths as f64,
        flat_paths: entries.iter().filter(|e| **e == 0.0).count(),
    })
}
