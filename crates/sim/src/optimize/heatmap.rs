//! The heatmap of a search over two of its parameters, as a
//! dependency-free SVG: one cell per pair of values, coloured by the best
//! score among the combinations with that pair (the other parameters at
//! their best), the overall best cell outlined, undefined cells grey.

use std::fmt::Write as _;

use serde_json::Value;

use super::results::SearchResults;
use super::SearchError;

const CELL_MAX: f64 = 28.0;
const PLOT: f64 = 640.0;
const PAD_L: f64 = 90.0;
const PAD_T: f64 = 60.0;
const PAD_B: f64 = 70.0;
const LEGEND_W: f64 = 110.0;

/// More distinct values than this on an axis (a random search over a
/// number range) are grouped into [`BINS`] equal-width bins.
const MAX_DISTINCT: usize = 40;
/// Bins of a binned axis.
const BINS: usize = 20;

/// One axis of the heatmap: its cells' labels and which cell a value falls in.
pub struct Axis {
    /// A label per cell, in order (values, or bin ranges).
    pub labels: Vec<String>,
    /// The distinct values, for an axis of values.
    values: Vec<Value>,
    /// `(lowest, highest)`, for a binned axis.
    bins: Option<(f64, f64)>,
}

impl Axis {
    /// The cell `v` falls in.
    pub fn index(&self, v: &Value) -> Option<usize> {
        match self.bins {
            Some((lo, hi)) => {
                let x = v.as_f64()?;
                let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
                Some(((t * BINS as f64) as usize).min(BINS - 1))
            }
            None => self.values.iter().position(|w| w == v),
        }
    }
}

