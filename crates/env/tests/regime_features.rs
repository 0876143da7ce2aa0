//! Regime probabilities as observation features (`regime.features`): the
//! columns are added, fitted on the training split, and never read the
//! future.

use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_env::Split;
use tradelab_testkit::EnvSections;

fn settings(on: bool) -> EnvSections {
    let mut s = EnvSections::default();
    s.env.window = 16;
    s.regime.features = on;
    s
}

#[test]
fn regime_columns_are_added_and_causal() {
    let series = generate(&SyntheticConfig {
        bars: 3000,
        seed: 4,
        ..Default::default()
    })
    .series;
    let plain = settings(false).market_data(series.clone()).unwrap();
    let data = settings(true).market_data(series.clone()).unwrap();
    assert!(!plain.feature_names.iter().any(|n| n.starts_with("regime_")));
    let extra: Vec<&String> = data.feature_names.iter().filter(|n| n.starts_with("regime_")).collect();
    assert_eq!(extra, ["regime_p0", "regime_p1", "regime_p2", "regime_p3"]);
    assert_eq!(data.n_features(), plain.n_features() + 8);
    let specialists = &data.feature_names[plain.n_features() + 4..];
    assert_eq!(specialists, tradelab_env::SPECIALIST_COLUMNS);
    // Probabilities are observed unscaled: each bar's regime probabilities
    // and its specialist weights sum to one.
    let nf = data.n_features();
    let t = data.bars(Split::Validation).start;
    let row = &data.window(t)[(data.window_len() - 1) * nf..];
    let p = plain.n_features();
    let sum = |r: &[f32]| r.iter().sum::<f32>();
    assert!((sum(&row[p..p + 4]) - 1.0).abs() < 1e-4, "{:?}", &row[p..]);
    assert!((sum(&row[p + 4..]) - 1.0).abs() < 1e-4, "{:?}", &row[p..]);

    // Bars after t (here: in the test split) change nothing up to t.
    let mut altered = series.clone();
    let cut = data.bars(Split::Test).start + 100;
    for c in altered.close[cut..].iter_mut() {
        *c *= 1.7;
    }
    for i in cut..altered.len() {
        altered.open[i] = altered.close[i];
        altered.high[i] = altered.close[i] * 1.01;
        altered.low[i] = altered.close[i] * 0.99;
    }
    let moved = settings(true).market_data(altered).unwrap();
    let t = cut - 1;
    assert_eq!(
        data.window(t),
        moved.window(t),
        "an observation before the change moved"
    );
    assert_ne!(data.window(cut + 50), moved.window(cut + 50));
}

#[test]
fn a_regime_model_that_cannot_be_fitted_is_named() {
    let series = generate(&SyntheticConfig {
        bars: 3000,
        seed: 4,
        ..Default::default()
    })
    .series;
    let mut s = settings(true);
    s.regime.vol_window = 2000;
    s.regime.trend_window = 2000;
    let Err(e) = s.market_data(series) else {
        panic!("a 2000-bar regime window cannot be fitted on this training split")
    };
    let e = e.to_string();
    assert!(e.contains("regime.features") && e.contains("SYNTH"), "{e}");
}
