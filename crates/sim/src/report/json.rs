use serde::Serialize;
use tradelab_core::time::{format_date, format_datetime};

use crate::engine::BacktestResult;
use crate::metrics::Metrics;
use crate::risk::RiskEvent;

/// A closed trade as reported, with names and dates instead of indices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeRow {
    /// Instrument name.
    pub instrument: String,
    /// Long or short.
    pub direction: crate::account::Direction,
    /// First entry fill, as `YYYY-MM-DDTHH:MM:SS` in UTC.
    pub entry_time: String,
    /// The fill that closed it, as `YYYY-MM-DDTHH:MM:SS` in UTC.
    pub exit_time: String,
    /// Total units opened over the trade's life.
    pub quantity: f64,
    /// Volume-weighted average entry price.
    pub entry_price: f64,
    /// Volume-weighted average exit price.
    pub exit_price: f64,
    /// Net P&L, after every fee.
    pub pnl: f64,
    /// Fees paid on the way in and out.
    pub fees: f64,
    /// `pnl` as a percentage of the entry notional.
    pub return_pct: f64,
}

/// One point of the reported equity curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EquityPoint {
    /// Timestamp as `YYYY-MM-DDTHH:MM:SS` in UTC.
    pub time: String,
    /// Marked equity after that timestamp's bars.
    pub equity: f64,
    /// Fraction below the running peak (<= 0).
    pub drawdown: f64,
}

/// The JSON report. The first fields are the seed's simulator report;
/// nothing in it depends on the wall clock, so the same inputs give the
/// same bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    /// `sim-` and 16 hex digits hashed from the strategy, instruments, first
    /// timestamp, bar count and settings: the same inputs give the same id.
    pub simulation_id: String,
    /// The strategy's name.
    pub model_used: String,
    /// First timestamp as `YYYY-MM-DD` (empty without bars).
    pub start_date: String,
    /// Last timestamp as `YYYY-MM-DD` (empty without bars).
    pub end_date: String,
    /// Cash at the start.
    pub portfolio_start: f64,
    /// Equity at the end, open positions marked at their last closes.
    pub portfolio_end: f64,
    /// Closed round trips.
    pub total_trades: usize,
    /// Maximum drawdown in percent (<= 0).
    pub max_drawdown_pct: f64,
    /// Mean trade return in percent; `None` without trades.
    pub avg_trade_return_pct: Option<f64>,
    /// Best trade return in percent; `None` without trades.
    pub best_trade_return_pct: Option<f64>,
    /// Worst trade return in percent; `None` without trades.
    pub worst_trade_return_pct: Option<f64>,
    /// Instrument names, in feed order.
    pub instruments: Vec<String>,
    /// Currency label from settings; amounts are not converted.
    pub currency: String,
    /// The fill policy the run used, as the caller names it (`next_open`).
    pub fill_policy: String,
    /// Every metric of the run.
    pub metrics: Metrics,
    /// Closed trades, in the order they closed.
    pub trades: Vec<TradeRow>,
    /// Positions still open at the end (flat instruments left out).
    pub open_positions: Vec<OpenPositionRow>,
    /// Every refusal, cut and breaker trip of the risk layer.
    pub risk_events: Vec<RiskEvent>,
    /// One point per distinct timestamp.
    pub equity_curve: Vec<EquityPoint>,
}

/// A position still open when the run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenPositionRow {
    /// Instrument name.
    pub instrument: String,
    /// Units held: negative for shorts.
    pub quantity: f64,
    /// Volume-weighted average entry price.
    pub avg_price: f64,
}

