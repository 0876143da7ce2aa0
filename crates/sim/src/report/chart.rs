//! The chart a trader reads, as a dependency-free SVG: the price with entry
//! and exit markers on top, equity against buy-and-hold in the middle,
//! drawdown below, dated axes and the drawdown breaker's halt marked.
//! [`Chart`] holds what is drawn, aligned bar by bar, so the interactive
//! HTML report ([`super::html`]) draws the same series.

use std::fmt::Write as _;

use tradelab_core::time::{civil_from_days, day_of, days_from_civil, format_date, MS_PER_DAY};
use tradelab_core::{BarSeries, Side};

use crate::engine::BacktestResult;
use crate::risk::RiskRule;

const W: f64 = 960.0;
const H: f64 = 700.0;
const PAD_L: f64 = 90.0;
const PAD_R: f64 = 20.0;
const PRICE: (f64, f64) = (50.0, 270.0);
const EQUITY: (f64, f64) = (300.0, 500.0);
const DRAWDOWN: (f64, f64) = (525.0, 640.0);
const DATE_Y: f64 = 662.0;
/// Enough points for a smooth line at this width; min/max per bucket keep spikes.
const MAX_POINTS: usize = 2000;
/// More fills than this are counted, not marked one by one.
pub const MAX_MARKERS: usize = 1500;

/// Colours shared by the SVG and the HTML report.
pub(crate) const PRICE_COLOR: &str = "#444444";
pub(crate) const EQUITY_COLOR: &str = "#1f77b4";
pub(crate) const BENCHMARK_COLOR: &str = "#ff7f0e";
pub(crate) const DRAWDOWN_COLOR: &str = "#d62728";
pub(crate) const LONG_COLOR: &str = "#2ca02c";
pub(crate) const SHORT_COLOR: &str = "#d62728";
pub(crate) const EXIT_COLOR: &str = "#000000";

/// What a fill marker shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// A buy that opened or added to a long position.
    LongEntry,
    /// A sale that opened or added to a short position.
    ShortEntry,
    /// A fill that reduced or closed a position.
    Exit,
}

/// A fill on the price panel: at bar `index`, at the fill's price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Marker {
    /// Index into [`Chart::timestamps`].
    pub index: usize,
    /// The fill price.
    pub price: f64,
    /// Entry long, entry short or exit.
    pub kind: MarkerKind,
}

/// Everything the chart draws, aligned to the equity curve's points.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Strategy and instruments.
    pub title: String,
    /// One per equity point.
    pub timestamps: Vec<i64>,
    /// Marked equity.
    pub equity: Vec<f64>,
    /// Buy-and-hold of the instruments, equal weights, no costs, from the
    /// same starting cash.
    pub benchmark: Vec<f64>,
    /// The first instrument's name and its last close at each point.
    pub price: Option<(String, Vec<f64>)>,
    /// The first instrument's fills, at most [`MAX_MARKERS`].
    pub markers: Vec<Marker>,
    /// All fills of the first instrument, marked or not.
    pub fills: usize,
    /// Labelled times (the breaker's halt).
    pub marks: Vec<(i64, String)>,
}

/// Each feed's last close at or before each of `ts`, over its first close
/// (1 before the feed starts).
fn aligned_closes(ts: &[i64], feed: &BarSeries) -> Vec<f64> {
    let mut out = Vec::with_capacity(ts.len());
    let mut j = 0;
    let mut last = f64::NAN;
    for &t in ts {
        while j < feed.len() && feed.ts[j] <= t {
            last = feed.close[j];
            j += 1;
        }
        out.push(last);
    }
    out
}

impl Chart {
    /// The chart of a backtest over `feeds` (in the engine's feed order).
    pub fn of(title: &str, result: &BacktestResult<'_>, feeds: &[&BarSeries]) -> Chart {
        let ts: Vec<i64> = result.timestamps.to_vec();
        let mut benchmark = vec![0.0; ts.len()];
        let mut price = None;
        for (k, feed) in feeds.iter().enumerate() {
            let closes = aligned_closes(&ts, feed);
            let first = feed.close.first().copied().unwrap_or(f64::NAN);
            for (b, c) in benchmark.iter_mut().zip(&closes) {
                let growth = if c.is_finite() && first > 0.0 { c / first } else { 1.0 };
                *b += result.initial_cash * growth / feeds.len() as f64;
            }
            if k == 0 {
                // Before the first bar, the first close stands in.
                let filled = closes.iter().map(|c| if c.is_finite() { *c } else { first }).collect();
                price = Some((feed.instrument.clone(), filled));
            }
        }
        if feeds.is_empty() {
            benchmark = vec![result.initial_cash; ts.len()];
        }
        let first_instrument: Vec<_> = result.fills.iter().filter(|f| f.instrument == 0).collect();
        let markers = if first_instrument.len() > MAX_MARKERS || price.is_none() {
            Vec::new()
        } else {
            first_instrument
                .iter()
                .map(|f| Marker {
                    index: ts.partition_point(|t| *t < f.ts).min(ts.len().saturating_sub(1)),
                    price: f.price,
                    kind: match (f.is_entry, f.side) {
                        (true, Side::Buy) => MarkerKind::LongEntry,
                        (true, Side::Sell) => MarkerKind::ShortEntry,
                        (false, _) => MarkerKind::Exit,
                    },
                })
                .collect()
        };
        let marks = result
            .risk_events
            .iter()
            .find(|e| e.rule == RiskRule::DrawdownCircuitBreaker)
            .map(|e| (e.ts, format!("halted {}", format_date(e.ts))))
            .into_iter()
            .collect();
        Chart {
            title: title.to_string(),
            timestamps: ts,
            equity: result.equity.clone(),
            benchmark,
            price,
            markers,
            fills: first_instrument.len(),
            marks,
        }
    }

