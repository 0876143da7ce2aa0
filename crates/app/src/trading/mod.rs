//! Trading a trained agent: several instruments, replayed bar by bar or
//! live from Alpaca's stream, into one account (the paper broker's, or
//! Alpaca's), through the agent, the breakers and the risk layer
//! (risk-parity budgets included when `backtest.sizing` asks), with the
//! session's orders, events and checkpoints in the store so that a killed
//! session resumes (`--resume`) without sending an order twice.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tradelab_agents::Agent;
use tradelab_core::time::format_date;
use tradelab_core::BarSeries;
use tradelab_env::Split;
use tradelab_sim::engine::BacktestResult;
use tradelab_store::trading::{SessionStatus, TradingSessionRecord};
use tradelab_store::Store;
use tradelab_trade::alpaca::{AlpacaBroker, AlpacaFeed};
use tradelab_trade::journal::{Journal, MemoryJournal};
use tradelab_trade::{
    AgentDecider, AgentMarket, Broker, Checkpoint, Feed, PaperBroker, RecordingFeed, ReplayFeed, Session, SessionEnd,
    SessionEvent, SessionOutcome, SessionSpec,
};

use crate::audit::publishing::{session_publisher, SessionPublisher};
use crate::markets::{load_series, markets, timeframe_name};
use tradelab_bus::memory::MemoryBus;
use tradelab_bus::PublisherStats;

mod live;
mod store_journal;
use crate::settings::Settings;
pub use store_journal::StoreJournal;

/// What a paper session trades, as stored with it (a resume reads it back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperSpec {
    /// The model as the user named it (a folder or a registered name).
    pub model: String,
    /// The instruments, in the account's order.
    pub symbols: Vec<String>,
    /// The first bar time traded, UTC milliseconds; `None`: the latest
    /// test-split start among the markets, so every bar is out of sample.
    pub from: Option<i64>,
    /// Times real time; 0 as fast as possible.
    pub speed: f64,
    /// The paper account's name (one live session per account).
    pub account: String,
    /// Where bars come from (sessions stored before live feeds: a replay).
    #[serde(default)]
    pub feed: FeedChoice,
    /// Where orders go.
    #[serde(default)]
    pub broker: BrokerChoice,
}

/// Where a session's bars come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedChoice {
    /// The symbols' files, bar by bar.
    #[default]
    Replay,
    /// Alpaca's live bar stream (`trade.alpaca`).
    Alpaca,
}

/// Where a session's orders go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerChoice {
    /// The backtesting engine's fills, costs and slippage.
    #[default]
    Paper,
    /// Alpaca's account (`trade.alpaca.trading_url`).
    Alpaca,
}

impl FeedChoice {
    /// `replay` or `alpaca`, or the reason the name is none of them.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "replay" => Ok(FeedChoice::Replay),
            "alpaca" => Ok(FeedChoice::Alpaca),
            other => bail!("feed `{other}`: use replay (the symbols' files) or alpaca (Alpaca's live bars)"),
        }
    }
}

impl BrokerChoice {
    /// `paper` or `alpaca`, or the reason the name is none of them.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "paper" => Ok(BrokerChoice::Paper),
            "alpaca" => Ok(BrokerChoice::Alpaca),
            other => bail!("broker `{other}`: use paper (simulated fills) or alpaca (Alpaca's account)"),
        }
    }
}

/// A finished (or stopped) paper session.
pub struct PaperTrading {
    /// The session's id (`tradelab trade --resume ID`).
    pub id: String,
    /// How it ended, with its latency figures and last checkpoint.
    pub outcome: SessionOutcome,
    /// Its fills, trades and curve, as a backtest reports them (the paper
    /// broker's; Alpaca keeps a real account's).
    pub result: Option<BacktestResult<'static>>,
    /// The bars each instrument was traded on (for the report).
    pub feeds: Vec<BarSeries>,
    /// The first bar time traded.
    pub start_ts: i64,
    /// True when the replay starts before a market's test split.
    pub starts_in_sample: bool,
    /// Bars the agent decided on (by this process).
    pub decisions: u64,
    /// False when `store.record` is off: nothing was kept to resume from.
    pub recorded: bool,
    /// What became of the session's events (the audit trail), and where
    /// they went; `None` when events are off.
    pub events: Option<(PublisherStats, String)>,
}

