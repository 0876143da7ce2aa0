//! Aggregating bars to a coarser timeframe (1m -> 5m -> 1h -> 1d -> 1w -> 1M).
//!
//! Intraday buckets start at multiples of the target timeframe since the
//! Unix epoch, and a bucket's bar is stamped with its start. Weeks start on
//! Monday and months on the 1st, but their bars are stamped with their first
//! trading day (midnight), as data vendors label them: a week whose Monday
//! is a holiday is labelled Tuesday. Within a bucket: open = first open,
//! high = max high, low = min low, close = last close, volume = sum. Empty
//! buckets (nights, weekends) produce no bar. Bars are only ever combined,
//! never split: upsampling is refused.

use tradelab_core::time::{civil_from_days, day_of, days_from_civil, MS_PER_DAY};
use tradelab_core::{BarSeries, Timeframe};

use crate::DataError;

/// The start of the bucket a timestamp falls in.
fn bucket_start(ts: i64, tf: Timeframe) -> i64 {
    if let Some(n) = tf.calendar_months() {
        let (year, month, _) = civil_from_days(day_of(ts));
        let index = year * 12 + i64::from(month) - 1;
        let first = index - index.rem_euclid(i64::from(n));
        return days_from_civil(first.div_euclid(12), first.rem_euclid(12) as u32 + 1, 1) * MS_PER_DAY;
    }
    let width = tf.millis();
    if width % (7 * MS_PER_DAY) == 0 {
        // 1970-01-01 was a Thursday; shift so buckets begin on Monday.
        let offset = 3 * MS_PER_DAY;
        (ts + offset).div_euclid(width) * width - offset
    } else {
        ts.div_euclid(width) * width
    }
}

/// Whether bars of `from` combine into whole bars of `to`.
fn aggregates(from: Timeframe, to: Timeframe) -> bool {
    match (from.calendar_months(), to.calendar_months()) {
        (Some(a), Some(b)) => b % a == 0,
        // Months hold whole days, so any spacing that divides a day.
        (None, Some(_)) => MS_PER_DAY % from.millis() == 0,
        (Some(_), None) => false,
        (None, None) => to.millis() % from.millis() == 0,
    }
}

