//! The boosted-trees baseline against scikit-learn's
//! `HistGradientBoostingClassifier` with the same growth settings on the
//! same data (`scripts/reference/gbt_reference.py`). The two bin and grow
//! trees differently, so the comparison is out-of-sample accuracy.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use tradelab_agents::gbt::{accuracy, fit, Growth};

#[derive(Deserialize)]
struct Reference {
    cases: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    d: usize,
    x_train: Vec<f32>,
    y_train: Vec<f64>,
    x_test: Vec<f32>,
    y_test: Vec<f64>,
    fits: Vec<Fit>,
    logistic_test_accuracy: f64,
}

#[derive(Deserialize)]
struct Fit {
    trees: usize,
    test_accuracy: f64,
}

#[test]
fn out_of_sample_accuracy_matches_scikit_learns_histogram_boosting() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gbt/reference.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let growth = Growth {
        depth: 3,
        learning_rate: 0.1,
        bins: 32,
        min_leaf: 20,
        l2: 1.0,
    };
    for (name, c) in &r.cases {
        let most = c.fits.iter().map(|f| f.trees).max().unwrap();
        let booster = fit(&c.x_train, c.d, &c.y_train, most, &growth).unwrap();
        for f in &c.fits {
            let ours = accuracy(&booster.truncated(f.trees), &c.x_test, c.d, &c.y_test);
            eprintln!(
                "{name}, {} trees: tradelab {ours:.4}, scikit-learn {:.4}",
                f.trees, f.test_accuracy
            );
            assert!(
                (ours - f.test_accuracy).abs() <= 0.03,
                "{name}, {} trees: tradelab {ours:.3} vs scikit-learn {:.3}",
                f.trees,
                f.test_accuracy
            );
        }
        // The interaction is out of a linear model's reach: trees must beat it.
        let ours = accuracy(&booster, &c.x_test, c.d, &c.y_test);
        assert!(
            ours > c.logistic_test_accuracy + 0.1,
            "{ours} vs logistic {}",
            c.logistic_test_accuracy
        );
    }
}
