//! A seeded synthetic market with regime switching and known regime labels.
//!
//! Regimes follow a sticky Markov chain; within a regime, log returns are
//! Gaussian with the regime's drift and volatility. Bars are built around
//! the close path with intrabar ranges proportional to volatility, so every
//! bar satisfies the loaders' OHLC rules. The labels are ground truth for
//! tests and, later, for regime detection.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use tradelab_core::calendar::is_weekend;
use tradelab_core::time::{civil_from_days, day_of, days_from_civil, MS_PER_DAY};
use tradelab_core::{BarSeries, Timeframe};

/// Market regimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Rising: drift +0.08% a bar, volatility 1.0%.
    Bull,
    /// Falling: drift -0.10% a bar, volatility 1.5%.
    Bear,
    /// Flat and quiet: no drift, volatility 0.5%.
    Sideways,
    /// Flat and turbulent: no drift, volatility 3.5%.
    HighVolatility,
}

impl Regime {
    /// Every regime, in declaration order.
    pub const ALL: [Regime; 4] = [Regime::Bull, Regime::Bear, Regime::Sideways, Regime::HighVolatility];

    /// Per-bar (drift, volatility) of log returns.
    pub fn dynamics(self) -> (f64, f64) {
        match self {
            Regime::Bull => (0.0008, 0.010),
            Regime::Bear => (-0.0010, 0.015),
            Regime::Sideways => (0.0, 0.005),
            Regime::HighVolatility => (0.0, 0.035),
        }
    }
}

/// What to generate. The default is 1000 daily bars of `SYNTH` from 100.0,
/// seed 42, persistence 0.98, starting at the Unix epoch, every day.
#[derive(Debug, Clone)]
pub struct SyntheticConfig {
    /// Number of bars.
    pub bars: usize,
    /// Seed of the random generator (ChaCha8).
    pub seed: u64,
    /// Price before the first bar; the first open is gapped from it.
    pub start_price: f64,
    /// Probability of staying in the current regime at each bar.
    pub persistence: f64,
    /// Timestamp of the first bar, UTC milliseconds.
    pub start_ts: i64,
    /// Spacing of the bars; also set as the series' declared timeframe.
    pub timeframe: Timeframe,
    /// Instrument name of the generated series.
    pub instrument: String,
    /// No bars on Saturdays and Sundays, as a stock market; weekly and
    /// monthly bars then open on the first weekday.
    pub skip_weekends: bool,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            bars: 1000,
            seed: 42,
            start_price: 100.0,
            persistence: 0.98,
            start_ts: 0,
            timeframe: Timeframe::DAY,
            instrument: "SYNTH".into(),
            skip_weekends: false,
        }
    }
}

/// A generated market and the regime that produced each bar.
#[derive(Debug, Clone)]
pub struct SyntheticMarket {
    /// The bars.
    pub series: BarSeries,
    /// The regime of each bar, same length as `series`.
    pub regimes: Vec<Regime>,
}

/// Generates a market; the same config gives the same bars.
pub fn generate(cfg: &SyntheticConfig) -> SyntheticMarket {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let std_normal = Normal::new(0.0, 1.0).expect("unit normal is valid");
    let mut series = BarSeries::with_capacity(cfg.instrument.clone(), cfg.bars);
    series.timeframe = Some(cfg.timeframe);
    let mut regimes = Vec::with_capacity(cfg.bars);
    let mut regime = Regime::ALL[rng.random_range(0..4)];
    let mut close = cfg.start_price;
    let mut grid = cfg.start_ts;
    for i in 0..cfg.bars {
        let label = bar_time(&mut grid, cfg);
        if i > 0 && rng.random::<f64>() > cfg.persistence {
            let others: Vec<Regime> = Regime::ALL.into_iter().filter(|r| *r != regime).collect();
            regime = others[rng.random_range(0..others.len())];
        }
        let (mu, sigma) = regime.dynamics();
        let gap: f64 = std_normal.sample(&mut rng) * sigma * 0.2;
        let open = close * gap.exp();
        let ret: f64 = mu + sigma * std_normal.sample(&mut rng);
        let new_close = close * ret.exp();
        let top = open.max(new_close);
        let bottom = open.min(new_close);
        let high = top * (1.0 + sigma * 0.5 * std_normal.sample(&mut rng).abs());
        let low = bottom * (1.0 - (sigma * 0.5 * std_normal.sample(&mut rng).abs()).min(0.5));
        let volume = (1e6 * (1.0 + 10.0 * sigma) * (0.5 * std_normal.sample(&mut rng)).exp()).round();
        series.ts.push(label);
        series.open.push(open);
        series.high.push(high);
        series.low.push(low);
        series.close.push(new_close);
        series.volume.push(volume);
        regimes.push(regime);
        close = new_close;
    }
    SyntheticMarket { series, regimes }
}

