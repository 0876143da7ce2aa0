//! Rewards, computed from the marked equity after each step.
//!
//! - `portfolio_change`: `(E_t - E_{t-1}) / E_0`, the change in portfolio
//!   value net of costs as a fraction of the starting equity (the seed's
//!   default);
//! - `log_return`: `ln(E_t / E_{t-1})`;
//! - `differential_sharpe` (Moody & Saffell 1998): with the step return R_t
//!   and moving moments A, B updated at rate eta,
//!   `D_t = (B_{t-1} dA_t - A_{t-1} dB_t / 2) / (B_{t-1} - A_{t-1}^2)^{3/2}`,
//!   zero while the variance estimate is zero.
//!
//! Each is multiplied by `reward_scale`; then `drawdown_penalty` times the
//! increase in drawdown and `risk_penalty` times gross exposure are
//! subtracted.

use crate::settings::{EnvSettings, RewardKind};

/// Turns each step's equity into the configured reward, keeping the
/// episode state it needs (previous and peak equity, the Sharpe moments).
#[derive(Debug, Clone)]
pub struct RewardTracker {
    kind: RewardKind,
    scale: f64,
    eta: f64,
    drawdown_penalty: f64,
    risk_penalty: f64,
    start: f64,
    prev: f64,
    peak: f64,
    drawdown: f64,
    a: f64,
    b: f64,
}

impl RewardTracker {
    /// A tracker for the reward, scale and penalties in `cfg`; call
    /// [`reset`](Self::reset) before the first step.
    pub fn new(cfg: &EnvSettings) -> Self {
        RewardTracker {
            kind: cfg.reward,
            scale: cfg.reward_scale,
            eta: cfg.dsr_eta,
            drawdown_penalty: cfg.drawdown_penalty,
            risk_penalty: cfg.risk_penalty,
            start: 1.0,
            prev: 1.0,
            peak: 1.0,
            drawdown: 0.0,
            a: 0.0,
            b: 0.0,
        }
    }

    /// Starts an episode at `equity`: clears the drawdown and the Sharpe
    /// moments.
    pub fn reset(&mut self, equity: f64) {
        self.start = equity;
        self.prev = equity;
        self.peak = equity;
        self.drawdown = 0.0;
        self.a = 0.0;
        self.b = 0.0;
    }

    /// The reward for a step that ended with `equity` and `exposure`
    /// (gross position value / equity).
    #[inline]
    pub fn step(&mut self, equity: f64, exposure: f64) -> f64 {
        let base = match self.kind {
            RewardKind::PortfolioChange => (equity - self.prev) / self.start,
            RewardKind::LogReturn => {
                if equity > 0.0 && self.prev > 0.0 {
                    (equity / self.prev).ln()
                } else {
                    -1.0
                }
            }
            RewardKind::DifferentialSharpe => {
                let r = if self.prev != 0.0 {
                    equity / self.prev - 1.0
                } else {
                    0.0
                };
                let (da, db) = (r - self.a, r * r - self.b);
                let var = self.b - self.a * self.a;
                let d = if var > 1e-12 {
                    (self.b * da - 0.5 * self.a * db) / var.powf(1.5)
                } else {
                    0.0
                };
                self.a += self.eta * da;
                self.b += self.eta * db;
                d
            }
        };
        self.peak = self.peak.max(equity);
        let drawdown = if self.peak > 0.0 { 1.0 - equity / self.peak } else { 1.0 };
        let new_drawdown = (drawdown - self.drawdown).max(0.0);
        self.drawdown = drawdown;
        self.prev = equity;
        base * self.scale - self.drawdown_penalty * new_drawdown - self.risk_penalty * exposure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(kind: RewardKind) -> RewardTracker {
        let s = EnvSettings {
            reward: kind,
            reward_scale: 1.0,
            ..Default::default()
        };
        let mut t = RewardTracker::new(&s);
        t.reset(100.0);
        t
    }

    #[test]
    fn portfolio_change_and_log_return_follow_equity() {
        let mut t = tracker(RewardKind::PortfolioChange);
        assert!((t.step(110.0, 0.0) - 0.10).abs() < 1e-12);
        assert!((t.step(99.0, 0.0) + 0.11).abs() < 1e-12);
        let mut t = tracker(RewardKind::LogReturn);
        assert!((t.step(110.0, 0.0) - (1.1f64).ln()).abs() < 1e-12);
    }

    #[test]
    fn differential_sharpe_rewards_steady_gains_over_noise() {
        let mut steady = tracker(RewardKind::DifferentialSharpe);
        let mut noisy = tracker(RewardKind::DifferentialSharpe);
        let (mut e1, mut e2) = (100.0, 100.0);
        let (mut s1, mut s2) = (0.0, 0.0);
        for i in 0..500 {
            e1 *= 1.001;
            e2 *= if i % 2 == 0 { 1.03 } else { 0.972 };
            s1 += steady.step(e1, 0.0);
            s2 += noisy.step(e2, 0.0);
        }
        assert!(s1.is_finite() && s2.is_finite());
        assert!(s1 > s2, "steady {s1} vs noisy {s2}");
    }

    #[test]
    fn penalties_apply_to_new_drawdown_and_exposure() {
        let s = EnvSettings {
            reward_scale: 1.0,
            drawdown_penalty: 2.0,
            risk_penalty: 0.5,
            ..Default::default()
        };
        let mut t = RewardTracker::new(&s);
        t.reset(100.0);
        // Down 10%: change -0.1, new drawdown 0.1 * 2, exposure 1 * 0.5.
        assert!((t.step(90.0, 1.0) - (-0.1 - 0.2 - 0.5)).abs() < 1e-12);
        // Recovering part of it adds no drawdown penalty.
        assert!((t.step(95.0, 0.0) - 0.05).abs() < 1e-12);
    }
}