/// Resamples `series` to `target`, which must be a whole multiple of the
/// series' timeframe.
pub fn resample(series: &BarSeries, target: Timeframe) -> Result<BarSeries, DataError> {
    let err = |reason: String| DataError::Resample {
        from: series
            .timeframe_or_inferred()
            .map_or("unknown".into(), |t| t.to_string()),
        to: target.to_string(),
        reason,
    };
    if let Some(from) = series.timeframe_or_inferred() {
        if target < from {
            return Err(err(format!(
                "resampling only combines bars into coarser ones and cannot make {target} bars out of {from} bars; \
                 load a file recorded at {target} or finer"
            )));
        }
        if !aggregates(from, target) {
            return Err(err(format!("{target} is not a whole multiple of {from}")));
        }
    }
    // Daily and longer bars are labelled by the day they open on.
    let label_first_day = target.is_daily_or_longer();
    let mut out = BarSeries::with_capacity(series.instrument.clone(), series.len());
    out.timeframe = Some(target);
    out.calendar = series.calendar;
    let mut i = 0;
    while i < series.len() {
        let start = bucket_start(series.ts[i], target);
        let (mut high, mut low, mut volume) = (series.high[i], series.low[i], 0.0);
        let open = series.open[i];
        let mut j = i;
        while j < series.len() && bucket_start(series.ts[j], target) == start {
            high = high.max(series.high[j]);
            low = low.min(series.low[j]);
            volume += series.volume[j];
            j += 1;
        }
        out.ts.push(if label_first_day {
            day_of(series.ts[i]) * MS_PER_DAY
        } else {
            start
        });
        out.open.push(open);
        out.high.push(high);
        out.low.push(low);
        out.close.push(series.close[j - 1]);
        out.volume.push(volume);
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load_file, LoadOptions};
    use std::path::PathBuf;
    use tradelab_core::time::format_datetime;

    fn minute_file() -> BarSeries {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/raw/2006-01-02-volume-min-001.txt");
        load_file(&p, &LoadOptions::default()).unwrap().0
    }

    #[test]
    fn aggregates_ohlcv_correctly_against_a_direct_scan() {
        let m1 = minute_file();
        let m5 = resample(&m1, "5m".parse().unwrap()).unwrap();
        // First bucket 09:00-09:05 holds 09:01..09:04 (09:00 has no bar).
        let first: Vec<usize> = (0..m1.len())
            .filter(|&i| bucket_start(m1.ts[i], m5.timeframe.unwrap()) == m5.ts[0])
            .collect();
        assert_eq!(format_datetime(m5.ts[0]), "2006-01-02T09:00:00");
        assert_eq!(m5.open[0], m1.open[first[0]]);
        assert_eq!(m5.close[0], m1.close[*first.last().unwrap()]);
        assert_eq!(m5.high[0], first.iter().map(|&i| m1.high[i]).fold(f64::MIN, f64::max));
        assert_eq!(m5.low[0], first.iter().map(|&i| m1.low[i]).fold(f64::MAX, f64::min));
        assert_eq!(m5.volume[0], first.iter().map(|&i| m1.volume[i]).sum::<f64>());
        // Volume is conserved and the extremes survive every step of the chain.
        let h1 = resample(&m5, Timeframe::HOUR).unwrap();
        let d1 = resample(&h1, Timeframe::DAY).unwrap();
        let total = |s: &BarSeries| s.volume.iter().sum::<f64>();
        assert_eq!(total(&m1), total(&d1));
        let max = |s: &BarSeries| s.high.iter().cloned().fold(f64::MIN, f64::max);
        assert_eq!(max(&m1), max(&d1));
        // Going straight to 1d gives the same bars as the chain.
        assert_eq!(resample(&m1, Timeframe::DAY).unwrap(), d1);
        assert_eq!(Timeframe::infer(&d1.ts), Some(Timeframe::DAY));
    }

    #[test]
    fn refuses_targets_that_are_not_whole_multiples() {
        let m1 = minute_file();
        let m5 = resample(&m1, "5m".parse().unwrap()).unwrap();
        let e = resample(&m5, "7m".parse().unwrap()).unwrap_err().to_string();
        assert!(e.contains("whole multiple"), "{e}");
        let e = resample(&m5, Timeframe::MINUTE).unwrap_err().to_string();
        assert!(
            e.contains("cannot resample 5m bars to 1m") && e.contains("cannot make 1m bars"),
            "{e}"
        );
        let d1 = resample(&m5, Timeframe::DAY).unwrap();
        let e = resample(&d1, Timeframe::HOUR).unwrap_err().to_string();
        assert!(e.contains("coarser") && e.contains("recorded at 1h or finer"), "{e}");
    }

    /// Daily bars for weekdays of 2024, Monday 2024-01-01 a holiday.
    fn daily_2024() -> BarSeries {
        let mut s = BarSeries::new("d");
        let first = days_from_civil(2024, 1, 2);
        for d in first..days_from_civil(2025, 1, 1) {
            if tradelab_core::calendar::is_weekend(d) {
                continue;
            }
            let p = (d - first) as f64 + 100.0;
            s.push(tradelab_core::Bar {
                ts: d * MS_PER_DAY,
                open: p,
                high: p + 1.0,
                low: p - 1.0,
                close: p + 0.5,
                volume: 1.0,
            });
        }
        s.timeframe = Some(Timeframe::DAY);
        s
    }

    #[test]
    fn weeks_and_months_are_labelled_by_their_first_trading_day() {
        let d = daily_2024();
        let w = resample(&d, Timeframe::WEEK).unwrap();
        assert_eq!(format_datetime(w.ts[0]), "2024-01-02T00:00:00", "Monday was a holiday");
        assert_eq!(format_datetime(w.ts[1]), "2024-01-08T00:00:00");
        assert_eq!(w.volume[0], 4.0);
        let m = resample(&d, "1M".parse().unwrap()).unwrap();
        assert_eq!(m.len(), 12);
        assert_eq!(format_datetime(m.ts[0]), "2024-01-02T00:00:00");
        // June 2024 began on a Saturday: its first trading day is Monday the 3rd.
        assert_eq!(format_datetime(m.ts[5]), "2024-06-03T00:00:00");
        assert_eq!(m.volume.iter().sum::<f64>(), d.volume.iter().sum::<f64>());
        assert_eq!(
            m.open[1],
            d.open[d
                .ts
                .iter()
                .position(|t| format_datetime(*t).starts_with("2024-02-01"))
                .unwrap()]
        );
        assert_eq!(
            m.close[0],
            d.close[d
                .ts
                .iter()
                .position(|t| format_datetime(*t).starts_with("2024-01-31"))
                .unwrap()]
        );
        assert_eq!(Timeframe::infer(&m.ts), Some(Timeframe::MONTH));
        let q = resample(&m, "3M".parse().unwrap()).unwrap();
        assert_eq!(q.len(), 4);
        assert_eq!(format_datetime(q.ts[1]), "2024-04-01T00:00:00");
        let e = resample(&m, Timeframe::WEEK).unwrap_err().to_string();
        assert!(e.contains("cannot make 1w bars out of 1M bars"), "{e}");
        let e = resample(&q, Timeframe::from_millis(400 * MS_PER_DAY))
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole multiple"), "{e}");
    }

    #[test]
    fn weekly_buckets_start_on_monday() {
        // 2006-01-02 was a Monday.
        let m1 = minute_file();
        let w = resample(&m1, "1w".parse().unwrap()).unwrap();
        assert_eq!(format_datetime(w.ts[0]), "2006-01-02T00:00:00");
    }
}
