//! Bollinger bands: `middle = SMA_n`, `upper/lower = middle ± w * sigma_n`,
//! where `sigma_n` is the population standard deviation of the same `n`
//! closes.
//!
//! TA-Lib convention (`TA_BBANDS` with `matype = SMA`, `nbdevup = nbdevdn =
//! w`): lookback `n - 1`; the middle band is `TA_SMA`'s running sum, the
//! deviation comes from TA-Lib's cancellation-free rolling variance (see
//! [`RollingVariance`]) and is 0 on a flat window.

use super::sma::Sma;
use super::volatility::RollingVariance;

/// One Bollinger output row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BollingerOutput {
    /// Middle band plus `width` standard deviations.
    pub upper: f64,
    /// The simple moving average of the window.
    pub middle: f64,
    /// Middle band minus `width` standard deviations.
    pub lower: f64,
}

impl BollingerOutput {
    /// All three bands NaN: the output during the warm-up.
    pub const NAN: BollingerOutput = BollingerOutput {
        upper: f64::NAN,
        middle: f64::NAN,
        lower: f64::NAN,
    };
}

/// Streaming Bollinger bands.
#[derive(Debug, Clone)]
pub struct Bollinger {
    sma: Sma,
    variance: RollingVariance,
    width: f64,
}

impl Bollinger {
    /// Bands over `period` closes, `width` standard deviations either side
    /// (a period of 0 is treated as 1).
    pub fn new(period: usize, width: f64) -> Self {
        Bollinger {
            sma: Sma::new(period),
            variance: RollingVariance::new(period),
            width,
        }
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.sma.lookback()
    }

    /// Adds a close and returns the three bands, all NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, x: f64) -> BollingerOutput {
        let middle = self.sma.update(x);
        let variance = self.variance.update(x);
        if !self.sma.is_ready() {
            return BollingerOutput::NAN;
        }
        let sigma = if variance != 0.0 { variance.sqrt() } else { 0.0 };
        let dev = sigma * self.width;
        BollingerOutput {
            upper: middle + dev,
            middle,
            lower: middle - dev,
        }
    }

    /// Forgets every close seen, keeping the period and width.
    pub fn reset(&mut self) {
        self.sma.reset();
        self.variance.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_of_a_small_window() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population sigma 2.
        let mut b = Bollinger::new(8, 2.0);
        let out: Vec<BollingerOutput> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .iter()
            .map(|&x| b.update(x))
            .collect();
        assert!(out[6].middle.is_nan() && out[6].upper.is_nan());
        let last = out[7];
        assert_eq!(last.middle, 5.0);
        assert!((last.upper - 9.0).abs() < 1e-12 && (last.lower - 1.0).abs() < 1e-12);
    }

    #[test]
    fn flat_prices_collapse_the_bands() {
        let mut b = Bollinger::new(20, 2.0);
        let last = (0..60).map(|_| b.update(101.37)).last().unwrap();
        assert_eq!(last.upper, last.middle);
        assert_eq!(last.lower, last.middle);
    }

    #[test]
    fn period_one() {
        let mut b = Bollinger::new(1, 2.0);
        let o = b.update(3.0);
        assert_eq!((o.upper, o.middle, o.lower), (3.0, 3.0, 3.0));
    }
}
