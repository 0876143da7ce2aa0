//! Cross-check against backtrader and backtesting.py: the same SMA(10/30)
//! long-only rules, all-in whole shares, fixed 25/35 fees, 100000 starting
//! cash, fills at the signal bar's close. The expected trades and final
//! equity were produced by `scripts/peers/sma_cross_peers.py` (both peers,
//! plus a plain loop, agree) and are stored as fixtures.

use std::path::PathBuf;

use serde::Deserialize;
use tradelab_core::time::format_date;
use tradelab_data::load::{load_file, LoadOptions};
use tradelab_sim::costs::{CostModel, Slippage};
use tradelab_sim::engine::{run, EngineConfig};
use tradelab_sim::risk::RiskLimits;
use tradelab_sim::settings::FillPolicy;
use tradelab_sim::sizing::{Lots, Sizing};
use tradelab_sim::strategies::SmaCrossover;

#[derive(Deserialize)]
struct Fixture {
    file: String,
    final_equity: f64,
    peers_agree: bool,
    open_position: Option<OpenPosition>,
    trades: Vec<PeerTrade>,
}

#[derive(Deserialize)]
struct OpenPosition {
    quantity: f64,
    entry_date: String,
    entry_price: f64,
}

#[derive(Deserialize)]
struct PeerTrade {
    entry_date: String,
    exit_date: String,
    quantity: f64,
    entry_price: f64,
    exit_price: f64,
    pnl: f64,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peer_rules() -> EngineConfig {
    EngineConfig {
        initial_cash: 100_000.0,
        fill: FillPolicy::SignalClose,
        costs: CostModel {
            entry_fixed: 25.0,
            exit_fixed: 35.0,
            percent: 0.0,
            per_unit: 0.0,
            minimum: 0.0,
        },
        slippage: Slippage::None,
        atr_period: 14,
        sizing: Sizing::FractionOfEquity(1.0),
        lots: Lots {
            size: 1.0,
            fractional: false,
        },
        instrument_lots: Default::default(),
        risk: RiskLimits::off(),
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        "{what}: tradelab {a} vs peers {b}"
    );
}

fn check(stem: &str) {
    let text =
        std::fs::read_to_string(root().join(format!("crates/sim/tests/fixtures/peers/sma_cross_{stem}.json"))).unwrap();
    let fx: Fixture = serde_json::from_str(&text).unwrap();
    assert!(
        fx.peers_agree,
        "the fixture itself records a disagreement between peers"
    );
    let (series, _) = load_file(&root().join("data/raw").join(&fx.file), &LoadOptions::default()).unwrap();
    let result = run(&[&series], &mut SmaCrossover::new(10, 30, false), &peer_rules());

    assert_eq!(result.trades.len(), fx.trades.len(), "{stem}: number of closed trades");
    for (i, (t, p)) in result.trades.iter().zip(&fx.trades).enumerate() {
        let ctx = format!("{stem} trade {i}");
        assert_eq!(format_date(t.entry_ts), p.entry_date, "{ctx}: entry date");
        assert_eq!(format_date(t.exit_ts), p.exit_date, "{ctx}: exit date");
        assert_eq!(t.quantity, p.quantity, "{ctx}: quantity");
        close(t.entry_price, p.entry_price, &format!("{ctx}: entry price"));
        close(t.exit_price, p.exit_price, &format!("{ctx}: exit price"));
        close(t.pnl, p.pnl, &format!("{ctx}: pnl"));
    }
    let open = result.open_positions[0];
    match &fx.open_position {
        Some(p) => {
            assert_eq!(open.qty, p.quantity, "{stem}: open quantity");
            close(open.avg_price, p.entry_price, &format!("{stem}: open entry price"));
            let last_entry = result.fills.last().unwrap();
            assert_eq!(format_date(last_entry.ts), p.entry_date);
        }
        None => assert_eq!(open.qty, 0.0, "{stem}: should end flat"),
    }
    close(result.final_equity, fx.final_equity, &format!("{stem}: final equity"));
}

#[test]
fn nvda_matches_backtrader_and_backtesting_py() {
    check("nvda-1999-2014");
}

#[test]
fn orcl_matches_including_the_exact_sma_tie_of_2004_06_29() {
    check("orcl-1995-2014");
}

#[test]
fn yhoo_matches_including_a_cross_on_the_last_bar() {
    check("yhoo-1996-2014");
}

#[test]
fn index_daily_file_matches() {
    check("2006-day-001");
}
