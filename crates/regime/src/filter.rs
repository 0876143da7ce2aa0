//! The forward filter: p(regime at t | observations up to t), one bar at a
//! time, with no allocation per bar. This, and never the smoothed
//! (forward-backward) or Viterbi path, is what decisions may use.

// Row-major matrices indexed by state and feature read clearer as index loops.
#![allow(clippy::needless_range_loop)]

use crate::hmm::GaussianHmm;

/// The forward filter's state for one series: a fitted model and the
/// current p(state | observations so far). Feed observations in time order.
pub struct RegimeFilter {
    model: GaussianHmm,
    /// Probabilities below this are raised to it (then renormalised), so a
    /// state the filter has all but ruled out can come back after a switch.
    floor: f64,
    alpha: Vec<f64>,
    prior: Vec<f64>,
    log_emission: Vec<f64>,
    started: bool,
}

impl RegimeFilter {
    /// A filter over `model` that has seen nothing yet; probabilities below
    /// `floor` are raised to it after each update (0 disables the floor).
    pub fn new(model: GaussianHmm, floor: f64) -> RegimeFilter {
        let k = model.states;
        RegimeFilter {
            floor,
            alpha: model.start.clone(),
            prior: vec![0.0; k],
            log_emission: vec![0.0; k],
            model,
            started: false,
        }
    }

    /// The model being filtered with.
    pub fn model(&self) -> &GaussianHmm {
        &self.model
    }

    /// The current filtered probabilities (the start distribution before
    /// the first update).
    pub fn probabilities(&self) -> &[f64] {
        &self.alpha
    }

    /// Takes bar t's observation; returns p(state | x_1..x_t).
    pub fn update(&mut self, x: &[f64]) -> &[f64] {
        self.update_with_evidence(x);
        &self.alpha
    }

    /// As [`update`](Self::update), also returning log p(x_t | x_1..x_{t-1}).
    pub fn update_with_evidence(&mut self, x: &[f64]) -> (&[f64], f64) {
        let k = self.model.states;
        if self.started {
            for j in 0..k {
                self.prior[j] = (0..k).map(|i| self.alpha[i] * self.model.transition[i * k + j]).sum();
            }
        } else {
            self.prior.copy_from_slice(&self.model.start);
            self.started = true;
        }
        self.model.log_emissions(x, &mut self.log_emission);
        let m = self.log_emission.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut c = 0.0;
        for j in 0..k {
            self.alpha[j] = self.prior[j] * (self.log_emission[j] - m).exp();
            c += self.alpha[j];
        }
        let c = c.max(f64::MIN_POSITIVE);
        let mut total = 0.0;
        for a in &mut self.alpha {
            *a = (*a / c).max(self.floor);
            total += *a;
        }
        for a in &mut self.alpha {
            *a /= total;
        }
        (&self.alpha, c.ln() + m)
    }

    /// p(state at t+1 | x_1..x_t): the gate for a position held over the
    /// next bar (αA), into `out`.
    pub fn predictive(&self, out: &mut [f64]) {
        let k = self.model.states;
        for (j, o) in out.iter_mut().enumerate().take(k) {
            *o = (0..k).map(|i| self.alpha[i] * self.model.transition[i * k + j]).sum();
        }
    }
}
