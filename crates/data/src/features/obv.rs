//! On-balance volume: a running total that adds the bar's volume when the
//! close rises, subtracts it when the close falls, and is unchanged on an
//! unchanged close.
//!
//! TA-Lib convention (`TA_OBV`): no warm-up (lookback 0); the first value is
//! the first bar's volume, not 0.

/// Streaming on-balance volume.
#[derive(Debug, Clone, Default)]
pub struct Obv {
    obv: f64,
    prev_close: f64,
    started: bool,
}

impl Obv {
    /// An on-balance volume that has seen no bar yet.
    pub fn new() -> Self {
        Obv {
            obv: 0.0,
            prev_close: f64::NAN,
            started: false,
        }
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        0
    }

    /// Adds a bar and returns the running total.
    #[inline]
    pub fn update(&mut self, close: f64, volume: f64) -> f64 {
        if !self.started {
            self.started = true;
            self.obv = volume;
        } else if close > self.prev_close {
            self.obv += volume;
        } else if close < self.prev_close {
            self.obv -= volume;
        }
        self.prev_close = close;
        self.obv
    }

    /// Forgets every bar seen.
    pub fn reset(&mut self) {
        *self = Obv::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_first_volume() {
        let mut o = Obv::new();
        let out: Vec<f64> = [(1.0, 10.0), (2.0, 20.0), (1.0, 30.0), (1.0, 40.0), (3.0, 50.0)]
            .iter()
            .map(|&(c, v)| o.update(c, v))
            .collect();
        assert_eq!(out, [10.0, 30.0, 0.0, 0.0, 50.0]);
        o.reset();
        assert_eq!(o.update(5.0, 7.0), 7.0);
    }
}
