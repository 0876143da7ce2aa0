//! Timestamp formats found in market files, detected once per file from the
//! first data row and then parsed without allocation.

use tradelab_core::time::{days_from_civil, days_in_month, MS_PER_DAY};

/// How the date (and time) of a row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// `YYYY-MM-DD`, optionally followed by `[T ]HH:MM[:SS[.fff]]` and `Z` or
    /// `+HH:MM` (converted to UTC).
    Iso,
    /// `dd.mm.YYYY HH:MM:SS.fff` (Dukascopy-style exports).
    DayMonthYear,
    /// Integer or decimal Unix epoch; seconds, milliseconds, microseconds or
    /// nanoseconds, chosen by magnitude.
    Epoch(EpochUnit),
}

/// The unit of a Unix-epoch timestamp, detected from its number of integer
/// digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    /// Seconds (up to 11 integer digits).
    Seconds,
    /// Milliseconds (12 to 14 digits).
    Millis,
    /// Microseconds (15 to 17 digits); truncated to milliseconds.
    Micros,
    /// Nanoseconds (18 digits or more); truncated to milliseconds.
    Nanos,
}

impl TimestampFormat {
    /// A human-readable name of the format, for load reports and errors.
    pub fn name(self) -> &'static str {
        match self {
            TimestampFormat::Iso => "ISO date/time",
            TimestampFormat::DayMonthYear => "dd.mm.YYYY HH:MM:SS.fff",
            TimestampFormat::Epoch(EpochUnit::Seconds) => "Unix epoch seconds",
            TimestampFormat::Epoch(EpochUnit::Millis) => "Unix epoch milliseconds",
            TimestampFormat::Epoch(EpochUnit::Micros) => "Unix epoch microseconds",
            TimestampFormat::Epoch(EpochUnit::Nanos) => "Unix epoch nanoseconds",
        }
    }

    /// Guesses the format of a sample field.
    pub fn detect(sample: &[u8]) -> Option<TimestampFormat> {
        let s = trim(sample);
        if s.len() >= 10 && s[4] == b'-' && s[7] == b'-' {
            return Some(TimestampFormat::Iso);
        }
        if s.len() >= 10 && s[2] == b'.' && s[5] == b'.' {
            return Some(TimestampFormat::DayMonthYear);
        }
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && (digits == s.len() || s[digits] == b'.') {
            let unit = match digits {
                0..=11 => EpochUnit::Seconds,
                12..=14 => EpochUnit::Millis,
                15..=17 => EpochUnit::Micros,
                _ => EpochUnit::Nanos,
            };
            return Some(TimestampFormat::Epoch(unit));
        }
        None
    }

    /// Parses a field to UTC milliseconds.
    pub fn parse(self, field: &[u8]) -> Option<i64> {
        let s = trim(field);
        match self {
            TimestampFormat::Iso => parse_iso(s),
            TimestampFormat::DayMonthYear => parse_dmy(s),
            TimestampFormat::Epoch(unit) => parse_epoch(s, unit),
        }
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

fn num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

fn date_ms(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m as u32) as i64 {
        return None;
    }
    Some(days_from_civil(y, m as u32, d as u32) * MS_PER_DAY)
}

/// `HH:MM[:SS[.fff]]` to milliseconds since midnight.
pub fn parse_time_of_day(s: &[u8]) -> Option<i64> {
    let s = trim(s);
    if s.len() < 5 || s[2] != b':' {
        return None;
    }
    let h = num(&s[0..2])?;
    let mi = num(&s[3..5])?;
    let (mut sec, mut ms) = (0, 0);
    let rest = &s[5..];
    if !rest.is_empty() {
        if rest.len() < 3 || rest[0] != b':' {
            return None;
        }
        sec = num(&rest[1..3])?;
        let frac = &rest[3..];
        if !frac.is_empty() {
            if frac[0] != b'.' || frac.len() < 2 {
                return None;
            }
            let digits = &frac[1..frac.len().min(4)];
            let scale = [100, 10, 1][digits.len() - 1];
            ms = num(digits)? * scale;
            if !frac[1..].iter().all(u8::is_ascii_digit) {
                return None;
            }
        }
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(((h * 60 + mi) * 60 + sec) * 1000 + ms)
}

fn parse_iso(s: &[u8]) -> Option<i64> {
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let day = date_ms(num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?)?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(day);
    }
    if rest[0] != b'T' && rest[0] != b' ' {
        return None;
    }
    let rest = &rest[1..];
    // Split off a zone suffix: Z, +HH:MM, -HH:MM (after the time part).
    let (time, offset_ms) = if let Some(stripped) = rest.strip_suffix(b"Z") {
        (stripped, 0)
    } else if rest.len() > 6 && (rest[rest.len() - 6] == b'+' || rest[rest.len() - 6] == b'-') {
        let z = &rest[rest.len() - 6..];
        let sign = if z[0] == b'-' { -1 } else { 1 };
        if z[3] != b':' {
            return None;
        }
        let off = (num(&z[1..3])? * 60 + num(&z[4..6])?) * 60_000 * sign;
        (&rest[..rest.len() - 6], off)
    } else {
        (rest, 0)
    };
    Some(day + parse_time_of_day(time)? - offset_ms)
}

