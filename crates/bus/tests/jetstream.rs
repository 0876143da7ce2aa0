//! The JetStream path against the machine's NATS server (`.ci/run` sets
//! TRADELAB_TEST_NATS_URL once the server answers; skipped without it).
//! The publisher reaches the server through a proxy the test can cut, as a
//! network failure would.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tradelab_bus::event::{EventBody, FillEvent};
use tradelab_bus::jetstream::{JetStream, JetStreamConsumer, JetStreamOptions};
use tradelab_bus::publisher::PublisherOptions;
use tradelab_bus::{verify, ChainHead, Event, Publisher, Spool, Transport};

fn nats_url() -> Option<String> {
    let url = std::env::var("TRADELAB_TEST_NATS_URL").ok();
    if url.is_none() {
        eprintln!("TRADELAB_TEST_NATS_URL is not set: the JetStream tests are skipped");
    }
    url
}

/// A TCP proxy to the server whose connections can be cut and refused.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        let target = target.trim_start_matches("nats://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (Arc::clone(&up), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                open2.lock().unwrap().push(client.try_clone().unwrap());
                open2.lock().unwrap().push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, up, open }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Cuts every connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn fill(n: u64) -> EventBody {
    EventBody::Fill(FillEvent {
        instrument: "ORCL".into(),
        action: "BUY_LONG".into(),
        qty: n as f64,
        side: "buy".into(),
        price: 100.0 + n as f64,
        fee: 25.0,
    })
}

/// A stream of this test's own, removed at the end.
fn options(url: &str, tag: &str) -> JetStreamOptions {
    let unique = format!("{tag}{}{}", std::process::id(), Instant::now().elapsed().as_nanos());
    JetStreamOptions {
        stream: format!("TEST_{unique}"),
        subject_prefix: format!("test.{unique}"),
        ack_timeout: Duration::from_millis(500),
        ..JetStreamOptions::new(url)
    }
}

fn delete_stream(url: &str, stream: &str) {
    let _ = tradelab_bus::jetstream::delete_stream(&JetStreamOptions {
        stream: stream.to_string(),
        ..JetStreamOptions::new(url)
    });
}

/// Reads the stream with a durable consumer until `expected` distinct
/// events arrived (or 20 s passed); returns them deduplicated by
/// sequence and how many copies were dropped.
fn consume(options: &JetStreamOptions, durable: &str, expected: usize) -> (BTreeMap<u64, Event>, usize) {
    let mut consumer = JetStreamConsumer::new(options.clone(), durable).unwrap();
    let mut seen = BTreeMap::new();
    let mut copies = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < expected && Instant::now() < deadline {
        let batch = consumer.fetch(256, Duration::from_millis(500)).unwrap();
        for d in &batch {
            let e = d.event.clone().unwrap();
            if seen.insert(e.seq, e).is_some() {
                copies += 1;
            }
        }
        consumer.ack(&batch).unwrap();
    }
    (seen, copies)
}

#[test]
fn a_connection_cut_mid_session_loses_no_event_and_consumers_see_each_once() {
    let Some(url) = nats_url() else { return };
    let proxy = Proxy::start(&url);
    let through_proxy = options(&proxy.url(), "cut");
    let direct = JetStreamOptions {
        url: url.clone(),
        ..through_proxy.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), "sess1", 64 << 20).unwrap();
    let transport = JetStream::new(through_proxy.clone()).unwrap();
    let publisher = Publisher::start(
        "sess1",
        ChainHead::genesis(),
        Box::new(transport),
        spool,
        PublisherOptions {
            queue: 65_536,
            retry_every: Duration::from_millis(200),
        },
    );
    for n in 1..=300 {
        publisher.publish(n, n as i64, Some(n as i64), fill(n));
    }
    assert!(publisher.flush(Duration::from_secs(10)));
    proxy.cut();
    let started = Instant::now();
    for n in 301..=600 {
        publisher.publish(n, n as i64, Some(n as i64), fill(n));
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "publishing does not wait for the bus"
    );
    assert!(publisher.flush(Duration::from_secs(10)));
    // Once the client knows it is cut off, a checkpoint's flush does not
    // wait for acknowledgements that cannot come.
    for n in 601..=610 {
        publisher.publish(n, n as i64, Some(n as i64), fill(n));
    }
    let started = Instant::now();
    assert!(publisher.flush(Duration::from_secs(10)));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "a flush in the outage took {:?}",
        started.elapsed()
    );
    let during = publisher.stats();
    assert!(during.waiting > 0, "spooled while the bus was unreachable: {during:?}");
    proxy.restore();
    for n in 611..=900 {
        publisher.publish(n, n as i64, Some(n as i64), fill(n));
    }
    let stats = publisher.close(Duration::from_secs(20));
    assert_eq!((stats.dropped, stats.waiting), (0, 0), "{stats:?}");

    let (seen, copies) = consume(&direct, "audit", 900);
    delete_stream(&url, &direct.stream);
    assert_eq!(seen.len(), 900, "every event arrived (copies dropped: {copies})");
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), (1..=900).collect::<Vec<_>>());
    verify(ChainHead::genesis(), seen.values()).expect("the chain is whole");
}

#[test]
fn a_resumed_publisher_chains_on_from_the_last_event_the_stream_holds() {
    let Some(url) = nats_url() else { return };
    let options = options(&url, "head");
    let dir = tempfile::tempdir().unwrap();
    let start = |head: ChainHead| {
        Publisher::start(
            "s2",
            head,
            Box::new(JetStream::new(options.clone()).unwrap()),
            Spool::open(dir.path(), "s2", 1 << 20).unwrap(),
            PublisherOptions::default(),
        )
    };
    let p = start(ChainHead::genesis());
    for n in 1..=10 {
        p.publish(n, 0, None, fill(n));
    }
    p.close(Duration::from_secs(10));
    let mut transport = JetStream::new(options.clone()).unwrap();
    let head = transport.head("s2").unwrap().unwrap();
    assert_eq!(head.seq, 10);
    assert_eq!(transport.head("no-such-session").unwrap(), None);
    let p = start(head);
    for n in 8..=15 {
        p.publish(n, 0, None, fill(n));
    }
    let stats = p.close(Duration::from_secs(10));
    assert_eq!(stats.already_held, 3);
    let (seen, copies) = consume(&options, "resume", 15);
    delete_stream(&url, &options.stream);
    assert_eq!((seen.len(), copies), (15, 0));
    verify(ChainHead::genesis(), seen.values()).unwrap();
}

#[test]
fn a_server_that_cannot_be_reached_is_named() {
    let mut t = JetStream::new(JetStreamOptions {
        ack_timeout: Duration::from_millis(300),
        ..JetStreamOptions::new("nats://127.0.0.1:1")
    })
    .unwrap();
    let e = t.head("s").unwrap_err().to_string();
    assert!(e.contains("127.0.0.1:1") && e.contains("bus.url"), "{e}");
}
