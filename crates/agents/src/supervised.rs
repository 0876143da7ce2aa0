//! Fitting the supervised baselines on the pooled train splits of every
//! market: a logistic regression per strength in `logreg.c_grid`, or one
//! boosting run cut at each size in `gbt.trees`. Each candidate is traded
//! greedily over the validation splits and scored as checkpoints are
//! (`ppo.selection`); the best is kept. The test split is never read.

use crate::agent::Agent;
use crate::gbt::{self, GbtAgent, GbtConfig, Growth};
use crate::logistic::{accuracy, fit, samples, LogisticAgent, LogisticConfig};
use crate::metadata::{Provenance, ValidationMetrics};
use crate::settings::{GbtSettings, LogRegSettings};
use crate::trainer::{validate, Scoring, TrainingMarket};
use crate::AgentError;
use tradelab_env::{EnvConfig, Split};

/// One candidate tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// What distinguishes it: `C 0.1`, `300 trees`.
    pub label: String,
    /// Directions predicted right on the train and validation splits.
    pub train_accuracy: f64,
    /// See [`train_accuracy`](Self::train_accuracy); none without a
    /// validation split.
    pub validation_accuracy: Option<f64>,
    /// Its trading on validation, after costs.
    pub validation: ValidationMetrics,
}

/// The best logistic regression for `markets` (decisions read as
/// targets: `env` must use target actions), and every candidate.
pub fn fit_logistic(
    markets: &[TrainingMarket],
    env: &EnvConfig,
    settings: &LogRegSettings,
    scoring: Scoring,
) -> Result<(LogisticAgent, Vec<Candidate>), AgentError> {
    let (features, lags) = shape(markets, settings.lags)?;
    let (x, y) = pooled(markets, Split::Train, lags);
    let (vx, vy) = pooled(markets, Split::Validation, lags);
    if y.len() < 10 {
        return Err(AgentError::Invalid(format!(
            "the train splits hold {} bars to learn from; the logistic regression needs at least 10",
            y.len()
        )));
    }
    let mut tried = Vec::new();
    for &c in &settings.c_grid {
        let f = fit(&x, features * lags, &y, c)?;
        let config = LogisticConfig {
            features,
            lags,
            band: settings.band,
            c,
            train_accuracy: accuracy(&f, &x, &y),
            validation_accuracy: (!vy.is_empty()).then(|| accuracy(&f, &vx, &vy)),
        };
        let accuracies = (config.train_accuracy, config.validation_accuracy);
        tried.push((format!("C {c}"), accuracies, LogisticAgent::new(config, &f)?));
    }
    keep_best(tried, markets, env, scoring, |a| &mut a.provenance)
}

/// Trades every fitted candidate over the validation splits and keeps the
/// one `scoring` prefers (its validation recorded in its provenance), with
/// what each candidate did. `tried` holds (label, (train accuracy,
/// validation accuracy), model).
#[allow(clippy::type_complexity)]
fn keep_best<A: Agent>(
    tried: Vec<(String, (f64, Option<f64>), A)>,
    markets: &[TrainingMarket],
    env: &EnvConfig,
    scoring: Scoring,
    provenance: fn(&mut A) -> &mut Provenance,
) -> Result<(A, Vec<Candidate>), AgentError> {
    let mut best: Option<(A, ValidationMetrics)> = None;
    let mut candidates = Vec::with_capacity(tried.len());
    for (label, (train_accuracy, validation_accuracy), mut agent) in tried {
        let v = validate(&mut agent, markets, env, scoring, 0)?;
        candidates.push(Candidate {
            label,
            train_accuracy,
            validation_accuracy,
            validation: v.clone(),
        });
        if scoring.improves(&v, best.as_ref().map(|b| &b.1)) {
            best = Some((agent, v));
        }
    }
    let (mut agent, v) = best.ok_or_else(|| AgentError::Invalid("no candidate to choose from".into()))?;
    let p = provenance(&mut agent);
    p.best_validation = Some(v.clone());
    p.validation = Some(v);
    Ok((agent, candidates))
}

/// Features per row and the window rows to use (at most the window).
fn shape(markets: &[TrainingMarket], lags: usize) -> Result<(usize, usize), AgentError> {
    let first = markets
        .first()
        .ok_or_else(|| AgentError::Invalid("no market to fit on".into()))?;
    Ok((first.data.n_features(), lags.min(first.data.window_len())))
}

