use std::cmp::Ordering;

use tradelab_core::{Action, BarSeries};
use tradelab_data::features::{exact_mean_at, Sma, SmaPoint};

use crate::strategy::{BarContext, Strategy};

/// Long on a golden cross (fast SMA crosses above slow), out (or short, if
/// allowed) on a death cross. A cross at bar t needs both averages valid at
/// t and t-1: golden when `fast[t] > slow[t]` and `fast[t-1] <= slow[t-1]`.
///
/// The averages are compared as their correctly rounded values (what
/// backtrader and backtesting.py compute), so exact ties decide the same way
/// as in those tools: the cheap running averages settle every comparison
/// except those within their error bounds, which fall back to exact means.
pub struct SmaCrossover {
    fast: usize,
    slow: usize,
    allow_short: bool,
    state: Vec<CrossState>,
}

struct CrossState {
    fast: Sma,
    slow: Sma,
    /// How fast compared with slow at the previous bar.
    prev: Option<Ordering>,
}

impl SmaCrossover {
    /// Crosses a `fast`-bar SMA with a `slow`-bar one; with `allow_short`,
    /// a death cross goes short instead of closing the long.
    pub fn new(fast: usize, slow: usize, allow_short: bool) -> Self {
        SmaCrossover {
            fast,
            slow,
            allow_short,
            state: Vec::new(),
        }
    }
}

/// What [`compare`] needs of an average at one bar: a streaming [`Sma`],
/// or a bar of a precomputed track ([`SharedSmaCrossover`]).
trait Averaged {
    fn is_tight(&self) -> bool;
    fn error_bound(&self) -> f64;
    fn exact(&self) -> f64;
}

impl Averaged for Sma {
    #[inline(always)]
    fn is_tight(&self) -> bool {
        Sma::is_tight(self)
    }
    #[inline(always)]
    fn error_bound(&self) -> f64 {
        Sma::error_bound(self)
    }
    fn exact(&self) -> f64 {
        Sma::exact(self)
    }
}

/// A bar of a shared track, with the closes its exact mean is taken from.
struct TrackBar<'a> {
    point: SmaPoint,
    closes: &'a [f64],
    index: usize,
    period: usize,
}

impl Averaged for TrackBar<'_> {
    #[inline(always)]
    fn is_tight(&self) -> bool {
        self.point.tight
    }
    #[inline(always)]
    fn error_bound(&self) -> f64 {
        self.point.bound
    }
    fn exact(&self) -> f64 {
        exact_mean_at(self.closes, self.index, self.period)
    }
}

/// `fast` against `slow` as exact means, using the running values when
/// their error bounds cannot change the answer.
#[inline]
fn compare<F: Averaged, S: Averaged>(fast: &F, f: f64, slow: &S, s: f64) -> Option<Ordering> {
    let gap = (f - s).abs();
    // Tight values are within ~1e-10 relative of exact, so a gap of 1e-9
    // relative settles the order without computing the bounds (the common
    // case); twice the bounds also covers the rounding of the subtraction.
    let settled = (fast.is_tight() && slow.is_tight() && gap > 1e-9 * f.abs().max(s.abs()))
        || gap > 2.0 * (fast.error_bound() + slow.error_bound());
    if settled {
        f.partial_cmp(&s)
    } else {
        fast.exact().partial_cmp(&slow.exact())
    }
}

impl Strategy for SmaCrossover {
    fn name(&self) -> String {
        format!("sma_crossover({},{})", self.fast, self.slow)
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        self.state = feeds
            .iter()
            .map(|_| CrossState {
                fast: Sma::new(self.fast),
                slow: Sma::new(self.slow),
                prev: None,
            })
            .collect();
    }

    #[inline(always)]
    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let s = &mut self.state[ctx.instrument];
        let f = s.fast.update(ctx.bar.close);
        let sl = s.slow.update(ctx.bar.close);
        if !(f.is_finite() && sl.is_finite()) {
            return;
        }
        let now = compare(&s.fast, f, &s.slow, sl);
        if let Some(action) = cross(s.prev, now, self.allow_short) {
            ctx.act(action);
        }
        s.prev = now;
    }
}

/// The crossover of one instrument from one bar's comparison: the action
/// due, and the comparison to remember.
#[inline(always)]
fn cross(prev: Option<Ordering>, now: Option<Ordering>, allow_short: bool) -> Option<Action> {
    match (prev, now) {
        (Some(Ordering::Less | Ordering::Equal), Some(Ordering::Greater)) => Some(Action::BuyLong),
        (Some(Ordering::Greater | Ordering::Equal), Some(Ordering::Less)) => Some(if allow_short {
            Action::SellShort
        } else {
            Action::CloseLong
        }),
        _ => None,
    }
}

/// One instrument's averages computed once for a parameter search: its
/// closes and the [`SmaPoint`] track of each window.
pub struct SharedAverages<'a> {
    /// The instrument's closes, from its first bar.
    pub closes: &'a [f64],
    /// The `fast`-bar track over `closes`.
    pub fast: &'a [SmaPoint],
    /// The `slow`-bar track over `closes`.
    pub slow: &'a [SmaPoint],
}

