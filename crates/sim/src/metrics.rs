//! Performance metrics of a backtest, with their edge cases defined.
//!
//! Definitions (checked against empyrical in `tests/metrics_reference.rs`):
//! - returns `r_t = E_t / E_{t-1} - 1`; per-period risk-free `rf / P`, where
//!   `P` is periods per year for the data's timeframe ([`periods_per_year`]);
//! - Sharpe `mean(r - rf_p) / std(r - rf_p, ddof 1) * sqrt(P)`;
//!   Sortino `mean(r - rf_p) / sqrt(mean(min(r - rf_p, 0)^2)) * sqrt(P)`;
//! - maximum drawdown `min_t E_t / max_{s<=t} E_s - 1`, and its duration, the
//!   longest run of points below the running peak;
//! - CAGR over calendar time (365.25-day years); Calmar `CAGR / |max DD|`;
//! - trade statistics over closed round trips, net of fees.
//!
//! Edge cases: a ratio whose denominator is zero (no variance, no downside,
//! no drawdown, no losing trade) is `None`, reported as `null`, never a
//! made-up number; per-trade figures with no trades are `None`;
//! profit factor with losses but no wins is 0.

use serde::Serialize;
use tradelab_core::time::{day_of, years_between};
use tradelab_core::{BarSeries, Calendar, Timeframe};

use crate::account::Trade;
use crate::engine::BacktestResult;

/// Periods per year used to annualise a series' per-bar figures: its
/// sessions a year from its calendar (252 on weekdays, 365 every day; see
/// [`Calendar`]), scaled for multi-day bars, 12 for monthly bars, and for
/// intraday bars the sessions times the median number of bars per calendar
/// day actually in the data (sessions differ in length).
pub fn periods_per_year(series: &BarSeries) -> f64 {
    periods_per_year_of(
        &series.ts,
        series.timeframe_or_inferred(),
        series.calendar_or_inferred(),
    )
}

/// [`periods_per_year`] from the parts of a series.
pub fn periods_per_year_of(ts: &[i64], tf: Option<Timeframe>, calendar: Calendar) -> f64 {
    let sessions = calendar.sessions_per_year();
    let Some(tf) = tf else { return sessions };
    if let Some(months) = tf.calendar_months() {
        return 12.0 / months as f64;
    }
    let day = Timeframe::DAY.millis() as f64;
    if tf >= Timeframe::WEEK {
        // Weeks pass on every calendar, trading or not.
        return 365.2425 * day / tf.millis() as f64;
    }
    if tf.is_daily_or_longer() {
        return sessions * day / tf.millis() as f64;
    }
    // Bars per calendar day, walking day boundaries instead of dividing
    // every timestamp (this runs over every bar of every backtest).
    let mut counts = Vec::new();
    let mut i = 0;
    while i < ts.len() {
        let day_end = (day_of(ts[i]) + 1) * Timeframe::DAY.millis();
        let start = i;
        while i < ts.len() && ts[i] < day_end {
            i += 1;
        }
        counts.push(i - start);
    }
    if counts.is_empty() {
        return sessions * (Timeframe::DAY.millis() / tf.millis()) as f64;
    }
    counts.sort_unstable();
    let n = counts.len();
    let median = if n % 2 == 1 {
        counts[n / 2] as f64
    } else {
        (counts[n / 2 - 1] + counts[n / 2]) as f64 / 2.0
    };
    sessions * median
}

/// Curve-based metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurveMetrics {
    /// Final over first equity, minus 1 (a fraction; 0 for curves shorter
    /// than two points).
    pub total_return: f64,
    /// Compound annual growth rate over calendar time; `None` when the curve
    /// spans no time or ends at or below zero.
    pub cagr: Option<f64>,
    /// Standard deviation of per-period excess returns, annualised by
    /// `sqrt(P)`.
    pub annual_volatility: Option<f64>,
    /// Annualised Sharpe ratio; `None` without variance.
    pub sharpe: Option<f64>,
    /// Annualised Sortino ratio; `None` without downside.
    pub sortino: Option<f64>,
    /// CAGR over `|max_drawdown|`; `None` without a drawdown or a CAGR.
    pub calmar: Option<f64>,
    /// A negative fraction (or 0).
    pub max_drawdown: f64,
    /// Longest run of points below the running peak.
    pub max_drawdown_duration_bars: usize,
    /// True when the annualised figures (CAGR, volatility, Sharpe, Sortino,
    /// Calmar) come from too little data to mean much: fewer than
    /// [`MIN_RETURNS`] returns or under [`MIN_YEARS`] of calendar time.
    /// Tables mark them.
    pub short_sample: bool,
}

