//! `tradelab trade`: paper-trades a trained model on a replayed feed and
//! prints its fills as they happen, then the session's report.

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};
use tradelab_agents::load::load_agent;
use tradelab_app::markets::{load_series, markets};
use tradelab_app::paper::{paper_replay, PaperEvent, Replay};
use tradelab_core::time::format_date;
use tradelab_data::load::timestamp::TimestampFormat;
use tradelab_sim::report::render_report;

use crate::cli::{GlobalArgs, TradeArgs};
use crate::context::{load_settings, model_settings};
use crate::output::{build_report, style, write_report};

pub fn run(g: &GlobalArgs, a: &TradeArgs) -> Result<()> {
    if a.feed != "replay" {
        bail!(
            "--feed {}: only `replay` exists yet (a live feed needs a broker's market-data stream, which is still to be built)",
            a.feed
        );
    }
    if a.broker != "paper" {
        bail!(
            "--broker {}: only `paper` exists yet (a real broker's API is still to be built)",
            a.broker
        );
    }
    if a.symbols.len() != 1 {
        bail!("one --symbol per paper session for now; start one session per instrument");
    }
    let from = match &a.from {
        Some(day) => Some(
            TimestampFormat::Iso
                .parse(day.as_bytes())
                .with_context(|| format!("--from {day}: expected a date like 2013-01-02"))?,
        ),
        None => None,
    };
    let current = load_settings(g, &[])?;
    let folder = super::models::model_folder(g, &a.model)?;
    let mut agent = load_agent(&folder).with_context(|| format!("opening model {}", a.model.display()))?;
    let mut settings = model_settings(&agent.provenance().settings, &current)?;
    settings.report.out_dir = match &a.out_dir {
        Some(dir) => dir.clone(),
        None => crate::output::run_folder(&settings.report.out_dir, "trade", &settings)?,
    };
    let series = load_series(&settings, &a.symbols, None, g.verbose)?;
    if series.len() != 1 {
        bail!(
            "`{}` has {} series (timeframes); name one file",
            a.symbols[0],
            series.len()
        );
    }
    let market = markets(series, &agent.provenance().vocabulary, &settings)?.remove(0);
    if market.data.feature_names != agent.provenance().features {
        bail!(
            "the model observes {:?} but this data gives {:?}; trade with the model's feature settings",
            agent.provenance().features,
            market.data.feature_names
        );
    }
    let env = settings.env_config();
    let instrument = market.data.series.instrument.clone();
    let trained_until = market.data.bars(tradelab_env::Split::Test).start;
    eprintln!(
        "paper session: {} on {instrument} ({}), replay at {}, paper broker (fill {}, fees {}/{} {}), Ctrl-C stops it",
        agent.kind(),
        tradelab_app::markets::timeframe_name(&market.data.series),
        if a.speed > 0.0 {
            format!("{}x real time", a.speed)
        } else {
            "full speed".into()
        },
        settings.backtest.fill.name(),
        settings.backtest.costs.entry_fixed,
        settings.backtest.costs.exit_fixed,
        settings.backtest.currency
    );
    let interrupt = crate::interrupt::install();
    let terminal = std::io::stderr().is_terminal();
    let outcome = paper_replay(
        agent.as_mut(),
        &market,
        &env,
        Replay { from, speed: a.speed },
        Some(interrupt),
        |event| match event {
            PaperEvent::Fill(f) => println!(
                "{}  {:<11} {:<20} {:>+12.4} @ {:>12.4}  fee {:>7.2}",
                format_date(f.ts),
                f.action.as_str(),
                instrument,
                match f.side {
                    tradelab_core::Side::Buy => f.qty,
                    tradelab_core::Side::Sell => -f.qty,
                },
                f.price,
                f.fee
            ),
            PaperEvent::Bar { index, ts, equity } if terminal && index % 50 == 0 => {
                eprint!("\r{}  equity {equity:.2}   ", format_date(ts));
            }
            PaperEvent::Bar { .. } => {}
        },
    )?;
    if terminal {
        eprintln!();
    }
    if outcome.start < trained_until {
        eprintln!(
            "warning: the replay starts before the test split: the model was trained or selected on some of these bars"
        );
    }
    let (_, report) = build_report(&outcome.result, &settings);
    let feed = market
        .data
        .series
        .slice(outcome.start, outcome.start + outcome.result.equity.len());
    write_report(&settings.report.out_dir, &report, &outcome.result, &[&feed])?;
    println!("{}", render_report(&report, style()));
    println!(
        "{} bars, {} decisions, {} fills; bar in to order out: p50 {:.0} µs, p99 {:.0} µs; report: {}/",
        outcome.result.equity.len(),
        outcome.decisions,
        outcome.result.fills.len(),
        outcome.latency_us.0,
        outcome.latency_us.1,
        settings.report.out_dir.display()
    );
    if outcome.interrupted {
        eprintln!("interrupted: the session stopped after the bar in progress; the report covers the bars traded");
        std::process::exit(130);
    }
    Ok(())
}
