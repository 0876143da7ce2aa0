//! A Gaussian hidden Markov model with diagonal covariances, fitted by
//! Baum-Welch (expectation-maximisation with the scaled forward-backward
//! recursions). Forward-backward looks at the whole training window: it is
//! for fitting only. Decisions use [`crate::filter::RegimeFilter`].

// Row-major matrices indexed by state and feature read clearer as index loops.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use crate::RegimeError;

/// Smallest variance a state may shrink to (on z-scored data), so one
/// state cannot collapse onto a single point.
const VARIANCE_FLOOR: f64 = 1e-3;
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Free parameters of `k` states over `d` features: start (K−1),
/// transitions K(K−1), means and variances 2KD.
pub fn parameter_count(k: usize, d: usize) -> usize {
    (k - 1) + k * (k - 1) + 2 * k * d
}

/// A Gaussian HMM with diagonal covariances: `states` hidden states, each
/// emitting `dims`-dimensional observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaussianHmm {
    /// The number of hidden states `K`.
    pub states: usize,
    /// The number of features per observation `D`.
    pub dims: usize,
    /// Initial state distribution.
    pub start: Vec<f64>,
    /// Row-major transition matrix: `transition[i * states + j]` = P(j | i).
    pub transition: Vec<f64>,
    /// Emission means, row-major `states × dims`.
    pub means: Vec<f64>,
    /// Emission variances, row-major `states × dims`; each at least 1e-3
    /// after fitting.
    pub variances: Vec<f64>,
}

/// The result of a fit.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The fitted model; its states are not reordered ([`GaussianHmm::select`]
    /// does that).
    pub model: GaussianHmm,
    /// Log-likelihood of the training data under `model`.
    pub log_likelihood: f64,
    /// Baum-Welch passes run.
    pub iterations: usize,
}

impl GaussianHmm {
    /// The number of free parameters; see [`parameter_count`].
    pub fn parameters(&self) -> usize {
        parameter_count(self.states, self.dims)
    }

    /// Bayesian information criterion of this model on `n` observations
    /// with log-likelihood `ll` (lower is better).
    pub fn bic(&self, ll: f64, n: usize) -> f64 {
        -2.0 * ll + self.parameters() as f64 * (n as f64).ln()
    }

    /// log N(x; μ_k, diag σ²_k) for every state, into `out`.
    pub fn log_emissions(&self, x: &[f64], out: &mut [f64]) {
        let d = self.dims;
        for (k, o) in out.iter_mut().enumerate().take(self.states) {
            let mut s = 0.0;
            for f in 0..d {
                let var = self.variances[k * d + f];
                let diff = x[f] - self.means[k * d + f];
                s += LN_2PI + var.ln() + diff * diff / var;
            }
            *o = -0.5 * s;
        }
    }

    /// The log-likelihood of a sequence (the forward recursion's scale
    /// factors).
    pub fn log_likelihood(&self, data: &[f64]) -> f64 {
        let mut f = crate::filter::RegimeFilter::new(self.clone(), 0.0);
        data.chunks_exact(self.dims).map(|x| f.update_with_evidence(x).1).sum()
    }