/// Fewer returns than this make annualised figures unreliable.
pub const MIN_RETURNS: usize = 30;
/// A span shorter than this (a quarter, in years) makes annualised figures
/// unreliable: two weeks of minute bars annualise into a Sharpe of -67.
pub const MIN_YEARS: f64 = 0.25;

/// Trade-based metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeMetrics {
    /// Closed round trips.
    pub total_trades: usize,
    /// Share of trades with a positive net P&L (a fraction).
    pub win_rate: Option<f64>,
    /// Gross profit over gross loss; `None` without a losing trade, 0 with
    /// losses but no wins.
    pub profit_factor: Option<f64>,
    /// Mean net P&L per trade, in account currency.
    pub avg_trade_pnl: Option<f64>,
    /// Mean of the trades' `return_pct`, in percent.
    pub avg_trade_return_pct: Option<f64>,
    /// Largest net P&L of one trade.
    pub best_trade_pnl: Option<f64>,
    /// Smallest (most negative) net P&L of one trade.
    pub worst_trade_pnl: Option<f64>,
    /// Largest return of one trade, in percent.
    pub best_trade_return_pct: Option<f64>,
    /// Smallest return of one trade, in percent.
    pub worst_trade_return_pct: Option<f64>,
}

/// Everything in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Final equity minus initial cash.
    pub total_pnl: f64,
    /// Curve-based metrics, flattened into the same JSON object.
    #[serde(flatten)]
    pub curve: CurveMetrics,
    /// Trade-based metrics, flattened into the same JSON object.
    #[serde(flatten)]
    pub trades: TradeMetrics,
    /// Share of equity points with an open position.
    pub exposure: f64,
    /// Traded notional divided by average equity.
    pub turnover: f64,
    /// Commissions paid over the run.
    pub fees_paid: f64,
    /// Periods per year the ratios were annualised with (see
    /// [`periods_per_year()`]).
    pub periods_per_year: f64,
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0 && den.is_finite()).then(|| num / den)
}

/// The deepest fall of `equity` below its running peak (a negative
/// fraction, or 0) and the longest run of points below a peak.
pub fn drawdown(equity: &[f64]) -> (f64, usize) {
    let (mut peak, mut max_dd, mut run, mut longest) = (f64::MIN, 0.0f64, 0usize, 0usize);
    for &e in equity {
        if e >= peak {
            peak = e;
            run = 0;
        } else {
            run += 1;
            longest = longest.max(run);
            max_dd = max_dd.min(e / peak - 1.0);
        }
    }
    (max_dd, longest)
}

