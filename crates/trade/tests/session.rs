//! Trading sessions on the paper broker: equal to a backtest, resumed after
//! a crash without sending an order twice, and each circuit breaker tripped
//! by an injected fault (a corrupt bar, a stalled or dropped feed, a broker
//! that rejects or disconnects, a failing or slow model, the drawdown
//! limit), with the event recorded, the position afterwards and the
//! recovery checked.

use tradelab_core::BarSeries;
use tradelab_sim::engine::{run, EngineConfig};
use tradelab_sim::sizing::Sizing;
use tradelab_trade::journal::{Journal, JournalError, MemoryJournal};
use tradelab_trade::*;

mod kit;

use kit::*;

#[test]
fn a_paper_session_trades_as_the_backtest_fill_for_fill() {
    let m = markets();
    let feeds: Vec<&BarSeries> = m.iter().collect();
    for cfg in [
        EngineConfig::default(),
        EngineConfig {
            sizing: Sizing::RiskParity {
                fraction: 0.6,
                window: 40,
                rebalance: 10,
            },
            ..EngineConfig::default()
        },
    ] {
        let backtest = run(&feeds, &mut strategy(), &cfg);
        let (ran, journal) = paper_run(TradeSettings::default(), cfg.clone());
        let outcome = ran.outcome.unwrap();
        assert_eq!(outcome.end, SessionEnd::Finished);
        assert!(
            backtest.fills.len() > 20,
            "the strategy trades: {}",
            backtest.fills.len()
        );
        same_trading(&ran.result, &backtest);
        // Every order went out once, under its own id, and was written.
        assert_eq!(journal.orders.len() as u64, outcome.orders_sent);
        assert!(ran.events.is_empty(), "no breaker tripped: {:?}", ran.events);
        assert_eq!(journal.checkpoints as u64, outcome.ticks + 1);
        // The status carries the correlations and volatility contributions.
        let risk = outcome.checkpoint.risk.as_ref().expect("computed");
        assert_eq!((risk.returns, risk.correlation.len()), (60, 3));
        let sum: f64 = risk.contributions.iter().sum();
        assert!(
            (sum - risk.volatility).abs() < 1e-12 && risk.volatility > 0.0,
            "{risk:?}"
        );
        assert!(risk.correlation[0][1].abs() < 1.0 && risk.correlation[2][2] > 0.999);
        assert_eq!(outcome.checkpoint.initial_equity, cfg.initial_cash);
        assert!(outcome.latency_us.1 < 50_000.0);
    }
}

/// A journal that fails after `checkpoints` checkpoints, as a process
/// killed between two of them: what was written stays.
struct Crashing {
    inner: MemoryJournal,
    crash_after: usize,
}

impl Journal for Crashing {
    fn intend(&mut self, o: &tradelab_store::trading::TradingOrderRecord) -> Result<bool, JournalError> {
        self.inner.intend(o)
    }
    fn order_status(&mut self, id: &str, status: &str, detail: Option<&str>) -> Result<(), JournalError> {
        self.inner.order_status(id, status, detail)
    }
    fn event(&mut self, e: tradelab_store::trading::TradingEventRecord) {
        self.inner.event(e)
    }
    fn checkpoint(&mut self, state: &serde_json::Value) -> Result<(), JournalError> {
        if self.inner.checkpoints >= self.crash_after {
            return Err(JournalError("killed".into()));
        }
        self.inner.checkpoint(state)
    }
}

fn checkpoint_of(j: &MemoryJournal) -> Option<Checkpoint> {
    j.state.clone().map(|v| serde_json::from_value(v).unwrap())
}

