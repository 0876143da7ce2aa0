//! The supervised baseline a sceptic asks for: a regularised logistic
//! regression predicting the next bar's direction from the same causal,
//! normalised features the RL agents see (the last `lags` rows of the
//! window), fitted on the train split and traded through the same
//! environment and engine. It decides target positions: long when the
//! predicted probability of a rise is above `0.5 + band`, short when it is
//! below `0.5 - band`, flat in between (the no-trade band).
//!
//! The fit minimises scikit-learn's `LogisticRegression(C)` objective,
//! `0.5 |w|^2 + C * sum(log loss)` with the intercept unpenalised, by
//! Newton's method with a backtracking line search; a test checks the
//! coefficients against scikit-learn's on the same data.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tradelab_core::Action;
use tradelab_env::{MarketData, Split, VecEnv};

use crate::agent::{Agent, AgentInput, Decision, LearnStats, MarketKey};
use crate::checkpoint::{read_fitted, write_fitted};
use crate::error::AgentError;
use crate::metadata::Provenance;

/// The kind `tradelab train --agent` and metadata.json name.
pub const KIND: &str = crate::kinds::LOGREG;

/// A fitted model's shape and how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticConfig {
    /// Feature columns per window row.
    pub features: usize,
    /// Window rows used, newest last.
    pub lags: usize,
    /// Half-width of the no-trade band around probability 0.5.
    pub band: f64,
    /// The inverse regularisation strength chosen (scikit-learn's `C`).
    pub c: f64,
    /// Share of train-split bars whose direction it predicted.
    pub train_accuracy: f64,
    /// The same on the validation split (none without one).
    pub validation_accuracy: Option<f64>,
}

/// Coefficients of one fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// One per input.
    pub weights: Vec<f64>,
    /// The intercept.
    pub bias: f64,
    /// Newton iterations taken.
    pub iterations: usize,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Fits `y` (0 or 1) on the rows of `x` (`d` values each) with inverse
/// regularisation `c`.
pub fn fit(x: &[f64], d: usize, y: &[f64], c: f64) -> Result<Fit, AgentError> {
    let n = y.len();
    if d == 0 || x.len() != n * d {
        return Err(AgentError::Invalid(format!(
            "logistic regression: {} values for {n} rows of {d}",
            x.len()
        )));
    }
    if n < 2 || !(c > 0.0 && c.is_finite()) {
        return Err(AgentError::Invalid(format!(
            "logistic regression needs at least 2 rows and C > 0; got {n} rows, C = {c}"
        )));
    }
    let k = d + 1; // weights, then the intercept
    let objective = |theta: &[f64]| -> f64 {
        let reg = 0.5 * theta[..d].iter().map(|w| w * w).sum::<f64>();
        let loss: f64 = (0..n)
            .map(|i| {
                let z = linear(&x[i * d..(i + 1) * d], theta);
                softplus(z) - y[i] * z
            })
            .sum();
        reg + c * loss
    };
    let mut theta = vec![0.0; k];
    let mut current = objective(&theta);
    let mut iterations = 0;
    for _ in 0..100 {
        iterations += 1;
        let mut grad = vec![0.0; k];
        let mut hess = vec![0.0; k * k];
        for i in 0..n {
            let row = &x[i * d..(i + 1) * d];
            let p = sigmoid(linear(row, &theta));
            let (r, w) = (c * (p - y[i]), c * p * (1.0 - p));
            for a in 0..k {
                let xa = if a < d { row[a] } else { 1.0 };
                grad[a] += r * xa;
                for b in 0..=a {
                    let xb = if b < d { row[b] } else { 1.0 };
                    hess[a * k + b] += w * xa * xb;
                }
            }
        }
        for a in 0..d {
            grad[a] += theta[a];
            hess[a * k + a] += 1.0;
        }
        for a in 0..k {
            for b in 0..a {
                hess[b * k + a] = hess[a * k + b];
            }
        }
        if grad.iter().all(|g| g.abs() < 1e-9 * (1.0 + c * n as f64).sqrt()) {
            break;
        }
        let step = solve(&mut hess, &grad, k)?;
        // Backtracking: Newton's step, halved until the objective falls.
        let mut t = 1.0;
        loop {
            let trial: Vec<f64> = theta.iter().zip(&step).map(|(th, s)| th - t * s).collect();
            let value = objective(&trial);
            if value <= current || t < 1e-10 {
                theta = trial;
                current = value;
                break;
            }
            t *= 0.5;
        }
    }
    Ok(Fit {
        bias: theta[d],
        weights: theta[..d].to_vec(),
        iterations,
    })
}

fn linear(row: &[f64], theta: &[f64]) -> f64 {
    row.iter().zip(theta).map(|(x, w)| x * w).sum::<f64>() + theta[row.len()]
}