/// The session `id`'s record and spec.
pub fn stored_session(settings: &Settings, id: &str) -> Result<(TradingSessionRecord, PaperSpec)> {
    let runtime = crate::runtime::runtime()?;
    let store = crate::record::open_store(&runtime, settings)?;
    let record = runtime
        .block_on(store.trading_session(id))
        .with_context(|| format!("trading session {id} (list them with `tradelab sessions list`)"))?;
    runtime.block_on(store.close());
    let spec = serde_json::from_value(record.spec.clone())
        .with_context(|| format!("trading session {id}: its stored spec is damaged"))?;
    Ok((record, spec))
}

/// The most recent trading sessions, newest first.
pub fn recent_sessions(settings: &Settings, limit: i64) -> Result<Vec<TradingSessionRecord>> {
    let runtime = crate::runtime::runtime()?;
    let store = crate::record::open_store(&runtime, settings)?;
    let sessions = runtime.block_on(store.trading_sessions(limit))?;
    runtime.block_on(store.close());
    Ok(sessions)
}

/// Paper-trades `agent` (loaded from `folder`) under `spec`, or resumes
/// session `resume` (whose spec must be `spec`). `stop` ends it after the
/// bar in progress.
pub fn paper_trade(
    settings: &Settings,
    agent: Box<dyn Agent + Send>,
    folder: &Path,
    spec: &PaperSpec,
    resume: Option<&str>,
    stop: &AtomicBool,
    on_event: impl FnMut(&SessionEvent<'_>),
) -> Result<PaperTrading> {
    prepare_paper(settings, agent, folder, spec, resume)?.run(stop, on_event)
}

/// Where a prepared session's bars come from.
enum SessionFeed {
    Replay(ReplayFeed<BarSeries>),
    Live(Box<RecordingFeed<AlpacaFeed>>),
}

impl SessionFeed {
    fn as_feed(&mut self) -> &mut dyn Feed {
        match self {
            SessionFeed::Replay(f) => f,
            SessionFeed::Live(f) => f.as_mut(),
        }
    }
}

/// Where a prepared session's orders go.
enum SessionBroker {
    Paper(Box<PaperBroker>),
    Alpaca(Box<AlpacaBroker>),
}

impl SessionBroker {
    fn as_broker(&mut self) -> &mut dyn Broker {
        match self {
            SessionBroker::Paper(b) => b.as_mut(),
            SessionBroker::Alpaca(b) => b.as_mut(),
        }
    }
}

/// A session ready to run: its data loaded and checked (a live one's
/// stream connected and its history read), its row in the store (a new
/// session holds its account from here on).
pub struct PreparedSession {
    id: String,
    session_spec: SessionSpec,
    feeds: Vec<BarSeries>,
    feed: SessionFeed,
    broker: SessionBroker,
    decider: AgentDecider,
    store_journal: Option<StoreJournal>,
    resume_from: Option<(Option<Checkpoint>, Vec<tradelab_store::trading::TradingOrderRecord>)>,
    start_ts: i64,
    starts_in_sample: bool,
    url: String,
    lease_ms: i64,
    /// The model as the user named it (the events' `model`).
    model: String,
    publisher: Option<SessionPublisher>,
    local_bus: MemoryBus,
}

/// Everything [`paper_trade`] checks and sets up before the first bar: a
/// bad symbol, model, timeframe or a busy account fails here, before
/// anything runs.
pub fn prepare_paper(
    settings: &Settings,
    agent: Box<dyn Agent + Send>,
    folder: &Path,
    spec: &PaperSpec,
    resume: Option<&str>,
) -> Result<PreparedSession> {
    if !(spec.speed.is_finite() && spec.speed >= 0.0) {
        bail!(
            "--speed {} is not a speed: use 0 (as fast as possible) or a positive factor",
            spec.speed
        );
    }
    for (i, s) in spec.symbols.iter().enumerate() {
        if spec.symbols[..i].contains(s) {
            bail!("--symbol {s} is named twice; name each instrument once");
        }
    }
    let Parts {
        feeds,
        feed,
        mut broker,
        decider,
        start_ts,
        starts_in_sample,
        timeframe_ms,
        speed,
    } = match spec.feed {
        FeedChoice::Replay => replay_parts(settings, agent, folder, spec)?,
        FeedChoice::Alpaca => live_parts(settings, agent, folder, spec)?,
    };
    // A live session stores where it started: a resume replays from there.
    let spec = &PaperSpec {
        from: Some(start_ts),
        ..spec.clone()
    };
    let account = broker.as_broker().account_id();
    let trade_settings = settings.trade.clone();
    let lease_ms = trade_settings.lease_seconds as i64 * 1000;

    let url = settings.store.database_url();
    let recorded = settings.store.record;
    if resume.is_some() && !recorded {
        bail!("--resume needs the store (store.record is false)");
    }
    let id = resume.map_or_else(new_session_id, str::to_string);
    let store_journal = match recorded {
        true => Some(
            StoreJournal::open(&url, &id, settings.trade.journal_durability)
                .context("opening the store for the trading journal")?,
        ),
        false => None,
    };
    let mut resume_from: Option<(Option<Checkpoint>, Vec<_>)> = None;
    if let Some(j) = &store_journal {
        let spec_json = serde_json::to_value(spec)?;
        match resume {
            None => j
                .block_on(
                    j.store()
                        .start_trading_session(&id, &account, &spec.model, &spec_json, lease_ms),
                )
                .context("starting the trading session")?,
            Some(_) => {
                let record = j
                    .block_on(j.store().resume_trading_session(&id, lease_ms))
                    .with_context(|| format!("resuming trading session {id}"))?;
                let checkpoint = record
                    .checkpoint
                    .map(serde_json::from_value::<Checkpoint>)
                    .transpose()
                    .with_context(|| format!("trading session {id}: its checkpoint is damaged"))?;
                let orders = j.block_on(j.store().trading_orders(&id))?;
                resume_from = Some((checkpoint, orders));
            }
        }
    }
    let local_bus = MemoryBus::new();
    let publisher = session_publisher(settings, &id, resume.is_some(), local_bus.clone())
        .with_context(|| format!("setting up trading session {id}'s events (bus:)"))?;
    let session_spec = SessionSpec {
        id: id.clone(),
        symbols: feeds.iter().map(|f| f.instrument.clone()).collect(),
        timeframe_ms,
        speed,
        settings: trade_settings,
    };
    Ok(PreparedSession {
        id,
        session_spec,
        feeds,
        feed,
        broker,
        decider,
        store_journal,
        resume_from,
        start_ts,
        starts_in_sample,
        url,
        lease_ms,
        model: spec.model.clone(),
        publisher,
        local_bus,
    })
}

/// What differs between a replayed and a live session.
struct Parts {
    /// The bars traded (a live session's fill in as they arrive).
    feeds: Vec<BarSeries>,
    feed: SessionFeed,
    broker: SessionBroker,
    decider: AgentDecider,
    start_ts: i64,
    starts_in_sample: bool,
    timeframe_ms: i64,
    /// Times real time (a live feed's is 1).
    speed: f64,
}

/// A replay of the symbols' files from `spec.from` (or their test splits)
/// into the paper broker.
fn replay_parts(settings: &Settings, agent: Box<dyn Agent + Send>, folder: &Path, spec: &PaperSpec) -> Result<Parts> {
    if spec.broker == BrokerChoice::Alpaca {
        bail!("the alpaca broker fills at today's prices, so it needs live bars: use the alpaca feed (--feed alpaca); a replay is decided on history");
    }
    let provenance = agent.provenance().clone();
    let series = load_series(settings, &spec.symbols, None, false)?;
    if series.len() != spec.symbols.len() {
        bail!(
            "{} symbols gave {} series: a symbol with several timeframes must be named by its file",
            spec.symbols.len(),
            series.len()
        );
    }
    let trained_timeframes: Vec<&str> = provenance.normalisation.iter().map(|n| n.timeframe.as_str()).collect();
    for s in &series {
        let tf = timeframe_name(s);
        if !trained_timeframes.is_empty() && !trained_timeframes.contains(&tf.as_str()) {
            bail!(
                "{} has {tf} bars but the model was trained on {} bars; trade it on data of that timeframe",
                s.instrument,
                trained_timeframes.join("/")
            );
        }
    }
    let timeframe_ms = series[0].timeframe_or_inferred().map(|t| t.millis()).context(
        "the feed's timeframe cannot be told from its timestamps; declare it (data.instruments.NAME.timeframe)",
    )?;
    if let Some(other) = series
        .iter()
        .find(|s| s.timeframe_or_inferred().map(|t| t.millis()) != Some(timeframe_ms))
    {
        bail!(
            "{} has {} bars but {} has {}: one session trades one timeframe",
            other.instrument,
            timeframe_name(other),
            series[0].instrument,
            timeframe_name(&series[0])
        );
    }
    let markets = markets(series, &provenance.vocabulary, settings)?;
    for m in &markets {
        if m.data.feature_names != provenance.features {
            bail!(
                "the model observes {:?} but {} gives {:?}; trade with the model's feature settings",
                provenance.features,
                m.data.series.instrument,
                m.data.feature_names
            );
        }
    }
    let test_start = |m: &tradelab_agents::trainer::TrainingMarket| {
        let s = &m.data.series;
        s.ts.get(m.data.bars(Split::Test).start).copied().unwrap_or(i64::MAX)
    };
    let start_ts = spec
        .from
        .unwrap_or_else(|| markets.iter().map(test_start).max().unwrap_or(i64::MAX));
    let starts_in_sample = markets.iter().any(|m| start_ts < test_start(m));
    let mut feeds = Vec::with_capacity(markets.len());
    for m in &markets {
        let s = &m.data.series;
        let k = s.ts.partition_point(|t| *t < start_ts);
        if k >= s.len() {
            bail!(
                "nothing to replay: {} ends on {}, before the start",
                s.instrument,
                s.ts.last().map_or("-".into(), |t| format_date(*t))
            );
        }
        feeds.push(s.slice(k, s.len()));
    }
    let feed_refs: Vec<&BarSeries> = feeds.iter().collect();
    let env = settings.env_config();
    let decider_markets = markets
        .iter()
        .map(|m| AgentMarket::primed(Arc::clone(&m.data), m.key, &settings.features, start_ts))
        .collect();
    let decider = AgentDecider::new(agent, folder.to_path_buf(), decider_markets, &env);
    let broker = PaperBroker::new(&spec.account, env.engine.clone(), &feed_refs);
    let feed = ReplayFeed::new(feeds.clone(), &vec![0; feeds.len()], spec.speed);
    Ok(Parts {
        feeds,
        feed: SessionFeed::Replay(feed),
        broker: SessionBroker::Paper(Box::new(broker)),
        decider,
        start_ts,
        starts_in_sample,
        timeframe_ms,
        speed: spec.speed,
    })
}

/// Alpaca's live bars (from `spec.from` when resuming, else from now) into
/// the paper broker or Alpaca's account.
fn live_parts(settings: &Settings, agent: Box<dyn Agent + Send>, folder: &Path, spec: &PaperSpec) -> Result<Parts> {
    let live = live::live_markets(settings, agent.as_ref(), &spec.symbols, spec.from)?;
    let history: Vec<&BarSeries> = live.history.iter().collect();
    let broker = match spec.broker {
        BrokerChoice::Paper => SessionBroker::Paper(Box::new(PaperBroker::new(
            &spec.account,
            settings.env_config().engine.clone(),
            &history,
        ))),
        BrokerChoice::Alpaca => SessionBroker::Alpaca(Box::new(live.broker(settings, &spec.symbols)?)),
    };
    let feed = RecordingFeed::new(live.feed(settings, &spec.symbols)?, &history);
    let feeds = feed.series().to_vec();
    let env = settings.env_config();
    let start_ts = live.start_ts;
    let timeframe_ms = live.timeframe_ms;
    let decider = AgentDecider::new(agent, folder.to_path_buf(), live.markets, &env);
    Ok(Parts {
        feeds,
        feed: SessionFeed::Live(Box::new(feed)),
        broker,
        decider,
        start_ts,
        starts_in_sample: false,
        timeframe_ms,
        speed: 1.0,
    })
}

impl PreparedSession {
    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A receiver of the session's events as this process sends them to
    /// the in-process bus (none when they go to JetStream).
    pub fn subscribe_events(&self) -> std::sync::mpsc::Receiver<Arc<tradelab_bus::Event>> {
        self.local_bus.subscribe()
    }

    /// Runs the session to its end (the feed's, `stop`'s or a halting
    /// breaker's) and records how it ended.
    pub fn run(self, stop: &AtomicBool, mut on_event: impl FnMut(&SessionEvent<'_>)) -> Result<PaperTrading> {
        let PreparedSession {
            id,
            session_spec,
            feeds,
            mut feed,
            mut broker,
            mut decider,
            mut store_journal,
            resume_from,
            start_ts,
            starts_in_sample,
            url,
            lease_ms,
            model,
            publisher,
            local_bus: _,
        } = self;
        let recorded = store_journal.is_some();
        let mut memory_journal = MemoryJournal::default();
        let heartbeat = recorded.then(|| Heartbeat::start(url.clone(), id.clone(), lease_ms));
        let ran = {
            let mut session = Session::new(
                session_spec,
                feed.as_feed(),
                broker.as_broker(),
                &mut decider,
                match store_journal.as_mut() {
                    Some(j) => j as &mut dyn Journal,
                    None => &mut memory_journal,
                },
                &mut on_event,
            );
            if let Some(p) = &publisher {
                session = session.with_events(&p.publisher, &model, p.last_seq);
            }
            match &resume_from {
                Some((cp, orders)) => session.resume(cp.as_ref(), orders).map_err(anyhow::Error::new),
                None => Ok(()),
            }
            .and_then(|()| session.run(stop).map_err(anyhow::Error::new))
        };
        if let Some(h) = heartbeat {
            h.stop();
        }
        // Everything sent or spooled before the session is recorded as ended.
        let events = publisher.map(|p| (p.publisher.close(Duration::from_secs(30)), p.destination));
        let (status, reason) = match &ran {
            Ok(o) => (
                match o.end {
                    SessionEnd::Finished => SessionStatus::Finished,
                    SessionEnd::Stopped => SessionStatus::Stopped,
                    SessionEnd::Halted => SessionStatus::Halted,
                },
                o.reason.clone(),
            ),
            Err(e) => (SessionStatus::Failed, format!("{e:#}")),
        };
        if let Some(j) = &store_journal {
            j.block_on(j.store().end_trading_session(&id, status, &reason))
                .context("recording the end of the trading session")?;
        }
        let outcome = ran.with_context(|| {
            format!("trading session {id} failed; fix the cause, then `tradelab trade --resume {id}`")
        })?;
        let decisions = tradelab_trade::Decider::decisions(&decider);
        let name = tradelab_trade::Decider::name(&decider);
        let feeds = match feed {
            SessionFeed::Replay(_) => feeds,
            SessionFeed::Live(recorded) => recorded.into_series(),
        };
        let feed_refs: Vec<&BarSeries> = feeds.iter().collect();
        let result = match broker {
            SessionBroker::Paper(paper) => Some(paper.into_result(name, &feed_refs)),
            SessionBroker::Alpaca(_) => None,
        };
        Ok(PaperTrading {
            id,
            outcome,
            result,
            feeds,
            start_ts,
            starts_in_sample,
            decisions,
            recorded,
            events,
        })
    }
}

/// A random session id: 12 hex digits.
fn new_session_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Renews a session's lease while its loop waits for slow bars.
struct Heartbeat {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Heartbeat {
    fn start(url: String, id: String, lease_ms: i64) -> Heartbeat {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = crate::runtime::runtime() else {
                return;
            };
            let Ok(store) = runtime.block_on(Store::open(&url)) else {
                return;
            };
            let every = Duration::from_millis((lease_ms / 3).max(100) as u64);
            let mut waited = Duration::ZERO;
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                waited += Duration::from_millis(50);
                if waited >= every {
                    waited = Duration::ZERO;
                    let _ = runtime.block_on(store.heartbeat_trading_session(&id));
                }
            }
            runtime.block_on(store.close());
        });
        Heartbeat { done, thread }
    }

    fn stop(self) {
        self.done.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}
