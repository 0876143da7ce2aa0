//! Where a session's bars come from: a feed hands over each timestamp's
//! bars, one per instrument that has one, as they arrive.

use std::borrow::Borrow;
use std::time::{Duration, Instant};

use tradelab_core::{Bar, BarSeries};

/// What a feed had within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStatus {
    /// The bars of timestamp `ts` are in the buffer.
    Tick(i64),
    /// Nothing arrived within the wait.
    Waiting,
    /// The feed has no more bars (a replay reached its end).
    Ended,
}

/// Why a feed failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedError {
    /// The connection dropped; the session reconnects with backoff.
    #[error("the feed disconnected: {0}")]
    Disconnected(String),
    /// The source refused the session (credentials, subscription, a
    /// second connection); reconnecting retries, but it needs fixing.
    #[error("the feed refused the session: {0}")]
    Refused(String),
}

/// A source of bars for several instruments.
pub trait Feed {
    /// Waits up to `wait` for the next timestamp; its bars, as
    /// `(instrument, bar)`, replace `out`'s contents.
    fn next(&mut self, wait: Duration, out: &mut Vec<(usize, Bar)>) -> Result<FeedStatus, FeedError>;

    /// Restores a dropped connection.
    fn reconnect(&mut self) -> Result<(), FeedError> {
        Ok(())
    }

    /// Hands over timestamps up to `ts` without pacing: a restarted session
    /// catching up on what it had processed.
    fn catch_up_until(&mut self, ts: i64) {
        let _ = ts;
    }

    /// True while the market is closed, so no bar is due: a quiet feed is
    /// not stale then, and the gap across the closure is no data gap. A
    /// replay does not know (false).
    fn market_closed(&mut self) -> bool {
        false
    }
}

/// A replay of recorded series (owned, or borrowed as `&BarSeries`), merged
/// by timestamp, paced at `speed` times real time (0: as fast as possible).
pub struct ReplayFeed<S> {
    feeds: Vec<S>,
    cursor: Vec<usize>,
    speed: f64,
    /// Timestamps up to this one are handed over without pacing (a
    /// restarted session catching up).
    fast_until: i64,
    /// The last timestamp handed over, and when.
    last: Option<(i64, Instant)>,
}

impl<S: Borrow<BarSeries>> ReplayFeed<S> {
    /// Replays `feeds` from each one's bar `start[i]`.
    pub fn new(feeds: Vec<S>, start: &[usize], speed: f64) -> Self {
        ReplayFeed {
            cursor: start.to_vec(),
            feeds,
            speed,
            fast_until: i64::MIN,
            last: None,
        }
    }

    /// The next timestamp any feed has.
    fn next_ts(&self) -> Option<i64> {
        self.feeds
            .iter()
            .zip(&self.cursor)
            .filter_map(|(f, &c)| f.borrow().ts.get(c).copied())
            .min()
    }
}

impl<S: Borrow<BarSeries>> Feed for ReplayFeed<S> {
    fn next(&mut self, wait: Duration, out: &mut Vec<(usize, Bar)>) -> Result<FeedStatus, FeedError> {
        out.clear();
        let Some(ts) = self.next_ts() else {
            return Ok(FeedStatus::Ended);
        };
        if self.speed > 0.0 && ts > self.fast_until {
            if let Some((prev, at)) = self.last {
                let gap = Duration::from_secs_f64((ts - prev).max(0) as f64 / 1000.0 / self.speed);
                let due = at + gap;
                let now = Instant::now();
                if due > now + wait {
                    std::thread::sleep(wait);
                    return Ok(FeedStatus::Waiting);
                }
                std::thread::sleep(due.saturating_duration_since(now));
            }
        }
        for (i, f) in self.feeds.iter().enumerate() {
            let f = f.borrow();
            let c = self.cursor[i];
            if f.ts.get(c) == Some(&ts) {
                out.push((i, f.bar(c)));
                self.cursor[i] += 1;
            }
        }
        self.last = Some((ts, Instant::now()));
        Ok(FeedStatus::Tick(ts))
    }

    fn catch_up_until(&mut self, ts: i64) {
        self.fast_until = ts;
    }
}

