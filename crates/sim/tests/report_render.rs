//! Issue 20: the trader's chart renders. The SVG is drawn to a PNG (kept
//! under the target folder to look at) and each panel is checked for its
//! colours where it belongs: price, fills, equity, buy-and-hold, drawdown.

use std::path::PathBuf;

use tradelab_data::{load_file, LoadOptions};
use tradelab_sim::engine::{run, EngineConfig};
use tradelab_sim::report::{chart_svg, Chart, MarkerKind};
use tradelab_sim::settings::StrategySettings;
use tradelab_sim::strategies::baseline;

fn render(svg: &str) -> resvg::tiny_skia::Pixmap {
    let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default()).expect("the chart is valid SVG");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
}

/// The hues the chart draws in, recognised through anti-aliasing by which
/// channel dominates rather than by exact colour.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Hue {
    /// The price line (#444444): dark and grey.
    DarkGrey,
    /// Long entries (#2ca02c).
    Green,
    /// Equity (#1f77b4).
    Blue,
    /// Buy-and-hold (#ff7f0e).
    Orange,
    /// Drawdown (#d62728).
    Red,
}

fn hue(r: i32, g: i32, b: i32) -> Option<Hue> {
    if (r - g).abs() < 12 && (g - b).abs() < 12 && r < 140 {
        Some(Hue::DarkGrey)
    } else if g > r + 50 && g > b + 50 {
        Some(Hue::Green)
    } else if b > r + 60 && b > g + 20 {
        Some(Hue::Blue)
    } else if r > b + 100 && g > b + 30 && r > g + 40 {
        Some(Hue::Orange)
    } else if r > g + 60 && r > b + 60 && (g - b).abs() < 30 {
        Some(Hue::Red)
    } else {
        None
    }
}

/// Pixels of `want` within rows `rows`.
fn count(p: &resvg::tiny_skia::Pixmap, rows: std::ops::Range<u32>, want: Hue) -> usize {
    let mut n = 0;
    for y in rows {
        for x in 0..p.width() {
            let c = p.pixel(x, y).unwrap().demultiply();
            if hue(c.red() as i32, c.green() as i32, c.blue() as i32) == Some(want) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn the_trader_chart_renders_every_panel_in_its_place() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/raw/nvda-1999-2014.txt");
    let (series, _) = load_file(&path, &LoadOptions::default()).unwrap();
    let mut strategy = baseline("sma_crossover", &StrategySettings::default()).unwrap();
    let result = run(&[&series], strategy.as_mut(), &EngineConfig::default());
    let chart = Chart::of("sma_crossover on nvda", &result, &[&series]);
    assert!(chart.fills > 10 && chart.markers.len() == chart.fills);
    assert!(chart.markers.iter().any(|m| m.kind == MarkerKind::LongEntry));
    assert!(chart.markers.iter().any(|m| m.kind == MarkerKind::Exit));
    // Buy-and-hold starts from the same cash and follows the close.
    assert_eq!(
        chart.benchmark[0],
        result.initial_cash * series.close[0] / series.close[0]
    );
    let last = chart.benchmark.len() - 1;
    let growth = series.close[series.len() - 1] / series.close[0];
    assert!((chart.benchmark[last] / (result.initial_cash * growth) - 1.0).abs() < 1e-12);

    let svg = chart_svg(&chart);
    let png = render(&svg);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trader-chart.png");
    png.save_png(&out).unwrap();
    // Panels (rows): price 50..270, equity 300..500, drawdown 525..640.
    assert!(count(&png, 50..272, Hue::DarkGrey) > 800, "the price line");
    assert!(count(&png, 50..272, Hue::Green) > 20, "long entries");
    assert!(count(&png, 298..503, Hue::Blue) > 700, "the equity line");
    assert!(count(&png, 298..503, Hue::Orange) > 700, "buy and hold");
    assert!(count(&png, 523..642, Hue::Red) > 5000, "the drawdown area");
    assert_eq!(
        count(&png, 298..503, Hue::DarkGrey),
        0,
        "no price line in the equity panel"
    );
    assert_eq!(count(&png, 523..642, Hue::Blue), 0, "no equity in the drawdown panel");
    assert_eq!(count(&png, 0..45, Hue::Blue), 0, "nothing over the title");
}

/// Issue 25: the optimiser's heatmap renders, one coloured cell per pair
/// of values and the best combination outlined in red.
#[test]
fn the_optimisation_heatmap_renders_its_cells_and_marks_the_best() {
    use std::sync::atomic::AtomicUsize;
    use tradelab_sim::optimize::heatmap::heatmap_svg;
    use tradelab_sim::optimize::{search, BacktestSetup, Objective, ParamSpec, RunOptions};

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/raw/orcl-1995-2014.txt");
    let (series, _) = load_file(&path, &LoadOptions::default()).unwrap();
    let base = BacktestSetup::new(
        "sma_crossover",
        StrategySettings::default(),
        Default::default(),
        Default::default(),
        Default::default(),
    )
    .unwrap();
    let params = ["fast=5:50:5", "slow=20:200:10"].map(|p| ParamSpec::parse(p).unwrap());
    let found = search(
        &base,
        &params,
        &["fast < slow"],
        None,
        Objective::Sharpe,
        &[&series],
        &RunOptions::default(),
        &AtomicUsize::new(0),
    )
    .unwrap();
    let svg = heatmap_svg(&found.results, "fast", "slow", "sma_crossover on orcl").unwrap();
    let png = render(&svg);
    png.save_png(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("optimize-heatmap.png"))
        .unwrap();
    let (mut outline, mut colours) = (0, std::collections::BTreeSet::new());
    for y in 0..png.height() {
        for x in 0..png.width() {
            let c = png.pixel(x, y).unwrap().demultiply();
            if c.red() > 200 && c.green() < 40 && c.blue() < 40 {
                outline += 1;
            }
            colours.insert((c.red() / 32, c.green() / 32, c.blue() / 32));
        }
    }
    assert!(outline > 40, "the best cell is outlined in red ({outline} pixels)");
    assert!(colours.len() > 12, "cells take many colours ({})", colours.len());
    // Cells below the diagonal (fast >= slow) never ran: grey, and there are some.
    assert!(svg.contains("not run or undefined"));
}
