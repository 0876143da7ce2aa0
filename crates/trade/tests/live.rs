//! Alpaca's live bar stream as a session's feed, against local fakes of
//! its websocket and its historical-bars API: the bars a session gets
//! equal a replay's of the same bars, across a dropped stream (the gap read
//! back from the history); a live session through the paper broker trades
//! as the replay does; refused credentials, a second connection, an
//! unreachable stream, paged and rate-limited history.

use std::time::Duration;

use serde_json::Value;
use tradelab_core::{Bar, BarSeries};
use tradelab_sim::engine::EngineConfig;
use tradelab_trade::alpaca::{AlpacaFeed, AlpacaMarketData, StreamConfig};
use tradelab_trade::journal::MemoryJournal;
use tradelab_trade::*;

mod kit;

use kit::fake_alpaca::FakeAlpaca;
use kit::fake_alpaca_stream::{FakeStream, Step};
use kit::*;

const SYMBOLS: [&str; 3] = ["alpha", "beta", "gamma"];

/// "Now" for the feed: after every scripted bar, so each one is complete.
fn after_the_bars() -> i64 {
    OPEN + 10_000 * MINUTE
}

/// Each timestamp's bars, in time order, as `(ts, [(instrument, bar)])`.
fn by_timestamp(markets: &[BarSeries]) -> Vec<(i64, Vec<(usize, Bar)>)> {
    let refs: Vec<&BarSeries> = markets.iter().collect();
    let mut feed = ReplayFeed::new(refs, &[0, 0, 0], 0.0);
    let mut out = Vec::new();
    let mut all = Vec::new();
    while let FeedStatus::Tick(ts) = feed.next(Duration::ZERO, &mut out).unwrap() {
        all.push((ts, out.clone()));
    }
    all
}

/// One stream message per timestamp in `range` (indices into `ticks`).
fn stream_steps(ticks: &[(i64, Vec<(usize, Bar)>)], range: std::ops::Range<usize>) -> Vec<Step> {
    ticks[range]
        .iter()
        .map(|(_, bars)| {
            Step::Send(Value::Array(
                bars.iter().map(|(i, b)| alpaca_bar(SYMBOLS[*i], b)).collect(),
            ))
        })
        .collect()
}

/// The bars of `ticks[range]` as history entries.
fn history(ticks: &[(i64, Vec<(usize, Bar)>)], range: std::ops::Range<usize>) -> Vec<(String, Value)> {
    ticks[range]
        .iter()
        .flat_map(|(_, bars)| {
            bars.iter()
                .map(|(i, b)| (SYMBOLS[*i].to_string(), alpaca_bar(SYMBOLS[*i], b)))
        })
        .collect()
}

fn fakes(script: Vec<Step>, past: Vec<(String, Value)>) -> (FakeAlpaca, FakeStream) {
    let rest = FakeAlpaca::start("key", "secret", 100_000.0, &[]);
    for (symbol, bar) in past {
        rest.state().bars.entry(symbol).or_default().push(bar);
    }
    let stream = FakeStream::start(rest.state.clone(), script);
    (rest, stream)
}

fn config(stream: &FakeStream, secret: &str) -> StreamConfig {
    StreamConfig {
        url: stream.url.clone(),
        key_id: "key".into(),
        secret: secret.into(),
        symbols: SYMBOLS.iter().map(|s| s.to_string()).collect(),
        timeframe_ms: MINUTE,
        grace: Duration::ZERO,
        clock_url: None,
        clock_every: Duration::from_millis(10),
    }
}

fn connect(rest: &FakeAlpaca, stream: &FakeStream, from: i64) -> Result<AlpacaFeed, FeedError> {
    let data = AlpacaMarketData::new(&rest.url, "key".into(), "secret".into(), "iex")
        .with_rate_limit_wait(Duration::from_millis(1));
    AlpacaFeed::connect_with_clock(config(stream, "secret"), data, from, after_the_bars)
}

