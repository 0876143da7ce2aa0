//! Properties of the feature engine that hold for any input: causality,
//! streaming == batch, and sane behaviour at the edges (flat prices, period 1,
//! series shorter than the warm-up).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tradelab_core::{Bar, BarSeries};
use tradelab_data::features::{
    Adx, Atr, Bollinger, Ema, FeatureEngine, Macd, Obv, RealizedVolatility, Roc, Rsi, Sma, Stochastic,
};
use tradelab_data::settings::FeatureSettings;
use tradelab_testkit::alloc::{allocations, CountingAlloc};

/// Counts this thread's heap allocations, to check that `update` makes none.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// A seeded random walk of `n` OHLCV bars.
fn random_walk(n: usize, seed: u64) -> BarSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut close = 100.0f64;
    (0..n)
        .map(|i| {
            let open = close;
            close = (close * (1.0 + rng.random_range(-0.03..0.03))).max(0.01);
            let high = open.max(close) * (1.0 + rng.random_range(0.0..0.01));
            let low = open.min(close) * (1.0 - rng.random_range(0.0..0.01));
            Bar {
                ts: i as i64 * 60_000,
                open,
                high,
                low,
                close,
                volume: rng.random_range(1_000.0..50_000.0f64).round(),
            }
        })
        .collect()
}

