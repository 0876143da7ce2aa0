//! Reports of a backtest: JSON (the seed's simulator fields plus every
//! metric, trade and equity point), a terminal table and an SVG chart.

mod chart;
mod json;
mod terminal;

pub use chart::{equity_chart_svg, equity_chart_svg_marked};
pub use json::{BacktestReport, EquityPoint, TradeRow};
pub use terminal::{render_comparison, render_report, Style};
