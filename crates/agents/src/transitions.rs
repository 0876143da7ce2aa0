//! Regime transition smoothness (algorithms.md §5): how much a mixture's
//! intended position jumps around known regime switches when it blends its
//! specialists by the gate's weights, against switching wholly to the most
//! likely regime's specialist (and, for reference, to the specialist the
//! gate weighs most).
//!
//! The agent is walked through a split holding no position (every step is
//! HOLD), so each bar's intent is read from the same flat account and only
//! the market moves it.

use std::sync::Arc;

use serde::Serialize;
use tradelab_core::Action;
use tradelab_env::{EnvAction, EnvConfig, MarketData, Split, TradingEnv};

use crate::agent::{AgentInput, MarketKey};
use crate::error::AgentError;
use crate::ppo::{transition_disruption, PpoAgent};

/// Position disruption, soft against hard, at the given switches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionSmoothness {
    /// Bars walked.
    pub bars: usize,
    /// Regime switches among those bars (after the first), the ones measured.
    pub switches: usize,
    /// Bars either side of a switch searched for the largest change.
    pub half_width: usize,
    /// Mean over switches of the largest one-bar exposure change within
    /// `half_width` bars, as a fraction of the full range (long to short).
    pub soft_blending: f64,
    /// To the most likely regime's specialist.
    pub hard_switching: f64,
    /// To the specialist with the largest gate weight.
    pub top_gate_switching: f64,
    /// Mean one-bar exposure change of soft blending over all bars,
    /// switches or not, as a fraction of the full range.
    pub soft_mean_change: f64,
    /// The same for hard switching.
    pub hard_mean_change: f64,
}

/// Walks `split` of `data` and measures disruption at `switch_bars` (bar
/// indices where the true regime changes). Fails for a single policy.
pub fn transition_smoothness(
    agent: &PpoAgent,
    data: &Arc<MarketData>,
    key: MarketKey,
    split: Split,
    env: &EnvConfig,
    switch_bars: &[usize],
    half_width: usize,
) -> Result<TransitionSmoothness, AgentError> {
    let mut env = TradingEnv::new(data.clone(), split, &crate::evaluate::whole_split(env), 0)?;
    env.reset();
    let (mut soft, mut hard, mut top, mut bars) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    loop {
        let obs = env.observation();
        let input = AgentInput {
            window: obs.window,
            account: obs.account,
            mask: env.action_mask(),
            market: key,
        };
        let view = agent
            .mixture_view(&input)?
            .ok_or_else(|| AgentError::Invalid("transition smoothness needs a mixture of experts (moe)".into()))?;
        soft.push(view.blended());
        hard.push(view.switched());
        top.push(view.top_gate());
        bars.push(env.bar_index());
        let r = env.step(EnvAction::new(Action::Hold, 0.0));
        if r.terminated || r.truncated {
            break;
        }
    }
    let (first, last) = (bars[0], *bars.last().unwrap_or(&bars[0]));
    let at: Vec<usize> = switch_bars
        .iter()
        .filter(|&&b| b > first && b <= last)
        .filter_map(|b| bars.iter().position(|x| x == b))
        .collect();
    let mean_change = |x: &[f64]| {
        x.windows(2).map(|w| (w[1] - w[0]).abs() / 2.0).sum::<f64>() / (x.len().saturating_sub(1)).max(1) as f64
    };
    Ok(TransitionSmoothness {
        bars: bars.len(),
        switches: at.len(),
        half_width,
        soft_blending: transition_disruption(&soft, &at, half_width),
        hard_switching: transition_disruption(&hard, &at, half_width),
        top_gate_switching: transition_disruption(&top, &at, half_width),
        soft_mean_change: mean_change(&soft),
        hard_mean_change: mean_change(&hard),
    })
}
