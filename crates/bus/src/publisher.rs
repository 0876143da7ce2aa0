//! The publisher: a session hands it events and goes on; its thread seals
//! them into the session's hash chain and sends them through the transport,
//! or to the spool while the transport fails, retrying every
//! `retry_every`. The spool is always emptied before anything newer is
//! sent, so the bus receives each session's events in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::chain::ChainHead;
use crate::event::{Event, EventBody};
use crate::spool::Spool;
use crate::transport::Transport;

/// Most events sent in one call to the transport.
const BATCH: usize = 512;

/// How often the publisher's thread looks for new events.
const POLL: Duration = Duration::from_millis(1);

/// What the publisher has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Events handed to it.
    pub published: u64,
    /// Events the transport took.
    pub sent: u64,
    /// Events written to the spool (each is sent later).
    pub spooled: u64,
    /// Events waiting in the spool now.
    pub waiting: u64,
    /// Events lost: the queue or the spool was full. Never zero silently:
    /// the session reports it.
    pub dropped: u64,
    /// Events not sent again because the bus already held them (a resumed
    /// session deciding again the bars after its checkpoint).
    pub already_held: u64,
    /// The last transport or spool error.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    sent: AtomicU64,
    spooled: AtomicU64,
    waiting: AtomicU64,
    dropped: AtomicU64,
    already_held: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// How long the last attempt at closing may wait for the transport.
    close_wait_ms: AtomicU64,
}

enum Message {
    Event {
        seq: u64,
        at_ms: i64,
        bar_ts: Option<i64>,
        // Boxed: the queue's slots stay small (a decision's body is large).
        body: Box<EventBody>,
    },
    /// Answered once everything before it is sent or spooled.
    Flush(SyncSender<()>),
}

/// How a publisher behaves.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Events that may wait in memory for the publisher's thread; past
    /// it they are dropped (and counted), never waited for.
    pub queue: usize,
    /// How often a failed transport is tried again.
    pub retry_every: Duration,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            queue: 65_536,
            retry_every: Duration::from_secs(1),
        }
    }
}

/// A session's publisher.
pub struct Publisher {
    tx: Option<SyncSender<Message>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Starts publishing session `session`'s events after `head` (events
    /// numbered up to `head.seq` are already held by the bus or the spool
    /// and are not sent again), through `transport`, spooling to `spool`.
    pub fn start(
        session: &str,
        head: ChainHead,
        transport: Box<dyn Transport>,
        spool: Spool,
        options: PublisherOptions,
    ) -> Publisher {
        let (tx, rx) = sync_channel(options.queue.max(1));
        let counters = Arc::new(Counters::default());
        counters.waiting.store(spool.len() as u64, Ordering::Relaxed);
        let mut worker = Worker {
            session: session.to_string(),
            head,
            transport,
            spool,
            // Whatever an earlier process spooled goes first.
            down_since: None,
            retry_every: options.retry_every,
            counters: Arc::clone(&counters),
        };
        let thread = std::thread::Builder::new()
            .name(format!("events-{session}"))
            .spawn(move || worker.run(rx))
            .ok();
        Publisher {
            tx: Some(tx),
            counters,
            thread,
        }
    }

