//! OHLCV bars, one at a time ([`Bar`]) and as columns ([`BarSeries`]).

use serde::{Deserialize, Serialize};

use crate::{Calendar, Timeframe};

/// One OHLCV bar. `ts` is the bar's timestamp in UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// Timestamp of the bar, UTC milliseconds since the Unix epoch.
    pub ts: i64,
    /// First traded price of the bar.
    pub open: f64,
    /// Highest traded price of the bar.
    pub high: f64,
    /// Lowest traded price of the bar.
    pub low: f64,
    /// Last traded price of the bar.
    pub close: f64,
    /// Quantity traded during the bar (shares, contracts or units).
    pub volume: f64,
}

/// A validated price history for one instrument, stored column by column so
/// that indicators and the engine run over contiguous `&[f64]` slices.
///
/// Invariant (enforced by the loaders): all columns have the same length and
/// `ts` is strictly ascending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarSeries {
    /// Instrument identifier, e.g. `nvda-1999-2014` or `NVDA`.
    pub instrument: String,
    /// The declared bar spacing, if known; see
    /// [`timeframe_or_inferred`](BarSeries::timeframe_or_inferred).
    pub timeframe: Option<Timeframe>,
    /// The declared trading calendar (`data.instruments.<name>.calendar`);
    /// see [`calendar_or_inferred`](BarSeries::calendar_or_inferred).
    pub calendar: Option<Calendar>,
    /// Bar timestamps, UTC milliseconds, strictly ascending.
    pub ts: Vec<i64>,
    /// Opening prices, one per bar.
    pub open: Vec<f64>,
    /// High prices, one per bar.
    pub high: Vec<f64>,
    /// Low prices, one per bar.
    pub low: Vec<f64>,
    /// Closing prices, one per bar.
    pub close: Vec<f64>,
    /// Traded volumes, one per bar.
    pub volume: Vec<f64>,
}

impl BarSeries {
    /// An empty series for `instrument`, with no declared timeframe.
    pub fn new(instrument: impl Into<String>) -> Self {
        BarSeries {
            instrument: instrument.into(),
            ..Default::default()
        }
    }

    /// An empty series for `instrument` with room for `n` bars in every
    /// column.
    pub fn with_capacity(instrument: impl Into<String>, n: usize) -> Self {
        BarSeries {
            instrument: instrument.into(),
            timeframe: None,
            calendar: None,
            ts: Vec::with_capacity(n),
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
        }
    }

    /// The number of bars.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when the series holds no bars.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Appends `bar` to every column. Does not check that `ts` ascends: that
    /// is the loaders' job.
    pub fn push(&mut self, bar: Bar) {
        self.ts.push(bar.ts);
        self.open.push(bar.open);
        self.high.push(bar.high);
        self.low.push(bar.low);
        self.close.push(bar.close);
        self.volume.push(bar.volume);
    }

    /// The bar at index `i`. Panics if out of range, like slice indexing.
    #[inline(always)]
    pub fn bar(&self, i: usize) -> Bar {
        Bar {
            ts: self.ts[i],
            open: self.open[i],
            high: self.high[i],
            low: self.low[i],
            close: self.close[i],
            volume: self.volume[i],
        }
    }

    /// The bars in order, assembled from the columns one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Bar> + '_ {
        (0..self.len()).map(|i| self.bar(i))
    }

    /// A copy of bars `[start, end)`.
    pub fn slice(&self, start: usize, end: usize) -> BarSeries {
        BarSeries {
            instrument: self.instrument.clone(),
            timeframe: self.timeframe,
            calendar: self.calendar,
            ts: self.ts[start..end].to_vec(),
            open: self.open[start..end].to_vec(),
            high: self.high[start..end].to_vec(),
            low: self.low[start..end].to_vec(),
            close: self.close[start..end].to_vec(),
            volume: self.volume[start..end].to_vec(),
        }
    }

    /// The declared timeframe, or the one inferred from the timestamps.
    pub fn timeframe_or_inferred(&self) -> Option<Timeframe> {
        self.timeframe.or_else(|| Timeframe::infer(&self.ts))
    }

    /// The declared calendar, or the one inferred from the timestamps.
    pub fn calendar_or_inferred(&self) -> Calendar {
        self.calendar.unwrap_or_else(|| Calendar::infer(&self.ts))
    }
}

impl FromIterator<Bar> for BarSeries {
    fn from_iter<T: IntoIterator<Item = Bar>>(iter: T) -> Self {
        let mut s = BarSeries::default();
        for b in iter {
            s.push(b);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(i: i64) -> Bar {
        let p = 100.0 + i as f64;
        Bar {
            ts: i * 60_000,
            open: p,
            high: p + 1.0,
            low: p - 1.0,
            close: p + 0.5,
            volume: 10.0 * i as f64,
        }
    }

    #[test]
    fn bars_pushed_come_back_column_by_column_and_in_order() {
        let mut s = BarSeries::with_capacity("nifty", 4);
        assert!(s.is_empty() && s.ts.capacity() >= 4 && s.volume.capacity() >= 4);
        for i in 0..4 {
            s.push(bar(i));
        }
        assert_eq!((s.len(), s.is_empty(), s.instrument.as_str()), (4, false, "nifty"));
        assert_eq!(s.close, vec![100.5, 101.5, 102.5, 103.5]);
        assert_eq!(s.bar(2), bar(2));
        assert_eq!(s.iter().collect::<Vec<_>>(), (0..4).map(bar).collect::<Vec<_>>());
        let collected: BarSeries = (0..4).map(bar).collect();
        assert_eq!((collected.ts, collected.high), (s.ts.clone(), s.high.clone()));
    }

    #[test]
    fn a_slice_keeps_the_name_and_timeframe_and_copies_only_its_bars() {
        let mut s: BarSeries = (0..6).map(bar).collect();
        s.instrument = "btc".into();
        let part = s.slice(2, 5);
        assert_eq!(part.instrument, "btc");
        assert_eq!(part.ts, vec![120_000, 180_000, 240_000]);
        assert_eq!(part.bar(0), bar(2));
        assert!(s.slice(3, 3).is_empty());
    }

    #[test]
    fn the_timeframe_is_the_declared_one_else_inferred_from_the_stamps() {
        let mut s: BarSeries = (0..6).map(bar).collect();
        assert_eq!(s.timeframe_or_inferred(), Some(Timeframe::from_millis(60_000)));
        s.timeframe = Some(Timeframe::from_millis(300_000));
        assert_eq!(s.timeframe_or_inferred(), Some(Timeframe::from_millis(300_000)));
        assert_eq!(BarSeries::new("empty").timeframe_or_inferred(), None);
    }
}
