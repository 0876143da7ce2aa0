//! A dependency-free SVG chart: equity on top, drawdown below.

use std::fmt::Write as _;

use tradelab_core::time::format_date;

const W: f64 = 960.0;
const H: f64 = 540.0;
const PAD_L: f64 = 90.0;
const PAD_R: f64 = 20.0;
const TOP: (f64, f64) = (40.0, 340.0);
const BOTTOM: (f64, f64) = (370.0, 510.0);
/// Enough points for a smooth line at this width; min/max per bucket keep spikes.
const MAX_POINTS: usize = 2000;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Indices to draw: all of them for short curves, otherwise the first,
/// minimum and maximum of each bucket so drawdowns are not smoothed away.
fn sample(values: &[f64]) -> Vec<usize> {
    if values.len() <= MAX_POINTS {
        return (0..values.len()).collect();
    }
    let bucket = values.len().div_ceil(MAX_POINTS / 2);
    let mut idx = Vec::with_capacity(MAX_POINTS + 2);
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

/// Renders the equity curve and its drawdown as an SVG document.
pub fn equity_chart_svg(title: &str, timestamps: &[i64], equity: &[f64]) -> String {
    equity_chart_svg_marked(title, timestamps, equity, &[])
}

/// [`equity_chart_svg`] with labelled vertical marks at the given times
/// (the drawdown breaker's halt, say), each at the first bar at or after it.
pub fn equity_chart_svg_marked(title: &str, timestamps: &[i64], equity: &[f64], marks: &[(i64, String)]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#ffffff"/><text x="{PAD_L}" y="24" font-size="16" font-weight="bold">{}</text>"##,
        escape(title)
    );
    if equity.len() < 2 {
        svg.push_str(r#"<text x="90" y="200">not enough data to chart</text></svg>"#);
        return svg;
    }
    let mut peak = f64::MIN;
    let drawdown: Vec<f64> = equity
        .iter()
        .map(|&e| {
            peak = peak.max(e);
            if peak > 0.0 {
                e / peak - 1.0
            } else {
                0.0
            }
        })
        .collect();
    let (lo, hi) = equity
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &e| (a.min(e), b.max(e)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let worst = drawdown.iter().cloned().fold(0.0f64, f64::min).min(-1e-9);
    let n = equity.len() - 1;
    let x = |i: usize| PAD_L + (W - PAD_L - PAD_R) * i as f64 / n as f64;
    let y_eq = |e: f64| TOP.1 - (TOP.1 - TOP.0) * (e - lo) / span;
    let y_dd = |d: f64| BOTTOM.0 + (BOTTOM.1 - BOTTOM.0) * d / worst;

    // Axes and labels.
    let _ = write!(
        svg,
        r##"<g stroke="#cccccc"><line x1="{PAD_L}" y1="{t0}" x2="{PAD_L}" y2="{t1}"/><line x1="{PAD_L}" y1="{t1}" x2="{xr}" y2="{t1}"/><line x1="{PAD_L}" y1="{b0}" x2="{xr}" y2="{b0}"/></g><g fill="#555555"><text x="{lx}" y="{ty0}" text-anchor="end">{hi:.0}</text><text x="{lx}" y="{t1}" text-anchor="end">{lo:.0}</text><text x="{lx}" y="{b0}" text-anchor="end">0%</text><text x="{lx}" y="{b1}" text-anchor="end">{wd:.1}%</text><text x="{PAD_L}" y="{date_y}">{d0}</text><text x="{xr}" y="{date_y}" text-anchor="end">{d1}</text><text x="{lx2}" y="{mid_eq}" transform="rotate(-90 {lx2} {mid_eq})" text-anchor="middle">equity</text><text x="{lx2}" y="{mid_dd}" transform="rotate(-90 {lx2} {mid_dd})" text-anchor="middle">drawdown</text></g>"##,
        t0 = TOP.0,
        t1 = TOP.1,
        b0 = BOTTOM.0,
        b1 = BOTTOM.1,
        xr = W - PAD_R,
        lx = PAD_L - 6.0,
        lx2 = 16.0,
        ty0 = TOP.0 + 4.0,
        wd = worst * 100.0,
        date_y = H - 10.0,
        d0 = format_date(timestamps[0]),
        d1 = format_date(timestamps[n]),
        mid_eq = (TOP.0 + TOP.1) / 2.0,
        mid_dd = (BOTTOM.0 + BOTTOM.1) / 2.0,
    );
    // Equity line.
    svg.push_str(r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points=""##);
    for i in sample(equity) {
        let _ = write!(svg, "{:.1},{:.1} ", x(i), y_eq(equity[i]));
    }
    svg.push_str(r#""/>"#);
    // Drawdown area.
    let _ = write!(
        svg,
        r##"<polygon fill="#d62728" fill-opacity="0.35" stroke="#d62728" stroke-width="0.8" points="{:.1},{:.1} "##,
        x(0),
        BOTTOM.0
    );
    for i in sample(&drawdown) {
        let _ = write!(svg, "{:.1},{:.1} ", x(i), y_dd(drawdown[i]));
    }
    let _ = write!(svg, r#"{:.1},{:.1}"/>"#, x(n), BOTTOM.0);
    for (ts, label) in marks {
        let i = timestamps.partition_point(|t| t < ts).min(n);
        let _ = write!(
            svg,
            r##"<line x1="{xi:.1}" y1="{t0}" x2="{xi:.1}" y2="{b1}" stroke="#d62728" stroke-width="1.2" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{ty}" fill="#d62728">{}</text>"##,
            escape(label),
            xi = x(i),
            t0 = TOP.0,
            b1 = BOTTOM.1,
            tx = x(i) + 4.0,
            ty = TOP.0 + 12.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_valid_svg_with_both_panels() {
        let ts: Vec<i64> = (0..5000).map(|i| i * 86_400_000).collect();
        let eq: Vec<f64> = (0..5000)
            .map(|i| 100_000.0 + (i as f64 * 0.01).sin() * 5000.0 + i as f64)
            .collect();
        let svg = equity_chart_svg("sma <test> & co", &ts, &eq);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<polyline") && svg.contains("<polygon"));
        assert!(svg.contains("sma &lt;test&gt; &amp; co"));
        assert!(svg.len() < 200_000, "downsampled: {}", svg.len());
        assert!(equity_chart_svg("x", &ts[..1], &eq[..1]).contains("not enough data"));
    }

    #[test]
    fn sampling_keeps_the_extremes() {
        let mut v: Vec<f64> = (0..100_000).map(|i| i as f64).collect();
        v[54_321] = -1e9;
        let idx = sample(&v);
        assert!(idx.contains(&54_321));
        assert!(idx.len() <= MAX_POINTS + 2);
    }

    #[test]
    fn a_mark_is_drawn_at_its_bar_with_its_label() {
        let ts: Vec<i64> = (0..100).map(|i| i * 86_400_000).collect();
        let eq: Vec<f64> = (0..100).map(|i| 100.0 + i as f64).collect();
        let svg = equity_chart_svg_marked("t", &ts, &eq, &[(50 * 86_400_000, "halted <day>".to_string())]);
        assert!(
            svg.contains("stroke-dasharray") && svg.contains("halted &lt;day&gt;"),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"));
        assert!(!equity_chart_svg("t", &ts, &eq).contains("stroke-dasharray"));
    }
}