    /// Hands over event `seq`; returns at once. A full queue drops it (and
    /// counts it) rather than make the decision wait.
    pub fn publish(&self, seq: u64, at_ms: i64, bar_ts: Option<i64>, body: EventBody) {
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        let sent = match &self.tx {
            Some(tx) => tx.try_send(Message::Event {
                seq,
                at_ms,
                bar_ts,
                body: Box::new(body),
            }),
            None => return,
        };
        if let Err(e) = sent {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let why = match e {
                TrySendError::Full(_) => "the event queue is full (the spool's disk is too slow)",
                TrySendError::Disconnected(_) => "the publisher's thread has stopped",
            };
            *self.counters.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.into());
        }
    }

    /// Waits until every event handed over is sent or spooled (at most
    /// `timeout`): a checkpoint must not be written past events that could
    /// still be lost. False if the wait timed out.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        let (done_tx, done_rx) = sync_channel(1);
        if tx.send(Message::Flush(done_tx)).is_err() {
            return false;
        }
        done_rx.recv_timeout(timeout).is_ok()
    }

    /// What it has done so far.
    pub fn stats(&self) -> PublisherStats {
        let c = &self.counters;
        PublisherStats {
            published: c.published.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            spooled: c.spooled.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            already_held: c.already_held.load(Ordering::Relaxed),
            last_error: c.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Sends or spools everything and stops the thread (waiting at most
    /// `timeout` for a last attempt at the transport).
    pub fn close(mut self, timeout: Duration) -> PublisherStats {
        let started = Instant::now();
        self.flush(timeout);
        let left = timeout.saturating_sub(started.elapsed());
        self.counters
            .close_wait_ms
            .store(left.as_millis() as u64, Ordering::Relaxed);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    session: String,
    head: ChainHead,
    transport: Box<dyn Transport>,
    spool: Spool,
    /// Set while the transport fails: events go to the spool until the
    /// next retry succeeds.
    down_since: Option<Instant>,
    retry_every: Duration,
    counters: Arc<Counters>,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Message>) {
        let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
        let mut flushes: Vec<SyncSender<()>> = Vec::new();
        // Spooled by an earlier process: sent before anything new.
        self.drain_spool(true);
        let mut idle = Duration::ZERO;
        loop {
            // Polled, not waited on: a sender finding no receiver asleep
            // never has to wake one, so publishing costs the decision path
            // no system call. Events wait at most POLL here.
            let first = match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => {
                    std::thread::sleep(POLL);
                    idle += POLL;
                    if idle >= self.retry_every {
                        idle = Duration::ZERO;
                        self.drain_spool(false);
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            };
            idle = Duration::ZERO;
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Message::Event {
                        seq,
                        at_ms,
                        bar_ts,
                        body,
                    } => self.seal(seq, at_ms, bar_ts, *body, &mut batch),
                    Message::Flush(done) => flushes.push(done),
                }
                if batch.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            let urgent = !flushes.is_empty();
            self.deliver(&mut batch, urgent);
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
        self.deliver(&mut batch, false);
        // Closing with events spooled: give a reconnecting transport the
        // time `close` allows, then one last attempt.
        if !self.spool.is_empty() {
            let wait = Duration::from_millis(self.counters.close_wait_ms.load(Ordering::Relaxed));
            self.transport.ready(wait);
        }
        self.drain_spool(true);
    }

    fn seal(&mut self, seq: u64, at_ms: i64, bar_ts: Option<i64>, body: EventBody, batch: &mut Vec<Event>) {
        if seq <= self.head.seq {
            self.counters.already_held.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let e = Event::seal(&self.session, seq, at_ms, bar_ts, body, &self.head.hash);
        self.head = ChainHead::of(&e);
        batch.push(e);
    }

    fn fail(&mut self, why: String) {
        self.down_since.get_or_insert_with(Instant::now);
        *self.counters.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    /// Sends what the spool holds if the transport is up or due a retry
    /// (or `now`, the last attempt before the publisher stops); true when
    /// the spool is empty afterwards.
    fn drain_spool(&mut self, now: bool) -> bool {
        if self.spool.is_empty() {
            return true;
        }
        if !now && self.down_since.is_some_and(|t| t.elapsed() < self.retry_every) {
            return false;
        }
        let events = match self.spool.read() {
            Ok(e) => e,
            Err(e) => {
                self.fail(e.to_string());
                return false;
            }
        };
        for chunk in events.chunks(BATCH) {
            if let Err(e) = self.transport.send(chunk) {
                self.down_since = Some(Instant::now());
                self.fail(format!("{}: {e}", self.transport.describe()));
                return false;
            }
        }
        self.counters.sent.fetch_add(events.len() as u64, Ordering::Relaxed);
        self.down_since = None;
        match self.spool.clear() {
            Ok(()) => self.counters.waiting.store(0, Ordering::Relaxed),
            Err(e) => self.fail(e.to_string()),
        }
        true
    }

    /// Sends `batch`, or spools it. `urgent` (a checkpoint waits on it):
    /// while the transport is down, no retry is made now; the batch goes
    /// straight to the spool and the retry waits for an idle moment.
    fn deliver(&mut self, batch: &mut Vec<Event>, urgent: bool) {
        if batch.is_empty() {
            return;
        }
        let try_transport = !(urgent && self.down_since.is_some());
        if try_transport && self.drain_spool(false) && self.down_since.is_none() {
            match self.transport.send(batch) {
                Ok(()) => {
                    self.counters.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear();
                    return;
                }
                Err(e) => {
                    let why = format!("{}: {e}", self.transport.describe());
                    self.down_since = Some(Instant::now());
                    self.fail(why);
                }
            }
        }
        match self.spool.push(batch) {
            Ok(()) => {
                self.counters.spooled.fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.counters.waiting.store(self.spool.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.fail(e.to_string());
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::verify;
    use crate::event::{SessionNote, GENESIS_HASH};
    use crate::memory::MemoryBus;
    use crate::transport::TransportError;

    /// A transport that fails while `down` is set, recording what it took.
    #[derive(Clone, Default)]
    struct Flaky {
        down: Arc<std::sync::atomic::AtomicBool>,
        taken: Arc<Mutex<Vec<Event>>>,
    }

    impl Transport for Flaky {
        fn describe(&self) -> String {
            "flaky".into()
        }
        fn send(&mut self, events: &[Event]) -> Result<(), TransportError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(TransportError("connection refused".into()));
            }
            self.taken.lock().unwrap().extend_from_slice(events);
            Ok(())
        }
        fn head(&mut self, _: &str) -> Result<Option<ChainHead>, TransportError> {
            Ok(None)
        }
    }

    fn note(n: u64) -> EventBody {
        EventBody::Session(SessionNote {
            note: "tick".into(),
            detail: serde_json::json!(n),
        })
    }

    fn options() -> PublisherOptions {
        PublisherOptions {
            queue: 1024,
            retry_every: Duration::from_millis(20),
        }
    }

    #[test]
    fn events_reach_subscribers_in_order_and_chained() {
        let bus = MemoryBus::new();
        let rx = bus.subscribe();
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        let p = Publisher::start("s", ChainHead::genesis(), Box::new(bus), spool, options());
        for n in 1..=100 {
            p.publish(n, n as i64, None, note(n));
        }
        let stats = p.close(Duration::from_secs(5));
        assert_eq!((stats.published, stats.sent, stats.dropped), (100, 100, 0));
        let got: Vec<Event> = rx.try_iter().map(|e| (*e).clone()).collect();
        assert_eq!(got.len(), 100);
        assert_eq!(got[0].prev_hash, GENESIS_HASH);
        verify(ChainHead::genesis(), &got).unwrap();
    }

    #[test]
    fn while_the_transport_is_down_events_are_spooled_and_sent_in_order_when_it_returns() {
        let flaky = Flaky::default();
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        let p = Publisher::start("s", ChainHead::genesis(), Box::new(flaky.clone()), spool, options());
        for n in 1..=10 {
            p.publish(n, 0, None, note(n));
        }
        assert!(p.flush(Duration::from_secs(5)));
        flaky.down.store(true, Ordering::SeqCst);
        for n in 11..=30 {
            p.publish(n, 0, None, note(n));
        }
        assert!(p.flush(Duration::from_secs(5)));
        let stats = p.stats();
        assert_eq!((stats.sent, stats.spooled, stats.waiting), (10, 20, 20));
        assert!(stats.last_error.unwrap().contains("connection refused"));
        flaky.down.store(false, Ordering::SeqCst);
        for n in 31..=40 {
            p.publish(n, 0, None, note(n));
        }
        let stats = p.close(Duration::from_secs(5));
        assert_eq!((stats.sent, stats.waiting, stats.dropped), (40, 0, 0));
        let taken = flaky.taken.lock().unwrap();
        let seqs: Vec<u64> = taken.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "none lost, none twice, in order");
        verify(ChainHead::genesis(), taken.iter()).unwrap();
    }

    #[test]
    fn a_new_process_sends_what_the_last_one_spooled_and_chains_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let flaky = Flaky::default();
        flaky.down.store(true, Ordering::SeqCst);
        let spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        let p = Publisher::start("s", ChainHead::genesis(), Box::new(flaky.clone()), spool, options());
        for n in 1..=5 {
            p.publish(n, 0, None, note(n));
        }
        assert!(p.flush(Duration::from_secs(5)));
        drop(p); // killed, as far as the bus knows
        let spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        let head = spool.head().unwrap().unwrap();
        assert_eq!(head.seq, 5);
        flaky.down.store(false, Ordering::SeqCst);
        let p = Publisher::start("s", head, Box::new(flaky.clone()), spool, options());
        // The resumed session decides again from its checkpoint (event 3):
        // 3 to 5 are the bus's already.
        for n in 3..=8 {
            p.publish(n, 0, None, note(n));
        }
        let stats = p.close(Duration::from_secs(5));
        assert_eq!((stats.already_held, stats.dropped), (3, 0));
        let taken = flaky.taken.lock().unwrap();
        assert_eq!(
            taken.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        verify(ChainHead::genesis(), taken.iter()).unwrap();
    }

    #[test]
    fn while_the_bus_is_down_a_checkpoints_flush_does_not_wait_for_a_retry() {
        /// Down, and each attempt takes 300 ms to fail (a connect timeout).
        struct Hanging;
        impl Transport for Hanging {
            fn describe(&self) -> String {
                "hanging".into()
            }
            fn send(&mut self, _: &[Event]) -> Result<(), TransportError> {
                std::thread::sleep(Duration::from_millis(300));
                Err(TransportError("timed out".into()))
            }
            fn head(&mut self, _: &str) -> Result<Option<ChainHead>, TransportError> {
                Ok(None)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        let p = Publisher::start("s", ChainHead::genesis(), Box::new(Hanging), spool, options());
        p.publish(1, 0, None, note(1));
        assert!(p.flush(Duration::from_secs(5)), "the first failure is paid once");
        // A checkpoint's flush spools at once rather than try the transport
        // again (an idle moment does that).
        for n in 2..=6 {
            p.publish(n, 0, None, note(n));
            let started = Instant::now();
            assert!(p.flush(Duration::from_secs(5)));
            assert!(
                started.elapsed() < Duration::from_millis(250),
                "flush {n} waited {:?}",
                started.elapsed()
            );
        }
        assert_eq!(p.stats().waiting, 6);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        /// A transport that takes a long time.
        struct Slow;
        impl Transport for Slow {
            fn describe(&self) -> String {
                "slow".into()
            }
            fn send(&mut self, _: &[Event]) -> Result<(), TransportError> {
                std::thread::sleep(Duration::from_millis(200));
                Ok(())
            }
            fn head(&mut self, _: &str) -> Result<Option<ChainHead>, TransportError> {
                Ok(None)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        let p = Publisher::start(
            "s",
            ChainHead::genesis(),
            Box::new(Slow),
            spool,
            PublisherOptions {
                queue: 4,
                retry_every: Duration::from_millis(20),
            },
        );
        let started = Instant::now();
        for n in 1..=50 {
            p.publish(n, 0, None, note(n));
        }
        assert!(started.elapsed() < Duration::from_millis(150), "publishing never waits");
        let stats = p.stats();
        assert!(stats.dropped > 0 && stats.last_error.unwrap().contains("queue is full"));
    }
}