#[test]
fn a_crashed_paper_session_resumes_from_its_journal_and_ends_as_if_never_stopped() {
    let m = markets();
    let feeds: Vec<&BarSeries> = m.iter().collect();
    let cfg = EngineConfig::default();
    let backtest = run(&feeds, &mut strategy(), &cfg);
    // Checkpoints every 7 timestamps: the crash loses up to 6 processed
    // timestamps, whose orders are written but not in any checkpoint.
    let settings = TradeSettings {
        checkpoint_every: 7,
        ..TradeSettings::default()
    };
    let mut journal = Crashing {
        inner: MemoryJournal::default(),
        crash_after: 20,
    };
    {
        let mut feed = ReplayFeed::new(feeds.clone(), &[0, 0, 0], 0.0);
        let mut broker = PaperBroker::new("test", cfg.clone(), &feeds);
        let mut decider = StrategyDecider::new(strategy());
        decider.start(&feeds);
        let (outcome, _) = run_session(
            spec("s", settings.clone()),
            &mut feed,
            &mut broker,
            &mut decider,
            &mut journal,
            None,
        );
        assert!(matches!(outcome, Err(SessionError::Journal(_))));
    }
    let cp = checkpoint_of(&journal.inner).expect("checkpointed before the crash");
    let written_before = journal.inner.orders.len();
    assert!(
        journal.inner.orders.iter().any(|o| o.bar_ts > cp.ts),
        "orders written after the last checkpoint, to be decided again"
    );
    // A new process: a fresh paper broker, rebuilt from the journal.
    journal.crash_after = usize::MAX;
    let recorded = journal.inner.orders.clone();
    let mut broker = PaperBroker::new("test", cfg.clone(), &feeds);
    let mut decider = StrategyDecider::new(strategy());
    decider.start(&feeds);
    // Paced (if far faster than real time): catching up is not.
    let mut feed = ReplayFeed::new(feeds.clone(), &[0, 0, 0], 8.64e10);
    let mut paced = spec("s", settings);
    paced.speed = 8.64e10;
    let (outcome, events) = run_session(
        paced,
        &mut feed,
        &mut broker,
        &mut decider,
        &mut journal,
        Some((Some(&cp), &recorded)),
    );
    assert_eq!(outcome.unwrap().end, SessionEnd::Finished);
    assert_eq!(events, vec!["reconciled 0"]);
    same_trading(&broker.into_result("sma".into(), &feeds), &backtest);
    // The journal holds each order once: as many as the uninterrupted run.
    let (_, whole) = paper_run(TradeSettings::default(), cfg);
    let ids = |j: &MemoryJournal| j.orders.iter().map(|o| o.client_order_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&journal.inner), ids(&whole));
    assert!(journal.inner.orders.len() > written_before);
}

