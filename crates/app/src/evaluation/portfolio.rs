//! Every evaluated market traded by the model in one account, beside
//! buy-and-hold of the same instruments in one account.

use anyhow::{bail, Context, Result};
use tradelab_agents::evaluate::{AgentStrategy, TradedMarket};
use tradelab_agents::trainer::TrainingMarket;
use tradelab_agents::Agent;
use tradelab_core::time::format_date;
use tradelab_core::BarSeries;
use tradelab_sim::engine;
use tradelab_sim::metrics::periods_per_year;
use tradelab_sim::stats::sharpe::BootstrapSettings;
use tradelab_sim::strategies::baseline;

use super::{run_statistics, Emit, EvaluatedRun, EvaluationPlan};
use crate::markets::build_report;
use crate::Settings;

/// The markets traded from the latest start of their splits (every bar
/// out of sample for each), sized by `backtest.sizing`, against
/// buy-and-hold under the same sizing.
pub(super) fn portfolio(
    agent: &mut (dyn Agent + Send),
    markets: &[TrainingMarket],
    settings: &Settings,
    plan: &EvaluationPlan,
    boot: &BootstrapSettings,
    output: &mut Emit<'_>,
) -> Result<EvaluatedRun> {
    let split = plan.split;
    if markets.len() < 2 {
        bail!("--portfolio trades several instruments in one account: name at least two with --symbol");
    }
    let first_bar = |m: &TrainingMarket| m.data.series.ts[m.data.bars(split).start];
    let start_ts = markets.iter().map(first_bar).max().unwrap_or_default();
    let mut slices = Vec::with_capacity(markets.len());
    let mut offsets = Vec::with_capacity(markets.len());
    for m in markets {
        let range = m.data.bars(split);
        let s = &m.data.series;
        let k = range.start + s.ts[range.clone()].partition_point(|t| *t < start_ts);
        if k + 2 > range.end {
            bail!(
                "{}'s {} split ends ({}) before the others' begins ({}): --portfolio needs splits that overlap",
                s.instrument,
                split.name(),
                format_date(s.ts[range.end - 1]),
                format_date(start_ts)
            );
        }
        slices.push(s.slice(k, range.end));
        offsets.push(k);
    }
    let traded = markets
        .iter()
        .zip(&offsets)
        .map(|(m, &offset)| TradedMarket {
            data: m.data.as_ref(),
            key: m.key,
            offset,
        })
        .collect();
    let feeds: Vec<&BarSeries> = slices.iter().collect();
    let cfg = settings.engine_config();
    let mut strategy = AgentStrategy::for_markets(agent, traded, &settings.env_config());
    let result = engine::run(&feeds, &mut strategy, &cfg);
    if let Some(e) = strategy.error.take() {
        return Err(e).context("the model failed while deciding");
    }
    let folder = Some("portfolio");
    let (_, model) = build_report(&result, settings);
    output(folder, &model, &result, &feeds)?;
    let mut hold = baseline("buy_and_hold", &settings.strategies).expect("buy-and-hold exists");
    let held = engine::run(&feeds, hold.as_mut(), &cfg);
    let (_, held_report) = build_report(&held, settings);
    output(folder, &held_report, &held, &feeds)?;
    let sizing = serde_json::to_value(settings.backtest.sizing.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let label = format!(
        "portfolio of {} ({sizing} sizing) {}..{}",
        feeds
            .iter()
            .map(|f| f.instrument.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        model.start_date,
        model.end_date
    );
    let per_year = periods_per_year(&slices[0]);
    let (statistics, stored_statistics) = run_statistics(label, &result, &model, &held, per_year, plan, boot);
    Ok(EvaluatedRun {
        model,
        baselines: vec![held_report],
        statistics,
        stored_statistics,
    })
}
