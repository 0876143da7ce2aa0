//! Behaviour of the engine: fill timing, order types, brackets, costs,
//! slippage, shorts, several instruments, the risk layer and determinism.

use tradelab_core::{Action, Bar, BarSeries, Timeframe};
use tradelab_data::settings::DataSettings;
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_sim::costs::{CostModel, Slippage};
use tradelab_sim::engine::{run, EngineConfig};
use tradelab_sim::metrics::periods_per_year;
use tradelab_sim::order::Order;
use tradelab_sim::risk::{RiskLimits, RiskRule};
use tradelab_sim::settings::{BacktestSettings, FillPolicy, RiskSettings, StrategySettings};
use tradelab_sim::sizing::{Lots, Sizing};
use tradelab_sim::strategies::{baseline, SmaCrossover};
use tradelab_sim::strategy::{BarContext, Strategy};

const DAY: i64 = 86_400_000;

fn series(name: &str, bars: &[(f64, f64, f64, f64)]) -> BarSeries {
    let mut s: BarSeries = bars
        .iter()
        .enumerate()
        .map(|(i, &(open, high, low, close))| Bar {
            ts: i as i64 * DAY,
            open,
            high,
            low,
            close,
            volume: 1000.0,
        })
        .collect();
    s.instrument = name.into();
    s.timeframe = Some(Timeframe::DAY);
    s
}

fn flat_bars(n: usize, price: f64) -> Vec<(f64, f64, f64, f64)> {
    (0..n)
        .map(|i| {
            let p = price + i as f64;
            (p, p + 0.5, p - 0.5, p + 0.25)
        })
        .collect()
}

fn frictionless() -> EngineConfig {
    EngineConfig {
        initial_cash: 100_000.0,
        fill: FillPolicy::NextOpen,
        costs: CostModel::free(),
        slippage: Slippage::None,
        atr_period: 14,
        sizing: Sizing::FixedQuantity(10.0),
        lots: Lots {
            size: 1.0,
            fractional: false,
        },
        instrument_lots: Default::default(),
        risk: RiskLimits::off(),
    }
}

/// Submits the given orders at the given bar indices.
struct Script {
    at: Vec<(usize, Order)>,
}

impl Strategy for Script {
    fn name(&self) -> String {
        "script".into()
    }
    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        for (k, o) in &self.at {
            if *k == ctx.index && o.instrument == ctx.instrument {
                ctx.submit(*o);
            }
        }
    }
}

#[test]
fn default_fill_is_the_next_bars_open_never_the_signal_close() {
    let s = series("A", &flat_bars(10, 100.0));
    let mut strat = Script {
        at: vec![(3, Order::market(0, Action::BuyLong))],
    };
    let r = run(&[&s], &mut strat, &frictionless());
    assert_eq!(r.fills.len(), 1);
    assert_eq!(r.fills[0].ts, s.ts[4]);
    assert_eq!(r.fills[0].price, s.open[4]);
    let mut cfg = frictionless();
    cfg.fill = FillPolicy::SignalClose;
    let r = run(
        &[&s],
        &mut Script {
            at: vec![(3, Order::market(0, Action::BuyLong))],
        },
        &cfg,
    );
    assert_eq!((r.fills[0].ts, r.fills[0].price), (s.ts[3], s.close[3]));
}

#[test]
fn past_equity_does_not_depend_on_future_bars() {
    let m = generate(&SyntheticConfig {
        bars: 600,
        seed: 3,
        ..Default::default()
    });
    let cfg = EngineConfig::default();
    let base = run(
        &[&m.series],
        baseline("sma_crossover", &StrategySettings::default())
            .unwrap()
            .as_mut(),
        &cfg,
    );
    let mut altered = m.series.clone();
    for i in 400..altered.len() {
        altered.open[i] *= 1.5;
        altered.high[i] *= 1.5;
        altered.low[i] *= 1.5;
        altered.close[i] *= 1.5;
    }
    let other = run(
        &[&altered],
        baseline("sma_crossover", &StrategySettings::default())
            .unwrap()
            .as_mut(),
        &cfg,
    );
    assert_eq!(base.equity[..400], other.equity[..400]);
    assert_ne!(base.equity[400..], other.equity[400..]);
}