/// A breaker's flatten during a timestamp (the model fails at the first
/// instrument's bar while the others hold positions) goes out after the
/// timestamp's bars, and a session resumed after a later crash rebuilds its
/// fills at the same bars: it ends exactly as the uninterrupted run.
#[test]
fn a_flatten_during_a_timestamp_is_rebuilt_at_the_same_bars_after_a_crash() {
    let m = markets();
    let feeds: Vec<&BarSeries> = m.iter().collect();
    let cfg = EngineConfig::default();
    // Decision 286 is alpha's at timestamp 100 (gamma misses every 7th).
    let faults = ModelFaults {
        fail: 286..287,
        ..ModelFaults::default()
    };
    let settings = TradeSettings {
        model_errors: 1,
        checkpoint_every: 7,
        ..quick_breakers()
    };
    let session = |journal: &mut dyn Journal, resume: Option<(Option<&Checkpoint>, &[_])>| {
        let mut feed = ReplayFeed::new(feeds.clone(), &[0, 0, 0], 0.0);
        let mut broker = PaperBroker::new("test", cfg.clone(), &feeds);
        let mut decider = FlakyDecider::new(&feeds, faults.clone());
        let (outcome, events) = run_session(
            spec("s", settings.clone()),
            &mut feed,
            &mut broker,
            &mut decider,
            journal,
            resume,
        );
        (outcome, events, broker.into_result("sma".into(), &feeds))
    };
    let mut whole = MemoryJournal::default();
    let (outcome, events, uninterrupted) = session(&mut whole, None);
    assert_eq!(outcome.unwrap().end, SessionEnd::Finished);
    assert!(events[0].starts_with("breaker model_errors closed->open"), "{events:?}");
    let flattens: Vec<_> = whole
        .orders
        .iter()
        .filter(|o| o.client_order_id.ends_with("-f"))
        .collect();
    let at = m[0].ts[100];
    assert!(
        flattens.len() >= 2 && flattens.iter().all(|o| o.bar_ts == at),
        "every held position closed at that timestamp: {flattens:?}"
    );
    // Each closed at its instrument's next bar's open, not at its own
    // timestamp's (decided at alpha's bar, it must not fill at another
    // instrument's open of that timestamp).
    for o in &flattens {
        let i = ["alpha", "beta", "gamma"]
            .iter()
            .position(|s| *s == o.instrument)
            .unwrap();
        let next = m[i].ts[m[i].ts.partition_point(|t| *t <= at)];
        let closed = uninterrupted
            .fills
            .iter()
            .any(|f| f.instrument == i && f.ts == next && f.action.as_str() == o.action);
        assert!(closed, "{} closed at its bar after {at}", o.instrument);
    }

    // Killed at the 20th checkpoint (timestamp 140), after the flatten.
    let mut journal = Crashing {
        inner: MemoryJournal::default(),
        crash_after: 20,
    };
    let (outcome, _, _) = session(&mut journal, None);
    assert!(matches!(outcome, Err(SessionError::Journal(_))));
    let cp = checkpoint_of(&journal.inner).unwrap();
    assert!(cp.ts > at);
    journal.crash_after = usize::MAX;
    let recorded = journal.inner.orders.clone();
    let (outcome, _, resumed) = session(&mut journal, Some((Some(&cp), &recorded)));
    assert_eq!(outcome.unwrap().end, SessionEnd::Finished);
    same_trading(&resumed, &uninterrupted);
}

#[test]
fn a_restarted_session_never_sends_an_order_its_broker_already_has() {
    let m = markets();
    let feeds: Vec<&BarSeries> = m.iter().collect();
    let cfg = EngineConfig::default();
    let settings = TradeSettings {
        checkpoint_every: 9,
        ..TradeSettings::default()
    };
    let mut broker = FlakyBroker::new(cfg.clone(), &feeds, BrokerFaults::default());
    broker.outlives = true;
    let mut journal = Crashing {
        inner: MemoryJournal::default(),
        crash_after: 15,
    };
    let mut feed = ReplayFeed::new(feeds.clone(), &[0, 0, 0], 0.0);
    let mut decider = StrategyDecider::new(strategy());
    decider.start(&feeds);
    let (outcome, _) = run_session(
        spec("s", settings.clone()),
        &mut feed,
        &mut broker,
        &mut decider,
        &mut journal,
        None,
    );
    assert!(outcome.is_err());
    let cp = checkpoint_of(&journal.inner).unwrap();
    // The broker kept its state (and its market went on); the new
    // session replays the feed from the start to rebuild its decider.
    journal.crash_after = usize::MAX;
    let recorded = journal.inner.orders.clone();
    assert!(recorded.iter().any(|o| o.bar_ts > cp.ts), "orders to decide again");
    let mut feed = ReplayFeed::new(feeds.clone(), &[0, 0, 0], 0.0);
    let mut decider = StrategyDecider::new(strategy());
    decider.start(&feeds);
    let (outcome, _) = run_session(
        spec("s", settings),
        &mut feed,
        &mut broker,
        &mut decider,
        &mut journal,
        Some((Some(&cp), &recorded)),
    );
    outcome.unwrap();
    assert!(!broker.submissions.is_empty());
    let twice: Vec<_> = broker.submissions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    assert_eq!(broker.submissions.len(), journal.inner.orders.len());
}
