//! `tradelab bench trading`: the trading loop in replay at full speed, on
//! the paper broker with the SMA crossover deciding (so the figures are the
//! loop's own cost: feed, validation, broker, breakers, journal):
//! - bar in to order out (p50, p99) and sustained bar updates per second,
//!   for 1 and 100 instruments, journal in memory and in SQLite;
//! - a simulated week of 1-minute bars for 100 instruments into SQLite,
//!   checkpointing every timestamp: resident memory and store size per
//!   simulated day.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use tradelab_app::trading::StoreJournal;
use tradelab_app::Settings;
use tradelab_core::{BarSeries, Timeframe};
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_sim::engine::EngineConfig;
use tradelab_sim::strategies::SmaCrossover;
use tradelab_trade::journal::{Journal, MemoryJournal};
use tradelab_trade::{
    Decider, JournalDurability, PaperBroker, ReplayFeed, Session, SessionEvent, SessionOutcome, SessionSpec,
    StrategyDecider, TradeSettings,
};

/// `n` seeded 1-minute markets of `bars` bars.
fn markets(n: usize, bars: usize, seed: u64) -> Vec<BarSeries> {
    (0..n)
        .map(|i| {
            generate(&SyntheticConfig {
                bars,
                seed: seed + i as u64,
                timeframe: Timeframe::MINUTE,
                instrument: format!("m{i:03}"),
                ..Default::default()
            })
            .series
        })
        .collect()
}

/// One session over `series`; `on_tick` sees each timestamp's count.
fn session(
    series: &[BarSeries],
    engine: &EngineConfig,
    trade: TradeSettings,
    journal: &mut dyn Journal,
    id: &str,
    mut on_tick: impl FnMut(u64),
) -> Result<SessionOutcome> {
    let feeds: Vec<&BarSeries> = series.iter().collect();
    let mut feed = ReplayFeed::new(feeds.clone(), &vec![0; feeds.len()], 0.0);
    let mut broker = PaperBroker::new("bench", engine.clone(), &feeds);
    let mut decider = StrategyDecider::new(SmaCrossover::new(10, 30, true));
    decider.start(&feeds);
    let spec = SessionSpec {
        id: id.into(),
        symbols: series.iter().map(|s| s.instrument.clone()).collect(),
        timeframe_ms: Timeframe::MINUTE.millis(),
        speed: 0.0,
        settings: trade,
    };
    let mut observe = |e: &SessionEvent<'_>| {
        if let SessionEvent::Tick { ticks, .. } = e {
            on_tick(*ticks)
        }
    };
    let s = Session::new(spec, &mut feed, &mut broker, &mut decider, journal, &mut observe);
    Ok(s.run(&AtomicBool::new(false))?)
}

/// Resident memory in MiB (Linux), NaN elsewhere.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .map_or(f64::NAN, |pages| pages * 4096.0 / (1 << 20) as f64)
}

/// Size of the SQLite database and its write-ahead log, in MiB.
fn db_mib(path: &std::path::Path) -> f64 {
    let size = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = path.with_extension("db-wal");
    (size(path.to_path_buf()) + size(wal)) as f64 / (1 << 20) as f64
}

/// An SQLite journal for a fresh session `id` in `dir`.
fn sqlite_journal(
    dir: &std::path::Path,
    id: &str,
    durability: JournalDurability,
) -> Result<(StoreJournal, std::path::PathBuf)> {
    let path = dir.join("bench.db");
    let url = format!("sqlite://{}", path.display());
    let j = StoreJournal::open(&url, id, durability)?;
    j.block_on(
        j.store()
            .start_trading_session(id, &format!("paper:{id}"), "sma", &serde_json::json!({}), 30_000),
    )?;
    Ok((j, path))
}

/// The broker the trading benchmarks run: the settings' own, with the
/// drawdown and daily-loss breakers off, since ending a session early would
/// flatter the figures (every bar is processed).
pub(super) fn every_bar_engine(settings: &Settings) -> EngineConfig {
    let mut engine = settings.engine_config();
    engine.risk.max_drawdown = 0.0;
    engine.risk.daily_loss_limit = 0.0;
    engine
}