/// The rule strategy trading `feed` (ended after its bar at `last`) into a
/// fresh paper account over `refs`, at `speed` times real time.
fn live_session(
    feed: AlpacaFeed,
    refs: &[&BarSeries],
    last: i64,
    speed: f64,
    settings: TradeSettings,
) -> (Result<SessionOutcome, SessionError>, Vec<String>) {
    let mut feed = EndsAfter {
        inner: feed,
        last,
        done: false,
    };
    let mut broker = PaperBroker::new("test", EngineConfig::default(), refs);
    let mut decider = StrategyDecider::new(strategy());
    decider.start(refs);
    let mut journal = MemoryJournal::default();
    let spec = SessionSpec {
        timeframe_ms: MINUTE,
        speed,
        ..kit::spec("s", settings)
    };
    run_session(spec, &mut feed, &mut broker, &mut decider, &mut journal, None)
}

#[test]
fn the_stream_hands_over_what_a_replay_does_and_a_dropped_stream_leaves_no_gap() {
    let ticks = by_timestamp(&minute_markets());
    let n = ticks.len();
    // History up to 100, the stream to 150 (the history keeps up with it);
    // bars 150..200 happen while it is down, then it streams the rest.
    // Each connection streams once the client read its history (3 symbols).
    let mut script = vec![Step::AwaitHistoryRequests(3)];
    script.extend(stream_steps(&ticks, 100..150));
    script.push(Step::Publish(history(&ticks, 100..200)));
    script.push(Step::Drop);
    script.push(Step::AwaitHistoryRequests(6));
    script.extend(stream_steps(&ticks, 200..n));
    let (rest, stream) = fakes(script, history(&ticks, 0..100));
    let mut feed = connect(&rest, &stream, ticks[0].0).unwrap();
    let (mut got, mut out, mut reconnects, mut waits) = (Vec::new(), Vec::new(), 0, 0);
    while got.len() < n && waits < 100 {
        match feed.next(Duration::from_millis(100), &mut out) {
            Ok(FeedStatus::Tick(ts)) => got.push((ts, out.clone())),
            Ok(FeedStatus::Waiting) => waits += 1,
            Ok(FeedStatus::Ended) => panic!("a live feed does not end"),
            Err(FeedError::Disconnected(_)) => {
                reconnects += 1;
                feed.reconnect().unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(reconnects, 1);
    assert_eq!(got.len(), n, "every timestamp, once");
    assert_eq!(got, ticks, "the same bars at the same timestamps as the replay");
    assert_eq!(feed.late_bars(), 0);
    let s = stream.state();
    assert_eq!(
        (s.connections, s.subscribed.clone()),
        (2, SYMBOLS.map(String::from).to_vec())
    );
    // The history was read from the session's first bar, then from the
    // first bar after the drop.
    let log = rest.state().log.join("\n");
    assert!(
        log.contains("/v2/stocks/alpha/bars?timeframe=1Min&start=2024-01-02T14:30:00Z"),
        "{log}"
    );
    let resumed = format!("start={}Z", tradelab_core::time::format_datetime(ticks[150].0));
    assert!(log.contains(&resumed), "{log}");
}

#[test]
fn a_live_session_through_the_paper_broker_trades_as_the_replay_does() {
    let markets = minute_markets();
    let refs: Vec<&BarSeries> = markets.iter().collect();
    let ticks = by_timestamp(&markets);
    let spec = |id: &str| SessionSpec {
        timeframe_ms: MINUTE,
        speed: 1.0,
        ..kit::spec(id, TradeSettings::default())
    };
    let run = |feed: &mut dyn Feed| {
        let mut broker = PaperBroker::new("test", EngineConfig::default(), &refs);
        let mut decider = StrategyDecider::new(strategy());
        decider.start(&refs);
        let mut journal = MemoryJournal::default();
        let (outcome, events) = run_session(spec("s"), feed, &mut broker, &mut decider, &mut journal, None);
        let outcome = outcome.unwrap();
        assert_eq!(outcome.end, SessionEnd::Finished, "{events:?}");
        assert!(events.is_empty(), "no breaker, no restart: {events:?}");
        broker.into_result("sma".into(), &refs)
    };
    let replayed = run(&mut ReplayFeed::new(refs.clone(), &[0, 0, 0], 0.0));
    let (rest, stream) = fakes(stream_steps(&ticks, 40..ticks.len()), history(&ticks, 0..40));
    let live = connect(&rest, &stream, ticks[0].0).unwrap();
    let mut live = EndsAfter {
        inner: live,
        last: ticks.last().unwrap().0,
        done: false,
    };
    let streamed = run(&mut live);
    assert!(replayed.fills.len() > 4, "the strategy trades");
    same_trading(&replayed, &streamed);
}

#[test]
fn refused_credentials_a_second_connection_and_an_unreachable_stream_are_named() {
    let (rest, stream) = fakes(Vec::new(), Vec::new());
    let data = || AlpacaMarketData::new(&rest.url, "key".into(), "secret".into(), "iex");
    let e = AlpacaFeed::connect_with_clock(config(&stream, "wrong"), data(), OPEN, after_the_bars)
        .err()
        .unwrap();
    assert!(
        matches!(&e, FeedError::Refused(m) if m.contains("APCA_API_KEY_ID") && m.contains("402")),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong"), "the secret stays out of errors: {e}");
    let _first = connect(&rest, &stream, after_the_bars()).unwrap();
    let e = connect(&rest, &stream, after_the_bars()).err().unwrap();
    assert!(
        matches!(&e, FeedError::Refused(m) if m.contains("one connection per account")),
        "{e}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/v2/iex", closed.local_addr().unwrap());
    drop(closed);
    let cfg = StreamConfig {
        url,
        ..config(&stream, "secret")
    };
    let e = AlpacaFeed::connect_with_clock(cfg, data(), OPEN, after_the_bars)
        .err()
        .unwrap();
    assert!(e.to_string().contains("cannot be reached"), "{e}");
}

#[test]
fn the_history_is_read_page_by_page_through_rate_limits_and_refused_keys_are_named() {
    let markets = minute_markets();
    let (rest, _stream) = fakes(Vec::new(), Vec::new());
    for k in 0..markets[0].len() {
        let b = markets[0].bar(k);
        rest.state()
            .bars
            .entry("alpha".into())
            .or_default()
            .push(alpaca_bar("alpha", &b));
    }
    {
        let mut s = rest.state();
        s.page_size = 50;
        s.bars_rate_limit_next = 2;
    }
    let data = AlpacaMarketData::new(&rest.url, "key".into(), "secret".into(), "iex")
        .with_rate_limit_wait(Duration::from_millis(1));
    let all = data.bars("alpha", MINUTE, OPEN, after_the_bars()).unwrap();
    assert_eq!(all.len(), markets[0].len());
    assert!(all.iter().enumerate().all(|(k, b)| *b == markets[0].bar(k)));
    let pages = rest.state().log.iter().filter(|l| l.contains("/bars?")).count();
    assert_eq!(pages, 2 + markets[0].len().div_ceil(50), "two 429s, then every page");
    // The newest 70 before a time, oldest first.
    let end = markets[0].ts[200];
    let last = data.last_bars("alpha", MINUTE, 70, OPEN, end).unwrap();
    assert_eq!(last.len(), 70);
    assert_eq!((last[0].ts, last[69].ts), (markets[0].ts[130], markets[0].ts[199]));
    let refused = AlpacaMarketData::new(&rest.url, "key".into(), "nope".into(), "iex");
    let e = refused.bars("alpha", MINUTE, OPEN, after_the_bars()).unwrap_err();
    assert!(
        matches!(&e, FeedError::Refused(m) if m.contains("APCA_API_SECRET_KEY")),
        "{e}"
    );
}

#[test]
fn a_session_reconnects_a_dropped_stream_and_misses_no_bar() {
    let markets = minute_markets();
    let refs: Vec<&BarSeries> = markets.iter().collect();
    let ticks = by_timestamp(&markets);
    let n = ticks.len();
    let mut script = vec![Step::AwaitHistoryRequests(3)];
    script.extend(stream_steps(&ticks, 40..120));
    script.push(Step::Publish(history(&ticks, 40..160)));
    script.push(Step::Drop);
    script.push(Step::AwaitHistoryRequests(6));
    script.extend(stream_steps(&ticks, 160..n));
    let (rest, stream) = fakes(script, history(&ticks, 0..40));
    let feed = connect(&rest, &stream, ticks[0].0).unwrap();
    let (outcome, events) = live_session(feed, &refs, ticks[n - 1].0, 1.0, quick_breakers());
    let outcome = outcome.unwrap();
    assert_eq!(outcome.end, SessionEnd::Finished);
    assert_eq!(
        outcome.ticks as usize, n,
        "every bar, the ones missed while down included"
    );
    assert!(
        events.iter().any(|e| e.starts_with("breaker stale_feed closed->open")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "restart feed true: reconnected"),
        "{events:?}"
    );
    assert_eq!(stream.state().connections, 2);
}

/// Overnight: the clock says the market is closed while the stream is
/// quiet, so the quiet is no stale feed and the gap to the morning's bars no
/// data gap. Without the clock both breakers trip (the control). The night
/// is 3 s, three times the stale limit at this speed.
#[test]
fn a_closed_market_is_neither_a_stale_feed_nor_a_data_gap() {
    // The markets' bars from timestamp 100 on come 1,000 minutes later.
    let day = minute_markets();
    let cut = by_timestamp(&day)[100].0;
    let night: Vec<BarSeries> = day
        .iter()
        .map(|s| {
            let mut m = BarSeries::new(s.instrument.clone());
            m.timeframe = s.timeframe;
            for k in 0..s.len() {
                let b = s.bar(k);
                let ts = if b.ts >= cut { b.ts + 1_000 * MINUTE } else { b.ts };
                m.push(Bar { ts, ..b });
            }
            m
        })
        .collect();
    let refs: Vec<&BarSeries> = night.iter().collect();
    let ticks = by_timestamp(&night);
    let n = ticks.len();
    let run = |with_clock: bool| {
        let mut script = vec![Step::AwaitHistoryRequests(3)];
        script.extend(stream_steps(&ticks, 40..100));
        script.push(Step::SetMarketOpen(false));
        script.push(Step::Pause(Duration::from_secs(3)));
        script.push(Step::SetMarketOpen(true));
        script.extend(stream_steps(&ticks, 100..n));
        let (rest, stream) = fakes(script, history(&ticks, 0..40));
        let data = AlpacaMarketData::new(&rest.url, "key".into(), "secret".into(), "iex");
        let cfg = StreamConfig {
            clock_url: with_clock.then(|| rest.url.clone()),
            ..config(&stream, "secret")
        };
        let live = AlpacaFeed::connect_with_clock(cfg, data, ticks[0].0, after_the_bars).unwrap();
        // A minute bar is stale after 3 minutes; at 180x real time, 1 s
        // (a loaded machine's pauses between bars stay well under it).
        let (outcome, events) = live_session(live, &refs, ticks[n - 1].0, 180.0, quick_breakers());
        assert_eq!(outcome.unwrap().ticks as usize, n);
        events
    };
    let events = run(true);
    assert!(events.is_empty(), "no breaker overnight: {events:?}");
    let events = run(false);
    assert!(
        events.iter().any(|e| e.starts_with("breaker stale_feed closed->open")),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.starts_with("breaker data_gap")), "{events:?}");
}
