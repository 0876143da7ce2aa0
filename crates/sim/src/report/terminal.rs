use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};

use super::BacktestReport;

/// Whether to colour output: never when NO_COLOR is set (any value) or when
/// the caller says the output is not a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Green and red figures, bold headlines (ANSI escapes).
    Color,
    /// No escape codes.
    Plain,
}

impl Style {
    /// Colour only for a terminal and only without NO_COLOR.
    pub fn detect(is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if is_terminal && !no_color {
            Style::Color
        } else {
            Style::Plain
        }
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |x| format!("{:.2}%", x * 100.0))
}

/// The footnote under a table whose marked figures come from a short
/// sample.
pub const SHORT_SAMPLE_NOTE: &str =
    "* annualised from under 3 months or 30 bars of data: read CAGR and Sharpe as noise, not as a rate";

/// `text`, marked `*` when it comes from a short sample.
fn marked(text: String, short: bool) -> String {
    if short {
        format!("{text}*")
    } else {
        text
    }
}

fn new_table(style: Style) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    match style {
        Style::Color => t.enforce_styling(),
        Style::Plain => t.force_no_tty(),
    };
    t
}

/// Green for good, red for bad, bold for the headline figures.
fn signed(text: String, value: f64, style: Style, bold: bool) -> Cell {
    let mut c = Cell::new(text).set_alignment(CellAlignment::Right);
    if style == Style::Color {
        c = c.fg(if value >= 0.0 { Color::Green } else { Color::Red });
        if bold {
            c = c.add_attribute(Attribute::Bold);
        }
    }
    c
}

/// The one-run report: a compact two-column table of key figures.
pub fn render_report(r: &BacktestReport, style: Style) -> String {
    let m = &r.metrics;
    let mut t = new_table(style);
    t.set_header(vec![
        Cell::new(format!("{} on {}", r.model_used, r.instruments.join(", "))),
        Cell::new(format!("{} .. {}", r.start_date, r.end_date)),
    ]);
    let plain = |label: &str, v: String| vec![Cell::new(label), Cell::new(v).set_alignment(CellAlignment::Right)];
    t.add_row(plain(
        "Portfolio start",
        format!("{:.2} {}", r.portfolio_start, r.currency),
    ));
    t.add_row(vec![
        Cell::new("Portfolio end"),
        signed(
            format!("{:.2} {}", r.portfolio_end, r.currency),
            m.total_pnl,
            style,
            true,
        ),
    ]);
    t.add_row(vec![
        Cell::new("Total P&L"),
        signed(format!("{:+.2}", m.total_pnl), m.total_pnl, style, true),
    ]);
    t.add_row(vec![
        Cell::new("CAGR"),
        signed(
            marked(pct(m.curve.cagr), m.curve.short_sample),
            m.curve.cagr.unwrap_or(0.0),
            style,
            false,
        ),
    ]);
    t.add_row(vec![
        Cell::new("Sharpe"),
        signed(
            marked(opt(m.curve.sharpe, 3), m.curve.short_sample),
            m.curve.sharpe.unwrap_or(0.0),
            style,
            true,
        ),
    ]);
    t.add_row(plain("Sortino", opt(m.curve.sortino, 3)));
    t.add_row(plain("Calmar", opt(m.curve.calmar, 3)));
    t.add_row(vec![
        Cell::new("Max drawdown"),
        signed(
            format!(
                "{:.2}% ({} bars)",
                m.curve.max_drawdown * 100.0,
                m.curve.max_drawdown_duration_bars
            ),
            -1.0,
            style,
            true,
        ),
    ]);
    t.add_row(plain("Trades", r.trades_label()));
    t.add_row(plain("Win rate", pct(m.trades.win_rate)));
    t.add_row(plain("Profit factor", opt(m.trades.profit_factor, 3)));
    t.add_row(plain("Avg P&L / trade", opt(m.trades.avg_trade_pnl, 2)));
    t.add_row(plain(
        "Best / worst trade",
        format!(
            "{} / {}",
            opt(m.trades.best_trade_pnl, 2),
            opt(m.trades.worst_trade_pnl, 2)
        ),
    ));
    t.add_row(plain("Exposure", format!("{:.1}%", m.exposure * 100.0)));
    t.add_row(plain("Turnover", format!("{:.2}x", m.turnover)));
    t.add_row(plain("Fees paid", format!("{:.2}", m.fees_paid)));
    t.add_row(plain("Risk events", r.risk_events.len().to_string()));
    if let Some(day) = r.halted() {
        t.add_row(plain("Halted by the drawdown breaker", day));
    }
    with_note(t.to_string(), m.curve.short_sample)
}

