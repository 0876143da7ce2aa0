//! The regime model on data with known states: parameter recovery, BIC's
//! choice, causality of the filter, recovery after switches, and filtered
//! accuracy on the synthetic regime generator.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tradelab_data::synthetic::{generate, Regime, SyntheticConfig};
use tradelab_regime::filter::RegimeFilter;
use tradelab_regime::hmm::GaussianHmm;
use tradelab_regime::{RegimeConfig, RegimeDetector};

fn truth(states: usize) -> GaussianHmm {
    // Well separated means in 2 dimensions, sticky transitions.
    let mut transition = vec![0.05 / (states - 1) as f64; states * states];
    for k in 0..states {
        transition[k * states + k] = 0.95;
    }
    GaussianHmm {
        states,
        dims: 2,
        start: vec![1.0 / states as f64; states],
        transition,
        means: (0..states).flat_map(|k| [3.0 * k as f64, -1.5 * k as f64]).collect(),
        variances: (0..states).flat_map(|k| [0.5 + 0.5 * k as f64, 1.0]).collect(),
    }
}

fn sample(model: &GaussianHmm, n: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let mut a = ChaCha8Rng::seed_from_u64(seed);
    let mut b = ChaCha8Rng::seed_from_u64(seed + 1);
    model.sample(n, || StandardNormal.sample(&mut a), || b.random::<f64>())
}

#[test]
fn baum_welch_recovers_a_known_model() {
    let true_model = truth(3);
    let (data, _) = sample(&true_model, 4000, 7);
    let fit = GaussianHmm::fit(&data, 2, 3, 0, 300, 1e-8).unwrap().model.sorted_by(0);
    for k in 0..3 {
        for f in 0..2 {
            let (m, t) = (fit.means[k * 2 + f], true_model.means[k * 2 + f]);
            assert!((m - t).abs() < 0.15, "mean {k},{f}: {m} vs {t}");
        }
        let stay = fit.transition[k * 3 + k];
        assert!((stay - 0.95).abs() < 0.03, "stay {k}: {stay}");
    }
    // EM never lowers the likelihood: the fit beats its own start and
    // matches the true model's likelihood closely.
    let ll_fit = fit.log_likelihood(&data);
    let ll_true = true_model.log_likelihood(&data);
    assert!(ll_fit >= ll_true - 1.0, "{ll_fit} vs {ll_true}");
}

#[test]
fn bic_chooses_the_true_number_of_states() {
    for states in [2, 3] {
        let (data, _) = sample(&truth(states), 3000, 11 + states as u64);
        let (model, scores) = GaussianHmm::select(&data, 2, 1..=4, 0, 300, 1e-8).unwrap();
        assert_eq!(model.states, states, "BIC scores: {scores:?}");
        // Ordered by feature 0 after selection.
        assert!(model
            .means
            .chunks(2)
            .map(|m| m[0])
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0] <= w[1]));
    }
}

#[test]
fn the_forward_filter_matches_a_brute_force_posterior_on_a_short_sequence() {
    // p(s_t | x_1..t) by enumerating every state path of length 6.
    let model = truth(2);
    let (data, _) = sample(&model, 6, 3);
    let mut filter = RegimeFilter::new(model.clone(), 0.0);
    let mut e = [0.0; 2];
    for t in 0..6 {
        let got = filter.update(&data[t * 2..t * 2 + 2]).to_vec();
        let mut joint = [0.0f64; 2];
        for path in 0..(1usize << (t + 1)) {
            let mut p = 1.0;
            for u in 0..=t {
                let s = (path >> u) & 1;
                p *= if u == 0 {
                    model.start[s]
                } else {
                    model.transition[((path >> (u - 1)) & 1) * 2 + s]
                };
                model.log_emissions(&data[u * 2..u * 2 + 2], &mut e);
                p *= e[s].exp();
            }
            joint[(path >> t) & 1] += p;
        }
        let total = joint[0] + joint[1];
        for s in 0..2 {
            assert!((got[s] - joint[s] / total).abs() < 1e-12, "t={t} s={s}");
        }
    }
}

