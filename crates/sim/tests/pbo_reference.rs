//! The probability of backtest overfitting against an independent
//! implementation written from the paper (numpy and itertools), produced by
//! `scripts/reference/pbo_reference.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use tradelab_sim::stats::pbo::probability_of_overfitting;

#[derive(Deserialize)]
struct Reference {
    cases: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    blocks: usize,
    returns: Vec<Vec<f64>>,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    pbo: f64,
    mean_logit: f64,
    probability_of_loss: f64,
    mean_in_sample_sharpe: f64,
    mean_out_of_sample_sharpe: f64,
    splits: usize,
}

fn close(case: &str, what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1e-9),
        "{case}.{what}: tradelab {got} vs reference {want}"
    );
}

#[test]
fn cscv_matches_the_reference_implementation() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pbo/reference.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(r.cases.len(), 3);
    for (name, c) in &r.cases {
        let o = probability_of_overfitting(&c.returns, c.blocks).unwrap();
        assert_eq!(o.splits, c.expected.splits, "{name}");
        // Shares of whole splits: the same decisions, so equal exactly.
        assert_eq!(o.pbo, c.expected.pbo, "{name}.pbo");
        assert_eq!(o.probability_of_loss, c.expected.probability_of_loss, "{name}");
        close(name, "mean_logit", o.mean_logit, c.expected.mean_logit);
        close(
            name,
            "in-sample",
            o.mean_in_sample_sharpe,
            c.expected.mean_in_sample_sharpe,
        );
        close(
            name,
            "out-of-sample",
            o.mean_out_of_sample_sharpe,
            c.expected.mean_out_of_sample_sharpe,
        );
    }
}