/// Inputs and labels of `split`, market after market.
fn pooled(markets: &[TrainingMarket], split: Split, lags: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for m in markets {
        let (mx, my) = samples(&m.data, split, lags);
        x.extend(mx);
        y.extend(my);
    }
    (x, y)
}

/// The best boosted-trees model for `markets` (decisions read as
/// targets: `env` must use target actions), and every ensemble size tried.
pub fn fit_gbt(
    markets: &[TrainingMarket],
    env: &EnvConfig,
    settings: &GbtSettings,
    scoring: Scoring,
) -> Result<(GbtAgent, Vec<Candidate>), AgentError> {
    let (features, lags) = shape(markets, settings.lags)?;
    let d = features * lags;
    // The inputs were f32 windows: the conversion back is exact.
    let as_f32 = |x: Vec<f64>| x.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
    let (x, y) = pooled(markets, Split::Train, lags);
    let (vx, vy) = pooled(markets, Split::Validation, lags);
    let (x, vx) = (as_f32(x), as_f32(vx));
    let growth = Growth {
        depth: settings.depth,
        learning_rate: settings.learning_rate,
        bins: settings.bins,
        min_leaf: settings.min_leaf,
        l2: settings.l2,
    };
    let mut sizes = settings.trees.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let most = *sizes
        .last()
        .ok_or_else(|| AgentError::Invalid("gbt.trees is empty".into()))?;
    let full = gbt::fit(&x, d, &y, most, &growth)?;
    let mut tried = Vec::new();
    for trees in sizes {
        let booster = full.truncated(trees);
        let config = GbtConfig {
            features,
            lags,
            band: settings.band,
            growth,
            trees,
            train_accuracy: gbt::accuracy(&booster, &x, d, &y),
            validation_accuracy: (!vy.is_empty()).then(|| gbt::accuracy(&booster, &vx, d, &vy)),
        };
        let accuracies = (config.train_accuracy, config.validation_accuracy);
        tried.push((format!("{trees} trees"), accuracies, GbtAgent::new(config, booster)));
    }
    keep_best(tried, markets, env, scoring, |a| &mut a.provenance)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tradelab_env::ActionSpace;
    use tradelab_testkit::synthetic_market;

    use super::*;
    use crate::metadata::MarketKey;
    use crate::testing::TestSettings;

    #[test]
    fn the_strength_with_the_best_validation_score_is_kept_and_it_trades_targets() {
        let s = TestSettings::default();
        let data: Arc<_> = synthetic_market(3000, 11, &s.sections);
        let mut env = s.env_config();
        env.env.actions = ActionSpace::Target;
        let markets = vec![TrainingMarket {
            data,
            key: MarketKey {
                instrument: 0,
                timeframe: 0,
            },
        }];
        let settings = LogRegSettings {
            c_grid: vec![1e-4, 1.0],
            ..Default::default()
        };
        let (agent, candidates) = fit_logistic(&markets, &env, &settings, Scoring::default()).unwrap();
        assert_eq!(candidates.len(), 2);
        let best = candidates
            .iter()
            .find(|c| c.label == format!("C {}", agent.config.c))
            .expect("the kept strength is a candidate");
        for c in &candidates {
            assert!(c.validation.score <= best.validation.score, "{candidates:?}");
            assert!((0.3..0.8).contains(&c.train_accuracy), "{c:?}");
        }
        assert_eq!(agent.provenance.best_validation.as_ref(), Some(&best.validation));
        assert_eq!(agent.config.features, markets[0].data.n_features());

        let gbt = GbtSettings {
            trees: vec![40, 5],
            ..Default::default()
        };
        let (agent, candidates) = fit_gbt(&markets, &env, &gbt, Scoring::default()).unwrap();
        let labels: Vec<&str> = candidates.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, vec!["5 trees", "40 trees"], "sizes tried smallest first");
        let kept = candidates
            .iter()
            .find(|c| c.label == format!("{} trees", agent.config.trees))
            .unwrap();
        assert!(candidates.iter().all(|c| c.validation.score <= kept.validation.score));
        assert!(
            candidates[1].train_accuracy >= candidates[0].train_accuracy,
            "{candidates:?}"
        );
    }
}
