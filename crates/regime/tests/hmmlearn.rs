//! hmmlearn (PyPI) as an independent reference: the same parameters give
//! the same log-likelihood, and the same start gives the same parameters
//! after Baum-Welch iterations. Runs when `TRADELAB_TEST_HMMLEARN` names a
//! Python with hmmlearn (`.ci/run` installs one from
//! scripts/reference/requirements-regime.txt).

use std::path::Path;
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::{json, Value};
use tradelab_regime::hmm::GaussianHmm;

fn rows(flat: &[f64], d: usize) -> Vec<Vec<f64>> {
    flat.chunks(d).map(|c| c.to_vec()).collect()
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        x => vec![x.as_f64().unwrap()],
    }
}

#[test]
fn likelihood_and_baum_welch_agree_with_hmmlearn() {
    let Some(python) = std::env::var("TRADELAB_TEST_HMMLEARN").ok().filter(|p| !p.is_empty()) else {
        eprintln!("skipped: set TRADELAB_TEST_HMMLEARN to a Python with hmmlearn");
        return;
    };
    let truth = GaussianHmm {
        states: 3,
        dims: 2,
        start: vec![0.5, 0.3, 0.2],
        transition: vec![0.9, 0.05, 0.05, 0.1, 0.85, 0.05, 0.02, 0.08, 0.9],
        means: vec![0.0, 0.0, 2.0, -1.0, -1.5, 2.5],
        variances: vec![0.5, 1.0, 1.5, 0.7, 0.9, 2.0],
    };
    let mut a = ChaCha8Rng::seed_from_u64(21);
    let mut b = ChaCha8Rng::seed_from_u64(22);
    let (data, _) = truth.sample(1500, || StandardNormal.sample(&mut a), || b.random::<f64>());
    let start = GaussianHmm::initial(&data, 2, 3, 0);
    let iterations = 5;
    let ours = GaussianHmm::fit(&data, 2, 3, 0, iterations, 0.0).unwrap();
    assert_eq!(ours.iterations, iterations);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hmm.json");
    std::fs::write(
        &input,
        json!({
            "data": rows(&data, 2),
            "start": start.start,
            "transition": rows(&start.transition, 3),
            "means": rows(&start.means, 2),
            "variances": rows(&start.variances, 2),
            "iterations": iterations,
        })
        .to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/hmm_reference.py");
    let out = Command::new(python).arg(script).arg(&input).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();

    let ll = start.log_likelihood(&data);
    let want = reference["log_likelihood"].as_f64().unwrap();
    assert!(
        (ll - want).abs() < 1e-8 * want.abs(),
        "log-likelihood {ll} vs hmmlearn {want}"
    );
    for (name, got) in [
        ("start", &ours.model.start),
        ("transition", &ours.model.transition),
        ("means", &ours.model.means),
        ("variances", &ours.model.variances),
    ] {
        let want = flat(&reference[name]);
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() < 1e-8 * (1.0 + w.abs()),
                "{name}[{i}]: {g} vs hmmlearn {w}"
            );
        }
    }
}
