//! The Alpaca broker against a local fake of Alpaca's trading API v2:
//! orders under the session's client ids, fills read back, positions
//! reconciled, the documented error answers (rate limits, rejections, a
//! dropped connection, refused credentials) and an unreachable broker.

use tradelab_sim::order::OrderQty;
use tradelab_sim::strategies::SmaCrossover;
use tradelab_sim::strategy::BarContext;
use tradelab_trade::alpaca::{credentials, AlpacaBroker, KEY_ID_ENV};
use tradelab_trade::journal::MemoryJournal;
use tradelab_trade::*;

mod kit;

use kit::fake_alpaca::FakeAlpaca;
use kit::*;

/// The rule strategy with ten units an entry (Alpaca takes explicit
/// quantities, as the agents give them).
struct TenUnits(StrategyDecider<SmaCrossover>);

impl Decider for TenUnits {
    fn name(&self) -> String {
        self.0.name()
    }
    fn start(&mut self, feeds: &[&tradelab_core::BarSeries]) {
        self.0.start(feeds)
    }
    fn decide(&mut self, ctx: &mut BarContext<'_>) -> Result<(), String> {
        self.0.decide(ctx)?;
        for o in ctx.orders.iter_mut() {
            if o.qty == OrderQty::Sized {
                o.qty = OrderQty::Units(10.0);
            }
        }
        Ok(())
    }
    fn decisions(&self) -> u64 {
        self.0.decisions()
    }
}

const PRICES: [(&str, f64); 3] = [("alpha", 100.0), ("beta", 50.0), ("gamma", 80.0)];

fn symbols() -> Vec<String> {
    PRICES.iter().map(|(s, _)| s.to_string()).collect()
}

/// A session of the three markets through `broker`.
fn alpaca_session(broker: &mut AlpacaBroker, settings: TradeSettings) -> (SessionOutcome, Vec<String>, MemoryJournal) {
    let m = markets();
    let feeds: Vec<&tradelab_core::BarSeries> = m.iter().collect();
    let mut feed = ReplayFeed::new(feeds.clone(), &[0, 0, 0], 0.0);
    let mut decider = TenUnits(StrategyDecider::new(strategy()));
    decider.start(&feeds);
    let mut journal = MemoryJournal::default();
    let (outcome, events) = run_session(spec("a", settings), &mut feed, broker, &mut decider, &mut journal, None);
    (outcome.unwrap(), events, journal)
}

#[test]
fn a_session_trades_through_alpacas_api_and_rides_out_a_rate_limit() {
    let fake = FakeAlpaca::start("KEY1", "s3cr3t-value", 100_000.0, &PRICES);
    fake.state().rate_limit_next = 1;
    let mut broker = AlpacaBroker::connect_with(&fake.url, &symbols(), "KEY1".into(), "s3cr3t-value".into()).unwrap();
    assert_eq!(broker.account_id(), "alpaca:KEY1");
    let (outcome, events, journal) = alpaca_session(&mut broker, quick_breakers());
    assert_eq!(outcome.end, SessionEnd::Finished);
    assert!(events.is_empty(), "the 429 was retried, nothing tripped: {events:?}");
    let fake_orders: Vec<String> = fake
        .state()
        .orders
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap().to_string())
        .collect();
    assert!(fake_orders.len() > 10, "it traded: {}", fake_orders.len());
    // Every order Alpaca has is one the session wrote first, under its id.
    for id in &fake_orders {
        let base = id.trim_end_matches("-x");
        assert!(journal.orders.iter().any(|o| o.client_order_id == base), "{id}");
    }
    assert!(journal.orders.iter().all(|o| o.status == "submitted"));
    // The fills came back as events, and the mirror agrees with Alpaca.
    let fills = journal.events.iter().filter(|e| e.kind == "fill").count();
    assert_eq!(fills, fake.state().activities.len());
    let held = broker.positions().unwrap();
    for (i, (symbol, _)) in PRICES.iter().enumerate() {
        let at_fake = fake.state().positions.get(*symbol).copied().unwrap_or(0.0);
        assert_eq!(held[i], at_fake, "{symbol}");
        assert_eq!(broker.view(i).position, at_fake, "{symbol}: the mirror");
    }
    let (cash, _) = broker.balances().unwrap();
    assert_eq!(cash, fake.state().cash);
    // The keys went in headers, never into what the session recorded.
    assert!(fake
        .state()
        .headers
        .iter()
        .any(|h| h == "apca-api-secret-key: s3cr3t-value"));
    let recorded = format!("{:?}{:?}", journal.events, journal.orders);
    assert!(!recorded.contains("s3cr3t"));
}

