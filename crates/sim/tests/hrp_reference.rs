//! Hierarchical risk parity and Ledoit-Wolf shrinkage against independent
//! implementations: scikit-learn's `ledoit_wolf` and PyPortfolioOpt's
//! `HRPOpt`, whose outputs on seeded returns (and on the bundled stocks)
//! `scripts/reference/hrp_reference.py` wrote into the fixture.

use std::path::PathBuf;

use tradelab_sim::portfolio::{hrp, ledoit_wolf};

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn shrinkage_and_weights_match_scikit_learn_and_pyportfolioopt() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hrp/reference.json");
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let assets = case["assets"].as_u64().unwrap() as usize;
        let returns = numbers(&case["returns"]);
        let shrunk = ledoit_wolf(&returns, assets).unwrap();
        let want_shrinkage = case["shrinkage"].as_f64().unwrap();
        assert!(
            (shrunk.shrinkage - want_shrinkage).abs() < 1e-10,
            "{name}: shrinkage {} vs scikit-learn {want_shrinkage}",
            shrunk.shrinkage
        );
        let want_cov = numbers(&case["covariance"]);
        let scale = want_cov.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (k, (a, b)) in shrunk.covariance.iter().zip(&want_cov).enumerate() {
            assert!((a - b).abs() <= 1e-10 * scale, "{name}: covariance[{k}] {a} vs {b}");
        }
        let want = numbers(&case["weights"]);
        // On PyPortfolioOpt's own input, and end to end on ours.
        for cov in [&want_cov, &shrunk.covariance] {
            let got = hrp(cov).unwrap();
            for (k, (a, b)) in got.weights.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-9, "{name}: weight {k} {a} vs HRPOpt {b}");
            }
            assert!((got.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(got.weights.iter().all(|w| *w > 0.0));
        }
    }
}