#[test]
fn limit_and_stop_orders_wait_for_their_price() {
    // Prices climb 100, 101, ...; a buy limit at 102.6 can only fill on a
    // bar whose low reaches it; a sell stop below the market waits for a fall.
    let s = series("A", &flat_bars(12, 100.0));
    let orders = vec![
        (0, Order::limit(0, Action::BuyLong, 101.6).units(5.0)),
        (1, Order::stop(0, Action::SellShort, 50.0).units(1.0)),
    ];
    let r = run(&[&s], &mut Script { at: orders }, &frictionless());
    assert_eq!(
        r.fills.len(),
        1,
        "the sell stop at 50, below the market, never triggers"
    );
    // Bar 1: open 101 <= 101.6: gap through the limit fills at the open.
    assert_eq!((r.fills[0].ts, r.fills[0].price, r.fills[0].qty), (s.ts[1], 101.0, 5.0));
    let orders = vec![(2, Order::limit(0, Action::BuyLong, 102.6).units(5.0))];
    let r = run(&[&s], &mut Script { at: orders }, &frictionless());
    // Bar 3: open 103, low 102.5 reaches 102.6: fills at the limit.
    assert_eq!((r.fills[0].ts, r.fills[0].price), (s.ts[3], 102.6));
}

#[test]
fn stop_loss_wins_when_both_levels_are_inside_one_bar() {
    let mut bars = flat_bars(6, 100.0);
    bars[3] = (102.0, 110.0, 90.0, 101.0); // wide bar touching both levels
    let s = series("A", &bars);
    let entry = Order::market(0, Action::BuyLong)
        .units(10.0)
        .with_stop_loss(95.0)
        .with_take_profit(108.0);
    let r = run(&[&s], &mut Script { at: vec![(0, entry)] }, &frictionless());
    assert_eq!(r.trades.len(), 1);
    assert_eq!(
        (r.trades[0].exit_ts, r.trades[0].exit_price),
        (s.ts[3], 95.0),
        "conservative: the stop-loss first"
    );
}

#[test]
fn take_profit_exits_at_its_level() {
    let mut bars = flat_bars(6, 100.0);
    bars[3] = (102.0, 110.0, 101.5, 109.0);
    let s = series("A", &bars);
    let entry = Order::market(0, Action::BuyLong)
        .units(10.0)
        .with_stop_loss(90.0)
        .with_take_profit(108.0);
    let r = run(&[&s], &mut Script { at: vec![(0, entry)] }, &frictionless());
    assert_eq!((r.trades[0].exit_ts, r.trades[0].exit_price), (s.ts[3], 108.0));
    assert!((r.trades[0].pnl - 10.0 * (108.0 - 101.0)).abs() < 1e-9);
}

#[test]
fn fees_are_25_per_entry_and_35_per_exit_and_slippage_costs_money() {
    let s = series("A", &flat_bars(10, 100.0));
    let mut cfg = frictionless();
    cfg.costs = CostModel::from_settings(&BacktestSettings::default().costs);
    let orders = vec![
        (0, Order::market(0, Action::BuyLong)),
        (2, Order::market(0, Action::CloseLong)),
        (4, Order::market(0, Action::SellShort)),
        (6, Order::market(0, Action::CloseShort)),
    ];
    let r = run(&[&s], &mut Script { at: orders.clone() }, &cfg);
    assert_eq!(r.trades.len(), 2);
    assert_eq!(r.fees_paid, 2.0 * (25.0 + 35.0));
    assert!(r.trades.iter().all(|t| t.fees == 60.0));
    cfg.slippage = Slippage::FixedBps(50.0);
    let slipped = run(&[&s], &mut Script { at: orders }, &cfg);
    assert!(slipped.final_equity < r.final_equity);
    assert!((slipped.fills[0].price - s.open[1] * 1.005).abs() < 1e-9);
}