/// Metrics of an equity curve.
pub fn curve_metrics(ts: &[i64], equity: &[f64], periods_per_year: f64, risk_free_rate: f64) -> CurveMetrics {
    let n = equity.len();
    let (max_dd, longest) = drawdown(equity);
    if n < 2 || equity[0] <= 0.0 {
        return CurveMetrics {
            total_return: 0.0,
            cagr: None,
            annual_volatility: None,
            sharpe: None,
            sortino: None,
            calmar: None,
            max_drawdown: max_dd,
            max_drawdown_duration_bars: longest,
            short_sample: true,
        };
    }
    let rf_p = risk_free_rate / periods_per_year;
    let excess: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0 - rf_p).collect();
    let m = mean(&excess);
    let var = excess.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (excess.len().max(2) - 1) as f64;
    let sd = var.sqrt();
    let downside = (excess.iter().map(|x| x.min(0.0).powi(2)).sum::<f64>() / excess.len() as f64).sqrt();
    let ann = periods_per_year.sqrt();
    // Zero variance within rounding noise is zero variance.
    let sd_eff = if sd > 1e-14 * m.abs().max(1e-300) && sd > 0.0 {
        sd
    } else {
        0.0
    };
    let total_return = equity[n - 1] / equity[0] - 1.0;
    let years = years_between(ts[0], ts[n - 1]);
    let cagr = (years > 0.0 && equity[n - 1] > 0.0).then(|| (equity[n - 1] / equity[0]).powf(1.0 / years) - 1.0);
    CurveMetrics {
        total_return,
        cagr,
        annual_volatility: Some(sd_eff * ann),
        sharpe: ratio(m, sd_eff).map(|r| r * ann),
        sortino: ratio(m, downside).map(|r| r * ann),
        calmar: cagr.and_then(|c| ratio(c, -max_dd)),
        max_drawdown: max_dd,
        max_drawdown_duration_bars: longest,
        short_sample: n - 1 < MIN_RETURNS || years < MIN_YEARS,
    }
}

/// Metrics of a list of closed trades.
pub fn trade_metrics(trades: &[Trade]) -> TradeMetrics {
    let n = trades.len();
    let pnls = trades.iter().map(|t| t.pnl);
    let rets = trades.iter().map(|t| t.return_pct);
    let gross_win: f64 = trades.iter().filter(|t| t.pnl > 0.0).map(|t| t.pnl).sum();
    let gross_loss: f64 = -trades.iter().filter(|t| t.pnl < 0.0).map(|t| t.pnl).sum::<f64>();
    let some = |v: f64| (n > 0).then_some(v);
    TradeMetrics {
        total_trades: n,
        win_rate: some(trades.iter().filter(|t| t.pnl > 0.0).count() as f64 / n as f64),
        profit_factor: ratio(gross_win, gross_loss),
        avg_trade_pnl: some(pnls.clone().sum::<f64>() / n as f64),
        avg_trade_return_pct: some(rets.clone().sum::<f64>() / n as f64),
        best_trade_pnl: pnls.clone().reduce(f64::max),
        worst_trade_pnl: pnls.reduce(f64::min),
        best_trade_return_pct: rets.clone().reduce(f64::max),
        worst_trade_return_pct: rets.reduce(f64::min),
    }
}