fn defaults() -> FeatureSettings {
    FeatureSettings::default()
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn features_never_look_ahead() {
    let series = random_walk(400, 1);
    let mut engine = FeatureEngine::new(&defaults());
    let base = engine.compute(&series);
    for t in [0, 1, 13, 32, 33, 34, 57, 150, 398] {
        let mut altered = series.clone();
        for i in t + 1..altered.len() {
            let k = if i % 2 == 0 { 1.7 } else { 0.45 };
            altered.open[i] *= k;
            altered.high[i] *= k * 1.01;
            altered.low[i] *= k * 0.99;
            altered.close[i] *= k;
            altered.volume[i] = altered.volume[i] * 3.0 + 17.0;
        }
        let m = engine.compute(&altered);
        for (j, name) in base.names.iter().enumerate() {
            for row in 0..=t {
                let (a, b) = (base.columns[j][row], m.columns[j][row]);
                assert!(
                    same(a, b),
                    "{name} at row {row} changed when bars after {t} changed: {a:?} -> {b:?}"
                );
            }
            if t + 1 < series.len() && row_defined(&base, j, t + 1) {
                // Sanity check of the check: the altered bars do change the output.
                assert!(
                    (t + 1..series.len()).any(|r| !same(base.columns[j][r], m.columns[j][r])),
                    "{name}"
                );
            }
        }
    }
}

fn row_defined(m: &tradelab_data::FeatureMatrix, j: usize, row: usize) -> bool {
    m.columns[j][row].is_finite()
}

#[test]
fn streaming_equals_batch() {
    for (seed, settings) in [(2, defaults()), (3, odd_settings()), (4, period_one_settings())] {
        let series = random_walk(700, seed);
        let mut engine = FeatureEngine::new(&settings);
        let batch = engine.compute(&series);
        // A fresh engine, bar by bar...
        let mut fresh = FeatureEngine::new(&settings);
        // ... and the used one after a reset.
        engine.reset();
        let mut row = vec![f64::NAN; fresh.names().len()];
        let mut row2 = row.clone();
        for (i, bar) in series.iter().enumerate() {
            fresh.update(&bar, &mut row);
            engine.update(&bar, &mut row2);
            for (j, name) in batch.names.iter().enumerate() {
                let b = batch.columns[j][i];
                assert!(same(row[j], b), "{name} row {i}: streaming {:?}, batch {b:?}", row[j]);
                assert!(
                    same(row2[j], b),
                    "{name} row {i} after reset: {:?}, batch {b:?}",
                    row2[j]
                );
            }
        }
    }
}

#[test]
fn engine_columns_are_the_single_indicators() {
    let s = defaults();
    let series = random_walk(300, 5);
    let m = FeatureEngine::new(&s).compute(&series);
    let col = |n: &str| m.column(n).unwrap();
    let mut sma = Sma::new(s.sma_slow);
    let mut ema = Ema::new(s.ema_fast);
    let mut rsi = Rsi::new(s.rsi_period);
    let mut macd = Macd::new(s.macd_fast, s.macd_slow, s.macd_signal);
    let mut atr = Atr::new(s.atr_period);
    let mut bb = Bollinger::new(s.bollinger_period, s.bollinger_width);
    let mut roc = Roc::new(s.roc_period);
    let mut vol = RealizedVolatility::new(s.volatility_window);
    let mut st = Stochastic::new(s.stoch_k, s.stoch_slow_k, s.stoch_d);
    let mut adx = Adx::new(s.adx_period);
    let mut obv = Obv::new();
    for (i, b) in series.iter().enumerate() {
        assert!(same(sma.update(b.close), col("sma_slow")[i]));
        assert!(same(ema.update(b.close), col("ema_fast")[i]));
        assert!(same(rsi.update(b.close), col("rsi")[i]));
        assert!(same(macd.update(b.close).hist, col("macd_hist")[i]));
        assert!(same(atr.update(b.high, b.low, b.close), col("atr")[i]));
        assert!(same(bb.update(b.close).lower, col("bb_lower")[i]));
        assert!(same(roc.update(b.close), col("roc")[i]));
        assert!(same(vol.update(b.close), col("realized_vol")[i]));
        assert!(same(vol.last_return(), col("log_return")[i]));
        assert!(same(st.update(b.high, b.low, b.close).d, col("stoch_d")[i]));
        assert!(same(adx.update(b.high, b.low, b.close), col("adx")[i]));
        assert!(same(obv.update(b.close, b.volume), col("obv")[i]));
    }
}

#[test]
fn update_and_reset_do_not_allocate() {
    for settings in [defaults(), odd_settings(), period_one_settings()] {
        let bars: Vec<Bar> = random_walk(5_000, 10).iter().collect();
        let mut engine = FeatureEngine::new(&settings);
        let mut row = vec![0.0; engine.names().len()];
        let before = allocations();
        for _ in 0..2 {
            engine.reset();
            for bar in &bars {
                engine.update(bar, &mut row);
            }
        }
        assert_eq!(allocations(), before, "FeatureEngine::update or reset allocated");
        assert!(row.iter().all(|v| v.is_finite()));
        // The counter does see this thread's allocations.
        let probe = std::hint::black_box(vec![0u8; 64]);
        assert!(allocations() > before && probe.len() == 64);
    }
}

fn odd_settings() -> FeatureSettings {
    FeatureSettings {
        sma_fast: 2,
        sma_slow: 7,
        ema_fast: 3,
        ema_slow: 50,
        rsi_period: 2,
        macd_fast: 30,
        macd_slow: 5,
        macd_signal: 1,
        atr_period: 2,
        bollinger_period: 2,
        bollinger_width: 0.5,
        roc_period: 1,
        volatility_window: 2,
        stoch_k: 2,
        stoch_slow_k: 1,
        stoch_d: 5,
        adx_period: 2,
    }
}

fn period_one_settings() -> FeatureSettings {
    FeatureSettings {
        sma_fast: 1,
        sma_slow: 1,
        ema_fast: 1,
        ema_slow: 1,
        rsi_period: 1,
        macd_fast: 1,
        macd_slow: 1,
        macd_signal: 1,
        atr_period: 1,
        bollinger_period: 1,
        bollinger_width: 1.0,
        roc_period: 1,
        volatility_window: 1,
        stoch_k: 1,
        stoch_slow_k: 1,
        stoch_d: 1,
        adx_period: 1,
    }
}

#[test]
fn period_one_works_and_warms_up_in_a_bar() {
    let series = random_walk(50, 6);
    let mut engine = FeatureEngine::new(&period_one_settings());
    assert_eq!(engine.warmup_bars(), 1);
    let m = engine.compute(&series);
    assert_eq!(m.warmup(), 1);
    let close = &series.close;
    assert_eq!(m.column("sma_fast").unwrap(), &close[..]);
    assert_eq!(m.column("ema_slow").unwrap(), &close[..]);
    assert_eq!(m.column("bb_upper").unwrap(), &close[..]);
    assert!(m.column("macd").unwrap().iter().all(|&v| v == 0.0));
    assert!(m.column("realized_vol").unwrap()[1..].iter().all(|&v| v == 0.0));
    for row in 1..m.len() {
        let rsi = m.column("rsi").unwrap()[row];
        assert!(rsi == 0.0 || rsi == 100.0, "{rsi}");
        let tr = m.column("atr").unwrap()[row];
        assert!(tr >= series.high[row] - series.low[row]);
    }
}

#[test]
fn flat_prices_follow_talib_conventions() {
    let n = 120;
    let series: BarSeries = (0..n)
        .map(|i| Bar {
            ts: i as i64 * 60_000,
            open: 25.5,
            high: 25.5,
            low: 25.5,
            close: 25.5,
            volume: 300.0,
        })
        .collect();
    let mut engine = FeatureEngine::new(&defaults());
    let m = engine.compute(&series);
    let warm = engine.warmup_bars();
    assert_eq!(m.warmup(), warm, "every feature is finite after the warm-up");
    let after = |name: &str| m.column(name).unwrap()[warm..].to_vec();
    let all = |name: &str, v: f64| assert!(after(name).iter().all(|&x| x == v), "{name}: {:?}", after(name));
    // No movement: RSI 0, stochastic 0 (flat window), ADX 0 (no range).
    all("rsi", 0.0);
    all("stoch_k", 0.0);
    all("stoch_d", 0.0);
    all("adx", 0.0);
    all("atr", 0.0);
    all("macd", 0.0);
    all("macd_hist", 0.0);
    all("roc", 0.0);
    all("log_return", 0.0);
    all("realized_vol", 0.0);
    all("obv", 300.0);
    all("bb_middle", 25.5);
    all("bb_upper", 25.5);
    all("bb_lower", 25.5);
}

#[test]
fn ranges_without_direction_keep_adx_finite() {
    // High and low never move (no directional movement) but the close does:
    // TR > 0, DI = 0, so DX is undefined and TA-Lib leaves ADX at 0.
    let series: BarSeries = (0..80)
        .map(|i| {
            let c = if i % 2 == 0 { 10.2 } else { 10.8 };
            Bar {
                ts: i,
                open: c,
                high: 11.0,
                low: 10.0,
                close: c,
                volume: 1.0,
            }
        })
        .collect();
    let m = FeatureEngine::new(&defaults()).compute(&series);
    assert!(m.column("adx").unwrap()[27..].iter().all(|&v| v == 0.0));
    // Fast %K alternates 20 / 80, so the 3-bar slow %K alternates 40 / 60.
    let k = m.column("stoch_k").unwrap();
    assert!(
        k[17..]
            .iter()
            .all(|&v| (v - 40.0).abs() < 1e-9 || (v - 60.0).abs() < 1e-9),
        "{k:?}"
    );
}

#[test]
fn series_shorter_than_the_warmup_are_all_nan() {
    let s = defaults();
    let full = random_walk(40, 7);
    let mut engine = FeatureEngine::new(&s);
    for n in [0, 1, 2, 5, 14, 32, 33] {
        let m = engine.compute(&full.slice(0, n));
        assert_eq!(m.len(), n);
        assert_eq!(m.warmup(), n, "no complete row in {n} bars");
        let macd = m.column("macd").unwrap();
        assert!(macd.iter().all(|v| v.is_nan()));
        assert_eq!(m.column("obv").unwrap().len(), n);
    }
    let m = engine.compute(&full.slice(0, 34));
    assert_eq!(m.warmup(), 33);
}

#[test]
fn values_stay_in_their_ranges_on_a_long_walk() {
    let series = random_walk(20_000, 8);
    let mut engine = FeatureEngine::new(&defaults());
    let m = engine.compute(&series);
    let w = engine.warmup_bars();
    for name in ["rsi", "stoch_k", "stoch_d", "adx"] {
        let c = m.column(name).unwrap();
        assert!(
            c[w..].iter().all(|v| (-1e-9..=100.0 + 1e-9).contains(v)),
            "{name} out of [0, 100]"
        );
    }
    for row in w..m.len() {
        let (u, mid, l) = (
            m.column("bb_upper").unwrap()[row],
            m.column("bb_middle").unwrap()[row],
            m.column("bb_lower").unwrap()[row],
        );
        assert!(l <= mid && mid <= u);
        assert!(m.column("realized_vol").unwrap()[row] >= 0.0);
        assert!(m.column("atr").unwrap()[row] > 0.0);
    }
}
