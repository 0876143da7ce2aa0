//! Issue 21: one observation path for training and trading. Raw bars fed
//! through `window_from_bars` with a market's training statistics give the
//! environment's observation bit for bit; too few bars are refused with
//! how many to send.

use std::path::PathBuf;

use tradelab_data::{load_file, LoadOptions};
use tradelab_env::{window_from_bars, Split};
use tradelab_testkit::EnvSections;

#[test]
fn raw_bars_give_the_environments_observation_bit_for_bit() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/raw/orcl-1995-2014.txt");
    let (series, _) = load_file(&path, &LoadOptions::default()).unwrap();
    let sections = EnvSections::default();
    let data = sections.market_data(series.clone()).unwrap();
    let window = data.window_len();
    let build = |bars: &tradelab_core::BarSeries, names: &[String]| {
        window_from_bars(bars, &sections.features, names, &data.mean, &data.std, window)
    };
    for split in [Split::Validation, Split::Test] {
        for t in [data.steps(split).start, data.steps(split).end - 1] {
            let got = build(&series.slice(0, t + 1), &data.feature_names).unwrap();
            let want = data.window(t);
            assert_eq!(got.len(), want.len());
            let same = got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "bar {t}: the observation differs");
        }
    }
    // Too few bars for the indicators to warm up before the window.
    let e = build(&series.slice(0, window + 5), &data.feature_names).unwrap_err();
    assert!(e.contains("still warming up") && e.contains("send at least"), "{e}");
    let e = build(&series.slice(0, 3), &data.feature_names).unwrap_err();
    assert!(e.contains(&format!("reads a window of {window}")), "{e}");
    let e = build(&series, &data.feature_names[1..]).unwrap_err();
    assert!(e.contains("regime features"), "{e}");
}

#[test]
fn a_stream_of_bars_gives_the_environments_observation_at_every_bar() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/raw/orcl-1995-2014.txt");
    let (series, _) = load_file(&path, &LoadOptions::default()).unwrap();
    let sections = EnvSections::default();
    let data = sections.market_data(series.clone()).unwrap();
    let window = data.window_len();
    let mut stream =
        tradelab_env::StreamingWindow::new(&sections.features, &data.feature_names, &data.mean, &data.std, window)
            .unwrap();
    let mut compared = 0;
    for t in 0..series.len() {
        stream.push(&series.bar(t));
        match stream.window() {
            None => assert!(t + 1 < window),
            Some(got) => {
                let want = data.window(t);
                let same = got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "bar {t}: the streamed observation differs");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, series.len() + 1 - window);
    assert_eq!(stream.bars(), series.len());
    // Regime columns cannot be streamed, and the statistics must fit.
    let short = &data.feature_names[1..];
    let e = tradelab_env::StreamingWindow::new(&sections.features, short, &data.mean, &data.std, window).unwrap_err();
    assert!(e.contains("regime features"), "{e}");
    let e = tradelab_env::StreamingWindow::new(
        &sections.features,
        &data.feature_names,
        &data.mean[1..],
        &data.std,
        window,
    )
    .unwrap_err();
    assert!(e.contains("retrain"), "{e}");
}