/// Solves `a x = b` for a symmetric positive-definite `a` (`k` by `k`,
/// overwritten by its Cholesky factor).
fn solve(a: &mut [f64], b: &[f64], k: usize) -> Result<Vec<f64>, AgentError> {
    for j in 0..k {
        let mut s = a[j * k + j];
        for p in 0..j {
            s -= a[j * k + p] * a[j * k + p];
        }
        if s <= 0.0 || !s.is_finite() {
            return Err(AgentError::Invalid(
                "logistic regression: the Hessian is not positive definite (constant features with C too large?)"
                    .into(),
            ));
        }
        let l = s.sqrt();
        a[j * k + j] = l;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / l;
        }
    }
    let mut z = vec![0.0; k];
    for i in 0..k {
        let s = b[i] - (0..i).map(|p| a[i * k + p] * z[p]).sum::<f64>();
        z[i] = s / a[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let s = z[i] - (i + 1..k).map(|p| a[p * k + i] * x[p]).sum::<f64>();
        x[i] = s / a[i * k + i];
    }
    Ok(x)
}

/// The inputs and next-bar directions of `split` in `data`: one row per
/// bar the environment decides on, the last `lags` window rows flattened;
/// the label is 1 when the next bar closes above this one.
pub fn samples(data: &MarketData, split: Split, lags: usize) -> (Vec<f64>, Vec<f64>) {
    let nf = data.n_features();
    let lags = lags.clamp(1, data.window_len());
    let close = &data.series.close;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for t in data.steps(split) {
        if t + 1 >= close.len() {
            break;
        }
        let w = data.window(t);
        x.extend(w[w.len() - lags * nf..].iter().map(|v| *v as f64));
        y.push(f64::from(close[t + 1] > close[t]));
    }
    (x, y)
}

/// Share of rows whose direction `fit` predicts (probability above 0.5
/// for a rise).
pub fn accuracy(f: &Fit, x: &[f64], y: &[f64]) -> f64 {
    let d = f.weights.len();
    let right = y
        .iter()
        .enumerate()
        .filter(|(i, yi)| {
            let z = f
                .weights
                .iter()
                .zip(&x[i * d..(i + 1) * d])
                .map(|(w, v)| w * v)
                .sum::<f64>()
                + f.bias;
            (z > 0.0) == (**yi > 0.5)
        })
        .count();
    right as f64 / y.len().max(1) as f64
}

/// A classifier's decision as a target position: long when the
/// probability `p` of a rise is above `0.5 + band`, short below
/// `0.5 - band`, flat between, and flat when the mask forbids the target
/// (shorts disabled). The rule is deterministic, so the chosen action has
/// probability 1.
pub(crate) fn target_decision(p: f64, band: f64, mask: [bool; 5]) -> Decision {
    let wanted = if p > 0.5 + band {
        Action::BuyLong
    } else if p < 0.5 - band {
        Action::SellShort
    } else {
        Action::Hold
    };
    let action = if mask[wanted.index()] { wanted } else { Action::Hold };
    let mut probabilities = [0.0f32; 5];
    probabilities[action.index()] = 1.0;
    Decision {
        action,
        quantity: 1.0,
        probabilities,
        value: 0.0,
    }
}

/// A fitted logistic regression as an agent that decides target positions.
pub struct LogisticAgent {
    /// Its shape and selection.
    pub config: LogisticConfig,
    weights: Vec<f32>,
    bias: f32,
    /// What it was trained on.
    pub provenance: Provenance,
}

impl LogisticAgent {
    /// The agent of `fit` (coefficients kept in f32, as saved, so a model
    /// decides the same before and after a save).
    pub fn new(config: LogisticConfig, fit: &Fit) -> Result<LogisticAgent, AgentError> {
        if fit.weights.len() != config.features * config.lags {
            return Err(AgentError::Invalid(format!(
                "{} coefficients for {} features x {} lags",
                fit.weights.len(),
                config.features,
                config.lags
            )));
        }
        Ok(LogisticAgent {
            weights: fit.weights.iter().map(|w| *w as f32).collect(),
            bias: fit.bias as f32,
            config,
            provenance: Provenance::default(),
        })
    }

    /// The probability that the next bar closes higher, given the window.
    pub fn probability_up(&self, window: &[f32]) -> Result<f64, AgentError> {
        let d = self.weights.len();
        if window.len() < d {
            return Err(AgentError::Mismatch(format!(
                "a window of {} values; the model reads its last {d}",
                window.len()
            )));
        }
        let z = self
            .weights
            .iter()
            .zip(&window[window.len() - d..])
            .map(|(w, x)| *w as f64 * *x as f64)
            .sum::<f64>()
            + self.bias as f64;
        Ok(sigmoid(z))
    }
}

impl Agent for LogisticAgent {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Deterministic: the same decision greedy or sampled.
    fn select_action(&mut self, input: &AgentInput<'_>, _greedy: bool) -> Result<Decision, AgentError> {
        Ok(target_decision(
            self.probability_up(input.window)?,
            self.config.band,
            input.mask,
        ))
    }

    fn seed_sampling(&mut self, _seed: u64) {}

