//! Metrics against an independent reference: empyrical-reloaded (plus plain
//! Python for what it lacks), produced by `scripts/reference/metrics_reference.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use tradelab_sim::account::{Direction, Trade};
use tradelab_sim::metrics::{curve_metrics, trade_metrics};

#[derive(Deserialize)]
struct Reference {
    cases: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    timestamps: Vec<i64>,
    equity: Vec<f64>,
    trade_pnls: Vec<f64>,
    periods_per_year: f64,
    risk_free_rate: f64,
    expected: BTreeMap<String, Option<f64>>,
}

fn same(name: &str, case: &str, got: Option<f64>, want: Option<f64>) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1e-12),
            "{case}.{name}: tradelab {g} vs reference {w}"
        ),
        _ => panic!("{case}.{name}: tradelab {got:?} vs reference {want:?}"),
    }
}

#[test]
fn curve_and_trade_metrics_match_the_reference_implementation() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics/reference.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(r.cases.len() >= 3);
    for (name, c) in &r.cases {
        let m = curve_metrics(&c.timestamps, &c.equity, c.periods_per_year, c.risk_free_rate);
        let e = |k: &str| *c.expected.get(k).unwrap_or_else(|| panic!("{name}: fixture lacks {k}"));
        same("sharpe", name, m.sharpe, e("sharpe"));
        same("sortino", name, m.sortino, e("sortino"));
        same("annual_volatility", name, m.annual_volatility, e("annual_volatility"));
        same("max_drawdown", name, Some(m.max_drawdown), e("max_drawdown"));
        same(
            "max_drawdown_duration_bars",
            name,
            Some(m.max_drawdown_duration_bars as f64),
            e("max_drawdown_duration_bars"),
        );
        same("total_return", name, Some(m.total_return), e("total_return"));
        same("cagr", name, m.cagr, e("cagr"));
        same("calmar", name, m.calmar, e("calmar"));

        let trades: Vec<Trade> = c
            .trade_pnls
            .iter()
            .map(|&pnl| Trade {
                instrument: 0,
                direction: Direction::Long,
                entry_ts: 0,
                exit_ts: 1,
                quantity: 1.0,
                entry_price: 100.0,
                exit_price: 100.0,
                pnl,
                fees: 0.0,
                return_pct: pnl,
            })
            .collect();
        let t = trade_metrics(&trades);
        same("total_trades", name, Some(t.total_trades as f64), e("total_trades"));
        same("win_rate", name, t.win_rate, e("win_rate"));
        same("profit_factor", name, t.profit_factor, e("profit_factor"));
        same("avg_trade_pnl", name, t.avg_trade_pnl, e("avg_trade_pnl"));
        same("best_trade_pnl", name, t.best_trade_pnl, e("best_trade_pnl"));
        same("worst_trade_pnl", name, t.worst_trade_pnl, e("worst_trade_pnl"));
    }
}
