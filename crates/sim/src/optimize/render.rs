//! A search's results for people: the ranked table in the terminal, the
//! honesty figures under it, and one offline HTML page with the heatmap.

use std::fmt::Write as _;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use serde_json::Value;

use super::results::{SearchResults, METRIC_COLUMNS};
use super::walk_forward::WalkForwardResults;

/// A metric as a table shows it: counts whole, ratios to three places.
fn metric(name: &str, v: Option<f64>) -> String {
    match (name, v) {
        ("total_trades", Some(x)) => format!("{x:.0}"),
        _ => fmt(v),
    }
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_infinite() => "inf".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
        None => "n/a".into(),
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The columns a table shows after the parameters.
const SHOWN: [&str; 9] = [
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "total_trades",
    "win_rate",
    "fees_paid",
];

/// The top `top` rows as a table, then the deflated Sharpe ratio and PBO.
pub fn render_results(results: &SearchResults, top: usize, plain: bool) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if plain {
        t.force_no_tty();
    }
    let mut header: Vec<String> = vec!["rank".into()];
    header.extend(results.params.iter().map(|p| p.name.clone()));
    header.push(format!("score ({})", objective_name(results)));
    header.extend(SHOWN.iter().map(|s| s.to_string()));
    t.set_header(header);
    for r in results.rows.iter().take(top) {
        let mut row: Vec<Cell> = vec![Cell::new(r.rank)];
        row.extend(results.params.iter().map(|p| Cell::new(value(&r.params[&p.name]))));
        row.push(Cell::new(fmt(r.score)).set_alignment(CellAlignment::Right));
        for name in SHOWN {
            let (_, f) = METRIC_COLUMNS
                .iter()
                .find(|(n, _)| *n == name)
                .expect("a listed metric");
            row.push(Cell::new(metric(name, f(&r.metrics))).set_alignment(CellAlignment::Right));
        }
        t.add_row(row);
    }
    let mut out = format!("{t}\n");
    out.push_str(&honesty(results));
    out
}

fn objective_name(results: &SearchResults) -> String {
    serde_json::to_value(results.objective)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The lines that say how far to trust the best row.
pub fn honesty(results: &SearchResults) -> String {
    let mut out = String::new();
    let n = results.rows.len();
    if let Some(d) = &results.deflation {
        let _ = writeln!(
            out,
            "deflated Sharpe ratio of the best, given {n} combinations: {:.3} (the probability its true Sharpe ratio beats the best of {n} unskilled tries; below 0.95 the best is not distinguishable from luck)",
            d.deflated_sharpe
        );
    }
    match (&results.overfitting, &results.overfitting_unavailable) {
        (Some(o), _) => {
            let _ = writeln!(
                out,
                "probability of backtest overfitting (CSCV, {} blocks, {} splits): {:.2} (the share of splits whose in-sample best ranks in the bottom half out of sample); its out-of-sample Sharpe per bar {:.4} vs {:.4} in sample, loses money in {:.0}% of splits",
                o.blocks,
                o.splits,
                o.pbo,
                o.mean_out_of_sample_sharpe,
                o.mean_in_sample_sharpe,
                o.probability_of_loss * 100.0
            );
        }
        (None, Some(why)) => {
            let _ = writeln!(out, "probability of backtest overfitting: not computed ({why})");
        }
        (None, None) => {}
    }
    out
}

/// The walk-forward folds and the in-sample against out-of-sample figures.
pub fn render_walk_forward(wf: &WalkForwardResults, plain: bool) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if plain {
        t.force_no_tty();
    }
    t.set_header(vec![
        "fold",
        "search window",
        "test window",
        "chosen",
        "in-sample score",
        "out-of-sample score",
        "test return",
        "buy & hold return",
    ]);
    for f in &wf.folds {
        let chosen: Vec<String> = f.best.iter().map(|(k, v)| format!("{k}={}", value(v))).collect();
        t.add_row(vec![
            Cell::new(f.index),
            Cell::new(format!("{} .. {}", f.train.0, f.train.1)),
            Cell::new(format!("{} .. {}", f.test.0, f.test.1)),
            Cell::new(chosen.join(" ")),
            Cell::new(fmt(f.in_sample_score)).set_alignment(CellAlignment::Right),
            Cell::new(fmt(f.out_of_sample_score)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.2}%", f.out_of_sample_return * 100.0)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.2}%", f.buy_and_hold_return * 100.0)).set_alignment(CellAlignment::Right),
        ]);
    }
    let o = &wf.out_of_sample;
    let b = &wf.buy_and_hold;
    format!(
        "{t}\nwalk-forward: mean in-sample score {} (what the searches promised) vs mean out-of-sample score {} (what trading the choices delivered)\nstitched out of sample: total return {:.2}%, Sharpe {}, max drawdown {:.2}%; buy-and-hold on the same windows: total return {:.2}%, Sharpe {}\n",
        fmt(wf.mean_in_sample_score),
        fmt(wf.mean_out_of_sample_score),
        o.total_return * 100.0,
        fmt(o.sharpe),
        o.max_drawdown * 100.0,
        b.total_return * 100.0,
        fmt(b.sharpe),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One offline HTML page: the summary, the heatmap (if any), the top
/// rows with every metric, and the walk-forward folds (if any).
pub fn report_html(
    title: &str,
    results: &SearchResults,
    top: usize,
    heatmap: Option<&str>,
    wf: Option<&WalkForwardResults>,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title><style>body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#f3f3f3}}pre{{white-space:pre-wrap}}</style></head><body><h1>{0}</h1>",
        escape(title)
    );
    let _ = write!(h, "<pre>{}</pre>", escape(&honesty(results)));
    if let Some(svg) = heatmap {
        h.push_str("<h2>Heatmap</h2>");
        h.push_str(svg);
    }
    let _ = write!(
        h,
        "<h2>Top {} of {} combinations</h2><table><tr><th>rank</th>",
        top.min(results.rows.len()),
        results.rows.len()
    );
    for p in &results.params {
        let _ = write!(h, "<th>{}</th>", escape(&p.name));
    }
    let _ = write!(h, "<th>score ({})</th>", escape(&objective_name(results)));
    for (name, _) in METRIC_COLUMNS {
        let _ = write!(h, "<th>{name}</th>");
    }
    h.push_str("</tr>");
    for r in results.rows.iter().take(top) {
        let _ = write!(h, "<tr><td>{}</td>", r.rank);
        for p in &results.params {
            let _ = write!(h, "<td>{}</td>", escape(&value(&r.params[&p.name])));
        }
        let _ = write!(h, "<td>{}</td>", fmt(r.score));
        for (name, f) in METRIC_COLUMNS {
            let _ = write!(h, "<td>{}</td>", metric(name, f(&r.metrics)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    if let Some(wf) = wf {
        let _ = write!(
            h,
            "<h2>Walk-forward optimisation</h2><pre>{}</pre>",
            escape(&render_walk_forward(wf, true))
        );
    }
    h.push_str("</body></html>\n");
    h
}
