//! Fewer candles for a chart: consecutive bars merged into buckets, each
//! the OHLCV bar its members make together (open of the first, highest
//! high, lowest low, close of the last, summed volume).
//!
//! Why OHLC buckets rather than every n-th bar: a chart of a million bars
//! has a few thousand pixels across, and a skipped bar could be the crash
//! or the spike a researcher is looking for; a bucket's high and low keep
//! every extreme visible at any zoom level.

use std::ops::Range;

use tradelab_core::BarSeries;

/// One candle of a downsampled series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    /// The bucket's first bar's time, UTC milliseconds.
    pub time_ms: i64,
    /// The first bar's open.
    pub open: f64,
    /// The highest high in the bucket.
    pub high: f64,
    /// The lowest low in the bucket.
    pub low: f64,
    /// The last bar's close.
    pub close: f64,
    /// The bucket's total volume.
    pub volume: f64,
}

/// Bars merged per candle so that `bars` fit in `max_points` (at least 1).
pub fn bars_per_candle(bars: usize, max_points: usize) -> usize {
    bars.div_ceil(max_points.max(1)).max(1)
}

/// The bars of `series` in `range` as at most `max_points` candles, every
/// bucket `bars_per_candle` bars wide but the last.
pub fn candles(series: &BarSeries, range: Range<usize>, max_points: usize) -> Vec<Candle> {
    let range = range.start.min(series.len())..range.end.min(series.len());
    let mut out = Vec::with_capacity(max_points.min(range.len()));
    for Range { start, end } in buckets(range, max_points) {
        let mut c = Candle {
            time_ms: series.ts[start],
            open: series.open[start],
            high: f64::NEG_INFINITY,
            low: f64::INFINITY,
            close: series.close[end - 1],
            volume: 0.0,
        };
        for i in start..end {
            c.high = c.high.max(series.high[i]);
            c.low = c.low.min(series.low[i]);
            c.volume += series.volume[i];
        }
        out.push(c);
    }
    out
}

/// The buckets `candles` merges `range` into: consecutive index ranges,
/// every one `bars_per_candle` wide but the last.
pub fn buckets(range: Range<usize>, max_points: usize) -> impl Iterator<Item = Range<usize>> {
    let width = bars_per_candle(range.len(), max_points);
    range
        .clone()
        .step_by(width)
        .map(move |start| start..(start + width).min(range.end))
}

/// Per-bar rows of `width` values (such as regime probabilities, row-major
/// `bars × width`) averaged over the same buckets as [`candles`], so they
/// line up with the candles of the same range: one row per bucket, flat.
pub fn bucket_means(rows: &[f64], width: usize, range: Range<usize>, max_points: usize) -> Vec<f64> {
    let bars = rows.len().checked_div(width).unwrap_or(0);
    let range = range.start.min(bars)..range.end.min(bars);
    let mut out = Vec::with_capacity(max_points.min(range.len()) * width);
    for bucket in buckets(range, max_points) {
        let n = bucket.len() as f64;
        let at = out.len();
        out.resize(at + width, 0.0);
        for t in bucket {
            for (o, x) in out[at..].iter_mut().zip(&rows[t * width..(t + 1) * width]) {
                *o += x / n;
            }
        }
    }
    out
}

/// The bars of `series` whose time lies in `[from_ms, to_ms]` (either end
/// open when `None`), as an index range.
pub fn time_range(series: &BarSeries, from_ms: Option<i64>, to_ms: Option<i64>) -> Range<usize> {
    let start = from_ms.map_or(0, |t| series.ts.partition_point(|&x| x < t));
    let end = to_ms.map_or(series.len(), |t| series.ts.partition_point(|&x| x <= t));
    start..end.max(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::Bar;

    fn series(n: usize) -> BarSeries {
        let mut s = BarSeries::new("t");
        for i in 0..n {
            let x = i as f64;
            // A zig-zag whose extremes sit inside buckets, never at their
            // edges, so a skipping downsampler would lose them.
            let mid = 100.0 + if i % 7 == 3 { 50.0 } else { 0.0 } - if i % 11 == 5 { 40.0 } else { 0.0 };
            s.push(Bar {
                ts: 1_000 * i as i64,
                open: mid + 0.1 * x,
                high: mid + 1.0,
                low: mid - 1.0,
                close: mid - 0.1 * x,
                volume: 1.0 + x,
            });
        }
        s
    }

    #[test]
    fn buckets_keep_every_extreme_and_the_total_volume() {
        let s = series(1_000);
        let c = candles(&s, 0..s.len(), 64);
        assert_eq!(bars_per_candle(1_000, 64), 16);
        assert_eq!(c.len(), 63, "62 full buckets of 16 and one of 8");
        let max_high = s.high.iter().cloned().fold(f64::MIN, f64::max);
        let min_low = s.low.iter().cloned().fold(f64::MAX, f64::min);
        assert_eq!(c.iter().map(|x| x.high).fold(f64::MIN, f64::max), max_high);
        assert_eq!(c.iter().map(|x| x.low).fold(f64::MAX, f64::min), min_low);
        let volume: f64 = s.volume.iter().sum();
        assert!((c.iter().map(|x| x.volume).sum::<f64>() - volume).abs() < 1e-9);
        // Open of the first member, close of the last.
        assert_eq!(c[1].time_ms, s.ts[16]);
        assert_eq!(c[1].open, s.open[16]);
        assert_eq!(c[1].close, s.close[31]);
        assert_eq!(c[62].close, s.close[999]);
    }

    #[test]
    fn bucket_means_line_up_with_the_candles() {
        let s = series(1_000);
        let rows: Vec<f64> = (0..1_000).flat_map(|t| [t as f64, 1.0]).collect();
        let c = candles(&s, 100..1_000, 64);
        let m = bucket_means(&rows, 2, 100..1_000, 64);
        assert_eq!(m.len(), 2 * c.len());
        // 900 bars in buckets of 15: the first holds bars 100..115.
        assert_eq!(c[0].time_ms, s.ts[100]);
        assert!((m[0] - 107.0).abs() < 1e-9, "{}", m[0]);
        assert!(m.chunks(2).all(|r| (r[1] - 1.0).abs() < 1e-12), "means of ones stay 1");
        // Past the end, rows that do not exist are not invented.
        assert_eq!(bucket_means(&rows, 2, 990..2_000, 64).len(), 20);
        assert!(bucket_means(&rows, 0, 0..10, 64).is_empty());
    }

    #[test]
    fn a_short_series_comes_back_bar_for_bar() {
        let s = series(10);
        let c = candles(&s, 0..10, 2_000);
        assert_eq!(c.len(), 10);
        for (i, x) in c.iter().enumerate() {
            assert_eq!(
                (x.time_ms, x.open, x.high, x.low, x.close),
                (s.ts[i], s.open[i], s.high[i], s.low[i], s.close[i])
            );
        }
        assert!(candles(&s, 4..4, 10).is_empty());
        assert!(
            candles(&s, 20..30, 10).is_empty(),
            "a range past the end is empty, not a panic"
        );
    }

    #[test]
    fn time_ranges_are_inclusive_and_open_ended() {
        let s = series(10);
        assert_eq!(time_range(&s, None, None), 0..10);
        assert_eq!(time_range(&s, Some(2_000), Some(4_000)), 2..5);
        assert_eq!(time_range(&s, Some(2_500), None), 3..10);
        assert_eq!(time_range(&s, Some(9_000), Some(1_000)), 9..9, "from after to is empty");
    }
}