fn with_note(table: String, short: bool) -> String {
    if short {
        format!("{table}\n{SHORT_SAMPLE_NOTE}")
    } else {
        table
    }
}

/// The report's headline figures as (label, value), for the HTML report.
pub fn key_figures(r: &BacktestReport) -> Vec<(String, String)> {
    let m = &r.metrics;
    let short = m.curve.short_sample;
    let mut rows = vec![
        ("Period".to_string(), format!("{} .. {}", r.start_date, r.end_date)),
        (
            "Portfolio start".into(),
            format!("{:.2} {}", r.portfolio_start, r.currency),
        ),
        ("Portfolio end".into(), format!("{:.2} {}", r.portfolio_end, r.currency)),
        ("Total P&L".into(), format!("{:+.2}", m.total_pnl)),
        ("CAGR".into(), marked(pct(m.curve.cagr), short)),
        ("Sharpe".into(), marked(opt(m.curve.sharpe, 3), short)),
        ("Sortino".into(), opt(m.curve.sortino, 3)),
        ("Max drawdown".into(), format!("{:.2}%", m.curve.max_drawdown * 100.0)),
        ("Trades".into(), r.trades_label()),
        ("Win rate".into(), pct(m.trades.win_rate)),
        ("Profit factor".into(), opt(m.trades.profit_factor, 3)),
        ("Exposure".into(), format!("{:.1}%", m.exposure * 100.0)),
        ("Fees paid".into(), format!("{:.2}", m.fees_paid)),
        ("Risk events".into(), r.risk_events.len().to_string()),
    ];
    if let Some(day) = r.halted() {
        rows.push(("Halted by the drawdown breaker".into(), day));
    }
    if short {
        rows.push(("*".into(), SHORT_SAMPLE_NOTE.trim_start_matches("* ").to_string()));
    }
    rows
}

