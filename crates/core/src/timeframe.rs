//! Bar timeframes (1m, 5m, 1h, 1d, ...) and inference from timestamps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// The nominal spacing of bars, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeframe {
    millis: i64,
}

impl Timeframe {
    /// One-minute bars (60 000 ms).
    pub const MINUTE: Timeframe = Timeframe { millis: 60_000 };
    /// Hourly bars (3 600 000 ms).
    pub const HOUR: Timeframe = Timeframe { millis: 3_600_000 };
    /// Daily bars (86 400 000 ms).
    pub const DAY: Timeframe = Timeframe { millis: 86_400_000 };

    /// A timeframe of `millis` milliseconds. Not checked: parsing refuses
    /// non-positive spacings, this does not.
    pub const fn from_millis(millis: i64) -> Timeframe {
        Timeframe { millis }
    }

    /// The bar spacing in milliseconds.
    pub fn millis(self) -> i64 {
        self.millis
    }

    /// Infers the timeframe from bar timestamps: the most common positive gap
    /// between consecutive bars. Overnight and weekend gaps are rarer than the
    /// regular spacing, so the mode is robust where the mean is not.
    /// Returns `None` for fewer than two bars.
    pub fn infer(timestamps: &[i64]) -> Option<Timeframe> {
        let mut gaps: Vec<i64> = timestamps.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0).collect();
        if gaps.is_empty() {
            return None;
        }
        gaps.sort_unstable();
        let (mut best, mut best_run, mut run) = (gaps[0], 0usize, 0usize);
        for i in 0..gaps.len() {
            run = if i > 0 && gaps[i] == gaps[i - 1] { run + 1 } else { 1 };
            if run > best_run {
                best_run = run;
                best = gaps[i];
            }
        }
        // Daily files skip weekends and holidays, so their most common gap is
        // one day even when weekly gaps exist; nothing more to do here.
        Some(Timeframe { millis: best })
    }

    /// True for daily or longer bars.
    pub fn is_daily_or_longer(self) -> bool {
        self.millis >= Self::DAY.millis
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.millis;
        let units = [
            (604_800_000, "w"),
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1000, "s"),
        ];
        for (size, unit) in units {
            if ms >= size && ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl FromStr for Timeframe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| Error::UnknownTimeframe(s.to_string()))?;
        let (num, unit) = s.split_at(split);
        let n: i64 = num.parse().map_err(|_| Error::UnknownTimeframe(s.to_string()))?;
        let size = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(Error::UnknownTimeframe(s.to_string())),
        };
        if n <= 0 {
            return Err(Error::UnknownTimeframe(s.to_string()));
        }
        Ok(Timeframe { millis: n * size })
    }
}

impl Serialize for Timeframe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Timeframe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_common_timeframes() {
        for s in ["1m", "5m", "15m", "1h", "4h", "1d", "1w", "30s"] {
            assert_eq!(s.parse::<Timeframe>().unwrap().to_string(), s);
        }
        assert_eq!("60m".parse::<Timeframe>().unwrap().to_string(), "1h");
        assert!("5x".parse::<Timeframe>().is_err());
        assert!("m".parse::<Timeframe>().is_err());
        assert!("0m".parse::<Timeframe>().is_err());
    }

    #[test]
    fn infers_daily_spacing_despite_weekends() {
        let day = 86_400_000;
        // Mon..Fri, then Mon..Fri: four 1-day gaps, one 3-day gap per week.
        let ts: Vec<i64> = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11].iter().map(|d| d * day).collect();
        assert_eq!(Timeframe::infer(&ts), Some(Timeframe::DAY));
        assert_eq!(Timeframe::infer(&ts[..1]), None);
    }

    #[test]
    fn odd_spacings_print_in_their_largest_whole_unit_and_round_trip_through_serde() {
        assert_eq!(Timeframe::from_millis(1500).to_string(), "1500ms");
        assert_eq!(Timeframe::from_millis(90_000).to_string(), "90s");
        assert_eq!(" 5min ".parse::<Timeframe>().unwrap(), Timeframe::from_millis(300_000));
        assert_eq!("250ms".parse::<Timeframe>().unwrap().millis(), 250);
        let e = "99999999999999999999m".parse::<Timeframe>().unwrap_err().to_string();
        assert!(e.contains("like 1m, 5m, 1h, 1d"), "{e}");
        let json = serde_json::to_string(&Timeframe::HOUR).unwrap();
        assert_eq!(json, "\"1h\"");
        assert_eq!(serde_json::from_str::<Timeframe>(&json).unwrap(), Timeframe::HOUR);
        assert!(serde_json::from_str::<Timeframe>("\"soon\"").is_err());
        assert!(Timeframe::DAY.is_daily_or_longer() && !Timeframe::HOUR.is_daily_or_longer());
    }
}
