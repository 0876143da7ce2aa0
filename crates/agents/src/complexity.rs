//! Where an adaptive agent spends its computation on real data: reasoning
//! segments per greedy decision, grouped by how turbulent the market was at
//! the bar (issue 18's "does adaptive computation spend more on volatile
//! bars?", answerable for any series, not only a synthetic one with known
//! regimes).

use std::sync::Arc;

use tradelab_env::{EnvAction, EnvConfig, MarketData, Split, TradingEnv};

use crate::agent::{Agent, AgentInput, MarketKey};
use crate::error::AgentError;
use crate::evaluate::whole_split;

/// Bars of absolute log returns averaged into a bar's turbulence.
pub const TURBULENCE_BARS: usize = 20;

/// Mean segments per decision in the calmest, middle and most turbulent
/// third of a split's bars.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SegmentsByTurbulence {
    /// Mean segments in the calmest third.
    pub calm: f64,
    /// Mean segments in the middle third.
    pub middle: f64,
    /// Mean segments in the most turbulent third.
    pub turbulent: f64,
    /// Decisions measured (each third holds a third of them, give or take one).
    pub decisions: usize,
}

/// The mean segments per decision of a histogram (`counts[k]` decisions
/// used `k + 1` segments); `None` when it holds no decision.
pub fn mean_segments(counts: &[u64]) -> Option<f64> {
    let decisions: u64 = counts.iter().sum();
    (decisions > 0).then(|| {
        counts
            .iter()
            .enumerate()
            .map(|(k, c)| (k + 1) as f64 * *c as f64)
            .sum::<f64>()
            / decisions as f64
    })
}

/// A bar's turbulence: the mean absolute log return of the
/// [`TURBULENCE_BARS`] bars up to and including `t` (causal).
fn turbulence(close: &[f64], t: usize) -> f64 {
    let from = t.saturating_sub(TURBULENCE_BARS - 1).max(1);
    if from > t {
        return 0.0;
    }
    let sum: f64 = (from..=t).map(|k| (close[k] / close[k - 1]).ln().abs()).sum();
    sum / (t + 1 - from) as f64
}

/// Walks `split` greedily (the account evolving as in a greedy evaluation)
/// and groups each decision's reasoning segments by the bar's turbulence
/// tercile. `None` for an agent that reports no segments (not adaptive).
pub fn segments_by_turbulence<A: Agent + ?Sized>(
    agent: &mut A,
    data: &Arc<MarketData>,
    key: MarketKey,
    split: Split,
    env: &EnvConfig,
) -> Result<Option<SegmentsByTurbulence>, AgentError> {
    let mut env = TradingEnv::new(data.clone(), split, &whole_split(env), 0)?;
    env.reset();
    agent.take_segment_counts();
    let close = &data.series.close;
    let mut measured: Vec<(f64, f64)> = Vec::with_capacity(data.steps(split).len());
    loop {
        let obs = env.observation();
        let d = agent.select_action(
            &AgentInput {
                window: obs.window,
                account: obs.account,
                mask: env.action_mask(),
                market: key,
            },
            true,
        )?;
        let Some(segments) = mean_segments(&agent.take_segment_counts()) else {
            return Ok(None);
        };
        measured.push((turbulence(close, env.bar_index()), segments));
        let r = env.step(EnvAction::new(d.action, d.quantity));
        if r.terminated || r.truncated {
            break;
        }
    }
    measured.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = measured.len();
    let mean = |part: &[(f64, f64)]| {
        if part.is_empty() {
            0.0
        } else {
            part.iter().map(|m| m.1).sum::<f64>() / part.len() as f64
        }
    };
    let (a, b) = (n / 3, 2 * n / 3);
    Ok(Some(SegmentsByTurbulence {
        calm: mean(&measured[..a]),
        middle: mean(&measured[a..b]),
        turbulent: mean(&measured[b..]),
        decisions: n,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_segments_weighs_each_depth_by_its_decisions() {
        assert_eq!(mean_segments(&[0, 0, 0]), None);
        assert_eq!(mean_segments(&[3, 0, 1]), Some((3.0 + 3.0) / 4.0));
    }

    #[test]
    fn turbulence_is_the_causal_mean_absolute_log_return() {
        let close = [100.0, 110.0, 99.0, 99.0];
        assert_eq!(turbulence(&close, 0), 0.0);
        let want = ((1.1f64).ln() + (110.0f64 / 99.0).ln()) / 2.0;
        assert!((turbulence(&close, 2) - want).abs() < 1e-12);
        let long: Vec<f64> = (0..50).map(|k| if k % 2 == 0 { 100.0 } else { 101.0 }).collect();
        // Only the last 20 returns count, each |ln(1.01)|.
        assert!((turbulence(&long, 49) - (1.01f64).ln()).abs() < 1e-12);
    }
}