/// Several runs side by side, one row each (for baselines or walk-forward).
pub fn render_comparison(reports: &[BacktestReport], style: Style) -> String {
    let mut t = new_table(style);
    // Rows over different stretches (an evaluation's folds) carry their dates.
    let first = reports.first().map(|r| (&r.start_date, &r.end_date));
    let periods = reports.iter().any(|r| Some((&r.start_date, &r.end_date)) != first);
    let mut header = vec!["strategy", "instrument"];
    if periods {
        header.push("period");
    }
    header.extend([
        "P&L",
        "CAGR",
        "Sharpe",
        "max DD",
        "trades",
        "win rate",
        "PF",
        "risk events",
        "halted",
    ]);
    t.set_header(header);
    for r in reports {
        let m = &r.metrics;
        let mut row = vec![Cell::new(&r.model_used), Cell::new(r.instruments.join(","))];
        if periods {
            row.push(Cell::new(format!("{}..{}", r.start_date, r.end_date)));
        }
        row.extend([
            signed(format!("{:+.0}", m.total_pnl), m.total_pnl, style, true),
            Cell::new(marked(pct(m.curve.cagr), m.curve.short_sample)).set_alignment(CellAlignment::Right),
            signed(
                marked(opt(m.curve.sharpe, 2), m.curve.short_sample),
                m.curve.sharpe.unwrap_or(0.0),
                style,
                false,
            ),
            Cell::new(format!("{:.1}%", m.curve.max_drawdown * 100.0)).set_alignment(CellAlignment::Right),
            Cell::new(r.trades_label()).set_alignment(CellAlignment::Right),
            Cell::new(pct(m.trades.win_rate)).set_alignment(CellAlignment::Right),
            Cell::new(opt(m.trades.profit_factor, 2)).set_alignment(CellAlignment::Right),
            Cell::new(r.risk_events.len()).set_alignment(CellAlignment::Right),
            Cell::new(r.halted().unwrap_or_else(|| "-".into())),
        ]);
        t.add_row(row);
    }
    let short = reports.iter().any(|r| r.metrics.curve.short_sample);
    with_note(t.to_string(), short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{run, EngineConfig};
    use crate::metrics::compute;
    use crate::settings::StrategySettings;
    use tradelab_data::synthetic::{generate, SyntheticConfig};

    fn report() -> BacktestReport {
        let m = generate(&SyntheticConfig {
            bars: 400,
            ..Default::default()
        });
        let mut s = crate::strategies::baseline("momentum", &StrategySettings::default()).unwrap();
        let r = run(&[&m.series], s.as_mut(), &EngineConfig::default());
        BacktestReport::new(&r, &compute(&r, 0.0), "INR", "next_open", "")
    }

    #[test]
    fn plain_style_has_no_escape_codes_and_color_style_has_them() {
        let r = report();
        let plain = render_report(&r, Style::Plain);
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("Sharpe") && plain.contains("Max drawdown") && plain.contains("Profit factor"));
        assert!(render_report(&r, Style::Color).contains('\x1b'));
        assert!(!render_comparison(std::slice::from_ref(&r), Style::Plain).contains('\x1b'));
        assert_eq!(Style::detect(false), Style::Plain, "never colour a pipe");
    }

    /// Issue 20: a halt by the drawdown breaker shows in every table, and
    /// an open position at the end is counted as open, not as no trade.
    #[test]
    fn halts_and_open_positions_are_shown() {
        use crate::risk::{RiskEvent, RiskRule};
        let mut r = report();
        r.total_trades = 0;
        r.open_positions = vec![super::super::json::OpenPositionRow {
            instrument: "x".into(),
            quantity: 10.0,
            avg_price: 1.0,
        }];
        r.risk_events = vec![RiskEvent {
            ts: 953_164_800_000, // 2000-03-16
            instrument: None,
            action: tradelab_core::Action::Hold,
            rule: RiskRule::DrawdownCircuitBreaker,
            requested: 0.0,
            allowed: 0.0,
            reason: "drawdown 25% from the peak".into(),
        }];
        assert_eq!(r.halted().as_deref(), Some("2000-03-16"));
        assert_eq!(r.trades_label(), "0 +1 open");
        let table = render_comparison(std::slice::from_ref(&r), Style::Plain);
        assert!(table.contains("halted") && table.contains("2000-03-16"), "{table}");
        assert!(table.contains("0 +1 open") && table.contains("risk events"), "{table}");
        let one = render_report(&r, Style::Plain);
        assert!(
            one.contains("Halted by the drawdown breaker") && one.contains("2000-03-16"),
            "{one}"
        );
        let calm = report();
        assert_eq!(calm.halted(), None);
        assert!(!render_report(&calm, Style::Plain).contains("Halted"));
    }

    /// Issue 20: figures annualised from a short stretch are marked, with
    /// the footnote that says why.
    #[test]
    fn short_samples_are_marked_and_explained() {
        let long = report();
        assert!(!long.metrics.curve.short_sample, "400 daily bars");
        let table = render_comparison(std::slice::from_ref(&long), Style::Plain);
        assert!(!table.contains(SHORT_SAMPLE_NOTE), "{table}");
        let mut short = report();
        short.metrics.curve.short_sample = true;
        let table = render_comparison(&[long, short.clone()], Style::Plain);
        assert!(table.contains(SHORT_SAMPLE_NOTE) && table.contains("%*"), "{table}");
        let one = render_report(&short, Style::Plain);
        assert!(one.contains(SHORT_SAMPLE_NOTE), "{one}");
    }

    /// Rows over different stretches (folds) carry their dates; rows over
    /// one stretch do not repeat it.
    #[test]
    fn a_period_column_appears_when_rows_cover_different_stretches() {
        let a = report();
        let mut b = report();
        b.start_date = "2001-01-01".into();
        let one = render_comparison(&[a.clone(), a.clone()], Style::Plain);
        assert!(!one.contains("period"), "{one}");
        let two = render_comparison(&[a.clone(), b], Style::Plain);
        assert!(two.contains("period") && two.contains("2001-01-01.."), "{two}");
    }
}