#[test]
fn filtered_probabilities_never_change_when_the_future_does() {
    let m = generate(&SyntheticConfig {
        bars: 1500,
        seed: 5,
        ..Default::default()
    });
    let close = &m.series.close;
    let detector = RegimeDetector::fit(&close[..1000], &RegimeConfig::default()).unwrap();
    let before = detector.filter(close);
    let mut altered = close.clone();
    for (i, c) in altered[1200..].iter_mut().enumerate() {
        *c *= 1.0 + 0.3 * ((i % 5) as f64 - 2.0) / 2.0;
    }
    let after = detector.filter(&altered);
    let k = detector.states();
    assert_eq!(before[..1200 * k], after[..1200 * k], "a past probability moved");
    assert_ne!(before[1200 * k..], after[1200 * k..]);
}

#[test]
fn the_floor_lets_the_filter_recover_after_a_long_calm() {
    let model = truth(2);
    let mut filter = RegimeFilter::new(model.clone(), 1e-6);
    for _ in 0..500 {
        filter.update(&[0.0, 0.0]);
    }
    assert!(filter.probabilities()[0] > 0.999);
    // Observations typical of state 1: within a few bars it is believed.
    let mut bars = 0;
    while filter.update(&[3.0, -1.5])[1] < 0.9 {
        bars += 1;
        assert!(bars < 5, "the filter did not recover");
    }
    let mut next = [0.0; 2];
    filter.predictive(&mut next);
    assert!((next.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

/// On the synthetic generator's four regimes (a sticky chain, 50-bar mean
/// stay), fitted on the first 60% and filtered on the rest: each HMM state
/// is mapped to the true regime it most often coincides with on the
/// training window, and the accuracy is measured out of sample.
#[test]
fn filtered_regimes_match_the_generator_out_of_sample() {
    let mut accuracies = Vec::new();
    for seed in [1u64, 2, 3] {
        let m = generate(&SyntheticConfig {
            bars: 5000,
            seed,
            ..Default::default()
        });
        let close = &m.series.close;
        let split = 3000;
        let config = RegimeConfig {
            min_states: 4,
            max_states: 4,
            ..Default::default()
        };
        let det = RegimeDetector::fit(&close[..split], &config).unwrap();
        let k = det.states();
        let probs = det.filter(close);
        let argmax = |t: usize| {
            (0..k)
                .max_by(|&a, &b| probs[t * k + a].total_cmp(&probs[t * k + b]))
                .unwrap()
        };
        let index = |r: Regime| Regime::ALL.iter().position(|x| *x == r).unwrap();
        let mut counts = vec![[0usize; 4]; k];
        for t in det.warm_up()..split {
            counts[argmax(t)][index(m.regimes[t])] += 1;
        }
        let label: Vec<usize> = counts.iter().map(|c| (0..4).max_by_key(|&r| c[r]).unwrap()).collect();
        let hits = (split..close.len())
            .filter(|&t| label[argmax(t)] == index(m.regimes[t]))
            .count();
        accuracies.push(hits as f64 / (close.len() - split) as f64);
        // The calmest state is the sideways regime, the wildest the volatile one.
        assert_eq!(Regime::ALL[label[0]], Regime::Sideways, "seed {seed}: {counts:?}");
        assert_eq!(
            Regime::ALL[label[k - 1]],
            Regime::HighVolatility,
            "seed {seed}: {counts:?}"
        );
    }
    let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
    eprintln!("filtered out-of-sample accuracy on 4 regimes: {accuracies:?}, mean {mean:.3}");
    // Measured: 79.7% (seeds 1-3: 79.1, 80.4, 79.6). Chance is 25%; bull and bear differ by 0.8 vs -1.0 bp of drift a bar
    // and 1.0% vs 1.5% volatility, which a causal filter only partly tells apart.
    assert!(mean > 0.7, "{accuracies:?}");
}
