//! Bar timeframes (1m, 5m, 1h, 1d, ...) and inference from timestamps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// The nominal spacing of bars, in milliseconds; or a whole number of
/// calendar months, whose length varies (28 to 31 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeframe {
    /// The spacing; for months, `months` times an average month.
    millis: i64,
    /// Calendar months per bar, 0 for a fixed spacing.
    months: u32,
}

/// An average Gregorian month (365.2425 days / 12), the nominal spacing of
/// a monthly bar for ordering and comparisons.
const AVERAGE_MONTH_MS: i64 = 2_629_746_000;
const DAY_MS: i64 = 86_400_000;

impl Timeframe {
    /// One-minute bars (60 000 ms).
    pub const MINUTE: Timeframe = Timeframe {
        millis: 60_000,
        months: 0,
    };
    /// Hourly bars (3 600 000 ms).
    pub const HOUR: Timeframe = Timeframe {
        millis: 3_600_000,
        months: 0,
    };
    /// Daily bars (86 400 000 ms).
    pub const DAY: Timeframe = Timeframe {
        millis: DAY_MS,
        months: 0,
    };
    /// Weekly bars, labelled by their first trading day.
    pub const WEEK: Timeframe = Timeframe {
        millis: 7 * DAY_MS,
        months: 0,
    };
    /// Monthly bars (calendar months), labelled by their first trading day.
    pub const MONTH: Timeframe = Timeframe::months(1);

    /// A timeframe of `millis` milliseconds. Not checked: parsing refuses
    /// non-positive spacings, this does not.
    pub const fn from_millis(millis: i64) -> Timeframe {
        Timeframe { millis, months: 0 }
    }

    /// Bars of `n` calendar months each.
    pub const fn months(n: u32) -> Timeframe {
        Timeframe {
            millis: n as i64 * AVERAGE_MONTH_MS,
            months: n,
        }
    }

    /// The bar spacing in milliseconds; for monthly bars, the average
    /// length of their months (use [`calendar_months`](Self::calendar_months)
    /// for calendar arithmetic).
    pub fn millis(self) -> i64 {
        self.millis
    }

    /// Calendar months per bar, or `None` for a fixed spacing.
    pub fn calendar_months(self) -> Option<u32> {
        (self.months > 0).then_some(self.months)
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
        // one day even when weekly gaps exist. Monthly bars labelled by their
        // first trading day are 27 to 35 days apart.
        if (27 * DAY_MS..=35 * DAY_MS).contains(&best) {
            return Some(Timeframe::MONTH);
        }
        Some(Timeframe::from_millis(best))
    }

    /// True for daily or longer bars.
    pub fn is_daily_or_longer(self) -> bool {
        self.millis >= Self::DAY.millis
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.calendar_months() {
            return write!(f, "{n}M");
        }
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
        // `M` is a month and `m` a minute, as in pandas and TradingView.
        if matches!(unit, "M" | "mo" | "mon" | "month" | "months") {
            return u32::try_from(n)
                .ok()
                .filter(|n| (1..=120).contains(n))
                .map(Timeframe::months)
                .ok_or_else(|| Error::UnknownTimeframe(s.to_string()));
        }
        let size = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(Error::UnknownTimeframe(s.to_string())),
        };
        match n.checked_mul(size) {
            Some(millis) if n > 0 => Ok(Timeframe::from_millis(millis)),
            _ => Err(Error::UnknownTimeframe(s.to_string())),
        }
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
    fn months_are_calendar_months_spelled_like_pandas() {
        for s in ["1M", "1mo", "1month"] {
            assert_eq!(s.parse::<Timeframe>().unwrap(), Timeframe::MONTH, "{s}");
        }
        assert_eq!("3M".parse::<Timeframe>().unwrap().to_string(), "3M");
        assert_eq!(
            "1m".parse::<Timeframe>().unwrap(),
            Timeframe::MINUTE,
            "m stays a minute"
        );
        assert_eq!(Timeframe::MONTH.calendar_months(), Some(1));
        assert_eq!(Timeframe::WEEK.calendar_months(), None);
        assert!(Timeframe::MONTH > Timeframe::WEEK && Timeframe::MONTH.is_daily_or_longer());
        assert!("0M".parse::<Timeframe>().is_err() && "999M".parse::<Timeframe>().is_err());
        let json = serde_json::to_string(&Timeframe::MONTH).unwrap();
        assert_eq!(serde_json::from_str::<Timeframe>(&json).unwrap(), Timeframe::MONTH);
        // Month starts labelled by their first trading day: 28 to 35 days apart.
        let day = 86_400_000;
        let firsts = [0, 33, 61, 91, 122, 152, 182, 213];
        let ts: Vec<i64> = firsts.iter().map(|d| d * day).collect();
        assert_eq!(Timeframe::infer(&ts), Some(Timeframe::MONTH));
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