#[test]
fn shorts_profit_from_falling_prices() {
    let bars: Vec<_> = (0..10)
        .map(|i| {
            let p = 200.0 - 5.0 * i as f64;
            (p, p + 1.0, p - 6.0, p - 5.0)
        })
        .collect();
    let s = series("A", &bars);
    let orders = vec![
        (0, Order::market(0, Action::SellShort).units(10.0)),
        (5, Order::market(0, Action::CloseShort)),
    ];
    let r = run(&[&s], &mut Script { at: orders }, &frictionless());
    assert_eq!(r.trades[0].direction, tradelab_sim::account::Direction::Short);
    assert!((r.trades[0].pnl - 10.0 * (195.0 - 170.0)).abs() < 1e-9);
}

#[test]
fn several_instruments_share_one_account_on_a_merged_timeline() {
    let a = series("A", &flat_bars(10, 100.0));
    // B trades every other day, offset by half a day.
    let mut b = series("B", &flat_bars(5, 50.0));
    for (i, t) in b.ts.iter_mut().enumerate() {
        *t = i as i64 * 2 * DAY + DAY / 2;
    }
    let orders = vec![
        (1, Order::market(0, Action::BuyLong).units(10.0)),
        (1, Order::market(1, Action::BuyLong).units(20.0)),
    ];
    let r = run(&[&a, &b], &mut Script { at: orders }, &frictionless());
    assert_eq!(r.equity.len(), 15, "one point per distinct timestamp");
    assert!(r.timestamps.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(r.open_positions[0].qty, 10.0);
    assert_eq!(r.open_positions[1].qty, 20.0);
    let cash_spent = 10.0 * a.open[2] + 20.0 * b.open[2];
    let marked = 10.0 * a.close[9] + 20.0 * b.close[4];
    assert!((r.final_equity - (100_000.0 - cash_spent + marked)).abs() < 1e-6);
}

#[test]
fn default_risk_layer_caps_one_asset_at_a_quarter_of_equity() {
    let s = series("A", &flat_bars(20, 100.0));
    let r = run(
        &[&s],
        baseline("buy_and_hold", &StrategySettings::default()).unwrap().as_mut(),
        &EngineConfig::default(),
    );
    let fill = &r.fills[0];
    assert!(
        fill.qty * fill.price <= 0.25 * 100_000.0 + 1e-6,
        "{} units at {}",
        fill.qty,
        fill.price
    );
    assert!(fill.qty * fill.price > 0.24 * 100_000.0);
    assert_eq!(r.risk_events[0].rule, RiskRule::MaxAssetFraction);
}

#[test]
fn drawdown_breaker_flattens_and_halts() {
    // Up, then a crash, then recovery the strategy would love to buy.
    let mut bars = Vec::new();
    for i in 0..60 {
        let p = if i < 20 {
            100.0 + i as f64
        } else if i < 30 {
            120.0 - 6.0 * (i - 20) as f64
        } else {
            60.0 + (i - 30) as f64
        };
        bars.push((p, p + 1.0, p - 1.0, p));
    }
    let s = series("A", &bars);
    let risk = RiskSettings {
        max_asset_fraction: 1.0,
        max_drawdown: 0.2,
        daily_loss_limit: 0.0,
        ..Default::default()
    };
    let mut backtest = BacktestSettings::default();
    backtest.costs.entry_fixed = 0.0;
    backtest.costs.exit_fixed = 0.0;
    let cfg = EngineConfig::new(&backtest, &risk, &DataSettings::default());
    let orders = (0..60).map(|k| (k, Order::market(0, Action::BuyLong))).collect();
    let r = run(&[&s], &mut Script { at: orders }, &cfg);
    let trip = r
        .risk_events
        .iter()
        .position(|e| e.rule == RiskRule::DrawdownCircuitBreaker)
        .expect("breaker trips");
    assert!(r.risk_events[trip].reason.contains("flattening"));
    assert_eq!(r.open_positions[0].qty, 0.0, "flattened");
    assert_eq!(r.trades.len(), 1);
    assert!(r.risk_events[trip + 1..]
        .iter()
        .all(|e| e.rule == RiskRule::DrawdownCircuitBreaker && e.allowed == 0.0));
    assert!(
        r.risk_events.len() > trip + 5,
        "later entries are refused, each recorded"
    );
}

#[test]
fn same_inputs_same_result() {
    let m = generate(&SyntheticConfig {
        bars: 3000,
        seed: 11,
        ..Default::default()
    });
    let cfg = EngineConfig::default();
    let a = run(&[&m.series], &mut SmaCrossover::new(10, 30, true), &cfg);
    let b = run(&[&m.series], &mut SmaCrossover::new(10, 30, true), &cfg);
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert!(a
        .trades
        .iter()
        .any(|t| t.direction == tradelab_sim::account::Direction::Short));
}

#[test]
fn every_baseline_runs_and_accounts_balance() {
    let m = generate(&SyntheticConfig {
        bars: 2000,
        seed: 5,
        ..Default::default()
    });
    let cfg = EngineConfig::default();
    for name in tradelab_sim::strategies::BASELINES {
        let r = run(
            &[&m.series],
            baseline(name, &StrategySettings::default()).unwrap().as_mut(),
            &cfg,
        );
        // Equity = initial + closed trades' P&L (net of their fees) + the
        // open trade's: its position at the last close plus the cash its
        // fills moved (entries, partial exits and their fees), counted from
        // the fill after which the position was last flat.
        let closed: f64 = r.trades.iter().map(|t| t.pnl).sum();
        let signed = |f: &tradelab_sim::account::Fill| match f.side {
            tradelab_core::Side::Buy => f.qty,
            tradelab_core::Side::Sell => -f.qty,
        };
        let (mut held, mut since, mut largest) = (0.0f64, 0, 0.0f64);
        for (k, f) in r.fills.iter().enumerate() {
            held += signed(f);
            largest = largest.max(held.abs());
            if held.abs() <= 1e-9 * largest.max(1.0) {
                since = k + 1;
            }
        }
        let p = r.open_positions[0];
        let open_cash: f64 = r.fills[since..].iter().map(|f| -signed(f) * f.price - f.fee).sum();
        let open = p.qty * m.series.close.last().unwrap() + open_cash;
        assert!(
            (r.final_equity - (100_000.0 + closed + open)).abs() < 1e-6,
            "{name}: {} vs {}",
            r.final_equity,
            100_000.0 + closed + open
        );
        assert_eq!(r.equity.len(), 2000, "{name}");
    }
}

#[test]
fn atr_and_volume_slippage_and_percentage_costs_apply_at_the_fill() {
    let m = generate(&SyntheticConfig {
        bars: 300,
        seed: 21,
        ..Default::default()
    });
    let orders = vec![(40, Order::market(0, Action::BuyLong).units(100.0))];
    let base = run(&[&m.series], &mut Script { at: orders.clone() }, &frictionless());
    let open = m.series.open[41];
    assert_eq!(base.fills[0].price, open);

    let mut cfg = frictionless();
    cfg.slippage = Slippage::AtrFraction(0.5);
    let r = run(&[&m.series], &mut Script { at: orders.clone() }, &cfg);
    // ATR as of bar 40's close (known before bar 41 opens).
    let mut atr = tradelab_data::features::Atr::new(14);
    let mut last = f64::NAN;
    for i in 0..=40 {
        last = atr.update(m.series.high[i], m.series.low[i], m.series.close[i]);
    }
    assert!((r.fills[0].price - (open + 0.5 * last)).abs() < 1e-9);

    cfg.slippage = Slippage::VolumeParticipation(0.1);
    let r = run(&[&m.series], &mut Script { at: orders.clone() }, &cfg);
    let expected = open * (1.0 + 0.1 * 100.0 / m.series.volume[41]);
    assert!((r.fills[0].price - expected).abs() < 1e-9);

    let mut cfg = frictionless();
    cfg.costs = CostModel {
        entry_fixed: 0.0,
        exit_fixed: 0.0,
        percent: 0.001,
        per_unit: 0.01,
        minimum: 2.0,
    };
    let r = run(&[&m.series], &mut Script { at: orders }, &cfg);
    assert!((r.fills[0].fee - (0.001 * 100.0 * open + 1.0).max(2.0)).abs() < 1e-9);
}

#[test]
fn volatility_target_sizing_scales_inversely_with_volatility_and_respects_lots() {
    let calm = generate(&SyntheticConfig {
        bars: 200,
        seed: 1,
        persistence: 1.0,
        ..Default::default()
    });
    let mut cfg = frictionless();
    cfg.sizing = Sizing::VolatilityTarget {
        target: 0.10,
        window: 20,
    };
    cfg.lots = Lots {
        size: 10.0,
        fractional: false,
    };
    let orders = vec![
        (5, Order::market(0, Action::BuyLong)),
        (60, Order::market(0, Action::BuyLong)),
    ];
    let r = run(&[&calm.series], &mut Script { at: orders }, &cfg);
    // Bar 5: the 20-bar volatility estimate is not ready, so no entry and a record.
    assert_eq!(r.risk_events[0].rule, RiskRule::SizingUnavailable);
    let fill = &r.fills[0];
    assert_eq!(fill.ts, calm.series.ts[61]);
    assert_eq!(fill.qty % 10.0, 0.0, "whole lots of 10");
    let mut vol = tradelab_data::features::RealizedVolatility::new(20);
    let mut at_signal = f64::NAN;
    for i in 0..=60 {
        at_signal = vol.update(calm.series.close[i]);
    }
    // The synthetic market trades every day: 365 sessions a year.
    assert_eq!(periods_per_year(&calm.series), 365.0);
    let annual = at_signal * periods_per_year(&calm.series).sqrt();
    let want = (0.10 / annual * 100_000.0 / fill.price / 10.0).floor() * 10.0;
    assert_eq!(fill.qty, want);
}

#[test]
fn lot_sizes_and_fractional_quantities_apply_per_instrument() {
    let a = series("A", &flat_bars(10, 100.0));
    let b = series("B", &flat_bars(10, 100.0));
    let c = series("C", &flat_bars(10, 100.0));
    let mut cfg = frictionless();
    cfg.instrument_lots.insert(
        "A".into(),
        Lots {
            size: 25.0,
            fractional: false,
        },
    );
    cfg.instrument_lots.insert(
        "B".into(),
        Lots {
            size: 1.0,
            fractional: true,
        },
    );
    let orders = (0..3)
        .map(|i| (0, Order::market(i, Action::BuyLong).units(37.5)))
        .collect();
    let r = run(&[&a, &b, &c], &mut Script { at: orders }, &cfg);
    assert_eq!(r.open_positions[0].qty, 25.0, "A trades in lots of 25");
    assert_eq!(r.open_positions[1].qty, 37.5, "B is fractional");
    assert_eq!(r.open_positions[2].qty, 37.0, "C falls back to whole units");
}

/// Exposure targets trim positions: a partial close trades whole lots
/// (the rest stays open), and one for more than is held closes it all.
#[test]
fn partial_closes_trade_whole_lots_and_never_more_than_is_held() {
    let a = series("A", &flat_bars(10, 100.0));
    let b = series("B", &flat_bars(10, 100.0));
    let mut cfg = frictionless();
    cfg.lots = Lots {
        size: 10.0,
        fractional: false,
    };
    let orders = vec![
        (0, Order::market(0, Action::BuyLong).units(50.0)),
        (0, Order::market(1, Action::SellShort).units(50.0)),
        (2, Order::market(0, Action::CloseLong).units(17.0)),
        (2, Order::market(1, Action::CloseShort).units(7.0)),
        (4, Order::market(1, Action::CloseShort).units(500.0)),
    ];
    let r = run(&[&a, &b], &mut Script { at: orders }, &cfg);
    assert_eq!(r.open_positions[0].qty, 40.0, "17 units of a 10-unit lot close 10");
    assert_eq!(r.open_positions[1].qty, 0.0, "{:?}", r.open_positions);
    let closes: Vec<f64> = r.fills.iter().skip(2).map(|f| f.qty.abs()).collect();
    assert_eq!(closes, vec![10.0, 50.0], "7 units close nothing; 500 close the 50 held");
}

/// Issue 20: an entry smaller than one whole lot trades nothing, and the
/// result counts it and warns with the setting that fixes it (BTC at a
/// 25% cap in whole units used to show "+0, 0 trades" without a word).
#[test]
fn entries_that_round_to_zero_lots_are_counted_and_named() {
    let a = series("BTC", &flat_bars(10, 100.0));
    let b = series("ETH", &flat_bars(10, 100.0));
    let orders = vec![
        (0, Order::market(0, Action::BuyLong).units(0.4)),
        (2, Order::market(0, Action::BuyLong).units(0.9)),
        (0, Order::market(1, Action::BuyLong).units(2.0)),
    ];
    let r = run(&[&a, &b], &mut Script { at: orders }, &frictionless());
    assert_eq!(r.orders_rounded_to_zero, [2, 0]);
    assert_eq!(r.open_positions[0].qty, 0.0);
    assert_eq!(r.open_positions[1].qty, 2.0);
    let w = r.rounding_warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("2 order(s) on BTC rounded to 0 units") && w[0].contains("data.fractional"),
        "{}",
        w[0]
    );
}