/// A scratch folder of this process for benchmark `name`, created.
pub(super) fn scratch_dir(name: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tradelab-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

pub fn run(settings: &Settings, bars: usize, repeats: usize) -> Result<()> {
    let engine = every_bar_engine(settings);
    let scratch = scratch_dir("trading")?;
    let result = measure(settings, bars, repeats, &engine, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn measure(
    settings: &Settings,
    bars: usize,
    repeats: usize,
    engine: &EngineConfig,
    dir: &std::path::Path,
) -> Result<()> {
    let quiet = TradeSettings {
        checkpoint_every: 1_000_000_000,
        ..settings.trade.clone()
    };
    println!("median of {repeats} runs after a warm-up, one thread; the SMA crossover decides");
    // The journals, alternated run by run so the VM's load hits each alike:
    // in memory, and SQLite with each durability.
    let journals: [(&str, Option<JournalDurability>); 3] = [
        ("memory", None),
        ("sqlite", Some(JournalDurability::ProcessCrash)),
        ("sqlite_power_loss", Some(JournalDurability::PowerLoss)),
    ];
    for n in [1usize, 100] {
        // SQLite checkpoints every timestamp: 20k of them are plenty.
        let sqlite_per = (bars / n).clamp(200, 20_000);
        let memory_per = (bars / n).max(200);
        let memory_series = markets(n, memory_per, settings.seed);
        let sqlite_series = markets(n, sqlite_per, settings.seed);
        let mut times = vec![Vec::new(); journals.len()];
        let mut latency = vec![(0.0, 0.0); journals.len()];
        for r in 0..=repeats {
            for (k, (journal, durability)) in journals.iter().enumerate() {
                let id = format!("b{n}{journal}{r}");
                let start = Instant::now();
                let (outcome, per) = match durability {
                    None => (
                        session(
                            &memory_series,
                            engine,
                            quiet.clone(),
                            &mut MemoryJournal::default(),
                            &id,
                            |_| {},
                        )?,
                        memory_per,
                    ),
                    Some(d) => {
                        let (mut j, _) = sqlite_journal(dir, &id, *d)?;
                        let trade = settings.trade.clone();
                        (session(&sqlite_series, engine, trade, &mut j, &id, |_| {})?, sqlite_per)
                    }
                };
                if r > 0 {
                    times[k].push(start.elapsed().as_secs_f64());
                }
                latency[k] = outcome.latency_us;
                anyhow::ensure!(
                    outcome.ticks as usize == per,
                    "the session ended after {} of {per} timestamps: {}",
                    outcome.ticks,
                    outcome.reason
                );
            }
        }
        for (k, (journal, durability)) in journals.iter().enumerate() {
            let per = if durability.is_some() { sqlite_per } else { memory_per };
            times[k].sort_by(f64::total_cmp);
            let med = times[k][times[k].len() / 2];
            println!(
                "{{\"bench\":\"trading_loop\",\"instruments\":{n},\"bars_each\":{per},\"journal\":\"{journal}\",\"checkpoint_every\":{},\"median_s\":{med:.4},\"updates_per_s\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
                if durability.is_some() { settings.trade.checkpoint_every } else { 0 },
                (n * per) as f64 / med,
                latency[k].0,
                latency[k].1
            );
        }
    }
    // A simulated week of 1-minute bars, 100 instruments, into SQLite.
    let day = 1440usize;
    let series = markets(100, 7 * day, settings.seed);
    let (mut j, path) = sqlite_journal(dir, "week", settings.trade.journal_durability)?;
    let mut days = vec![(rss_mib(), db_mib(&path))];
    let start = Instant::now();
    let outcome = session(&series, engine, settings.trade.clone(), &mut j, "week", |ticks| {
        if (ticks as usize).is_multiple_of(day) {
            days.push((rss_mib(), db_mib(&path)));
        }
    })?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        outcome.ticks as usize == 7 * day,
        "the week ended after {} timestamps: {}",
        outcome.ticks,
        outcome.reason
    );
    for (d, w) in days.windows(2).enumerate() {
        println!(
            "{{\"bench\":\"trading_week\",\"day\":{},\"rss_mib\":{:.1},\"rss_growth_mib\":{:+.2},\"store_mib\":{:.2},\"store_growth_mib\":{:+.2}}}",
            d + 1,
            w[1].0,
            w[1].0 - w[0].0,
            w[1].1,
            w[1].1 - w[0].1
        );
    }
    println!(
        "{{\"bench\":\"trading_week_total\",\"instruments\":100,\"bars_each\":{},\"seconds\":{secs:.1},\"updates_per_s\":{:.0},\"orders\":{},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        7 * day,
        (100 * 7 * day) as f64 / secs,
        outcome.orders_sent,
        outcome.latency_us.0,
        outcome.latency_us.1
    );
    Ok(())
}
