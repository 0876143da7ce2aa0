//! `tradelab bench chart`: what the dashboard's chart routes cost on a
//! long file, step by step as `price_routes` and `regime_routes` run them:
//! the first request parses and validates the file; later ones find it
//! kept and only bucket it into candles and write the JSON; a zoom buckets
//! a window; the regime chart's first request fits the HMM on the training
//! split (once, then kept with the file). HTTP and auth are left out: they
//! cost the same for any file.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use tradelab_app::regimes::{MarketRegimes, WAITED_FIT_BARS};
use tradelab_app::Settings;
use tradelab_core::BarSeries;
use tradelab_data::downsample::{bucket_means, candles, time_range};
use tradelab_data::load::{load_file, LoadOptions};
use tradelab_server::price_routes::{Candle, DEFAULT_POINTS};

use super::bench::{random_walk, time_it};

/// The candles of `range` as the bars route writes them.
fn candles_json(series: &BarSeries, range: std::ops::Range<usize>) -> usize {
    let out: Vec<Candle> = candles(series, range, DEFAULT_POINTS)
        .into_iter()
        .map(Candle::from)
        .collect();
    serde_json::to_vec(&out).map_or(0, |v| v.len())
}

pub fn run(settings: &Settings, bars: usize, repeats: usize) -> Result<()> {
    let series = random_walk(bars, settings.seed, "CHART");
    let dir = std::env::temp_dir().join(format!("tradelab-bench-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("chart.csv");
    let bytes = super::bench::write_ohlcv_csv(&path, &series)?;
    println!(
        "median of {repeats} runs after a warm-up, one thread (the regime fit: one per state count tried); {bars} one-minute bars, {bytes} bytes of CSV"
    );

    let first = |p: &Path| load_file(p, &LoadOptions::default()).map_or(0, |(s, _)| candles_json(&s, 0..s.len()));
    let (med, min, json) = time_it(repeats.min(5), || first(&path) as f64);
    let _ = std::fs::remove_dir_all(&dir);
    if json == 0.0 {
        bail!("the chart benchmark's file did not load");
    }
    report("chart_first_request", bars, med, min, json);
    let (med, min, json) = time_it(repeats, || candles_json(&series, 0..series.len()) as f64);
    report("chart_kept_file", bars, med, min, json);
    // A zoom into the middle tenth of the file.
    let (from, to) = (series.ts[bars * 45 / 100], series.ts[bars * 55 / 100]);
    let (med, min, json) = time_it(repeats, || {
        candles_json(&series, time_range(&series, Some(from), Some(to))) as f64
    });
    report("chart_zoom_10pct", bars / 10, med, min, json);

    // The whole training split once (what `tradelab regimes` fits), then
    // the dashboard's bounded window.
    let start = Instant::now();
    let whole = MarketRegimes::fit(&series.close, settings.env.train_fraction, &settings.regime)?;
    let fit = start.elapsed().as_secs_f64();
    println!(
        "{{\"tool\":\"tradelab\",\"bench\":\"regimes_whole_training_split\",\"bars\":{bars},\"training_bars\":{},\"states\":{},\"once_s\":{fit:.3}}}",
        whole.training_bars,
        whole.state_count()
    );
    let fit_latest = || {
        MarketRegimes::fit_latest(
            &series.close,
            settings.env.train_fraction,
            &settings.regime,
            WAITED_FIT_BARS,
        )
    };
    let regimes = fit_latest()?;
    let (med, min, json) = time_it(repeats.min(5), || fit_latest().map_or(0.0, |r| r.state_count() as f64));
    println!(
        "{{\"tool\":\"tradelab\",\"bench\":\"regimes_first_request\",\"bars\":{bars},\"fitted_bars\":{},\"states\":{json},\"median_s\":{med:.3},\"min_s\":{min:.3}}}",
        regimes.training_bars - regimes.fitted_from
    );
    let (med, min, json) = time_it(repeats, || {
        let means = bucket_means(&regimes.probabilities, regimes.state_count(), 0..bars, DEFAULT_POINTS);
        serde_json::to_vec(&means).map_or(0.0, |v| v.len() as f64)
    });
    report("regimes_kept_fit", bars, med, min, json);
    Ok(())
}

fn report(bench: &str, bars: usize, median_s: f64, min_s: f64, json_bytes: f64) {
    println!(
        "{{\"tool\":\"tradelab\",\"bench\":\"{bench}\",\"bars\":{bars},\"median_s\":{median_s:.6},\"min_s\":{min_s:.6},\"json_bytes\":{json_bytes}}}"
    );
}
