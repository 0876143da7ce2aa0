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
/// seed 42, persistence 0.98, starting at the Unix epoch.
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
    for i in 0..cfg.bars {
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
        series.ts.push(cfg.start_ts + i as i64 * cfg.timeframe.millis());
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

#[cfg(test)]
mod tests {
    use super::*;

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
