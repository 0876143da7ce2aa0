//! What an agent can say about one decision beyond the decision itself:
//! how much each input moved the chosen action's log-probability
//! ([`Attribution`], integrated gradients) and what its parts said
//! ([`Internals`]: a mixture's gate and specialists, the HRM's segments and
//! halting values). The forensics workers turn these into the audit
//! trail's explanations.

use serde::{Deserialize, Serialize};
use tradelab_core::Action;
use tradelab_env::ACCOUNT_FEATURES;

/// Interpolation steps integrated gradients takes unless told otherwise:
/// enough that the completeness gap of the networks here stays under
/// [`COMPLETENESS_TOLERANCE`] (tested), few enough to explain in a few
/// milliseconds.
pub const DEFAULT_STEPS: usize = 64;

/// The completeness check's tolerance: attributions must sum to the output's
/// change from the baseline within this many nats, or this fraction of the
/// change, whichever is larger.
pub const COMPLETENESS_TOLERANCE: f32 = 0.02;

/// Integrated gradients (Sundararajan, Taly and Yan 2017) of the chosen
/// action's log-probability `log pi(a | x)` from the all-zero input (a
/// normalised window of average bars, a flat account at its starting
/// equity) along the straight path, over `steps` points placed at
/// `alpha = u^3` for a midpoint grid in `u` (denser near the baseline,
/// where normalisation layers change fastest) with weights summing to one.
/// The market's ids are held at the decision's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// The action explained.
    pub action: Action,
    /// Bars in the window.
    pub bars: usize,
    /// Features per bar.
    pub features: usize,
    /// Per input value of the window, row-major, oldest bar first.
    pub window: Vec<f32>,
    /// Per account input (equity relative to the start, exposure,
    /// unrealised P&L over equity).
    pub account: [f32; ACCOUNT_FEATURES],
    /// `log pi(a | x)` at the decision's inputs.
    pub output: f32,
    /// `log pi(a | 0)` at the baseline.
    pub baseline_output: f32,
    /// Interpolation points.
    pub steps: usize,
}

impl Attribution {
    /// The sum of all attributions (which completeness says is
    /// `output - baseline_output`).
    pub fn total(&self) -> f32 {
        let sum: f64 = self.window.iter().chain(&self.account).map(|&v| v as f64).sum();
        sum as f32
    }

    /// `total - (output - baseline_output)`: the integral's numerical error.
    pub fn completeness_gap(&self) -> f32 {
        self.total() - (self.output - self.baseline_output)
    }

    /// Whether the gap is within [`COMPLETENESS_TOLERANCE`].
    pub fn is_complete(&self) -> bool {
        let change = (self.output - self.baseline_output).abs();
        self.completeness_gap().abs() <= COMPLETENESS_TOLERANCE.max(COMPLETENESS_TOLERANCE * change)
    }

    /// Attribution per feature, summed over the window's bars.
    pub fn by_feature(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.features];
        for row in self.window.chunks_exact(self.features.max(1)) {
            out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
        }
        out
    }

    /// Attribution per bar (oldest first), summed over its features.
    pub fn by_bar(&self) -> Vec<f32> {
        self.window
            .chunks_exact(self.features.max(1))
            .map(|row| row.iter().sum())
            .collect()
    }
}

/// One specialist of a mixture at one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecialistView {
    /// Its name (`trend`, `mean_reversion`, ...).
    pub name: String,
    /// Its weight in the gate.
    pub gate: f32,
    /// The valid action it finds most likely.
    pub preferred: Action,
    /// That action's probability under it.
    pub probability: f32,
}

/// One reasoning segment of the HRM at one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentView {
    /// The Q-head's value of halting after this segment.
    pub q_halt: f32,
    /// The Q-head's value of going on.
    pub q_continue: f32,
}

/// What a model's parts said about one input; empty for a single policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Internals {
    /// The mixture's specialists, in the gate's order (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specialists: Vec<SpecialistView>,
    /// The HRM's segments run, in order, up to the one that halted (empty
    /// otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentView>,
}
