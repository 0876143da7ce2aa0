//! Fitting the supervised baseline: a logistic regression per strength in
//! `logreg.c_grid`, on the pooled train splits of every market, each
//! traded greedily over the validation splits and scored as checkpoints
//! are (`ppo.selection`); the best is kept. The test split is never read.

use crate::logistic::{accuracy, fit, samples, LogisticAgent, LogisticConfig};
use crate::metadata::ValidationMetrics;
use crate::settings::LogRegSettings;
use crate::trainer::{validate, Scoring, TrainingMarket};
use crate::AgentError;
use tradelab_env::{EnvConfig, Split};

/// One strength tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The inverse regularisation strength.
    pub c: f64,
    /// Directions predicted right on the train and validation splits.
    pub train_accuracy: f64,
    /// See [`train_accuracy`](Self::train_accuracy).
    pub validation_accuracy: f64,
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
    let first = markets
        .first()
        .ok_or_else(|| AgentError::Invalid("no market to fit on".into()))?;
    let features = first.data.n_features();
    let lags = settings.lags.min(first.data.window_len());
    let pooled = |split: Split| {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for m in markets {
            let (mx, my) = samples(&m.data, split, lags);
            x.extend(mx);
            y.extend(my);
        }
        (x, y)
    };
    let (x, y) = pooled(Split::Train);
    let (vx, vy) = pooled(Split::Validation);
    if y.len() < 10 {
        return Err(AgentError::Invalid(format!(
            "the train splits hold {} bars to learn from; the logistic regression needs at least 10",
            y.len()
        )));
    }
    let mut best: Option<(LogisticAgent, ValidationMetrics)> = None;
    let mut candidates = Vec::new();
    for &c in &settings.c_grid {
        let f = fit(&x, features * lags, &y, c)?;
        let config = LogisticConfig {
            features,
            lags,
            band: settings.band,
            c,
            train_accuracy: accuracy(&f, &x, &y),
            validation_accuracy: if vy.is_empty() {
                f64::NAN
            } else {
                accuracy(&f, &vx, &vy)
            },
        };
        let mut agent = LogisticAgent::new(config.clone(), &f)?;
        let v = validate(&mut agent, markets, env, scoring, 0)?;
        candidates.push(Candidate {
            c,
            train_accuracy: config.train_accuracy,
            validation_accuracy: config.validation_accuracy,
            validation: v.clone(),
        });
        if scoring.improves(&v, best.as_ref().map(|b| &b.1)) {
            best = Some((agent, v));
        }
    }
    let (mut agent, v) = best.ok_or_else(|| AgentError::Invalid("logreg.c_grid is empty".into()))?;
    agent.provenance.best_validation = Some(v.clone());
    agent.provenance.validation = Some(v);
    Ok((agent, candidates))
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
            .find(|c| c.c == agent.config.c)
            .expect("the kept strength is a candidate");
        for c in &candidates {
            assert!(c.validation.score <= best.validation.score, "{candidates:?}");
            assert!((0.3..0.8).contains(&c.train_accuracy), "{c:?}");
        }
        assert_eq!(agent.provenance.best_validation.as_ref(), Some(&best.validation));
        assert_eq!(agent.config.features, markets[0].data.n_features());
    }
}