    /// Reorders states by increasing mean of feature `by` (for regimes: by
    /// volatility, so state 0 is always the calmest after every refit).
    pub fn sorted_by(&self, by: usize) -> GaussianHmm {
        let (k, d) = (self.states, self.dims);
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| self.means[a * d + by].total_cmp(&self.means[b * d + by]));
        let mut out = self.clone();
        for (new, &old) in order.iter().enumerate() {
            out.start[new] = self.start[old];
            for (new_j, &old_j) in order.iter().enumerate() {
                out.transition[new * k + new_j] = self.transition[old * k + old_j];
            }
            out.means[new * d..(new + 1) * d].copy_from_slice(&self.means[old * d..(old + 1) * d]);
            out.variances[new * d..(new + 1) * d].copy_from_slice(&self.variances[old * d..(old + 1) * d]);
        }
        out
    }

    /// A starting point without randomness: observations sorted by feature
    /// `by` and cut into `states` equal slices, each slice's moments one
    /// state's emission; sticky transitions.
    pub fn initial(data: &[f64], dims: usize, states: usize, by: usize) -> GaussianHmm {
        let n = data.len() / dims;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| data[a * dims + by].total_cmp(&data[b * dims + by]));
        let mut means = vec![0.0; states * dims];
        let mut variances = vec![0.0; states * dims];
        for k in 0..states {
            let slice = &order[k * n / states..(k + 1) * n / states];
            let m = slice.len() as f64;
            for f in 0..dims {
                let mean = slice.iter().map(|&i| data[i * dims + f]).sum::<f64>() / m;
                let var = slice.iter().map(|&i| (data[i * dims + f] - mean).powi(2)).sum::<f64>() / m;
                means[k * dims + f] = mean;
                variances[k * dims + f] = var.max(VARIANCE_FLOOR);
            }
        }
        let stay = 0.9;
        let mut transition = vec![(1.0 - stay) / (states - 1).max(1) as f64; states * states];
        for k in 0..states {
            transition[k * states + k] = if states == 1 { 1.0 } else { stay };
        }
        GaussianHmm {
            states,
            dims,
            start: vec![1.0 / states as f64; states],
            transition,
            means,
            variances,
        }
    }

    /// Fits `states` states to `data` (row-major, `dims` per row) by
    /// Baum-Welch from a deterministic start, until the log-likelihood
    /// gains less than `tol` per observation or `max_iter` passes.
    pub fn fit(
        data: &[f64],
        dims: usize,
        states: usize,
        init_by: usize,
        max_iter: usize,
        tol: f64,
    ) -> Result<Fit, RegimeError> {
        if states == 0 || dims == 0 || init_by >= dims {
            return Err(RegimeError::Config(format!(
                "{states} states over {dims} features (initialised by feature {init_by})"
            )));
        }
        let n = data.len() / dims;
        let need = 10 * parameter_count(states, dims);
        if n < need {
            return Err(RegimeError::TooShort { states, have: n, need });
        }
        if let Some(bad) = data.iter().position(|x| !x.is_finite()) {
            return Err(RegimeError::NonFinite(bad / dims));
        }
        let mut model = GaussianHmm::initial(data, dims, states, init_by);
        let (k, d) = (states, dims);
        // Working memory for the whole window, allocated once.
        let mut emis = vec![0.0; n * k];
        let mut alpha = vec![0.0; n * k];
        let mut beta = vec![0.0; n * k];
        let mut scale = vec![0.0; n];
        let mut last_ll = f64::NEG_INFINITY;
        let mut iterations = 0;
        for iter in 0..max_iter {
            iterations = iter + 1;
            // E step. Emissions are scaled per row by their maximum (the
            // offset goes into the log-likelihood) so nothing underflows.
            let mut ll = 0.0;
            for t in 0..n {
                let row = &mut emis[t * k..(t + 1) * k];
                model.log_emissions(&data[t * d..(t + 1) * d], row);
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                for e in row.iter_mut() {
                    *e = (*e - m).exp();
                }
                ll += m;
            }
            for t in 0..n {
                for j in 0..k {
                    let prior = if t == 0 {
                        model.start[j]
                    } else {
                        (0..k)
                            .map(|i| alpha[(t - 1) * k + i] * model.transition[i * k + j])
                            .sum()
                    };
                    alpha[t * k + j] = prior * emis[t * k + j];
                }
                let c: f64 = alpha[t * k..(t + 1) * k].iter().sum::<f64>().max(f64::MIN_POSITIVE);
                for a in &mut alpha[t * k..(t + 1) * k] {
                    *a /= c;
                }
                scale[t] = c;
                ll += c.ln();
            }
            for b in &mut beta[(n - 1) * k..] {
                *b = 1.0;
            }
            for t in (0..n - 1).rev() {
                for i in 0..k {
                    beta[t * k + i] = (0..k)
                        .map(|j| model.transition[i * k + j] * emis[(t + 1) * k + j] * beta[(t + 1) * k + j])
                        .sum::<f64>()
                        / scale[t + 1];
                }
            }
            // M step: γ_t = α_t β_t (already normalised by the scaling).
            let mut next = model.clone();
            let mut occupancy = vec![0.0; k];
            let mut sum_x = vec![0.0; k * d];
            let mut sum_xx = vec![0.0; k * d];
            let mut trans = vec![0.0; k * k];
            for t in 0..n {
                let x = &data[t * d..(t + 1) * d];
                for s in 0..k {
                    let g = alpha[t * k + s] * beta[t * k + s];
                    occupancy[s] += g;
                    for f in 0..d {
                        sum_x[s * d + f] += g * x[f];
                        sum_xx[s * d + f] += g * x[f] * x[f];
                    }
                    if t + 1 < n {
                        for j in 0..k {
                            trans[s * k + j] += alpha[t * k + s]
                                * model.transition[s * k + j]
                                * emis[(t + 1) * k + j]
                                * beta[(t + 1) * k + j]
                                / scale[t + 1];
                        }
                    }
                }
            }
            for s in 0..k {
                next.start[s] = alpha[s] * beta[s];
                let row: f64 = trans[s * k..(s + 1) * k].iter().sum::<f64>();
                for j in 0..k {
                    next.transition[s * k + j] = if row > 0.0 {
                        trans[s * k + j] / row
                    } else {
                        model.transition[s * k + j]
                    };
                }
                let occ = occupancy[s].max(1e-12);
                for f in 0..d {
                    let mean = sum_x[s * d + f] / occ;
                    next.means[s * d + f] = mean;
                    next.variances[s * d + f] = (sum_xx[s * d + f] / occ - mean * mean).max(VARIANCE_FLOOR);
                }
            }
            model = next;
            if (ll - last_ll).abs() < tol * n as f64 {
                last_ll = ll;
                break;
            }
            last_ll = ll;
        }
        let log_likelihood = model.log_likelihood(data);
        debug_assert!(log_likelihood.is_finite() && last_ll.is_finite());
        Ok(Fit {
            model,
            log_likelihood,
            iterations,
        })
    }

    /// Fits every state count in `range` and keeps the lowest BIC; states
    /// sorted by feature `order_by`. Returns the model and each count's BIC.
    /// The counts are fitted in parallel (each fit is deterministic on its
    /// own, so the answer does not depend on the number of cores).
    pub fn select(
        data: &[f64],
        dims: usize,
        range: std::ops::RangeInclusive<usize>,
        order_by: usize,
        max_iter: usize,
        tol: f64,
    ) -> Result<(GaussianHmm, Vec<(usize, f64)>), RegimeError> {
        let n = data.len() / dims;
        use rayon::prelude::*;
        let counts: Vec<usize> = range.collect();
        let fits: Vec<Result<Fit, RegimeError>> = counts
            .par_iter()
            .map(|&k| GaussianHmm::fit(data, dims, k, order_by, max_iter, tol))
            .collect();
        let mut best: Option<(f64, GaussianHmm)> = None;
        let mut scores = Vec::new();
        for (k, fit) in counts.into_iter().zip(fits) {
            let fit = fit?;
            let bic = fit.model.bic(fit.log_likelihood, n);
            scores.push((k, bic));
            if best.as_ref().is_none_or(|(b, _)| bic < *b) {
                best = Some((bic, fit.model));
            }
        }
        let (_, model) = best.ok_or_else(|| RegimeError::Config("the state-count range is empty".into()))?;
        Ok((model.sorted_by(order_by), scores))
    }

    /// Draws `n` observations and their states (for tests and examples),
    /// from standard normal and uniform draws supplied by the caller.
    pub fn sample(
        &self,
        n: usize,
        mut normal: impl FnMut() -> f64,
        mut uniform: impl FnMut() -> f64,
    ) -> (Vec<f64>, Vec<usize>) {
        let (k, d) = (self.states, self.dims);
        let pick = |p: &[f64], u: f64| {
            let mut acc = 0.0;
            for (i, &pi) in p.iter().enumerate() {
                acc += pi;
                if u < acc {
                    return i;
                }
            }
            p.len() - 1
        };
        let mut data = Vec::with_capacity(n * d);
        let mut states = Vec::with_capacity(n);
        let mut s = pick(&self.start, uniform());
        for t in 0..n {
            if t > 0 {
                s = pick(&self.transition[s * k..(s + 1) * k], uniform());
            }
            states.push(s);
            for f in 0..d {
                data.push(self.means[s * d + f] + self.variances[s * d + f].sqrt() * normal());
            }
        }
        (data, states)
    }
}