    fn learn(&mut self, _: &mut VecEnv, _: &[MarketKey]) -> Result<LearnStats, AgentError> {
        Err(AgentError::Invalid(
            "a logistic regression is fitted on the train split (tradelab train --agent logreg), not by RL updates"
                .into(),
        ))
    }

    fn save(&self, dir: &Path) -> Result<(), AgentError> {
        write_fitted(
            dir,
            KIND,
            "Newton's method",
            &[
                ("logreg.weight", self.weights.clone()),
                ("logreg.bias", vec![self.bias]),
            ],
            &self.config,
            &self.provenance,
        )
    }

    fn load(dir: &Path) -> Result<Self, AgentError> {
        let (meta, mut v) =
            read_fitted::<LogisticConfig>(dir, KIND, "logistic regression", &["logreg.weight", "logreg.bias"])?;
        let (bias, weights) = (v.pop().unwrap_or_default(), v.pop().unwrap_or_default());
        let config = meta.config;
        // Checked: a forged metadata.json must not wrap the product round
        // to the coefficient count (issue 19 finding 7).
        let described = config.features.checked_mul(config.lags);
        if described != Some(weights.len()) || config.lags > crate::checkpoint::MAX_WINDOW || bias.len() != 1 {
            return Err(AgentError::checkpoint(
                &dir.join(crate::checkpoint::WEIGHTS_FILE),
                format!(
                    "holds {} coefficients; metadata.json describes {} features x {} lags",
                    weights.len(),
                    config.features,
                    config.lags
                ),
            ));
        }
        Ok(LogisticAgent {
            weights,
            bias: bias[0],
            config,
            provenance: meta.provenance,
        })
    }

    fn provenance(&self) -> &Provenance {
        &self.provenance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newton_reaches_the_optimum_of_the_regularised_objective() {
        // y depends on the first input only; the second is noise.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut s = 12345u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        for _ in 0..400 {
            let (a, b) = (next(), next());
            x.extend([a, b]);
            y.push(f64::from(a + 0.3 * next() > 0.0));
        }
        let f = fit(&x, 2, &y, 1.0).unwrap();
        assert!(f.weights[0] > 2.0 && f.weights[1].abs() < 0.5, "{f:?}");
        // At the optimum the gradient vanishes: w = -C sum((p - y) x).
        let mut g = [0.0; 3];
        for i in 0..400 {
            let p = sigmoid(f.weights[0] * x[2 * i] + f.weights[1] * x[2 * i + 1] + f.bias);
            g[0] += (p - y[i]) * x[2 * i];
            g[1] += (p - y[i]) * x[2 * i + 1];
            g[2] += p - y[i];
        }
        assert!((f.weights[0] + g[0]).abs() < 1e-8 && (f.weights[1] + g[1]).abs() < 1e-8 && g[2].abs() < 1e-8);
        assert!(accuracy(&f, &x, &y) > 0.75);
        // Stronger regularisation shrinks the weights.
        let small = fit(&x, 2, &y, 0.001).unwrap();
        assert!(small.weights[0].abs() < f.weights[0].abs() / 2.0);
        assert!(fit(&x, 2, &y, 0.0).is_err());
        assert!(fit(&x[..5], 2, &y, 1.0).is_err());
    }

    #[test]
    fn the_agent_trades_the_band_and_survives_a_save() {
        let config = LogisticConfig {
            features: 2,
            lags: 1,
            band: 0.05,
            c: 1.0,
            train_accuracy: 0.6,
            validation_accuracy: Some(0.55),
        };
        let fit = Fit {
            weights: vec![1.0, 0.0],
            bias: 0.0,
            iterations: 1,
        };
        let mut agent = LogisticAgent::new(config, &fit).unwrap();
        let decide = |agent: &mut LogisticAgent, last: f32, mask: [bool; 5]| {
            let window = [9.0, 9.0, last, 0.0];
            agent
                .select_action(
                    &AgentInput {
                        window: &window,
                        account: [0.0; 3],
                        mask,
                        market: MarketKey {
                            instrument: 0,
                            timeframe: 0,
                        },
                    },
                    true,
                )
                .unwrap()
                .action
        };
        let all = [true; 5];
        // p = sigmoid(x): 0.6 long, 0.4 short, inside 0.45..0.55 flat.
        assert_eq!(decide(&mut agent, 0.41, all), Action::BuyLong);
        assert_eq!(decide(&mut agent, -0.41, all), Action::SellShort);
        assert_eq!(decide(&mut agent, 0.1, all), Action::Hold);
        assert_eq!(decide(&mut agent, -0.41, [true, false, true, true, true]), Action::Hold);
        let dir = tempfile::tempdir().unwrap();
        agent.save(dir.path()).unwrap();
        let mut loaded = LogisticAgent::load(dir.path()).unwrap();
        assert_eq!(loaded.config, agent.config);
        for x in [-1.0, -0.2, 0.0, 0.19, 0.3, 2.0] {
            assert_eq!(decide(&mut loaded, x, all), decide(&mut agent, x, all));
        }
    }
}
