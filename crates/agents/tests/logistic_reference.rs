//! The logistic-regression baseline's fit against scikit-learn's
//! `LogisticRegression` (lbfgs, L2, the same C) on the same data, produced
//! by `scripts/reference/logistic_reference.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use tradelab_agents::logistic::{accuracy, fit};

#[derive(Deserialize)]
struct Reference {
    cases: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    d: usize,
    x: Vec<f64>,
    y: Vec<f64>,
    fits: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    c: f64,
    weights: Vec<f64>,
    bias: f64,
    accuracy: f64,
}

#[test]
fn coefficients_and_accuracy_match_scikit_learn() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logistic/reference.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(r.cases.len(), 2);
    for (name, case) in &r.cases {
        for e in &case.fits {
            let f = fit(&case.x, case.d, &case.y, e.c).unwrap();
            for (i, (got, want)) in f.weights.iter().zip(&e.weights).enumerate() {
                assert!(
                    (got - want).abs() < 1e-6 * (1.0 + want.abs()),
                    "{name} C={}: weight {i}: tradelab {got} vs scikit-learn {want}",
                    e.c
                );
            }
            assert!(
                (f.bias - e.bias).abs() < 1e-6,
                "{name} C={}: bias {} vs {}",
                e.c,
                f.bias,
                e.bias
            );
            assert_eq!(accuracy(&f, &case.x, &case.y), e.accuracy, "{name} C={}", e.c);
        }
    }
}
