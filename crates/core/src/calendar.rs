//! Which days an instrument trades on, for annualising per-bar figures.
//!
//! Stocks trade on weekdays (252 sessions a year); crypto trades every day
//! (365). A file's calendar is declared in `data.instruments.<name>.calendar`
//! or inferred from its timestamps: a market with bars on a good share of
//! Saturdays and Sundays trades every day.

use serde::{Deserialize, Serialize};

use crate::time::day_of;

/// The days a market is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calendar {
    /// Monday to Friday, less holidays: 252 sessions a year.
    Weekdays,
    /// Every day of the year, as crypto markets: 365 sessions.
    EveryDay,
}

impl Calendar {
    /// Trading sessions in a year.
    pub fn sessions_per_year(self) -> f64 {
        match self {
            Calendar::Weekdays => 252.0,
            Calendar::EveryDay => 365.0,
        }
    }

    /// The settings spelling (`weekdays`, `every_day`).
    pub fn name(self) -> &'static str {
        match self {
            Calendar::Weekdays => "weekdays",
            Calendar::EveryDay => "every_day",
        }
    }

    /// Infers the calendar from bar timestamps: every day when more than a
    /// tenth of the distinct days with bars fall on a weekend (an every-day
    /// market has 2 in 7; a stock file has none, or a rare odd session).
    pub fn infer(ts: &[i64]) -> Calendar {
        let (mut days, mut weekend, mut last) = (0usize, 0usize, None);
        for &t in ts {
            let d = day_of(t);
            if last == Some(d) {
                continue;
            }
            last = Some(d);
            days += 1;
            if is_weekend(d) {
                weekend += 1;
            }
        }
        if days > 0 && weekend * 10 > days {
            Calendar::EveryDay
        } else {
            Calendar::Weekdays
        }
    }
}

/// Whether day number `day` (days since 1970-01-01, a Thursday) is a
/// Saturday or a Sunday.
pub fn is_weekend(day: i64) -> bool {
    // Monday = 0 .. Sunday = 6.
    (day + 3).rem_euclid(7) >= 5
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{days_from_civil, MS_PER_DAY};

    #[test]
    fn weekends_and_inference() {
        assert!(is_weekend(days_from_civil(2026, 12, 5)), "a Saturday");
        assert!(is_weekend(days_from_civil(2026, 12, 6)), "a Sunday");
        assert!(!is_weekend(days_from_civil(2026, 12, 7)), "a Monday");
        assert!(!is_weekend(days_from_civil(1970, 1, 1)), "a Thursday");
        let start = days_from_civil(2024, 1, 1);
        let every: Vec<i64> = (0..60).map(|d| (start + d) * MS_PER_DAY).collect();
        assert_eq!(Calendar::infer(&every), Calendar::EveryDay);
        let weekdays: Vec<i64> = every.iter().copied().filter(|t| !is_weekend(day_of(*t))).collect();
        assert_eq!(Calendar::infer(&weekdays), Calendar::Weekdays);
        assert_eq!(Calendar::infer(&[]), Calendar::Weekdays);
        // Hourly bars around the clock: many bars a day, days counted once.
        let hourly: Vec<i64> = (0..24 * 14).map(|h| start * MS_PER_DAY + h * 3_600_000).collect();
        assert_eq!(Calendar::infer(&hourly), Calendar::EveryDay);
        assert_eq!(serde_json::to_string(&Calendar::EveryDay).unwrap(), "\"every_day\"");
        assert_eq!(Calendar::EveryDay.sessions_per_year(), 365.0);
    }
}