#[test]
fn rejections_and_a_dropped_connection_trip_the_broker_breaker_and_it_reconnects() {
    let fake = FakeAlpaca::start("KEY1", "pw", 100_000.0, &PRICES);
    {
        let mut s = fake.state();
        s.reject_next = 3;
        s.drop_next = 1;
    }
    let mut broker = AlpacaBroker::connect_with(&fake.url, &symbols(), "KEY1".into(), "pw".into()).unwrap();
    let (outcome, events, journal) = alpaca_session(&mut broker, quick_breakers());
    assert_eq!(outcome.end, SessionEnd::Finished);
    // The fake drops the first order's connection, then refuses three.
    assert!(
        events[0].starts_with("breaker broker closed->open: the connection to the broker dropped: POST /v2/orders"),
        "{events:?}"
    );
    assert_eq!(events[1], "restart broker true: reconnected");
    assert!(
        events.iter().any(
            |e| e.starts_with("breaker broker closed->open: 3 orders refused in a row")
                && e.contains("insufficient buying power")
        ),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "restart broker true: reconnected"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("breaker broker half_open->closed")),
        "{events:?}"
    );
    let rejected = journal.orders.iter().filter(|o| o.status == "rejected").count();
    assert_eq!(rejected, 3);
    // The order whose connection dropped was asked about after the
    // reconnect: it never arrived.
    let dropped: Vec<_> = journal.orders.iter().filter(|o| o.status == "not_sent").collect();
    assert_eq!(dropped.len(), 1, "{:?}", journal.orders);
    assert_eq!(broker.order_state(&dropped[0].client_order_id).unwrap(), None);
    assert!(journal
        .events
        .iter()
        .any(|e| e.kind == "order_confirmed" && e.detail["status"] == "not_sent"));
}

#[test]
fn an_order_sent_twice_under_one_id_is_one_order_at_alpaca() {
    let fake = FakeAlpaca::start("KEY1", "pw", 100_000.0, &PRICES);
    let mut broker = AlpacaBroker::connect_with(&fake.url, &symbols(), "KEY1".into(), "pw".into()).unwrap();
    let order = tradelab_sim::order::Order::market(1, tradelab_core::Action::BuyLong).units(4.0);
    assert_eq!(broker.order_state("s-1-5-0").unwrap(), None);
    assert_eq!(broker.submit("s-1-5-0", order).unwrap(), OrderState::Accepted);
    assert_eq!(broker.submit("s-1-5-0", order).unwrap(), OrderState::Accepted);
    assert_eq!(fake.state().orders.len(), 1);
    assert_eq!(fake.state().positions["beta"], 4.0);
    assert_eq!(broker.order_state("s-1-5-0").unwrap(), Some(OrderState::Accepted));
}

#[test]
fn bad_credentials_missing_keys_and_an_unreachable_broker_are_refused_before_trading() {
    let fake = FakeAlpaca::start("KEY1", "right", 100_000.0, &PRICES);
    let refused = AlpacaBroker::connect_with(&fake.url, &symbols(), "KEY1".into(), "wrong-secret".into())
        .err()
        .unwrap();
    assert!(matches!(refused, BrokerError::Credentials(_)), "{refused}");
    let text = refused.to_string();
    assert!(
        text.contains("request is not authorized") && text.contains(KEY_ID_ENV),
        "{text}"
    );
    assert!(!text.contains("wrong-secret"));
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable =
        AlpacaBroker::connect_with(&format!("http://127.0.0.1:{port}"), &symbols(), "K".into(), "S".into())
            .err()
            .unwrap();
    assert!(matches!(unreachable, BrokerError::Unreachable(_)), "{unreachable}");
    assert!(unreachable.to_string().contains("cannot be reached"));
    let missing = credentials(|name| (name == KEY_ID_ENV).then(|| "K".to_string())).unwrap_err();
    assert!(
        missing.to_string().contains("APCA_API_SECRET_KEY is not set"),
        "{missing}"
    );
    assert!(credentials(|_| Some("  ".into())).is_err(), "blank is missing");
}
