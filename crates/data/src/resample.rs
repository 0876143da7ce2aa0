//! Aggregating bars to a coarser timeframe (1m -> 5m -> 1h -> 1d).
//!
//! Buckets start at multiples of the target timeframe since the Unix epoch
//! (weeks start on Monday); a bucket's bar is stamped with its start. Within
//! a bucket: open = first open, high = max high, low = min low, close = last
//! close, volume = sum. Empty buckets (nights, weekends) produce no bar.

use tradelab_core::time::MS_PER_DAY;
use tradelab_core::{BarSeries, Timeframe};

use crate::DataError;

/// The bucket a timestamp falls in.
fn bucket_start(ts: i64, tf: Timeframe) -> i64 {
    let width = tf.millis();
    if width % (7 * MS_PER_DAY) == 0 {
        // 1970-01-01 was a Thursday; shift so buckets begin on Monday.
        let offset = 3 * MS_PER_DAY;
        (ts + offset).div_euclid(width) * width - offset
    } else {
        ts.div_euclid(width) * width
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
        if target.millis() < from.millis() || target.millis() % from.millis() != 0 {
            return Err(err(format!("{target} is not a whole multiple of {from}")));
        }
    }
    let mut out = BarSeries::with_capacity(series.instrument.clone(), series.len());
    out.timeframe = Some(target);
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
        out.ts.push(start);
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
        assert!(resample(&m5, Timeframe::MINUTE).is_err());
    }

    #[test]
    fn weekly_buckets_start_on_monday() {
        // 2006-01-02 was a Monday.
        let m1 = minute_file();
        let w = resample(&m1, "1w".parse().unwrap()).unwrap();
        assert_eq!(format_datetime(w.ts[0]), "2006-01-02T00:00:00");
    }
}
