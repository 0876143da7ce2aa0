//! Each circuit breaker, tripped by an injected fault: the breaker and the
//! event recorded, the position afterwards, and the recovery (half-open
//! after the cooldown, closed after the probation).

use std::time::Duration;

use tradelab_sim::engine::EngineConfig;
use tradelab_trade::*;

mod kit;

use kit::*;

/// Bar times of the first market (which has every timestamp).
fn ts() -> Vec<i64> {
    markets()[0].ts.clone()
}

/// The first tick at or after `from` at which the fault-free session sent
/// an order.
fn a_tick_with_orders(from: usize) -> usize {
    let (_, journal) = paper_run(quick_breakers(), EngineConfig::default());
    let ts = ts();
    (from..ts.len())
        .find(|&k| journal.orders.iter().any(|o| o.bar_ts == ts[k]))
        .expect("the strategy trades")
}

fn flattened(f: &Faulted) -> Vec<&str> {
    f.journal
        .orders
        .iter()
        .filter(|o| o.client_order_id.ends_with("-f") || o.client_order_id.ends_with("-g"))
        .map(|o| o.action.as_str())
        .collect()
}

#[test]
fn a_corrupt_bar_is_refused_and_holds_orders_until_the_breaker_recovers() {
    let k = a_tick_with_orders(100);
    let ts = ts();
    let f = faulty_run(
        quick_breakers(),
        EngineConfig::default(),
        0.0,
        Faults {
            feed: FeedFaults {
                corrupt_at: Some(k),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(f.outcome.as_ref().unwrap().end, SessionEnd::Finished);
    assert_eq!(
        f.breaker_log(),
        vec![
            (ts[k], "bad_bar".into(), "open".into()),
            (ts[k + 4], "bad_bar".into(), "half_open".into()),
            (ts[k + 7], "bad_bar".into(), "closed".into()),
        ]
    );
    let reason = f.journal.events.iter().find(|e| e.kind == "breaker").unwrap();
    assert!(
        reason.detail["reason"]
            .as_str()
            .unwrap()
            .contains("alpha bar refused: prices must be finite and positive"),
        "{reason:?}"
    );
    assert!(f.orders_between(ts[k], ts[k + 4]).is_empty(), "no orders while open");
    assert!(flattened(&f).is_empty(), "hold keeps the positions");
}

#[test]
fn a_stalled_feed_trips_the_stale_breaker_and_trading_resumes_after_the_cooldown() {
    let ts = ts();
    // A daily bar every 2 ms; stale after 3 of them; the feed goes quiet
    // for 300 ms before its 50th timestamp.
    let f = faulty_run(
        quick_breakers(),
        EngineConfig::default(),
        43_200_000.0,
        Faults {
            feed: FeedFaults {
                stall: Some((50, Duration::from_millis(300))),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(f.outcome.as_ref().unwrap().end, SessionEnd::Finished);
    let log = f.breaker_log();
    assert_eq!(log[0], (ts[49], "stale_feed".into(), "open".into()), "{:?}", f.events);
    assert_eq!(log[1], (ts[53], "stale_feed".into(), "half_open".into()));
    assert_eq!(log[2], (ts[56], "stale_feed".into(), "closed".into()));
    assert!(f.events[0].contains("no bar for"), "{}", f.events[0]);
}

#[test]
fn a_dropped_feed_is_reconnected_by_the_session() {
    let f = faulty_run(
        quick_breakers(),
        EngineConfig::default(),
        0.0,
        Faults {
            feed: FeedFaults {
                drop_at: Some(60),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(f.outcome.as_ref().unwrap().end, SessionEnd::Finished);
    assert!(
        f.events[0].starts_with("breaker stale_feed closed->open: the feed disconnected"),
        "{:?}",
        f.events
    );
    assert_eq!(f.events[1], "restart feed true: reconnected");
    let restart = f.journal.events.iter().find(|e| e.kind == "restart").unwrap();
    assert_eq!(restart.detail["component"], "feed");
}

#[test]
fn a_broker_that_keeps_rejecting_trips_its_breaker_and_the_flatten_policy_closes_everything() {
    let mut settings = quick_breakers();
    settings.policies.broker = BreakerPolicy::Flatten;
    let f = faulty_run(
        settings,
        EngineConfig::default(),
        0.0,
        Faults {
            broker: BrokerFaults {
                reject: 6..9,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(f.outcome.as_ref().unwrap().end, SessionEnd::Finished);
    assert!(
        f.events[0].starts_with("breaker broker closed->open: 3 orders refused in a row"),
        "{:?}",
        f.events
    );
    let rejected: Vec<_> = f.journal.orders.iter().filter(|o| o.status == "rejected").collect();
    assert_eq!(rejected.len(), 3);
    assert!(rejected[2]
        .detail
        .as_deref()
        .unwrap()
        .contains("insufficient buying power"));
    // Flattened: close orders went out, and the next timestamp ends flat.
    let closes = flattened(&f);
    assert!(
        !closes.is_empty() && closes.iter().all(|a| a.starts_with("CLOSE_")),
        "{closes:?}"
    );
    // The closes go out after the trip's timestamp and fill at each
    // instrument's next bar (gamma's may be a timestamp later).
    let trip_ts = rejected[2].bar_ts;
    let m = markets();
    let all_filled = m
        .iter()
        .map(|s| s.ts[s.ts.partition_point(|t| *t <= trip_ts)])
        .max()
        .unwrap();
    let after = f.broker.flat_at.iter().find(|(t, _)| *t == all_filled).unwrap();
    assert!(after.1, "flat once every instrument had its next bar");
}

#[test]
fn a_dropped_broker_connection_is_restored_with_the_breaker_open_meanwhile() {
    let f = faulty_run(
        quick_breakers(),
        EngineConfig::default(),
        0.0,
        Faults {
            broker: BrokerFaults {
                disconnect_at: Some(4),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(f.outcome.as_ref().unwrap().end, SessionEnd::Finished);
    assert!(f.events[0].starts_with("breaker broker closed->open: the connection to the broker dropped"));
    assert_eq!(f.events[1], "restart broker true: reconnected");
    assert_eq!(f.broker.reconnects, 1);
    assert!(f
        .events
        .iter()
        .any(|e| e == "breaker broker half_open->closed: cooldown or probation over"));
}

#[test]
fn a_failing_model_is_flattened_restarted_through_a_corrupt_file_and_trusted_again() {
    let f = faulty_run(
        quick_breakers(),
        EngineConfig::default(),
        0.0,
        Faults {
            model: ModelFaults {
                fail: 300..330,
                failed_restarts: 1,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(f.outcome.as_ref().unwrap().end, SessionEnd::Finished);
    assert!(f.events[0].starts_with("breaker model_errors closed->open: 3 failed decisions in a row; last: NaN"));
    assert!(
        f.events[1].starts_with("restart model false: model.safetensors"),
        "{:?}",
        f.events
    );
    assert_eq!(f.events[2], "restart model true: model reloaded");
    // With no backoff (quick_breakers), each failure after the threshold
    // restarts it: the first reload fails on the corrupt file, the rest work.
    assert_eq!(f.decider.restarts[..2], [false, true]);
    assert!(f.decider.restarts.len() <= 28 && f.decider.restarts[1..].iter().all(|ok| *ok));
    let closes = flattened(&f);
    assert!(
        !closes.is_empty(),
        "the always-in-the-market strategy held positions to close"
    );
    let log = f.breaker_log();
    let trip_ts = log[0].0;
    assert!(f.broker.flat_at.iter().find(|(t, _)| *t > trip_ts).unwrap().1);
    assert_eq!(
        log.iter().map(|(_, b, to)| format!("{b} {to}")).collect::<Vec<_>>(),
        vec!["model_errors open", "model_errors half_open", "model_errors closed"]
    );
}

#[test]
fn slow_decisions_trip_the_latency_breaker() {
    let mut settings = quick_breakers();
    settings.latency_budget_ms = 1.0;
    settings.latency_breaches = 3;
    let f = faulty_run(
        settings,
        EngineConfig::default(),
        0.0,
        Faults {
            model: ModelFaults {
                slow: 150..156,
                slow_by: Duration::from_millis(3),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let outcome = f.outcome.as_ref().unwrap();
    assert!(
        f.events[0].starts_with("breaker latency closed->open: 3 decisions in a row over the 1 ms budget"),
        "{:?}",
        f.events
    );
    assert!(
        outcome.latency_us.1 < 1000.0,
        "the rest stayed fast: {:?}",
        outcome.latency_us
    );
}

#[test]
fn the_drawdown_limit_halts_the_session_flat() {
    let mut cfg = EngineConfig::default();
    cfg.risk.max_drawdown = 0.01;
    let f = faulty_run(quick_breakers(), cfg, 0.0, Faults::default());
    let outcome = f.outcome.as_ref().unwrap();
    assert_eq!(outcome.end, SessionEnd::Halted);
    assert!(outcome.reason.starts_with("drawdown breaker"), "{}", outcome.reason);
    assert!(outcome.ticks < ts().len() as u64, "ended before the feed did");
    assert!(f.broker.flat_at.last().unwrap().1, "flat when it stopped");
    assert!(f.events[0].starts_with("breaker drawdown closed->open"));
}

#[test]
fn lost_bars_trip_the_data_gap_breaker() {
    let ts = ts();
    let f = faulty_run(
        quick_breakers(),
        EngineConfig::default(),
        0.0,
        Faults {
            feed: FeedFaults {
                lose: Some((1, 200..210)),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(f.breaker_log()[0], (ts[210], "data_gap".into(), "open".into()));
    assert!(
        f.events[0].contains("beta: 11.0 timeframes since its previous bar"),
        "{:?}",
        f.events
    );
}