/// All metrics of a backtest.
pub fn compute(r: &BacktestResult<'_>, risk_free_rate: f64) -> Metrics {
    let curve = curve_metrics(&r.timestamps, &r.equity, r.periods_per_year, risk_free_rate);
    let avg_equity = if r.equity.is_empty() {
        r.initial_cash
    } else {
        mean(&r.equity)
    };
    Metrics {
        total_pnl: r.final_equity - r.initial_cash,
        curve,
        trades: trade_metrics(&r.trades),
        exposure: if r.equity.is_empty() {
            0.0
        } else {
            r.exposed_points as f64 / r.equity.len() as f64
        },
        turnover: if avg_equity > 0.0 {
            r.traded_notional / avg_equity
        } else {
            0.0
        },
        fees_paid: r.fees_paid,
        periods_per_year: r.periods_per_year,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Direction;

    fn trade(pnl: f64) -> Trade {
        Trade {
            instrument: 0,
            direction: Direction::Long,
            entry_ts: 0,
            exit_ts: 1,
            quantity: 1.0,
            entry_price: 100.0,
            exit_price: 100.0 + pnl,
            pnl,
            fees: 0.0,
            return_pct: pnl,
        }
    }

    #[test]
    fn no_trades_gives_nulls_not_numbers() {
        let m = trade_metrics(&[]);
        assert_eq!(m.total_trades, 0);
        assert_eq!(
            (m.win_rate, m.profit_factor, m.avg_trade_pnl, m.best_trade_pnl),
            (None, None, None, None)
        );
    }

    #[test]
    fn all_losers_give_zero_win_rate_and_zero_profit_factor() {
        let m = trade_metrics(&[trade(-1.0), trade(-2.0)]);
        assert_eq!((m.win_rate, m.profit_factor), (Some(0.0), Some(0.0)));
        assert_eq!((m.best_trade_pnl, m.worst_trade_pnl), (Some(-1.0), Some(-2.0)));
        let m = trade_metrics(&[trade(3.0), trade(1.0)]);
        assert_eq!(m.profit_factor, None, "no losses: undefined, not infinite");
        let m = trade_metrics(&[trade(3.0), trade(-1.0), trade(0.0)]);
        assert_eq!(m.profit_factor, Some(3.0));
        assert_eq!(m.win_rate, Some(1.0 / 3.0));
    }

    #[test]
    fn flat_curve_has_zero_drawdown_and_undefined_ratios() {
        let ts: Vec<i64> = (0..10).map(|i| i * 86_400_000).collect();
        let m = curve_metrics(&ts, &[1000.0; 10], 252.0, 0.0);
        assert_eq!((m.max_drawdown, m.max_drawdown_duration_bars), (0.0, 0));
        assert_eq!((m.sharpe, m.sortino, m.calmar), (None, None, None));
        assert_eq!(m.cagr, Some(0.0));
    }

    #[test]
    fn figures_from_a_short_sample_are_marked() {
        let day = 86_400_000;
        let curve = |n: i64, step: i64| {
            let ts: Vec<i64> = (0..n).map(|i| i * step).collect();
            let eq: Vec<f64> = (0..n).map(|i| 100.0 + (i % 3) as f64).collect();
            curve_metrics(&ts, &eq, 252.0, 0.0).short_sample
        };
        assert!(curve(20, day), "19 returns");
        assert!(curve(5000, 240_000), "two weeks of bars, many returns");
        assert!(!curve(200, day), "200 days");
        assert!(curve(1, day));
    }

    #[test]
    fn drawdown_depth_and_duration() {
        let ts: Vec<i64> = (0..7).map(|i| i * 86_400_000).collect();
        let m = curve_metrics(&ts, &[100.0, 120.0, 90.0, 100.0, 130.0, 125.0, 126.0], 252.0, 0.0);
        assert!((m.max_drawdown + 0.25).abs() < 1e-12);
        assert_eq!(m.max_drawdown_duration_bars, 2);
    }

    #[test]
    fn periods_per_year_follow_the_timeframe() {
        let weekdays = Calendar::Weekdays;
        assert_eq!(periods_per_year_of(&[], Some(Timeframe::DAY), weekdays), 252.0);
        assert_eq!(
            periods_per_year_of(&[], Some(Timeframe::DAY), Calendar::EveryDay),
            365.0
        );
        assert_eq!(periods_per_year_of(&[], Some(Timeframe::MONTH), weekdays), 12.0);
        assert_eq!(periods_per_year_of(&[], Some("3M".parse().unwrap()), weekdays), 4.0);
        let weekly = periods_per_year_of(&[], Some(Timeframe::WEEK), weekdays);
        assert!((weekly - 52.18).abs() < 0.01, "{weekly}");
        // Two days of 5-minute bars: 3 and 5 bars; median 4.
        let m5 = 300_000;
        let d = 86_400_000;
        let ts = [
            0,
            m5,
            2 * m5,
            d,
            d + m5,
            d + 2 * m5,
            d + 3 * m5,
            d + 4 * m5,
            2 * d,
            2 * d + m5,
            2 * d + 2 * m5,
            2 * d + 3 * m5,
        ];
        let tf = Some(Timeframe::from_millis(m5));
        assert_eq!(periods_per_year_of(&ts, tf, weekdays), 252.0 * 4.0);
        // Hourly crypto, around the clock every day: 365 x 24, not 252 x 24.
        let hourly = BarSeries {
            ts: (0..24 * 21).map(|h| h * 3_600_000).collect(),
            ..Default::default()
        };
        assert_eq!(periods_per_year(&hourly), 365.0 * 24.0);
        let declared = BarSeries {
            calendar: Some(weekdays),
            ..hourly
        };
        assert_eq!(periods_per_year(&declared), 252.0 * 24.0, "a declared calendar wins");
    }
}
