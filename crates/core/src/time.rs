//! Calendar arithmetic on UTC timestamps in milliseconds since the Unix epoch.
//!
//! Market files carry naive local timestamps; tradelab treats them as UTC so
//! that arithmetic is exact and no time-zone database is needed.

/// Milliseconds in one day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). Month and day are 1-based.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days in a month, for validating parsed dates.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// The UTC day number of a timestamp (floor division, so pre-1970 works).
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(MS_PER_DAY)
}

/// `YYYY-MM-DD`.
pub fn format_date(ts_ms: i64) -> String {
    let (y, m, d) = civil_from_days(day_of(ts_ms));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS`, with `.fff` only when the milliseconds are non-zero.
pub fn format_datetime(ts_ms: i64) -> String {
    let ms_of_day = ts_ms.rem_euclid(MS_PER_DAY);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (mi, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    let date = format_date(ts_ms);
    if ms == 0 {
        format!("{date}T{h:02}:{mi:02}:{s:02}")
    } else {
        format!("{date}T{h:02}:{mi:02}:{s:02}.{ms:03}")
    }
}

/// Years between two timestamps (365.25-day years), for CAGR.
pub fn years_between(start_ms: i64, end_ms: i64) -> f64 {
    (end_ms - start_ms) as f64 / (365.25 * MS_PER_DAY as f64)
}

/// The wall clock in milliseconds since the Unix epoch (0 if the clock is
/// set before 1970): the one clock records, tokens and job leases read.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The wall clock in whole seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_covers_leap_years_and_pre_epoch_dates() {
        for days in -800_000..800_000i64 {
            if days % 97 != 0 {
                continue;
            }
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn formats_dates_and_times() {
        let ts = days_from_civil(2006, 1, 2) * MS_PER_DAY + 9 * 3_600_000 + 5 * 60_000;
        assert_eq!(format_date(ts), "2006-01-02");
        assert_eq!(format_datetime(ts), "2006-01-02T09:05:00");
        assert_eq!(format_datetime(ts + 7), "2006-01-02T09:05:00.007");
        assert_eq!(format_date(-1), "1969-12-31");
    }

    #[test]
    fn years_and_the_wall_clock() {
        let start = days_from_civil(2020, 1, 1) * MS_PER_DAY;
        let end = days_from_civil(2024, 1, 1) * MS_PER_DAY;
        // Four years including one leap day: 1461 days, 4.0 Julian years.
        assert!((years_between(start, end) - 4.0).abs() < 1e-12);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2023, 13), 0);
        // The clock is past the date this test was written and agrees
        // with itself in seconds.
        let (ms, secs) = (now_ms(), now_secs());
        assert!(ms > days_from_civil(2026, 1, 1) * MS_PER_DAY);
        assert!((secs - ms / 1000).abs() <= 1);
    }
}
