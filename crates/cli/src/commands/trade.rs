//! `tradelab trade`: trades a trained model on several instruments in one
//! account, on replayed bars or Alpaca's live ones, through the paper
//! broker or Alpaca's account, printing fills, breaker changes and restarts
//! as they happen, then the session's report. `--resume ID` picks a stopped
//! or killed session up from its last checkpoint.

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};
use tradelab_agents::load::load_agent;
use tradelab_app::trading::{paper_trade, stored_session, BrokerChoice, FeedChoice, PaperSpec};
use tradelab_core::time::format_date;
use tradelab_core::Side;
use tradelab_data::load::timestamp::TimestampFormat;
use tradelab_sim::report::render_report;
use tradelab_trade::{SessionEnd, SessionEvent};

use crate::cli::{GlobalArgs, TradeArgs};
use crate::context::{load_settings, model_settings};
use crate::output::{build_report, style, write_report};

/// The session's spec from the flags, or from the store for `--resume`.
fn spec_of(g: &GlobalArgs, a: &TradeArgs) -> Result<PaperSpec> {
    if let Some(id) = &a.resume {
        let settings = load_settings(g, &[])?;
        let (record, mut spec) = stored_session(&settings, id)?;
        if record.status == tradelab_store::trading::SessionStatus::Finished {
            bail!("trading session {id} finished (its feed ended); start a new one");
        }
        if a.speed != 0.0 {
            spec.speed = a.speed;
        }
        return Ok(spec);
    }
    let Some(model) = &a.model else {
        bail!("--model is needed (a checkpoint folder or a registered model), or --resume ID to pick a session up");
    };
    if a.symbols.is_empty() {
        bail!("--symbol is needed: the instrument(s) to trade");
    }
    let feed = FeedChoice::parse(&a.feed)?;
    let broker = BrokerChoice::parse(&a.broker)?;
    if feed == FeedChoice::Alpaca && (a.from.is_some() || a.speed != 0.0) {
        bail!("--from and --speed replay history; a live feed (--feed alpaca) trades from now at real time");
    }
    let from = match &a.from {
        Some(day) => Some(
            TimestampFormat::Iso
                .parse(day.as_bytes())
                .with_context(|| format!("--from {day}: expected a date like 2013-01-02"))?,
        ),
        None => None,
    };
    Ok(PaperSpec {
        model: model.display().to_string(),
        symbols: a.symbols.clone(),
        from,
        speed: a.speed,
        account: a.account.clone(),
        feed,
        broker,
    })
}

