//! `tradelab bench events`: what a trading session's events cost, and how
//! far behind the audit trail runs.
//!
//! The session replays 1-minute bars at full speed on the paper broker,
//! decided by the SMA crossover dressed as a model: each decision carries a
//! 32 x 20 feature window, as a PPO model's does, so every bar publishes a
//! decision event of full size. A real model's own decision time would add
//! to each bar alike, so the relative cost measured here is an upper bound.
//! Three ways, alternated run by run: events off, the in-process bus (the
//! publisher's thread writes each batch to SQLite), and NATS JetStream
//! (when `bus.url` is set) with two forensics workers moving the stream into
//! SQLite meanwhile. Reported: bar in to order out (p50, p99), updates per
//! second, events per second, the lag from decision to stored row, and
//! storage per million decisions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tradelab_agents::Decision;
use tradelab_app::audit::event_row;
use tradelab_app::audit::publishing::StoreTransport;
use tradelab_app::Settings;
use tradelab_bus::jetstream::{JetStream, JetStreamConsumer, JetStreamOptions};
use tradelab_bus::memory::MemoryBus;
use tradelab_bus::{ChainHead, Publisher, PublisherOptions, Spool, Transport};
use tradelab_core::{Action, BarSeries, Timeframe};
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_sim::engine::EngineConfig;
use tradelab_sim::strategies::SmaCrossover;
use tradelab_sim::strategy::BarContext;
use tradelab_store::Store;
use tradelab_trade::decider::DecisionTrace;
use tradelab_trade::journal::MemoryJournal;
use tradelab_trade::{Decider, PaperBroker, ReplayFeed, Session, SessionSpec, StrategyDecider, TradeSettings};

const WINDOW: usize = 32;
const FEATURES: usize = 20;

/// The SMA crossover, recording each bar as a model's decision with a
/// full-size window.
struct TracedSma {
    inner: StrategyDecider<SmaCrossover>,
    trace: DecisionTrace,
}

impl Decider for TracedSma {
    fn name(&self) -> String {
        "sma-traced".into()
    }
    fn start(&mut self, feeds: &[&BarSeries]) {
        self.inner.start(feeds);
    }
    fn decide(&mut self, ctx: &mut BarContext<'_>) -> Result<(), String> {
        let before = ctx.orders.len();
        let (position, equity, cash, close) = (ctx.position, ctx.equity, ctx.cash, ctx.bar.close);
        self.inner.decide(ctx)?;
        let action = ctx.orders.get(before).map_or(Action::Hold, |o| o.action);
        let r = (ctx.bar.close / ctx.bar.open - 1.0) as f32;
        self.trace.decision = Some(Decision {
            action,
            quantity: 1.0,
            probabilities: [0.2; 5],
            value: r,
        });
        let t = &mut self.trace.inputs;
        t.window.0.clear();
        t.window.0.extend((0..WINDOW * FEATURES).map(|k| r * (k % 7) as f32));
        t.bars = WINDOW as u32;
        t.features = FEATURES as u32;
        t.account = [0.0, r, 0.0];
        t.mask = [true; 5];
        t.market = [ctx.instrument as u32, 0];
        (t.close, t.position, t.equity, t.cash) = (close, position, equity, cash);
        Ok(())
    }
    fn decisions(&self) -> u64 {
        self.inner.decisions()
    }
    fn last_decision(&self) -> Option<&DecisionTrace> {
        Some(&self.trace)
    }
    fn model_identity(&self) -> Option<(String, String)> {
        Some(("sma-traced".into(), "0".repeat(64)))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Off,
    InProcess,
    JetStream,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::InProcess => "in_process",
            Mode::JetStream => "jetstream",
        }
    }
}

struct Ran {
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
    events: u64,
    decisions: u64,
    dropped: u64,
    /// Decision to stored row, milliseconds: p50, p99 (NaN when off).
    lag_ms: (f64, f64),
    store_bytes: u64,
}