/// The next bar's timestamp, moving `grid` (the unskipped schedule) past it.
fn bar_time(grid: &mut i64, cfg: &SyntheticConfig) -> i64 {
    let tf = cfg.timeframe;
    let step = |t: i64| match tf.calendar_months() {
        Some(n) => {
            let (y, m, _) = civil_from_days(day_of(t));
            let index = y * 12 + i64::from(m) - 1 + i64::from(n);
            days_from_civil(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1) * MS_PER_DAY
                + t.rem_euclid(MS_PER_DAY)
        }
        None => t + tf.millis(),
    };
    if cfg.skip_weekends && tf < Timeframe::WEEK {
        // Days and shorter: weekend slots are simply not traded.
        while is_weekend(day_of(*grid)) {
            *grid = step(*grid);
        }
        let label = *grid;
        *grid = step(*grid);
        return label;
    }
    let mut label = *grid;
    *grid = step(*grid);
    if cfg.skip_weekends {
        // Weeks and months open on their first weekday.
        while is_weekend(day_of(label)) {
            label += MS_PER_DAY;
        }
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::Calendar;

    #[test]
    fn same_seed_same_market_other_seed_other_market() {
        let cfg = SyntheticConfig {
            bars: 2000,
            ..Default::default()
        };
        let a = generate(&cfg);
        assert_eq!(a.series, generate(&cfg).series);
        assert_eq!(a.regimes, generate(&cfg).regimes);
        let b = generate(&SyntheticConfig { seed: 43, ..cfg });
        assert_ne!(a.series.close, b.series.close);
    }

    #[test]
    fn weekends_can_be_skipped_at_every_timeframe() {
        let monday = days_from_civil(2024, 1, 1) * MS_PER_DAY;
        let cfg = |tf: &str, skip| SyntheticConfig {
            bars: 40,
            start_ts: monday,
            timeframe: tf.parse().unwrap(),
            skip_weekends: skip,
            ..Default::default()
        };
        let every = generate(&cfg("1d", false)).series;
        assert_eq!(every.calendar_or_inferred(), Calendar::EveryDay);
        let days = generate(&cfg("1d", true)).series;
        assert!(days.ts.iter().all(|t| !is_weekend(day_of(*t))));
        assert_eq!(days.ts[5], monday + 7 * MS_PER_DAY, "Friday is followed by Monday");
        assert_eq!(days.calendar_or_inferred(), Calendar::Weekdays);
        assert_eq!(days.close, every.close, "the same prices, other dates");
        let hours = generate(&cfg("1h", true)).series;
        assert!(hours.ts.iter().all(|t| !is_weekend(day_of(*t))));
        let months = generate(&cfg("1M", true)).series;
        assert!(months.ts.iter().all(|t| !is_weekend(day_of(*t))));
        // June 2024 began on a Saturday.
        assert_eq!(tradelab_core::time::format_date(months.ts[5]), "2024-06-03");
        assert_eq!(tradelab_core::time::format_date(months.ts[39]), "2027-04-01");
        assert_eq!(Timeframe::infer(&months.ts), Some(Timeframe::MONTH));
        let weeks = generate(&cfg("1w", true)).series;
        assert_eq!(weeks.ts[1] - weeks.ts[0], 7 * MS_PER_DAY);
    }

    #[test]
    fn bars_are_valid_and_every_regime_appears_with_its_character() {
        let m = generate(&SyntheticConfig {
            bars: 20_000,
            ..Default::default()
        });
        let s = &m.series;
        for i in 0..s.len() {
            assert!(s.low[i] > 0.0 && s.high[i] >= s.open[i].max(s.close[i]) && s.low[i] <= s.open[i].min(s.close[i]));
        }
        for r in Regime::ALL {
            let rets: Vec<f64> = (1..s.len())
                .filter(|&i| m.regimes[i] == r)
                .map(|i| (s.close[i] / s.close[i - 1]).ln())
                .collect();
            assert!(rets.len() > 500, "{r:?} appears often enough");
            let mean = rets.iter().sum::<f64>() / rets.len() as f64;
            let sd = (rets.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / rets.len() as f64).sqrt();
            let (mu, sigma) = r.dynamics();
            assert!((sd / sigma - 1.0).abs() < 0.15, "{r:?}: sd {sd} vs {sigma}");
            assert!(
                (mean - mu).abs() < 4.0 * sigma / (rets.len() as f64).sqrt() + 1e-4,
                "{r:?}: mean {mean} vs {mu}"
            );
        }
    }
}