/// Issue 21: hierarchical risk parity as a sizing method. Entries before
/// the covariance window fills are skipped and recorded; after it, each
/// entry commits its instrument's HRP share of equity, computed from the
/// returns up to the bar before, so the calm instrument gets more than the
/// wild one.
#[test]
fn risk_parity_sizing_commits_each_instruments_hrp_share() {
    use tradelab_sim::portfolio::{hrp, ledoit_wolf};
    let market = |seed: u64, vol: f64, name: &str| {
        let mut s = generate(&SyntheticConfig {
            bars: 120,
            seed,
            persistence: 1.0,
            ..Default::default()
        })
        .series;
        // Rescale the moves around 100 to set each instrument's volatility.
        let base = s.close.clone();
        for col in [&mut s.open, &mut s.high, &mut s.low, &mut s.close] {
            for p in col.iter_mut() {
                *p = 100.0 * (1.0 + vol * (*p / base[0] - 1.0));
            }
        }
        s.instrument = name.into();
        s
    };
    let feeds = [market(1, 0.5, "calm"), market(2, 1.0, "middle"), market(3, 3.0, "wild")];
    let refs: Vec<&BarSeries> = feeds.iter().collect();
    let mut cfg = frictionless();
    cfg.sizing = Sizing::RiskParity {
        fraction: 0.9,
        window: 40,
        rebalance: 1,
    };
    cfg.lots = Lots {
        size: 1.0,
        fractional: true,
    };
    let orders: Vec<(usize, Order)> = (0..3)
        .flat_map(|i| {
            [
                (10, Order::market(i, Action::BuyLong)),
                (70, Order::market(i, Action::BuyLong)),
            ]
        })
        .collect();
    let r = run(&refs, &mut Script { at: orders }, &cfg);
    let unavailable: Vec<_> = r
        .risk_events
        .iter()
        .filter(|e| e.rule == RiskRule::SizingUnavailable)
        .collect();
    assert_eq!(unavailable.len(), 3, "bar 10 is before the 40-bar window fills");
    assert!(
        unavailable[0].reason.contains("hrp_window"),
        "{}",
        unavailable[0].reason
    );
    assert_eq!(r.fills.len(), 3);
    // Signal at bar 70, filled at bar 71's open: the weights are those of
    // the 40 returns up to bar 70's close.
    let returns: Vec<f64> = (31..=70)
        .flat_map(|k| feeds.iter().map(move |f| f.close[k] / f.close[k - 1] - 1.0))
        .collect();
    let want = hrp(&ledoit_wolf(&returns, 3).unwrap().covariance).unwrap().weights;
    // Equity moves a little between the three fills of one bar (the first
    // position is marked at the previous close), hence 1%.
    let equity = 100_000.0;
    for f in &r.fills {
        let committed = f.qty * f.price;
        let share = 0.9 * want[f.instrument] * equity;
        assert!(
            (committed / share - 1.0).abs() < 0.01,
            "{}: {committed} vs {share}",
            f.instrument
        );
    }
    assert!(want[0] > want[1] && want[1] > want[2], "calm > middle > wild: {want:?}");

    // Issue 21: an agent's explicit quantity is capped by its instrument's
    // budget too (a small one passes as asked), and the risk layer's
    // single-asset cap still applies after the budget.
    let sized = |units: f64| -> Vec<(usize, Order)> {
        (0..3)
            .map(|i| (70, Order::market(i, Action::BuyLong).units(units)))
            .collect()
    };
    let big = run(&refs, &mut Script { at: sized(1e9) }, &cfg);
    assert_eq!(big.fills.len(), 3);
    for f in &big.fills {
        let share = 0.9 * want[f.instrument] * equity;
        assert!(
            (f.qty * f.price / share - 1.0).abs() < 0.01,
            "{}: capped at the budget",
            f.instrument
        );
    }
    let small = run(&refs, &mut Script { at: sized(1.0) }, &cfg);
    assert!(small.fills.iter().all(|f| f.qty == 1.0));
    let mut capped = cfg.clone();
    capped.risk = RiskLimits {
        enabled: true,
        max_asset_fraction: 0.25,
        ..RiskLimits::off()
    };
    assert!(0.9 * want[0] > 0.25, "calm's budget is above the 25% cap: {want:?}");
    let after_cap = run(&refs, &mut Script { at: sized(1e9) }, &capped);
    for f in &after_cap.fills {
        let share = (0.9 * want[f.instrument]).min(0.25) * equity;
        assert!(
            (f.qty * f.price / share - 1.0).abs() < 0.01,
            "{}: {} vs {share}",
            f.instrument,
            f.qty * f.price
        );
    }
}