/// Two forensics workers: they move the stream into SQLite and record each
/// event's lag from decision to stored row.
struct Workers {
    stop: Arc<AtomicBool>,
    lags: Arc<Mutex<Vec<f64>>>,
    stored: Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Result<()>>>,
}

impl Workers {
    fn start(options: &JetStreamOptions, url: &str, n: usize) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let lags = Arc::new(Mutex::new(Vec::new()));
        let stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads = (0..n)
            .map(|_| {
                let (stop, lags, stored) = (Arc::clone(&stop), Arc::clone(&lags), Arc::clone(&stored));
                let (options, url) = (options.clone(), url.to_string());
                std::thread::spawn(move || -> Result<()> {
                    let rt = tradelab_app::runtime::runtime()?;
                    let store = rt.block_on(Store::open(&url))?;
                    let mut consumer = JetStreamConsumer::new(options, "bench").map_err(anyhow::Error::new)?;
                    while !stop.load(Ordering::SeqCst) {
                        let batch = consumer
                            .fetch(512, Duration::from_millis(200))
                            .map_err(anyhow::Error::new)?;
                        let rows: Vec<_> = batch
                            .iter()
                            .filter_map(|d| d.event.as_ref().ok().map(event_row))
                            .collect();
                        rt.block_on(store.record_audit_events(&rows))?;
                        consumer.ack(&batch).map_err(anyhow::Error::new)?;
                        let now = tradelab_core::time::now_ms();
                        lags.lock().unwrap().extend(rows.iter().map(|r| (now - r.at_ms) as f64));
                        stored.fetch_add(rows.len() as u64, Ordering::SeqCst);
                    }
                    rt.block_on(store.close());
                    Ok(())
                })
            })
            .collect();
        Workers {
            stop,
            lags,
            stored,
            threads,
        }
    }

    /// Waits until `expected` events are stored (at most a minute), then
    /// stops them; the lags recorded.
    fn finish(self, expected: u64) -> Result<Vec<f64>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.stored.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().map_err(|_| anyhow::anyhow!("a forensics worker panicked"))??;
        }
        let lags = std::mem::take(&mut *self.lags.lock().unwrap());
        Ok(lags)
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn file_bytes(path: &std::path::Path) -> u64 {
    let size = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    size(path.to_path_buf()) + size(path.with_extension("db-wal"))
}

#[allow(clippy::too_many_arguments)]
fn one_run(
    mode: Mode,
    series: &[BarSeries],
    engine: &EngineConfig,
    trade: &TradeSettings,
    jetstream: Option<&JetStreamOptions>,
    dir: &std::path::Path,
    id: &str,
) -> Result<Ran> {
    let feeds: Vec<&BarSeries> = series.iter().collect();
    let mut feed = ReplayFeed::new(feeds.clone(), &vec![0; feeds.len()], 0.0);
    let mut broker = PaperBroker::new("bench", engine.clone(), &feeds);
    let mut decider = TracedSma {
        inner: StrategyDecider::new(SmaCrossover::new(10, 30, true)),
        trace: DecisionTrace::default(),
    };
    decider.start(&feeds);
    let mut journal = MemoryJournal::default();
    let spec = SessionSpec {
        id: id.into(),
        symbols: series.iter().map(|s| s.instrument.clone()).collect(),
        timeframe_ms: Timeframe::MINUTE.millis(),
        speed: 0.0,
        settings: trade.clone(),
    };
    let db = dir.join(format!("{id}.db"));
    let url = format!("sqlite://{}", db.display());
    let spool = Spool::open(&dir.join("spool"), id, 1 << 30)?;
    let mut workers = None;
    let publisher = match mode {
        Mode::Off => None,
        Mode::InProcess => {
            let t = StoreTransport::open(&url, MemoryBus::new())?;
            Some(Publisher::start(
                id,
                ChainHead::genesis(),
                Box::new(t),
                spool,
                PublisherOptions::default(),
            ))
        }
        Mode::JetStream => {
            let options = jetstream.context("JetStream needs bus.url")?;
            workers = Some(Workers::start(options, &url, 2));
            let t: Box<dyn Transport> = Box::new(JetStream::new(options.clone()).map_err(anyhow::Error::new)?);
            Some(Publisher::start(
                id,
                ChainHead::genesis(),
                t,
                spool,
                PublisherOptions::default(),
            ))
        }
    };
    let mut observe = |_: &tradelab_trade::SessionEvent<'_>| {};
    let start = Instant::now();
    let mut session = Session::new(spec, &mut feed, &mut broker, &mut decider, &mut journal, &mut observe);
    if let Some(p) = &publisher {
        session = session.with_events(p, "sma-traced", 0);
    }
    let outcome = session.run(&AtomicBool::new(false))?;
    let stats = publisher.map(|p| p.close(Duration::from_secs(60)));
    let seconds = start.elapsed().as_secs_f64();
    let events = stats.as_ref().map_or(0, |s| s.published);
    let mut lags = match (mode, workers) {
        (Mode::JetStream, Some(w)) => w.finish(events)?,
        _ => Vec::new(),
    };
    let decisions = decider.decisions();
    Ok(Ran {
        seconds,
        p50_us: outcome.latency_us.0,
        p99_us: outcome.latency_us.1,
        events,
        decisions,
        dropped: stats.map_or(0, |s| s.dropped),
        lag_ms: (quantile(&mut lags, 0.5), quantile(&mut lags, 0.99)),
        store_bytes: file_bytes(&db),
    })
}