/// A parameter's axis: its values in order, or bins when a random search
/// drew too many distinct numbers to show one by one.
fn axis(results: &SearchResults, name: &str) -> Result<Axis, SearchError> {
    if !results.params.iter().any(|p| p.name == name) {
        return Err(SearchError::new(format!(
            "--heatmap: `{name}` is not a searched parameter ({})",
            results
                .params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut values: Vec<Value> = Vec::new();
    for r in &results.rows {
        let v = &r.params[name];
        if !values.contains(v) {
            values.push(v.clone());
        }
    }
    values.sort_by(|a, b| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.to_string().cmp(&b.to_string()),
    });
    let numbers: Option<Vec<f64>> = values.iter().map(Value::as_f64).collect();
    if let (true, Some(n)) = (values.len() > MAX_DISTINCT, numbers) {
        let (lo, hi) = (n[0], n[n.len() - 1]);
        let width = (hi - lo) / BINS as f64;
        let labels = (0..BINS)
            .map(|b| {
                format!(
                    "{}..{}",
                    short(lo + b as f64 * width),
                    short(lo + (b + 1) as f64 * width)
                )
            })
            .collect();
        return Ok(Axis {
            labels,
            values: Vec::new(),
            bins: Some((lo, hi)),
        });
    }
    Ok(Axis {
        labels: values.iter().map(label).collect(),
        values,
        bins: None,
    })
}

fn short(x: f64) -> String {
    let t = format!("{x:.4}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    t.to_string()
}

/// The heatmap's content: the x axis, the y axis, and the best score in
/// each cell by row (y) then column (x).
pub type Cells = (Axis, Axis, Vec<Vec<Option<f64>>>);

/// The best score in each (x, y) cell, `None` where no combination with
/// that pair has a defined score (or none was run).
pub fn cells(results: &SearchResults, x: &str, y: &str) -> Result<Cells, SearchError> {
    if x == y {
        return Err(SearchError::new("--heatmap needs two different parameters"));
    }
    let (ax, ay) = (axis(results, x)?, axis(results, y)?);
    let mut grid = vec![vec![None::<f64>; ax.labels.len()]; ay.labels.len()];
    for r in &results.rows {
        let (Some(i), Some(j)) = (ax.index(&r.params[x]), ay.index(&r.params[y])) else {
            continue;
        };
        if let Some(s) = r.score {
            let cell = &mut grid[j][i];
            *cell = Some(cell.map_or(s, |c: f64| c.max(s)));
        }
    }
    Ok((ax, ay, grid))
}

/// A colour from dark blue (low) through teal to yellow (high).
fn colour(t: f64) -> String {
    const STOPS: [(f64, [f64; 3]); 4] = [
        (0.0, [48.0, 18.0, 59.0]),
        (0.35, [33.0, 145.0, 140.0]),
        (0.7, [122.0, 209.0, 81.0]),
        (1.0, [253.0, 231.0, 37.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    let k = STOPS.windows(2).position(|w| t <= w[1].0).unwrap_or(STOPS.len() - 2);
    let ((t0, c0), (t1, c1)) = (STOPS[k], STOPS[k + 1]);
    let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
    let c: Vec<u8> = (0..3).map(|i| (c0[i] + f * (c1[i] - c0[i])).round() as u8).collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() != 0.0 => format!("{x:.4}").trim_end_matches('0').to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The heatmap of `results` over parameters `x` (columns) and `y` (rows).
pub fn heatmap_svg(results: &SearchResults, x: &str, y: &str, title: &str) -> Result<String, SearchError> {
    let (ax, ay, grid) = cells(results, x, y)?;
    let (xs, ys) = (&ax.labels, &ay.labels);
    let cell = (PLOT / xs.len().max(ys.len()) as f64).min(CELL_MAX);
    let (w, h) = (cell * xs.len() as f64, cell * ys.len() as f64);
    let defined = grid.iter().flatten().flatten();
    let lo = defined.clone().fold(f64::INFINITY, |a, &b| a.min(b));
    let hi = defined.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let scale = |s: f64| if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
    let best = results.best();
    let (bx, by) = (ax.index(&best.params[x]), ay.index(&best.params[y]));
    let (width, height) = (PAD_L + w + LEGEND_W, PAD_T + h + PAD_B);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let metric = serde_json::to_value(results.objective)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = writeln!(
        svg,
        r##"<text x="{PAD_L}" y="24" font-size="15">{}</text><text x="{PAD_L}" y="42" fill="#555">{} by {} and {} (best over the other parameters); outlined: the best combination</text>"##,
        escape(title),
        escape(&metric),
        escape(x),
        escape(y)
    );
    // Row 0 at the bottom, so larger values of y are higher up.
    for (j, row) in grid.iter().enumerate() {
        let top = PAD_T + h - (j as f64 + 1.0) * cell;
        for (i, v) in row.iter().enumerate() {
            let left = PAD_L + i as f64 * cell;
            let (fill, tip) = match v {
                Some(s) => (colour(scale(*s)), format!("{x}={}, {y}={}: {s:.4}", xs[i], ys[j])),
                None => (
                    "#dddddd".into(),
                    format!("{x}={}, {y}={}: not run or undefined", xs[i], ys[j]),
                ),
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{left:.2}" y="{top:.2}" width="{cell:.2}" height="{cell:.2}" fill="{fill}"><title>{}</title></rect>"#,
                escape(&tip)
            );
        }
    }
    if let (Some(i), Some(j)) = (bx, by) {
        let (left, top) = (PAD_L + i as f64 * cell, PAD_T + h - (j as f64 + 1.0) * cell);
        let _ = writeln!(
            svg,
            r##"<rect class="best" x="{left:.2}" y="{top:.2}" width="{cell:.2}" height="{cell:.2}" fill="none" stroke="#e8000b" stroke-width="3"/>"##
        );
    }
    // Axis labels, thinned to about 20 a side.
    let every = |n: usize| n.div_ceil(20).max(1);
    for (i, v) in xs.iter().enumerate().filter(|(i, _)| i % every(xs.len()) == 0) {
        let cx = PAD_L + (i as f64 + 0.5) * cell;
        let _ = writeln!(
            svg,
            r#"<text x="{cx:.2}" y="{:.2}" text-anchor="middle">{}</text>"#,
            PAD_T + h + 16.0,
            escape(v)
        );
    }
    for (j, v) in ys.iter().enumerate().filter(|(j, _)| j % every(ys.len()) == 0) {
        let cy = PAD_T + h - (j as f64 + 0.5) * cell + 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{cy:.2}" text-anchor="end">{}</text>"#,
            PAD_L - 6.0,
            escape(v)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.2}" y="{:.2}" text-anchor="middle" font-size="13">{}</text>"#,
        PAD_L + w / 2.0,
        PAD_T + h + 40.0,
        escape(x)
    );
    let _ = writeln!(
        svg,
        r#"<text x="20" y="{:.2}" font-size="13" transform="rotate(-90 20 {:.2})" text-anchor="middle">{}</text>"#,
        PAD_T + h / 2.0,
        PAD_T + h / 2.0,
        escape(y)
    );
    // Legend: a bar from low to high.
    let lx = PAD_L + w + 30.0;
    for k in 0..20 {
        let t = 1.0 - k as f64 / 19.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.2}" y="{:.2}" width="16" height="{:.2}" fill="{}"/>"#,
            PAD_T + k as f64 * (h.max(100.0) / 20.0),
            h.max(100.0) / 20.0 + 0.5,
            colour(t)
        );
    }
    if lo.is_finite() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{:.2}">{hi:.3}</text>"#,
            lx + 22.0,
            PAD_T + 10.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{:.2}">{lo:.3}</text>"#,
            lx + 22.0,
            PAD_T + h.max(100.0)
        );
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_search_over_numbers_is_binned_and_a_grid_is_not() {
        use std::sync::atomic::AtomicUsize;

        use crate::optimize::{default_setup, search, Objective, ParamSpec, RunOptions};
        use tradelab_data::synthetic::{generate, SyntheticConfig};
        let market = generate(&SyntheticConfig {
            bars: 400,
            ..Default::default()
        });
        let base = default_setup("momentum_vol_target");
        let run = |params: [&str; 2], random| {
            let params = params.map(|p| ParamSpec::parse(p).unwrap());
            let found = search(
                &base,
                &params,
                &[],
                random,
                Objective::Sharpe,
                &[&market.series],
                &RunOptions::default(),
                &AtomicUsize::new(0),
            )
            .unwrap();
            let (ax, ay, grid) = cells(&found.results, "target", "window").unwrap();
            let svg = heatmap_svg(&found.results, "target", "window", "t").unwrap();
            (ax.labels, ay.labels, grid, svg)
        };
        let (xs, ys, grid, svg) = run(["target=0.05:0.3", "window=10:20:5"], Some((120, 1)));
        assert_eq!((xs.len(), ys.len()), (BINS, 3));
        assert!(xs[0].starts_with("0.05") && xs[0].contains(".."), "{xs:?}");
        assert!(grid.iter().flatten().filter(|c| c.is_some()).count() > 20);
        assert_eq!(svg.matches("class=\"best\"").count(), 1);
        let (xs, _, _, _) = run(["target=0.05:0.3:0.05", "window=10:20:5"], None);
        assert_eq!(xs, ["0.05", "0.1", "0.15", "0.2", "0.25", "0.3"]);
    }

    #[test]
    fn colours_run_from_dark_to_bright() {
        assert_eq!(colour(0.0), "#30123b");
        assert_eq!(colour(1.0), "#fde725");
        assert_eq!(colour(2.0), colour(1.0));
    }
}
