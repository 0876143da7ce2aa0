//! Which column holds what: worked out from the header and the first row.

use super::timestamp::{parse_time_of_day, TimestampFormat};

/// Column positions of one file's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Column with the date, or the whole timestamp.
    pub date: usize,
    /// Separate time-of-day column, when the file has one.
    pub time: Option<usize>,
    /// How the date (or whole timestamp) column is written.
    pub format: TimestampFormat,
    /// Column with the opening price.
    pub open: usize,
    /// Column with the high price.
    pub high: usize,
    /// Column with the low price.
    pub low: usize,
    /// Column with the closing price (`close`, `last` or `price`).
    pub close: usize,
    /// Column with the dividend- and split-adjusted close (`Adj Close`),
    /// used only when `data.adjusted_close` asks for it.
    pub adj_close: Option<usize>,
    /// Column with the volume; without one, or where a row leaves it
    /// blank, volume is 0.
    pub volume: Option<usize>,
    /// Fields every row must have.
    pub fields: usize,
    /// A human-readable name, for reports.
    pub description: String,
    /// Set when the header did not match the rows and was corrected.
    pub header_note: Option<String>,
}

fn normalise(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Works out the layout from the header fields and the first data row.
/// Refuses (with a message saying why) rather than guess when columns are
/// ambiguous: mis-assigned columns would silently corrupt every backtest.
pub fn detect(header: &[&[u8]], first_row: &[&[u8]]) -> Result<Layout, String> {
    let mut names: Vec<String> = header.iter().map(|h| normalise(h)).collect();
    let mut header_note = None;

    let find = |names: &[String], options: &[&str]| names.iter().position(|n| options.contains(&n.as_str()));

    // The backtrader 1-minute file: header `Date,Open,...` but every row is
    // `date,time,open,...`. Only accept the fix when the extra field really is
    // a time of day and the header has no time column of its own.
    if first_row.len() == names.len() + 1 {
        let date_idx = find(&names, &["date"]);
        let has_time = find(&names, &["time", "datetime", "timestamp"]).is_some();
        match date_idx {
            Some(d) if !has_time && parse_time_of_day(first_row[d + 1]).is_some() => {
                names.insert(d + 1, "time".to_string());
                header_note = Some(format!(
                    "header lists {} columns but rows have {}: field {} is a time of day missing from the header; read as date,time,{}",
                    header.len(),
                    first_row.len(),
                    d + 2,
                    names[d + 2..].join(",")
                ));
            }
            _ => {
                return Err(format!(
                    "header has {} columns but the first row has {} fields, and the extra field is not a time after the date; fix the header so each column is named",
                    header.len(),
                    first_row.len()
                ))
            }
        }
    } else if first_row.len() != names.len() {
        return Err(format!(
            "header has {} columns but the first row has {} fields; fix the header so each column is named",
            names.len(),
            first_row.len()
        ));
    }

    let required = |opts: &[&str], what: &str| {
        find(&names, opts).ok_or_else(|| format!("no {what} column in header `{}`", names.join(",")))
    };
    let open = required(&["open", "o"], "open")?;
    let high = required(&["high", "h"], "high")?;
    let low = required(&["low", "l"], "low")?;
    let close = required(&["close", "c", "last", "price"], "close")?;
    let volume = find(&names, &["volume", "vol", "v", "tickvolume"]);
    let adj_close = find(&names, &["adjclose", "adjustedclose"]);

    let date_only = find(&names, &["date", "day"]);
    let time_only = find(&names, &["time"]);
    let combined = find(
        &names,
        &[
            "datetime",
            "timestamp",
            "gmttime",
            "localtime",
            "ts",
            "unix",
            "epoch",
            "dateutc",
        ],
    );
    let (date, time) = match (combined, date_only, time_only) {
        (Some(c), _, _) => (c, None),
        (None, Some(d), t) => (d, t),
        // A lone `time` column holds the whole timestamp.
        (None, None, Some(t)) => (t, None),
        (None, None, None) => {
            return Err(format!(
                "no date or timestamp column in header `{}`; name it date, datetime or timestamp",
                names.join(",")
            ))
        }
    };
    let sample = first_row[date];
    let format = TimestampFormat::detect(sample).ok_or_else(|| {
        format!(
            "cannot recognise the timestamp `{}`; supported: YYYY-MM-DD[ HH:MM:SS], dd.mm.YYYY HH:MM:SS.fff, Unix epoch",
            super::excerpt(sample)
        )
    })?;
    if time.is_some() && format != TimestampFormat::Iso && format != TimestampFormat::DayMonthYear {
        return Err("a separate time column needs a calendar date column beside it, not an epoch".into());
    }
    let description = format!(
        "{} ({}{})",
        names.join(","),
        format.name(),
        if time.is_some() { " + time column" } else { "" }
    );
    Ok(Layout {
        date,
        time,
        format,
        open,
        high,
        low,
        close,
        adj_close,
        volume,
        fields: names.len(),
        description,
        header_note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<&[u8]> {
        s.split(',').map(str::as_bytes).collect()
    }

    #[test]
    fn yahoo_daily_layout_ignores_adjusted_close() {
        let l = detect(
            &split("Date,Open,High,Low,Close,Adj Close,Volume"),
            &split("1999-01-22,1.75,1.95,1.55,1.64,1.51,67867200"),
        )
        .unwrap();
        assert_eq!((l.date, l.time, l.close, l.volume), (0, None, 4, Some(6)));
        assert_eq!(l.adj_close, Some(5));
    }

    #[test]
    fn header_missing_time_column_is_detected_and_corrected() {
        let l = detect(
            &split("Date,Open,High,Low,Close,Volume,OpenInterest"),
            &split("2006-01-02,09:01:00,3602.00,3603.00,3597.00,3599.00,5699,0"),
        )
        .unwrap();
        assert_eq!((l.date, l.time, l.open, l.close, l.volume), (0, Some(1), 2, 5, Some(6)));
        assert!(l.header_note.unwrap().contains("time of day"));
    }

    #[test]
    fn extra_field_that_is_not_a_time_is_refused() {
        let e = detect(
            &split("Date,Open,High,Low,Close,Volume"),
            &split("2006-01-02,1,2,0.5,1.5,10,99"),
        )
        .unwrap_err();
        assert!(e.contains("fix the header"), "{e}");
    }

    #[test]
    fn lower_case_iso_and_epoch_and_dmy_layouts() {
        let l = detect(
            &split("datetime,open,high,low,close,volume"),
            &split("2024-01-02T09:15:00,1,2,0.5,1.5,10"),
        )
        .unwrap();
        assert_eq!(l.format, TimestampFormat::Iso);
        let l = detect(
            &split("timestamp,open,high,low,close,volume"),
            &split("1704186900,1,2,0.5,1.5,10"),
        )
        .unwrap();
        assert!(matches!(l.format, TimestampFormat::Epoch(_)));
        let l = detect(
            &split("Gmt time,Open,High,Low,Close,Volume"),
            &split("02.01.2024 09:15:00.000,1,2,0.5,1.5,10"),
        )
        .unwrap();
        assert_eq!(l.format, TimestampFormat::DayMonthYear);
    }

    #[test]
    fn missing_price_column_is_named() {
        let e = detect(&split("date,open,high,close"), &split("2024-01-02,1,2,1.5")).unwrap_err();
        assert!(e.contains("no low column"), "{e}");
    }
}
