//! The strategies' test kit: drives a strategy over a series of closes
//! outside the engine, filling every order at once, and lists its signals.

use tradelab_core::{Action, Bar, BarSeries};

use crate::strategy::{BarContext, Strategy};

/// A series whose bars open, touch and close at `closes`, one a minute.
pub(crate) fn series(closes: &[f64]) -> BarSeries {
    closes
        .iter()
        .enumerate()
        .map(|(i, &c)| Bar {
            ts: i as i64 * 60_000,
            open: c,
            high: c,
            low: c,
            close: c,
            volume: 0.0,
        })
        .collect()
}

/// The bars at which `strategy` acts on `closes`, each order taken as
/// filled at once (one unit long after `BUY_LONG`, one short after
/// `SELL_SHORT`, flat after a close), so the next bar sees the position.
pub(crate) fn signals(strategy: &mut dyn Strategy, closes: &[f64]) -> Vec<(usize, Action)> {
    let series = series(closes);
    strategy.start(&[&series]);
    let mut orders = Vec::new();
    let mut out = Vec::new();
    let mut position = 0.0;
    for (k, bar) in series.iter().enumerate() {
        let mut ctx = BarContext {
            instrument: 0,
            index: k,
            bar,
            position,
            equity: 1.0,
            cash: 1.0,
            unrealized_pnl: 0.0,
            halted: false,
            orders: &mut orders,
        };
        strategy.on_bar(&mut ctx);
        for o in orders.drain(..) {
            position = match o.action {
                Action::BuyLong => 1.0,
                Action::SellShort => -1.0,
                Action::CloseLong | Action::CloseShort => 0.0,
                Action::Hold => position,
            };
            out.push((k, o.action));
        }
    }
    out
}