/// FNV-1a: a stable, dependency-free fingerprint for the simulation id.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl BacktestReport {
    /// Builds the report. `settings_fingerprint` is any string that changes
    /// when the settings change (the CLI passes the settings as JSON).
    pub fn new(
        r: &BacktestResult<'_>,
        m: &Metrics,
        currency: &str,
        fill_policy: &str,
        settings_fingerprint: &str,
    ) -> Self {
        let name = |i: usize| r.instruments.get(i).cloned().unwrap_or_default();
        let mut peak = f64::MIN;
        let equity_curve = r
            .timestamps
            .iter()
            .zip(&r.equity)
            .map(|(&ts, &e)| {
                peak = peak.max(e);
                EquityPoint {
                    time: format_datetime(ts),
                    equity: e,
                    drawdown: if peak > 0.0 { e / peak - 1.0 } else { 0.0 },
                }
            })
            .collect();
        let id_input = format!(
            "{}|{}|{}|{}|{}",
            r.strategy,
            r.instruments.join(","),
            r.timestamps.first().unwrap_or(&0),
            r.timestamps.len(),
            settings_fingerprint
        );
        BacktestReport {
            simulation_id: format!("sim-{:016x}", fnv1a(id_input.as_bytes())),
            model_used: r.strategy.clone(),
            start_date: r.timestamps.first().map(|&t| format_date(t)).unwrap_or_default(),
            end_date: r.timestamps.last().map(|&t| format_date(t)).unwrap_or_default(),
            portfolio_start: r.initial_cash,
            portfolio_end: r.final_equity,
            total_trades: r.trades.len(),
            max_drawdown_pct: m.curve.max_drawdown * 100.0,
            avg_trade_return_pct: m.trades.avg_trade_return_pct,
            best_trade_return_pct: m.trades.best_trade_return_pct,
            worst_trade_return_pct: m.trades.worst_trade_return_pct,
            instruments: r.instruments.clone(),
            currency: currency.to_string(),
            fill_policy: fill_policy.to_string(),
            metrics: m.clone(),
            trades: r
                .trades
                .iter()
                .map(|t| TradeRow {
                    instrument: name(t.instrument),
                    direction: t.direction,
                    entry_time: format_datetime(t.entry_ts),
                    exit_time: format_datetime(t.exit_ts),
                    quantity: t.quantity,
                    entry_price: t.entry_price,
                    exit_price: t.exit_price,
                    pnl: t.pnl,
                    fees: t.fees,
                    return_pct: t.return_pct,
                })
                .collect(),
            open_positions: r
                .open_positions
                .iter()
                .enumerate()
                .filter(|(_, p)| p.qty != 0.0)
                .map(|(i, p)| OpenPositionRow {
                    instrument: name(i),
                    quantity: p.qty,
                    avg_price: p.avg_price,
                })
                .collect(),
            risk_events: r.risk_events.clone(),
            equity_curve,
        }
    }

    /// When the drawdown breaker halted trading for good, as a date: its
    /// first event (later ones are entries refused after the halt).
    pub fn halted(&self) -> Option<String> {
        self.risk_events
            .iter()
            .find(|e| e.rule == crate::risk::RiskRule::DrawdownCircuitBreaker)
            .map(|e| format_date(e.ts))
    }

    /// Closed trades, and the positions still open at the end (a
    /// buy-and-hold that never sold has 0 trades and 1 open): `12`, or
    /// `0 +1 open`.
    pub fn trades_label(&self) -> String {
        match self.open_positions.iter().filter(|p| p.quantity != 0.0).count() {
            0 => self.total_trades.to_string(),
            open => format!("{} +{open} open", self.total_trades),
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{run, EngineConfig};
    use crate::metrics::compute;
    use crate::settings::StrategySettings;
    use tradelab_data::synthetic::{generate, SyntheticConfig};

    fn report(strategy: &str, fingerprint: &str) -> BacktestReport {
        let market = generate(&SyntheticConfig {
            bars: 300,
            instrument: "synth".into(),
            ..Default::default()
        });
        let mut s = crate::strategies::baseline(strategy, &StrategySettings::default()).unwrap();
        let r = run(&[&market.series], s.as_mut(), &EngineConfig::default());
        BacktestReport::new(&r, &compute(&r, 0.0), "INR", "next_open", fingerprint)
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes_and_other_settings_another_id() {
        let a = report("momentum", "{\"seed\":1}");
        assert_eq!(a.to_json(), report("momentum", "{\"seed\":1}").to_json());
        assert_ne!(a.simulation_id, report("momentum", "{\"seed\":2}").simulation_id);
        assert_ne!(a.simulation_id, report("buy_and_hold", "{\"seed\":1}").simulation_id);
        assert!(a.simulation_id.starts_with("sim-") && a.simulation_id.len() == 20);
        let parsed: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(parsed["model_used"], "momentum(20)");
        assert_eq!(parsed["currency"], "INR");
        assert_eq!(parsed["fill_policy"], "next_open");
    }

    #[test]
    fn trades_carry_names_and_times_and_the_totals_agree_with_them() {
        let r = report("momentum", "");
        assert!(r.total_trades > 0, "momentum trades on a random walk");
        assert_eq!(r.total_trades, r.trades.len());
        for t in &r.trades {
            assert_eq!(t.instrument, "synth");
            assert!(t.entry_time < t.exit_time, "{} .. {}", t.entry_time, t.exit_time);
        }
        let best = r.trades.iter().map(|t| t.return_pct).fold(f64::MIN, f64::max);
        assert!((r.best_trade_return_pct.unwrap() - best).abs() < 1e-9);
        assert_eq!((r.start_date.len(), r.end_date.len()), (10, 10));
        assert!(r.start_date <= r.end_date);
    }

    #[test]
    fn the_curve_has_a_point_per_timestamp_and_its_deepest_drawdown_is_the_metric() {
        let r = report("buy_and_hold", "");
        assert_eq!(r.equity_curve.len(), 300);
        assert!(r.equity_curve.iter().all(|p| p.drawdown <= 0.0));
        let deepest = r.equity_curve.iter().map(|p| p.drawdown).fold(0.0, f64::min);
        assert!(
            (deepest * 100.0 - r.max_drawdown_pct).abs() < 1e-6,
            "{deepest} vs {}",
            r.max_drawdown_pct
        );
        assert_eq!(r.equity_curve.last().unwrap().equity, r.portfolio_end);
    }

    #[test]
    fn a_position_held_to_the_end_is_reported_open_and_no_trade_has_closed() {
        let r = report("buy_and_hold", "");
        assert_eq!(r.total_trades, 0);
        assert_eq!(r.avg_trade_return_pct, None);
        assert_eq!(r.open_positions.len(), 1);
        assert_eq!(r.open_positions[0].instrument, "synth");
        assert!(r.open_positions[0].quantity > 0.0 && r.open_positions[0].avg_price > 0.0);
    }
}