pub fn run(g: &GlobalArgs, a: &TradeArgs) -> Result<()> {
    let spec = spec_of(g, a)?;
    let current = load_settings(g, &[])?;
    let folder = super::models::model_folder(g, std::path::Path::new(&spec.model))?;
    let agent = load_agent(&folder).with_context(|| format!("opening model {}", spec.model))?;
    let mut settings = model_settings(&agent.provenance().settings, &current)?;
    // The session's breakers and store are today's, not the training run's.
    settings.trade = current.trade.clone();
    settings.store = current.store.clone();
    let feed = match spec.feed {
        FeedChoice::Replay if spec.speed > 0.0 => format!("replay at {}x real time", spec.speed),
        FeedChoice::Replay => "replay at full speed".into(),
        FeedChoice::Alpaca => format!("Alpaca's live bars ({})", settings.trade.alpaca.source),
    };
    let broker = match spec.broker {
        BrokerChoice::Paper => format!(
            "account paper:{}, paper broker (fill {}, fees {}/{} {})",
            spec.account,
            settings.backtest.fill.name(),
            settings.backtest.costs.entry_fixed,
            settings.backtest.costs.exit_fixed,
            settings.backtest.currency
        ),
        BrokerChoice::Alpaca => format!("Alpaca's account at {}", settings.trade.alpaca.trading_url),
    };
    eprintln!(
        "trading session: {} on {}, {feed}, {broker}; Ctrl-C stops it",
        agent.kind(),
        spec.symbols
            .iter()
            .map(|s| symbol_name(s))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let interrupt =
        crate::interrupt::install("\ninterrupted: stopping after the bar in progress (Ctrl-C again to quit at once)\n");
    let terminal = std::io::stderr().is_terminal();
    let traded = paper_trade(
        &settings,
        agent,
        &folder,
        &spec,
        a.resume.as_deref(),
        interrupt,
        |event| print_event(event, terminal),
    )?;
    if terminal {
        eprintln!();
    }
    if traded.starts_in_sample {
        eprintln!(
            "warning: the replay starts before the test split: the model was trained or selected on some of these bars"
        );
    }
    let o = &traded.outcome;
    match &traded.result {
        Some(result) => {
            // The report's folder is made once there is a session to
            // report: a refused start leaves no empty folder behind (nor
            // `latest` on one).
            settings.report.out_dir = match &a.out_dir {
                Some(dir) => dir.clone(),
                None => crate::output::run_folder(&settings.report.out_dir, "trade", &settings)?,
            };
            let (_, report) = build_report(result, &settings);
            let feeds: Vec<&tradelab_core::BarSeries> = traded.feeds.iter().collect();
            write_report(&settings.report.out_dir, &report, result, &feeds)?;
            println!("{}", render_report(&report, style()));
            println!(
                "{} bars, {} decisions, {} fills; bar in to order out: p50 {:.1} µs, p99 {:.1} µs; report: {}/",
                result.equity.len(),
                traded.decisions,
                result.fills.len(),
                o.latency_us.0,
                o.latency_us.1,
                settings.report.out_dir.display()
            );
        }
        // Alpaca keeps the account: its statement is the report.
        None => println!(
            "{} timestamps, {} decisions, {} orders sent, equity {:.2}; bar in to order out: p50 {:.1} µs, p99 {:.1} µs; the account's statement is Alpaca's",
            o.ticks, traded.decisions, o.orders_sent, o.checkpoint.equity, o.latency_us.0, o.latency_us.1
        ),
    }
    if traded.recorded {
        println!("session {}: {}", traded.id, o.reason);
    }
    if let Some((stats, destination)) = &traded.events {
        println!(
            "events: {} published to {destination}, {} waiting in the spool, {} dropped{}",
            stats.published,
            stats.waiting,
            stats.dropped,
            if stats.waiting > 0 {
                "; the next session or `tradelab trade --resume` sends what waits"
            } else {
                ""
            }
        );
        if stats.dropped > 0 {
            eprintln!(
                "warning: {} events were lost to the audit trail ({}); see bus.spool_max_mb",
                stats.dropped,
                stats.last_error.as_deref().unwrap_or("no reason recorded")
            );
        }
    }
    match o.end {
        SessionEnd::Finished => Ok(()),
        SessionEnd::Halted => {
            eprintln!(
                "halted: {}; after a look, `tradelab trade --resume {}` trades on",
                o.reason, traded.id
            );
            std::process::exit(3);
        }
        SessionEnd::Stopped => {
            eprintln!(
                "interrupted: the session stopped after the bar in progress; the report covers the bars traded; `tradelab trade --resume {}` goes on",
                traded.id
            );
            std::process::exit(130);
        }
    }
}

/// A symbol as the header names it: a file by its stem.
fn symbol_name(symbol: &str) -> &str {
    let path = std::path::Path::new(symbol);
    match path.extension() {
        Some(_) => path.file_stem().and_then(|s| s.to_str()).unwrap_or(symbol),
        None => symbol,
    }
}

fn print_event(event: &SessionEvent<'_>, terminal: bool) {
    match event {
        SessionEvent::Fill { symbol, fill: f } => println!(
            "{}  {:<11} {:<20} {:>+12.4} @ {:>12.4}  fee {:>7.2}",
            format_date(f.ts),
            f.action.as_str(),
            symbol,
            match f.side {
                Side::Buy => f.qty,
                Side::Sell => -f.qty,
            },
            f.price,
            f.fee
        ),
        SessionEvent::Breaker {
            transition,
            policy,
            reason,
        } => eprintln!(
            "breaker {}: {} -> {} ({}): {reason}",
            transition.kind.name(),
            transition.from.name(),
            transition.to.name(),
            policy.name()
        ),
        SessionEvent::Restart { component, ok, detail } => {
            eprintln!("restart {component}: {} ({detail})", if *ok { "ok" } else { "failed" })
        }
        SessionEvent::Reconciled { differences: [] } => {
            eprintln!("resumed: the broker's positions match the checkpoint")
        }
        SessionEvent::Reconciled { differences } => {
            for (symbol, was, now) in differences.iter() {
                eprintln!("reconciled {symbol}: checkpoint {was}, broker {now} (the broker's kept)");
            }
        }
        SessionEvent::Order {
            outcome: Err(e),
            symbol,
            ..
        } => eprintln!("order on {symbol} refused: {e}"),
        SessionEvent::Order { .. } => {}
        SessionEvent::Tick { ts, equity, ticks } if terminal && ticks % 50 == 0 => {
            eprint!("\r{}  equity {equity:.2}   ", format_date(*ts));
        }
        SessionEvent::Tick { .. } => {}
    }
}