/// Issue 21: the engine one bar at a time gives the backtest's fills,
/// trades, risk events and equity exactly, on one instrument and on a
/// shared-cash portfolio, with the risk layer and fees on: the trading
/// loop's paper broker is the backtester.
#[test]
fn stepping_bar_by_bar_reproduces_the_backtest_exactly() {
    use tradelab_sim::engine::Stepper;
    let load = |stem: &str| {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../data/raw/{stem}.txt"));
        tradelab_data::load_file(&path, &tradelab_data::LoadOptions::default())
            .unwrap()
            .0
    };
    let feeds = [load("nvda-1999-2014"), load("orcl-1995-2014")];
    let cfg = EngineConfig::new(
        &BacktestSettings::default(),
        &RiskSettings::default(),
        &DataSettings::default(),
    );
    for n in [1, 2] {
        let refs: Vec<&BarSeries> = feeds[..n].iter().collect();
        let batch = run(&refs, &mut SmaCrossover::new(10, 30, true), &cfg);
        let mut strategy = SmaCrossover::new(10, 30, true);
        let mut stepper = Stepper::new(cfg.clone(), &refs, &mut strategy);
        // Merge the feeds by timestamp, as a live feed would deliver them.
        let mut events: Vec<(i64, usize, usize)> = (0..n)
            .flat_map(|i| {
                let feed = refs[i];
                (0..feed.len()).map(move |k| (feed.ts[k], i, k))
            })
            .collect();
        events.sort();
        for (j, &(ts, i, k)) in events.iter().enumerate() {
            stepper.on_bar(&mut strategy, i, refs[i].bar(k));
            if events.get(j + 1).is_none_or(|next| next.0 != ts) {
                stepper.end_timestamp(ts);
            }
        }
        let (ts, equity) = stepper.curve();
        assert_eq!(equity, &batch.equity[..], "{n} feed(s): equity");
        assert_eq!(ts, &batch.timestamps[..]);
        let account = stepper.broker().account();
        assert_eq!(account.fills, batch.fills, "{n} feed(s): fills");
        assert_eq!(account.trades, batch.trades);
        assert_eq!(stepper.broker().risk().events, &batch.risk_events[..]);
        assert!(
            batch.fills.len() > 10 && !batch.risk_events.is_empty(),
            "a test that trades and meets the risk layer"
        );
        let streamed = stepper.into_result(batch.strategy.clone(), &refs);
        assert_eq!(
            (streamed.final_equity, streamed.exposed_points, streamed.bars_processed),
            (batch.final_equity, batch.exposed_points, batch.bars_processed)
        );
        assert_eq!(streamed.open_positions, batch.open_positions);
    }
}