/// [`SmaCrossover`] reading averages computed once for many strategies
/// (issue 25's searches share a window across every combination that uses
/// it). It decides exactly as `SmaCrossover` does on the same bars: the
/// tracks hold the values, bounds and tightness a streaming average reports,
/// and exact ties fall back to the same ring-ordered exact sum.
pub struct SharedSmaCrossover<'a> {
    fast: usize,
    slow: usize,
    allow_short: bool,
    instruments: Vec<SharedAverages<'a>>,
    prev: Vec<Option<Ordering>>,
}

impl<'a> SharedSmaCrossover<'a> {
    /// A `fast`/`slow` crossover over precomputed tracks, one entry of
    /// `instruments` per feed, in the engine's feed order.
    pub fn new(fast: usize, slow: usize, allow_short: bool, instruments: Vec<SharedAverages<'a>>) -> Self {
        SharedSmaCrossover {
            fast,
            slow,
            allow_short,
            prev: vec![None; instruments.len()],
            instruments,
        }
    }
}

impl Strategy for SharedSmaCrossover<'_> {
    fn name(&self) -> String {
        format!("sma_crossover({},{})", self.fast, self.slow)
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        assert_eq!(feeds.len(), self.instruments.len(), "one pair of tracks per feed");
        self.prev.fill(None);
    }

    #[inline(always)]
    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let k = ctx.index;
        let a = &self.instruments[ctx.instrument];
        let (f, s) = (a.fast[k], a.slow[k]);
        if !(f.value.is_finite() && s.value.is_finite()) {
            return;
        }
        let fast = TrackBar {
            point: f,
            closes: a.closes,
            index: k,
            period: self.fast,
        };
        let slow = TrackBar {
            point: s,
            closes: a.closes,
            index: k,
            period: self.slow,
        };
        let now = compare(&fast, f.value, &slow, s.value);
        if let Some(action) = cross(self.prev[ctx.instrument], now, self.allow_short) {
            ctx.act(action);
        }
        self.prev[ctx.instrument] = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testing;

    /// The bars at which a long-only crossover acts, for a series of closes.
    fn signals(closes: &[f64], fast: usize, slow: usize) -> Vec<(usize, Action)> {
        testing::signals(&mut SmaCrossover::new(fast, slow, false), closes)
    }

    #[test]
    fn an_exact_tie_is_not_a_cross_even_where_running_sums_drift() {
        // At bar 2 the slow running total has lost the 1.0 added beside 1e16
        // and reads 0.5 < fast = 1.0, but the exact means are equal (1.0 and
        // 1.0): no cross there. Bar 3 then crosses for real.
        assert_eq!(signals(&[1e16, 1.0, 1.0, 2.0], 1, 2), vec![(3, Action::BuyLong)]);
    }

    #[test]
    fn shared_tracks_decide_exactly_as_the_streaming_averages_do_ties_included() {
        use tradelab_data::features::sma_track;
        // Exact ties (1e16 drift) and ordinary crosses, with and without shorts.
        let mut closes = vec![1e16, 1.0, 1.0, 2.0, 5.0, 4.0, 3.0, 4.0, 6.0, 5.0, 3.0, 2.0];
        closes.extend((0..400).map(|i| 100.0 + ((i * 37) % 23) as f64 - 11.0));
        for (fast, slow) in [(1, 2), (1, 3), (3, 8), (5, 20)] {
            for allow_short in [false, true] {
                let (ft, st) = (sma_track(&closes, fast), sma_track(&closes, slow));
                let shared = SharedAverages {
                    closes: &closes,
                    fast: &ft,
                    slow: &st,
                };
                let mut a = SharedSmaCrossover::new(fast, slow, allow_short, vec![shared]);
                let mut b = SmaCrossover::new(fast, slow, allow_short);
                assert_eq!(a.name(), b.name());
                let (sa, sb) = (testing::signals(&mut a, &closes), testing::signals(&mut b, &closes));
                assert!(!sb.is_empty());
                assert_eq!(sa, sb, "fast {fast} slow {slow} shorts {allow_short}");
            }
        }
    }

    #[test]
    fn golden_and_death_crosses_on_a_simple_series() {
        let closes = [5.0, 4.0, 3.0, 4.0, 6.0, 5.0, 3.0, 2.0];
        // fast(1) vs slow(3): slow valid from bar 2.
        assert_eq!(
            signals(&closes, 1, 3),
            vec![(3, Action::BuyLong), (6, Action::CloseLong)]
        );
    }

    #[test]
    fn with_shorts_a_death_cross_goes_short_and_a_golden_cross_comes_back_long() {
        let closes = [5.0, 4.0, 3.0, 4.0, 6.0, 5.0, 3.0, 2.0, 4.0, 7.0];
        let mut both_ways = SmaCrossover::new(1, 3, true);
        assert_eq!(both_ways.name(), "sma_crossover(1,3)");
        assert_eq!(
            testing::signals(&mut both_ways, &closes),
            vec![(3, Action::BuyLong), (6, Action::SellShort), (8, Action::BuyLong)]
        );
    }
}