/// A feed that keeps the bars it hands over, per instrument: a live
/// session's record of what it traded on (its report and chart). A bar the
/// session refuses by the loader's rules is not kept, so the record holds
/// exactly the bars the broker saw.
pub struct RecordingFeed<F> {
    inner: F,
    series: Vec<BarSeries>,
}

impl<F: Feed> RecordingFeed<F> {
    /// Records `inner`'s bars into empty copies of `like` (names and
    /// timeframes).
    pub fn new(inner: F, like: &[&BarSeries]) -> Self {
        let series = like
            .iter()
            .map(|s| {
                let mut r = BarSeries::new(s.instrument.clone());
                r.timeframe = s.timeframe;
                r.calendar = s.calendar;
                r
            })
            .collect();
        RecordingFeed { inner, series }
    }

    /// The bars handed over so far.
    pub fn series(&self) -> &[BarSeries] {
        &self.series
    }

    /// The recorded bars.
    pub fn into_series(self) -> Vec<BarSeries> {
        self.series
    }
}

impl<F: Feed> Feed for RecordingFeed<F> {
    fn next(&mut self, wait: Duration, out: &mut Vec<(usize, Bar)>) -> Result<FeedStatus, FeedError> {
        let status = self.inner.next(wait, out)?;
        if let FeedStatus::Tick(_) = status {
            for (i, bar) in out.iter() {
                if let Some(s) = self.series.get_mut(*i) {
                    if tradelab_data::load::bar_problem(bar, s.ts.last().copied()).is_none() {
                        s.push(*bar);
                    }
                }
            }
        }
        Ok(status)
    }

    fn reconnect(&mut self) -> Result<(), FeedError> {
        self.inner.reconnect()
    }

    fn catch_up_until(&mut self, ts: i64) {
        self.inner.catch_up_until(ts)
    }

    fn market_closed(&mut self) -> bool {
        self.inner.market_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, ts: &[i64]) -> BarSeries {
        let mut s = BarSeries::new(name);
        for &t in ts {
            s.push(Bar {
                ts: t,
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 0.0,
            });
        }
        s
    }

    #[test]
    fn a_replay_merges_instruments_by_timestamp() {
        let a = series("a", &[1, 2, 4]);
        let b = series("b", &[2, 3, 4]);
        let mut feed = ReplayFeed::new(vec![&a, &b], &[0, 0], 0.0);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        while let FeedStatus::Tick(ts) = feed.next(Duration::ZERO, &mut out).unwrap() {
            seen.push((ts, out.iter().map(|(i, _)| *i).collect::<Vec<_>>()));
        }
        assert_eq!(seen, vec![(1, vec![0]), (2, vec![0, 1]), (3, vec![1]), (4, vec![0, 1])]);
    }

    #[test]
    fn a_recording_keeps_the_bars_handed_over_but_not_one_the_session_refuses() {
        let mut a = series("a", &[1, 2, 3, 4]);
        a.high[2] = f64::NAN; // bar 3 fails the loader's rules
        let mut feed = RecordingFeed::new(ReplayFeed::new(vec![&a], &[0], 0.0), &[&a]);
        let mut out = Vec::new();
        while let FeedStatus::Tick(_) = feed.next(Duration::ZERO, &mut out).unwrap() {}
        let kept = feed.into_series();
        assert_eq!(kept[0].ts, vec![1, 2, 4]);
        assert_eq!(kept[0].instrument, "a");
    }

    #[test]
    fn a_paced_replay_waits_between_bars_but_not_while_catching_up() {
        // One bar a second of data at 10x: 100 ms apart.
        let a = series("a", &[0, 1000, 2000, 3000]);
        let mut feed = ReplayFeed::new(vec![&a], &[0], 10.0);
        feed.catch_up_until(1000);
        let mut out = Vec::new();
        let t = Instant::now();
        feed.next(Duration::from_secs(1), &mut out).unwrap();
        feed.next(Duration::from_secs(1), &mut out).unwrap();
        assert!(t.elapsed() < Duration::from_millis(50), "caught up at once");
        // Asked to wait less than the gap: it says so.
        assert_eq!(
            feed.next(Duration::from_millis(10), &mut out).unwrap(),
            FeedStatus::Waiting
        );
        assert_eq!(
            feed.next(Duration::from_secs(1), &mut out).unwrap(),
            FeedStatus::Tick(2000)
        );
        assert!(t.elapsed() >= Duration::from_millis(100));
    }
}