fn parse_dmy(s: &[u8]) -> Option<i64> {
    if s.len() < 10 || s[2] != b'.' || s[5] != b'.' {
        return None;
    }
    let day = date_ms(num(&s[6..10])?, num(&s[3..5])?, num(&s[0..2])?)?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(day);
    }
    if rest[0] != b' ' {
        return None;
    }
    Some(day + parse_time_of_day(&rest[1..])?)
}

fn parse_epoch(s: &[u8], unit: EpochUnit) -> Option<i64> {
    let text = std::str::from_utf8(s).ok()?;
    let scale = match unit {
        EpochUnit::Seconds => 1000.0,
        EpochUnit::Millis => 1.0,
        EpochUnit::Micros => 1e-3,
        EpochUnit::Nanos => 1e-6,
    };
    if let Ok(i) = text.parse::<i64>() {
        return Some(match unit {
            EpochUnit::Seconds => i.checked_mul(1000)?,
            EpochUnit::Millis => i,
            EpochUnit::Micros => i / 1000,
            EpochUnit::Nanos => i / 1_000_000,
        });
    }
    let f: f64 = text.parse().ok()?;
    f.is_finite().then(|| (f * scale).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::time::format_datetime;

    fn fmt(f: TimestampFormat, s: &str) -> Option<String> {
        f.parse(s.as_bytes()).map(format_datetime)
    }

    #[test]
    fn detects_each_format_from_a_sample() {
        assert_eq!(TimestampFormat::detect(b"2006-01-02"), Some(TimestampFormat::Iso));
        assert_eq!(
            TimestampFormat::detect(b"02.01.2006 09:01:00.000"),
            Some(TimestampFormat::DayMonthYear)
        );
        assert_eq!(
            TimestampFormat::detect(b"1136192460"),
            Some(TimestampFormat::Epoch(EpochUnit::Seconds))
        );
        assert_eq!(
            TimestampFormat::detect(b"1136192460000"),
            Some(TimestampFormat::Epoch(EpochUnit::Millis))
        );
        assert_eq!(TimestampFormat::detect(b"Jan 2 2006"), None);
    }

    #[test]
    fn parses_iso_variants_to_the_same_instant() {
        let want = Some("2006-01-02T09:01:00".to_string());
        assert_eq!(fmt(TimestampFormat::Iso, "2006-01-02 09:01:00"), want);
        assert_eq!(fmt(TimestampFormat::Iso, "2006-01-02T09:01"), want);
        assert_eq!(fmt(TimestampFormat::Iso, "2006-01-02T09:01:00Z"), want);
        assert_eq!(fmt(TimestampFormat::Iso, "2006-01-02T14:31:00+05:30"), want);
        assert_eq!(
            fmt(TimestampFormat::Iso, "2006-01-02T09:01:00.250").as_deref(),
            Some("2006-01-02T09:01:00.250")
        );
        assert_eq!(fmt(TimestampFormat::Iso, "2006-02-30"), None);
        assert_eq!(fmt(TimestampFormat::Iso, "2006-01-02X09:01"), None);
        assert_eq!(fmt(TimestampFormat::Iso, "2006-01-02 25:00"), None);
    }

    #[test]
    fn parses_day_month_year_and_epochs() {
        assert_eq!(
            fmt(TimestampFormat::DayMonthYear, "02.01.2006 09:01:00.500").as_deref(),
            Some("2006-01-02T09:01:00.500")
        );
        assert_eq!(fmt(TimestampFormat::DayMonthYear, "31.02.2006 09:01:00.000"), None);
        let s = TimestampFormat::Epoch(EpochUnit::Seconds);
        assert_eq!(fmt(s, "1136192460").as_deref(), Some("2006-01-02T09:01:00"));
        assert_eq!(fmt(s, "1136192460.5").as_deref(), Some("2006-01-02T09:01:00.500"));
        let ms = TimestampFormat::Epoch(EpochUnit::Millis);
        assert_eq!(fmt(ms, "1136192460000").as_deref(), Some("2006-01-02T09:01:00"));
        assert_eq!(fmt(ms, "abc"), None);
    }
}