    /// The drawdown of the equity curve at each point (a fraction <= 0).
    pub fn drawdown(&self) -> Vec<f64> {
        let mut peak = f64::MIN;
        self.equity
            .iter()
            .map(|&e| {
                peak = peak.max(e);
                if peak > 0.0 {
                    e / peak - 1.0
                } else {
                    0.0
                }
            })
            .collect()
    }
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Indices to draw: all of them for short curves, otherwise the first,
/// minimum and maximum of each bucket so drawdowns are not smoothed away.
pub(crate) fn sample(values: &[f64], max_points: usize) -> Vec<usize> {
    if values.len() <= max_points {
        return (0..values.len()).collect();
    }
    let bucket = values.len().div_ceil(max_points / 2);
    let mut idx = Vec::with_capacity(max_points + 2);
    for start in (0..values.len()).step_by(bucket) {
        let end = (start + bucket).min(values.len());
        let slice = &values[start..end];
        let (mut lo, mut hi) = (0, 0);
        for (j, v) in slice.iter().enumerate() {
            if *v < slice[lo] {
                lo = j;
            }
            if *v > slice[hi] {
                hi = j;
            }
        }
        let (a, b) = if lo < hi { (lo, hi) } else { (hi, lo) };
        idx.push(start + a);
        if b != a {
            idx.push(start + b);
        }
    }
    idx.push(values.len() - 1);
    idx.dedup();
    idx
}

/// Calendar-aligned date ticks over `ts`: years, months or days, at most
/// about eight; each is (index of its first bar, label).
pub(crate) fn date_ticks(ts: &[i64]) -> Vec<(usize, String)> {
    let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else {
        return Vec::new();
    };
    let days = (last - first) / MS_PER_DAY;
    let (y0, m0, _) = civil_from_days(day_of(first));
    let mut candidates: Vec<(i64, String)> = Vec::new();
    if days > 3 * 365 {
        let step = ((days / 365) / 8 + 1).max(1);
        let (y1, _, _) = civil_from_days(day_of(last));
        let mut y = y0 + 1;
        while y <= y1 {
            candidates.push((days_from_civil(y, 1, 1) * MS_PER_DAY, y.to_string()));
            y += step;
        }
    } else if days > 90 {
        let months = days / 30;
        let step = (months / 8 + 1).max(1);
        let mut index = y0 * 12 + i64::from(m0);
        loop {
            let (y, m) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
            let t = days_from_civil(y, m, 1) * MS_PER_DAY;
            if t > last {
                break;
            }
            candidates.push((t, format!("{y:04}-{m:02}")));
            index += step;
        }
    } else {
        let n = ts.len();
        let mut out: Vec<(usize, String)> = Vec::new();
        for k in 0..6 {
            let i = k * (n - 1) / 5;
            if out.last().map(|l| l.0) != Some(i) {
                out.push((i, format_date(ts[i])));
            }
        }
        return out;
    }
    candidates
        .into_iter()
        .filter(|(t, _)| *t >= first)
        .map(|(t, label)| (ts.partition_point(|x| *x < t), label))
        .collect()
}

/// Renders the chart as an SVG document.
pub fn chart_svg(c: &Chart) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#ffffff"/><text x="{PAD_L}" y="24" font-size="16" font-weight="bold">{}</text>"##,
        escape(&c.title)
    );
    if c.equity.len() < 2 {
        svg.push_str(r#"<text x="90" y="200">not enough data to chart</text></svg>"#);
        return svg;
    }
    let n = c.equity.len() - 1;
    let x = |i: usize| PAD_L + (W - PAD_L - PAD_R) * i as f64 / n as f64;
    let xr = W - PAD_R;

    // Dated grid through every panel.
    for (i, label) in date_ticks(&c.timestamps) {
        let _ = write!(
            svg,
            r##"<line x1="{xi:.1}" y1="{top}" x2="{xi:.1}" y2="{bottom}" stroke="#eeeeee"/><text x="{xi:.1}" y="{DATE_Y}" fill="#555555" text-anchor="middle">{label}</text>"##,
            xi = x(i),
            top = PRICE.0,
            bottom = DRAWDOWN.1,
        );
    }

    // Price panel.
    if let Some((name, close)) = &c.price {
        let (lo, hi) = min_max(close.iter().chain(c.markers.iter().map(|m| &m.price)));
        let y = scale(lo, hi, PRICE);
        axis(&mut svg, PRICE, &format!("{hi:.2}"), &format!("{lo:.2}"), &escape(name));
        polyline(
            &mut svg,
            PRICE_COLOR,
            1.2,
            sample(close, MAX_POINTS).into_iter().map(|i| (x(i), y(close[i]))),
        );
        for m in &c.markers {
            let (mx, my) = (x(m.index), y(m.price));
            let _ = match m.kind {
                MarkerKind::LongEntry => write!(
                    svg,
                    r##"<path d="M{:.1},{:.1}l-5,9h10z" fill="{LONG_COLOR}"/>"##,
                    mx,
                    my + 2.0
                ),
                MarkerKind::ShortEntry => write!(
                    svg,
                    r##"<path d="M{:.1},{:.1}l-5,-9h10z" fill="{SHORT_COLOR}"/>"##,
                    mx,
                    my - 2.0
                ),
                MarkerKind::Exit => write!(
                    svg,
                    r##"<circle cx="{mx:.1}" cy="{my:.1}" r="3.5" fill="none" stroke="{EXIT_COLOR}" stroke-width="1.2"/>"##
                ),
            };
        }
        let note = if c.fills > c.markers.len() {
            format!("{} fills: too many to mark", c.fills)
        } else {
            format!("▲ long entry  ▼ short entry  ○ exit  ({} fills)", c.fills)
        };
        let _ = write!(
            svg,
            r##"<text x="{xr}" y="{ty}" fill="#555555" text-anchor="end">{note}</text>"##,
            ty = PRICE.0 - 6.0
        );
    }

    // Equity against buy-and-hold.
    let (lo, hi) = min_max(c.equity.iter().chain(&c.benchmark));
    let y = scale(lo, hi, EQUITY);
    axis(&mut svg, EQUITY, &format!("{hi:.0}"), &format!("{lo:.0}"), "equity");
    polyline(
        &mut svg,
        BENCHMARK_COLOR,
        1.0,
        sample(&c.benchmark, MAX_POINTS)
            .into_iter()
            .map(|i| (x(i), y(c.benchmark[i]))),
    );
    polyline(
        &mut svg,
        EQUITY_COLOR,
        1.5,
        sample(&c.equity, MAX_POINTS)
            .into_iter()
            .map(|i| (x(i), y(c.equity[i]))),
    );
    let _ = write!(
        svg,
        r##"<text x="{xr}" y="{ty}" text-anchor="end"><tspan fill="{EQUITY_COLOR}">━ strategy</tspan><tspan fill="{BENCHMARK_COLOR}" dx="12">━ buy and hold (no costs)</tspan></text>"##,
        ty = EQUITY.0 - 6.0
    );

    // Drawdown area.
    let drawdown = c.drawdown();
    let worst = drawdown.iter().cloned().fold(0.0f64, f64::min).min(-1e-9);
    let y_dd = |d: f64| DRAWDOWN.0 + (DRAWDOWN.1 - DRAWDOWN.0) * d / worst;
    axis(&mut svg, DRAWDOWN, "0%", &format!("{:.1}%", worst * 100.0), "drawdown");
    let _ = write!(
        svg,
        r##"<polygon fill="{DRAWDOWN_COLOR}" fill-opacity="0.35" stroke="{DRAWDOWN_COLOR}" stroke-width="0.8" points="{:.1},{:.1} "##,
        x(0),
        DRAWDOWN.0
    );
    for i in sample(&drawdown, MAX_POINTS) {
        let _ = write!(svg, "{:.1},{:.1} ", x(i), y_dd(drawdown[i]));
    }
    let _ = write!(svg, r#"{:.1},{:.1}"/>"#, x(n), DRAWDOWN.0);

    for (ts, label) in &c.marks {
        let i = c.timestamps.partition_point(|t| t < ts).min(n);
        let _ = write!(
            svg,
            r##"<line x1="{xi:.1}" y1="{t0}" x2="{xi:.1}" y2="{b1}" stroke="{DRAWDOWN_COLOR}" stroke-width="1.2" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{ty}" fill="{DRAWDOWN_COLOR}">{}</text>"##,
            escape(label),
            xi = x(i),
            t0 = PRICE.0,
            b1 = DRAWDOWN.1,
            tx = x(i) + 4.0,
            ty = EQUITY.0 + 12.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn min_max<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

fn scale(lo: f64, hi: f64, panel: (f64, f64)) -> impl Fn(f64) -> f64 {
    move |v| panel.1 - (panel.1 - panel.0) * (v - lo) / (hi - lo)
}

/// A panel's frame, its top and bottom values and its rotated label.
fn axis(svg: &mut String, panel: (f64, f64), top: &str, bottom: &str, label: &str) {
    let mid = (panel.0 + panel.1) / 2.0;
    let _ = write!(
        svg,
        r##"<g stroke="#cccccc"><line x1="{PAD_L}" y1="{t}" x2="{PAD_L}" y2="{b}"/><line x1="{PAD_L}" y1="{b}" x2="{xr}" y2="{b}"/></g><g fill="#555555"><text x="{lx}" y="{ty}" text-anchor="end">{top}</text><text x="{lx}" y="{b}" text-anchor="end">{bottom}</text><text x="16" y="{mid}" transform="rotate(-90 16 {mid})" text-anchor="middle">{label}</text></g>"##,
        t = panel.0,
        b = panel.1,
        xr = W - PAD_R,
        lx = PAD_L - 6.0,
        ty = panel.0 + 4.0,
    );
}

fn polyline(svg: &mut String, color: &str, width: f64, points: impl Iterator<Item = (f64, f64)>) {
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="{color}" stroke-width="{width}" points=""##
    );
    for (px, py) in points {
        let _ = write!(svg, "{px:.1},{py:.1} ");
    }
    svg.push_str(r#""/>"#);
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn chart(n: usize, step: i64) -> Chart {
        let ts: Vec<i64> = (0..n as i64).map(|i| 10_957 * MS_PER_DAY + i * step).collect();
        let equity: Vec<f64> = (0..n)
            .map(|i| 100_000.0 + (i as f64 * 0.01).sin() * 5000.0 + i as f64)
            .collect();
        Chart {
            title: "sma <test> & co".into(),
            benchmark: equity.iter().map(|e| e * 0.9).collect(),
            price: Some(("x".into(), equity.iter().map(|e| e / 1000.0).collect())),
            markers: vec![
                Marker {
                    index: 10,
                    price: 100.0,
                    kind: MarkerKind::LongEntry,
                },
                Marker {
                    index: 20,
                    price: 101.0,
                    kind: MarkerKind::Exit,
                },
            ],
            fills: 2,
            marks: Vec::new(),
            timestamps: ts,
            equity,
        }
    }

    #[test]
    fn chart_is_valid_svg_with_every_panel() {
        let svg = chart_svg(&chart(5000, MS_PER_DAY));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3, "price, benchmark, equity");
        assert!(svg.contains("<polygon") && svg.contains("buy and hold"));
        assert!(svg.contains("sma &lt;test&gt; &amp; co"));
        assert!(svg.contains(LONG_COLOR) && svg.contains("<circle"));
        assert!(svg.len() < 300_000, "downsampled: {}", svg.len());
        let mut short = chart(1, MS_PER_DAY);
        short.price = None;
        assert!(chart_svg(&short).contains("not enough data"));
    }

    #[test]
    fn dated_ticks_follow_the_span() {
        let years = chart(5000, MS_PER_DAY);
        let ticks = date_ticks(&years.timestamps);
        assert!(ticks.iter().any(|(_, l)| l == "2001"), "{ticks:?}");
        assert!(ticks.len() <= 10 && ticks.windows(2).all(|w| w[0].0 < w[1].0));
        let months = date_ticks(&chart(300, MS_PER_DAY).timestamps);
        assert!(months.iter().any(|(_, l)| l == "2000-02"), "{months:?}");
        let days = date_ticks(&chart(60, 3_600_000).timestamps);
        assert_eq!(days.first().unwrap().1, "2000-01-01");
        assert!(date_ticks(&[]).is_empty());
    }

    #[test]
    fn sampling_keeps_the_extremes() {
        let mut v: Vec<f64> = (0..100_000).map(|i| i as f64).collect();
        v[54_321] = -1e9;
        let idx = sample(&v, MAX_POINTS);
        assert!(idx.contains(&54_321));
        assert!(idx.len() <= MAX_POINTS + 2);
    }

    #[test]
    fn a_mark_is_drawn_at_its_bar_with_its_label() {
        let mut c = chart(100, MS_PER_DAY);
        let plain = chart_svg(&c);
        assert!(!plain.contains("stroke-dasharray"));
        c.marks = vec![(c.timestamps[50], "halted <day>".to_string())];
        let svg = chart_svg(&c);
        assert!(
            svg.contains("stroke-dasharray") && svg.contains("halted &lt;day&gt;"),
            "{svg}"
        );
    }
}