pub fn run(settings: &Settings, bars: usize, repeats: usize) -> Result<()> {
    let engine = super::bench_trading::every_bar_engine(settings);
    let dir = super::bench_trading::scratch_dir("events")?;
    let jetstream = (!settings.bus.url.is_empty()).then(|| JetStreamOptions {
        stream: format!("BENCH_{}", std::process::id()),
        subject_prefix: format!("bench.{}", std::process::id()),
        ..settings.bus.jetstream()
    });
    let result = measure(settings, bars, repeats, &engine, jetstream.as_ref(), &dir);
    if let Some(o) = &jetstream {
        let _ = tradelab_bus::jetstream::delete_stream(o);
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(
    settings: &Settings,
    bars: usize,
    repeats: usize,
    engine: &EngineConfig,
    jetstream: Option<&JetStreamOptions>,
    dir: &std::path::Path,
) -> Result<()> {
    let series = vec![
        generate(&SyntheticConfig {
            bars,
            seed: settings.seed,
            timeframe: Timeframe::MINUTE,
            instrument: "m000".into(),
            ..Default::default()
        })
        .series,
    ];
    let mut modes = vec![Mode::Off, Mode::InProcess];
    if jetstream.is_some() {
        modes.push(Mode::JetStream);
    } else {
        println!("bus.url is not set: the JetStream runs are skipped (--set bus.url=nats://127.0.0.1:4222)");
    }
    // The journal in memory, checkpointing every 100 timestamps: what is
    // measured is the decision path and the events, not the journal.
    let trade = TradeSettings {
        checkpoint_every: 100,
        ..settings.trade.clone()
    };
    println!("median of {repeats} runs after a warm-up, modes alternated; {bars} one-minute bars, one instrument, a decision event ({WINDOW}x{FEATURES} window) per bar");
    let mut runs: Vec<Vec<Ran>> = modes.iter().map(|_| Vec::new()).collect();
    for r in 0..=repeats {
        for (k, mode) in modes.iter().enumerate() {
            let ran = one_run(
                *mode,
                &series,
                engine,
                &trade,
                jetstream,
                dir,
                &format!("b{}{r}", mode.name()),
            )?;
            anyhow::ensure!(ran.dropped == 0, "{} events dropped in {}", ran.dropped, mode.name());
            if r > 0 {
                runs[k].push(ran);
            }
        }
    }
    if let Some(o) = jetstream {
        publisher_only(o, dir, repeats)?;
    }
    let median = |v: &mut Vec<f64>| quantile(v, 0.5);
    for (k, mode) in modes.iter().enumerate() {
        let rs = &runs[k];
        let mut secs: Vec<f64> = rs.iter().map(|r| r.seconds).collect();
        let mut p50: Vec<f64> = rs.iter().map(|r| r.p50_us).collect();
        let mut p99: Vec<f64> = rs.iter().map(|r| r.p99_us).collect();
        let mut lag50: Vec<f64> = rs.iter().map(|r| r.lag_ms.0).collect();
        let mut lag99: Vec<f64> = rs.iter().map(|r| r.lag_ms.1).collect();
        let last = rs.last().context("no timed runs: use --repeats 1 or more")?;
        let med = median(&mut secs);
        let per_million = if last.decisions > 0 && *mode == Mode::InProcess {
            last.store_bytes as f64 / last.decisions as f64 * 1e6 / (1u64 << 30) as f64
        } else {
            f64::NAN
        };
        println!(
            "{{\"bench\":\"events\",\"mode\":\"{}\",\"bars\":{bars},\"median_s\":{med:.3},\"updates_per_s\":{:.0},\"events\":{},\"events_per_s\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\"lag_p50_ms\":{:.1},\"lag_p99_ms\":{:.1},\"store_gib_per_million_decisions\":{per_million:.2}}}",
            mode.name(),
            bars as f64 / med,
            last.events,
            last.events as f64 / med,
            median(&mut p50),
            median(&mut p99),
            median(&mut lag50),
            median(&mut lag99),
        );
    }
    Ok(())
}

/// The publisher alone into JetStream, as fast as it takes them: fills
/// (about 250 bytes each) and decisions (a 32 x 20 window, about 4 KB).
fn publisher_only(options: &JetStreamOptions, dir: &std::path::Path, repeats: usize) -> Result<()> {
    use tradelab_bus::event::{DecisionEvent, DecisionInputs, EventBody, FillEvent};
    let window = vec![0.123_f32; WINDOW * FEATURES];
    let fill = |n: u64| {
        EventBody::Fill(FillEvent {
            instrument: "m000".into(),
            action: "BUY_LONG".into(),
            qty: n as f64,
            side: "buy".into(),
            price: 100.0 + n as f64 * 1e-3,
            fee: 25.0,
        })
    };
    let decision = |n: u64| {
        EventBody::Decision(DecisionEvent {
            instrument: "m000".into(),
            model: "sma-traced".into(),
            action: "HOLD".into(),
            quantity: 1.0,
            probabilities: [0.2; 5],
            value: n as f32,
            inputs: DecisionInputs::new(&window, WINDOW, [0.0; 3], [true; 5], [0, 0], 1.0, 0.0, 1.0, 1.0),
        })
    };
    for (kind, count) in [("fill", 200_000u64), ("decision", 20_000)] {
        let mut rates = Vec::new();
        for r in 0..=repeats {
            let id = format!("p{kind}{r}");
            let spool = Spool::open(&dir.join("spool"), &id, 1 << 30)?;
            let t = Box::new(JetStream::new(options.clone()).map_err(anyhow::Error::new)?);
            let p = Publisher::start(
                &id,
                ChainHead::genesis(),
                t,
                spool,
                PublisherOptions {
                    queue: count as usize,
                    ..PublisherOptions::default()
                },
            );
            let start = Instant::now();
            for n in 1..=count {
                let body = if kind == "fill" { fill(n) } else { decision(n) };
                p.publish(n, 0, None, body);
            }
            let stats = p.close(Duration::from_secs(120));
            let secs = start.elapsed().as_secs_f64();
            anyhow::ensure!(
                stats.sent == count && stats.dropped == 0,
                "the publisher sent {} of {count}: {stats:?}",
                stats.sent
            );
            if r > 0 {
                rates.push(count as f64 / secs);
            }
        }
        println!(
            "{{\"bench\":\"events_publisher\",\"transport\":\"jetstream\",\"event\":\"{kind}\",\"events\":{count},\"events_per_s\":{:.0}}}",
            quantile(&mut rates, 0.5)
        );
    }
    Ok(())
}
