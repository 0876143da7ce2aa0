//! A self-contained interactive HTML report: one file that opens offline,
//! with uPlot (MIT, vendored in `assets/uplot/`) inlined. Three synced
//! panels (price with fills, equity against buy-and-hold, drawdown) that
//! zoom by dragging and show values under the cursor, and the report's
//! figures as a table.

use std::fmt::Write as _;

use super::chart::{
    escape, sample, Chart, MarkerKind, BENCHMARK_COLOR, DRAWDOWN_COLOR, EQUITY_COLOR, EXIT_COLOR, LONG_COLOR,
    PRICE_COLOR, SHORT_COLOR,
};

const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
/// Points per series in the file: enough to zoom into, small enough to
/// keep a 1-minute decade under a few megabytes.
const MAX_POINTS: usize = 6000;

/// A JSON number, or `null` for NaN and infinities.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        "null".into()
    }
}

/// `</` would end the inline script early.
fn script_safe(json: &str) -> String {
    json.replace("</", "<\\/")
}

/// The report as one HTML document. `figures` are (label, value) rows
/// shown beside the chart (the terminal report's figures).
pub fn report_html(c: &Chart, figures: &[(String, String)]) -> String {
    let idx = sample(&c.equity, MAX_POINTS);
    let drawdown = c.drawdown();
    let column = |values: &[f64]| -> String {
        let parts: Vec<String> = idx.iter().map(|&i| num(values[i])).collect();
        format!("[{}]", parts.join(","))
    };
    let times: Vec<String> = idx.iter().map(|&i| (c.timestamps[i] / 1000).to_string()).collect();
    // Fills sit on the nearest drawn point at or after their bar.
    let mut marker_columns = [
        vec!["null".to_string(); idx.len()],
        vec!["null".into(); idx.len()],
        vec!["null".into(); idx.len()],
    ];
    for m in &c.markers {
        let at = idx.partition_point(|&i| i < m.index).min(idx.len().saturating_sub(1));
        let k = match m.kind {
            MarkerKind::LongEntry => 0,
            MarkerKind::ShortEntry => 1,
            MarkerKind::Exit => 2,
        };
        marker_columns[k][at] = num(m.price);
    }
    let mut data = String::new();
    let _ = write!(
        data,
        r#"{{"time":[{}],"equity":{},"benchmark":{},"drawdown":{},"price":{},"priceName":{},"long":[{}],"short":[{}],"exit":[{}],"marks":[{}]}}"#,
        times.join(","),
        column(&c.equity),
        column(&c.benchmark),
        column(&drawdown.iter().map(|d| d * 100.0).collect::<Vec<_>>()),
        c.price.as_ref().map_or("null".into(), |(_, p)| column(p)),
        serde_json::to_string(&c.price.as_ref().map(|(n, _)| n.clone())).unwrap_or_else(|_| "null".into()),
        marker_columns[0].join(","),
        marker_columns[1].join(","),
        marker_columns[2].join(","),
        c.marks
            .iter()
            .map(|(t, l)| format!("[{},{}]", t / 1000, serde_json::to_string(l).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut rows = String::new();
    for (label, value) in figures {
        let _ = write!(rows, "<tr><th>{}</th><td>{}</td></tr>", escape(label), escape(value));
    }
    let title = escape(&c.title);
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{UPLOT_CSS}
body {{ font-family: sans-serif; margin: 16px; color: #222; }}
main {{ display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th {{ text-align: left; font-weight: normal; color: #555; padding: 2px 12px 2px 0; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
.hint {{ color: #777; font-size: 12px; }}
</style></head>
<body><h1 style="font-size:18px">{title}</h1>
<p class="hint">Drag across a panel to zoom, double-click to reset; the panels move together.</p>
<main><div id="charts"></div><table>{rows}</table></main>
<script>{UPLOT_JS}</script>
<script id="report-data" type="application/json">{data}</script>
<script>
"use strict";
const d = JSON.parse(document.getElementById("report-data").textContent);
const width = Math.min(1000, window.innerWidth - 360);
const sync = uPlot.sync("report");
const cursor = {{ sync: {{ key: sync.key }} }};
const halts = (u) => {{
  for (const [t, label] of d.marks) {{
    const x = u.valToPos(t, "x", true);
    const ctx = u.ctx;
    ctx.save(); ctx.strokeStyle = "{DRAWDOWN_COLOR}"; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillStyle = "{DRAWDOWN_COLOR}"; ctx.fillText(label, x + 4, u.bbox.top + 12); ctx.restore();
  }}
}};
const panel = (title, height, series, data) => new uPlot({{
  title, width, height, cursor, series: [{{}}].concat(series),
  axes: [{{}}, {{ size: 80 }}],
  hooks: {{ draw: [halts] }},
}}, [d.time].concat(data), document.getElementById("charts"));
const dots = (label, stroke) => ({{ label, stroke, paths: () => null, points: {{ show: true, size: 9, fill: stroke }} }});
if (d.price) {{
  panel(d.priceName, 260, [
    {{ label: d.priceName, stroke: "{PRICE_COLOR}" }},
    dots("long entry", "{LONG_COLOR}"), dots("short entry", "{SHORT_COLOR}"), dots("exit", "{EXIT_COLOR}"),
  ], [d.price, d.long, d.short, d.exit]);
}}
panel("Equity", 240, [
  {{ label: "strategy", stroke: "{EQUITY_COLOR}", width: 1.5 }},
  {{ label: "buy and hold (no costs)", stroke: "{BENCHMARK_COLOR}" }},
], [d.equity, d.benchmark]);
panel("Drawdown %", 160, [
  {{ label: "drawdown %", stroke: "{DRAWDOWN_COLOR}", fill: "rgba(214,39,40,0.3)" }},
], [d.drawdown]);
</script></body></html>
"#,
        data = script_safe(&data),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chart::{Marker, MarkerKind};
    use tradelab_core::time::MS_PER_DAY;

    fn chart() -> Chart {
        let ts: Vec<i64> = (0..20_000).map(|i| 10_957 * MS_PER_DAY + i * 60_000).collect();
        let equity: Vec<f64> = (0..20_000).map(|i| 1e5 + (i as f64 * 0.001).sin() * 100.0).collect();
        Chart {
            title: "momentum </script> on x".into(),
            benchmark: equity.clone(),
            price: Some(("x".into(), equity.iter().map(|e| e / 1e3).collect())),
            markers: vec![Marker {
                index: 500,
                price: 100.0,
                kind: MarkerKind::ShortEntry,
            }],
            fills: 1,
            marks: vec![(ts[1000], "halted 2000-01-01".into())],
            timestamps: ts,
            equity,
        }
    }

    /// One file, nothing fetched: the library and the data are inline, and
    /// the embedded data parses back to what was charted.
    #[test]
    fn the_report_is_one_offline_file_with_its_data_inline() {
        let html = report_html(&chart(), &[("Sharpe".into(), "1.23".into())]);
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        assert!(html.contains("var uPlot="), "the chart library is inlined");
        for fetch in ["src=\"http", "href=\"http", "src='http", "@import", "fetch("] {
            assert!(!html.contains(fetch), "no network: {fetch}");
        }
        assert!(!html.contains("</script> on x"), "titles cannot close a script");
        assert!(html.contains("<th>Sharpe</th><td>1.23</td>"));
        let start = html.find(r#"type="application/json">"#).unwrap() + 24;
        let end = start + html[start..].find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        let points = data["time"].as_array().unwrap().len();
        assert!(points <= MAX_POINTS + 2 && points > 1000, "{points}");
        assert_eq!(data["equity"].as_array().unwrap().len(), points);
        assert_eq!(
            data["short"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| !v.is_null())
                .count(),
            1
        );
        assert_eq!(data["marks"][0][1], "halted 2000-01-01");
        assert!(html.len() < 2_000_000, "{}", html.len());
    }
}
