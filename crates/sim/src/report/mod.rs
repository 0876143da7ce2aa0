//! Reports of a backtest: JSON (the seed's simulator fields plus every
//! metric, trade and equity point), a terminal table, an SVG chart a trader
//! reads and a self-contained interactive HTML report.

mod chart;
mod html;
mod json;
mod terminal;

pub use chart::{chart_svg, Chart, Marker, MarkerKind, MAX_MARKERS};
pub use html::report_html;
pub use json::{BacktestReport, EquityPoint, TradeRow};
pub use terminal::{key_figures, render_comparison, render_report, Style, SHORT_SAMPLE_NOTE};
