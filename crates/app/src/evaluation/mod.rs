//! Evaluating trained models out of sample: a model, greedily, through the
//! backtesting engine on its test (or validation) split, optionally in
//! consecutive folds, next to buy-and-hold, the SMA crossover, the
//! volatility-targeted baselines and the supervised baselines (logistic
//! regression, boosted trees) fitted on the train split, under the same
//! costs and risk layer. Each run's Sharpe ratio comes with a
//! stationary-bootstrap interval, its difference from buy-and-hold's with
//! an interval and p-value, and the deflated Sharpe ratio for the trials it
//! took to find the model.
//!
//! `tradelab evaluate` and the evaluation jobs the dashboard starts share
//! this; the command line prints and writes files, [`stored`] turns the
//! result into the backtests the store keeps.

mod portfolio;
mod sampled;
pub mod stored;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tradelab_agents::complexity::{mean_segments, segments_by_turbulence, TURBULENCE_BARS};
use tradelab_agents::ensemble::Ensemble;
use tradelab_agents::evaluate::AgentStrategy;
use tradelab_agents::kinds::{GBT, LOGREG};
use tradelab_agents::load::load_agent;
use tradelab_agents::metadata::Provenance;
use tradelab_agents::supervised::{fit_gbt, fit_logistic};
use tradelab_agents::trainer::{Scoring, TrainingMarket};
use tradelab_agents::Agent;
use tradelab_core::time::format_date;
use tradelab_core::BarSeries;
use tradelab_env::{ActionSpace, Split};
use tradelab_sim::engine::{self, BacktestResult};
use tradelab_sim::metrics::periods_per_year;
use tradelab_sim::report::BacktestReport;
use tradelab_sim::stats::sharpe::BootstrapSettings;
use tradelab_sim::stats::{compare, Comparison};
use tradelab_sim::strategies::baseline;

pub use sampled::SampledPaths;

use crate::backtest_statistics::BacktestStatistics;
use crate::data_sources::{recorded_symbols, RecordedSymbols};
use crate::markets::{build_report, data_hash, load_series, markets, timeframe_name};
use crate::registry::LocatedCheckpoint;
use crate::settings::model_settings;
use crate::walk_forward::max_drawdown_pct;
use crate::Settings;

/// The baselines every model is compared with: buy-and-hold first (the
/// statistics compare with it), the SMA crossover, and the two a sceptic
/// asks for, volatility-targeted buy-and-hold and time-series momentum.
pub const COMPARED: [&str; 4] = [
    "buy_and_hold",
    "sma_crossover",
    "buy_and_hold_vol_target",
    "momentum_vol_target",
];

/// What to evaluate on and how: the choices of `tradelab evaluate`.
#[derive(Debug, Clone)]
pub struct EvaluationPlan {
    /// Test (the default) or validation.
    pub split: Split,
    /// Consecutive folds of the split, each from a fresh account.
    pub folds: usize,
    /// Models or settings tried to arrive at this one: the deflated Sharpe
    /// ratio discounts the luck of the best of them.
    pub trials: usize,
    /// The spread of the annualised Sharpe ratios those trials reached.
    pub trial_sharpe_std: f64,
    /// Seeded paths of the sampled policy beside the greedy pass (0: none).
    pub paths: usize,
    /// Evaluate on bars `tradelab adapt` learnt from (the report says so).
    pub allow_seen_bars: bool,
    /// Also trade every instrument in one account.
    pub portfolio: bool,
}

impl Default for EvaluationPlan {
    fn default() -> Self {
        EvaluationPlan {
            split: Split::Test,
            folds: 1,
            trials: 1,
            trial_sharpe_std: 0.0,
            paths: 0,
            allow_seen_bars: false,
            portfolio: false,
        }
    }
}

/// A split by name, as the command line and jobs give it.
pub fn parse_split(name: &str) -> Result<Split> {
    match name {
        "test" => Ok(Split::Test),
        "validation" => Ok(Split::Validation),
        other => bail!("unknown split `{other}`; use test or validation"),
    }
}

impl EvaluationPlan {
    /// Refuses a plan that cannot give honest figures, saying what to change.
    pub fn check(&self) -> Result<()> {
        if self.folds == 0 {
            bail!("--folds must be at least 1");
        }
        if self.portfolio && self.folds > 1 {
            bail!("--portfolio trades the split once in one account; drop --folds");
        }
        if self.trials == 0 {
            bail!("--trials must be at least 1 (the number of models or settings tried before this one)");
        }
        if self.trials > 1 && !(self.trial_sharpe_std > 0.0 && self.trial_sharpe_std.is_finite()) {
            bail!(
                "--trials {} needs --trial-sharpe-std: the spread of the annualised Sharpe ratios those trials reached",
                self.trials
            );
        }
        Ok(())
    }
}

/// The model's figures on one run (market and fold) with their uncertainty,
/// against buy-and-hold over the same bars.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatistics {
    /// Instrument, dates and fold.
    pub run: String,
    /// Positions the model opened: 0 means it stayed flat.
    pub entries: usize,
    /// Round trips it closed.
    pub closed_trades: usize,
    /// Annualised from under three months or 30 bars (issue 20): the
    /// Sharpe ratios are noise, and the report says so.
    pub short_sample: bool,
    /// Total return of the model, in percent.
    pub model_return_pct: f64,
    /// Maximum drawdown of the model, in percent.
    pub model_max_drawdown_pct: f64,
    /// Total return of buy-and-hold over the same bars, in percent.
    pub benchmark_return_pct: f64,
    /// Maximum drawdown of buy-and-hold, in percent.
    pub benchmark_max_drawdown_pct: f64,
    /// Sharpe ratios with intervals, their difference, the deflated Sharpe ratio.
    #[serde(flatten)]
    pub comparison: Comparison,
    /// The sampled policy over seeded paths (absent without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled: Option<SampledPaths>,
}

/// One run of the model and what it is compared with over the same bars.
#[derive(Debug, Clone)]
pub struct EvaluatedRun {
    /// The model's report.
    pub model: BacktestReport,
    /// The baselines' reports, in [`COMPARED`] order, then the supervised ones.
    pub baselines: Vec<BacktestReport>,
    /// The model against buy-and-hold.
    pub statistics: RunStatistics,
    /// The same in the form a stored backtest carries.
    pub stored_statistics: BacktestStatistics,
}

/// A finished evaluation: every run, and what the reader must know about it.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The model's kind (`ppo-lstm`, `logreg`, ...).
    pub kind: String,
    /// The split evaluated.
    pub split: Split,
    /// Instruments the model never saw (traded through its unknown-instrument embedding).
    pub unseen: Vec<String>,
    /// Stretches of the split the model learnt from (empty unless allowed).
    pub seen_bars: Vec<String>,
    /// One per market and fold, then the portfolio run if asked for.
    pub runs: Vec<EvaluatedRun>,
    /// Reasoning segments per decision, for models with adaptive computation.
    pub segments: Option<serde_json::Value>,
}

impl Evaluation {
    /// Every report in the order the comparison table shows them.
    pub fn reports(&self) -> Vec<&BacktestReport> {
        self.runs
            .iter()
            .flat_map(|r| std::iter::once(&r.model).chain(r.baselines.iter()))
            .collect()
    }
}

/// Where a run's reports belong: the fold's or the portfolio's own folder
/// when there are several, with the series traded. The command line writes
/// them there; the store does not need it.
pub struct RunOutput<'r, 'a> {
    /// `fold-N` or `portfolio`, or `None` for the run's folder itself.
    pub folder: Option<&'r str>,
    /// The report made from `result`.
    pub report: &'r BacktestReport,
    /// The engine's result.
    pub result: &'r BacktestResult<'a>,
    /// The series backtested, in the engine's order.
    pub feeds: &'r [&'r BarSeries],
    /// Reports made so far, this one included, of `total`: the
    /// evaluation's progress.
    pub done: usize,
    /// Reports the evaluation makes in all.
    pub total: usize,
}

/// Opens the models (several decide together as an ensemble).
pub fn open_models(models: &[LocatedCheckpoint]) -> Result<Box<dyn Agent + Send>> {
    let mut members = Vec::with_capacity(models.len());
    for model in models {
        members.push(load_agent(&model.folder).with_context(|| format!("opening model {}", model.label()))?);
    }
    if members.len() == 1 {
        return Ok(members.remove(0));
    }
    let n = members.len();
    Ok(Box::new(
        Ensemble::new(members).with_context(|| format!("building an ensemble of the {n} models"))?,
    ))
}

/// The settings an evaluation runs under: the model's own (features,
/// window, environment) over `current` (costs, data folders, store).
pub fn evaluation_settings(agent: &dyn Agent, current: &Settings) -> Result<Settings> {
    model_settings(&agent.provenance().settings, current)
}

/// Evaluates `agent` on `symbols` (default: the markets it was trained on)
/// under `settings`, handing every run's report to `output` as it is made.
pub fn evaluate(
    agent: &mut (dyn Agent + Send),
    settings: &mut Settings,
    symbols: &[String],
    plan: &EvaluationPlan,
    verbose: bool,
    output: &mut dyn FnMut(RunOutput<'_, '_>) -> Result<()>,
) -> Result<Evaluation> {
    plan.check()?;
    agent.take_segment_counts();
    let split = plan.split;
    let mut recorded = RecordedSymbols::default();
    let symbols: Vec<String> = if symbols.is_empty() {
        // The files the model was trained on, found by path or by content;
        // where paths are not allowed (jobs), instrument names in the data
        // folders only (issue 19 finding 12).
        let p = agent.provenance();
        recorded = recorded_symbols(&p.data, settings, &p.vocabulary.instruments)?;
        settings.data.symbol_paths = settings.data.symbol_paths && p.data.iter().any(|d| d.source.is_some());
        recorded.symbols.clone()
    } else {
        symbols.to_vec()
    };
    let trained_on = agent.provenance().data.clone();
    let vocabulary = agent.provenance().vocabulary.clone();
    let mut series = load_series(settings, &symbols, None, verbose)?;
    recorded.rename(&mut series);
    // A market the model trained on, or (for a model with an
    // unknown-instrument embedding) an unseen instrument on a timeframe it knows.
    series.retain(|s| {
        let tf = timeframe_name(s);
        trained_on.is_empty()
            || trained_on
                .iter()
                .any(|h| h.instrument == s.instrument && h.timeframe == tf)
            || (vocabulary.unknown_instrument
                && !vocabulary.knows(&s.instrument)
                && vocabulary.timeframes.contains(&tf))
    });
    if series.is_empty() {
        bail!(
            "none of the requested series matches the model's markets {:?}{}",
            trained_on
                .iter()
                .map(|h| format!("{} {}", h.instrument, h.timeframe))
                .collect::<Vec<_>>(),
            if vocabulary.unknown_instrument {
                ""
            } else {
                " (the model has no unknown-instrument embedding for others: train it with ppo.instrument_dropout above 0, or --holdout)"
            }
        );
    }
    let unseen: Vec<String> = series
        .iter()
        .filter(|s| !vocabulary.knows(&s.instrument))
        .map(|s| s.instrument.clone())
        .collect();
    for name in &unseen {
        eprintln!("note: the model never saw {name}: it trades it through its learnt unknown-instrument embedding");
    }
    for s in &series {
        let h = data_hash(s);
        if let Some(t) = trained_on
            .iter()
            .find(|t| t.instrument == h.instrument && t.timeframe == h.timeframe)
        {
            if t.sha256 != h.sha256 {
                eprintln!(
                    "note: {} {} differs from the data the model was trained on ({} bars {}..{} then, {} bars {}..{} now); normalisation is refitted on this data's training split",
                    h.instrument, h.timeframe, t.bars, t.first, t.last, h.bars, h.first, h.last
                );
            }
        }
    }
    let markets = markets(series, &agent.provenance().vocabulary, settings)?;
    let seen_bars = seen_bars(agent.provenance(), &markets, split);
    if !seen_bars.is_empty() {
        let list = seen_bars.join("; ");
        if !plan.allow_seen_bars {
            bail!(
                "the {} split overlaps bars the model learnt from or was selected on in `tradelab adapt` ({list}): its figures would not be out of sample; evaluate on data after those bars, or pass --allow-seen-bars to evaluate anyway (the report then says so)",
                split.name()
            );
        }
        eprintln!("warning: evaluating on bars the model has seen ({list}): these figures are not out of sample");
    }
    for m in &markets {
        if m.data.feature_names != agent.provenance().features {
            bail!(
                "feature mismatch: the model was trained on {:?} but the data gives {:?}; evaluate with the model's feature settings",
                agent.provenance().features,
                m.data.feature_names
            );
        }
    }

    let settings: &Settings = settings;
    let cfg = settings.engine_config();
    let boot = BootstrapSettings {
        seed: settings.seed,
        ..Default::default()
    };
    // The supervised baselines, fitted on these markets' train splits and
    // chosen on their validation splits, traded beside the agent.
    let mut target_env = settings.env_config();
    target_env.env.actions = ActionSpace::Target;
    let scoring = Scoring::from_settings(&settings.ppo);
    let mut supervised: Vec<Box<dyn Agent + Send>> = Vec::new();
    if agent.kind() != LOGREG {
        let (l, _) = fit_logistic(&markets, &target_env, &settings.logreg, scoring)
            .context("fitting the logistic-regression baseline")?;
        supervised.push(Box::new(l));
    }
    if agent.kind() != GBT {
        let (b, _) =
            fit_gbt(&markets, &target_env, &settings.gbt, scoring).context("fitting the boosted-trees baseline")?;
        supervised.push(Box::new(b));
    }
    let per_run = 1 + COMPARED.len() + supervised.len();
    let mut progress = Progress {
        done: 0,
        total: markets.len() * plan.folds * per_run + if plan.portfolio { 2 } else { 0 },
    };
    let mut emit =
        |folder: Option<&str>, report: &BacktestReport, result: &BacktestResult<'_>, feeds: &[&BarSeries]| {
            progress.done += 1;
            output(RunOutput {
                folder,
                report,
                result,
                feeds,
                done: progress.done,
                total: progress.total,
            })
        };
    let mut runs = Vec::new();
    for m in &markets {
        let range = m.data.bars(split);
        let fold_len = range.len() / plan.folds;
        if fold_len < 2 {
            bail!(
                "{}: the {} split has {} bars, too few for {} folds; use fewer --folds",
                m.data.series.instrument,
                split.name(),
                range.len(),
                plan.folds
            );
        }
        for f in 0..plan.folds {
            let start = range.start + f * fold_len;
            let end = if f + 1 == plan.folds {
                range.end
            } else {
                start + fold_len
            };
            let slice = m.data.series.slice(start, end);
            let feeds = [&slice];
            let fold_name = format!("fold-{}", f + 1);
            let folder = (plan.folds > 1).then_some(fold_name.as_str());
            let mut strategy = AgentStrategy::new(&mut *agent, &m.data, m.key, start, &settings.env_config());
            let result = engine::run(&feeds, &mut strategy, &cfg);
            if let Some(e) = strategy.error.take() {
                return Err(e).context("the model failed while deciding");
            }
            let (_, model) = build_report(&result, settings);
            emit(folder, &model, &result, &feeds)?;
            let label = format!(
                "{} {}..{}{}",
                m.data.series.instrument,
                model.start_date,
                model.end_date,
                if plan.folds > 1 {
                    format!(" (fold {})", f + 1)
                } else {
                    String::new()
                }
            );
            let per_year = periods_per_year(&slice);
            let sampled = (plan.paths > 0)
                .then(|| sampled::sampled_paths(&mut *agent, m, start, &slice, settings, plan.paths, per_year))
                .transpose()?;
            let mut baselines = Vec::new();
            let mut compared = None;
            for name in COMPARED {
                let mut b = baseline(name, &settings.strategies).expect("compared baselines exist");
                let held = engine::run(&feeds, b.as_mut(), &cfg);
                if name == "buy_and_hold" {
                    compared = Some(run_statistics(
                        label.clone(),
                        &result,
                        &model,
                        &held,
                        per_year,
                        plan,
                        &boot,
                    ));
                }
                let (_, report) = build_report(&held, settings);
                emit(folder, &report, &held, &feeds)?;
                baselines.push(report);
            }
            for l in supervised.iter_mut() {
                let mut s = AgentStrategy::new(l.as_mut(), &m.data, m.key, start, &target_env);
                let result = engine::run(&feeds, &mut s, &cfg);
                if let Some(e) = s.error.take() {
                    return Err(e).context("a supervised baseline failed while deciding");
                }
                let (_, report) = build_report(&result, settings);
                emit(folder, &report, &result, &feeds)?;
                baselines.push(report);
            }
            let (mut statistics, stored_statistics) = compared.expect("buy-and-hold is compared");
            statistics.sampled = sampled;
            runs.push(EvaluatedRun {
                model,
                baselines,
                statistics,
                stored_statistics,
            });
        }
    }
    if plan.portfolio {
        runs.push(portfolio::portfolio(
            &mut *agent,
            &markets,
            settings,
            plan,
            &boot,
            &mut emit,
        )?);
    }
    let segments = segment_summary(agent, &markets, split, settings)?;
    Ok(Evaluation {
        kind: agent.kind().to_string(),
        split,
        unseen,
        seen_bars,
        runs,
        segments,
    })
}

/// Reports made so far of all the evaluation makes.
struct Progress {
    done: usize,
    total: usize,
}

/// Hands a report to the caller's output, counting it.
type Emit<'o> = dyn FnMut(Option<&str>, &BacktestReport, &BacktestResult<'_>, &[&BarSeries]) -> Result<()> + 'o;

/// The model's run against buy-and-hold's over the same bars, for the
/// terminal and for the store.
fn run_statistics(
    run: String,
    result: &BacktestResult<'_>,
    report: &BacktestReport,
    held: &BacktestResult<'_>,
    per_year: f64,
    plan: &EvaluationPlan,
    boot: &BootstrapSettings,
) -> (RunStatistics, BacktestStatistics) {
    let trial_variance = plan.trial_sharpe_std * plan.trial_sharpe_std / per_year;
    let comparison = compare(
        &result.equity,
        &held.equity,
        per_year,
        plan.trials,
        trial_variance,
        boot,
    );
    let (model_return_pct, model_max_drawdown_pct) = return_and_drawdown(&result.equity);
    let (benchmark_return_pct, benchmark_max_drawdown_pct) = return_and_drawdown(&held.equity);
    let stored = BacktestStatistics::of_comparison(&comparison, &result.equity, boot);
    let statistics = RunStatistics {
        run,
        entries: result.fills.iter().filter(|f| f.is_entry).count(),
        closed_trades: report.total_trades,
        short_sample: report.metrics.curve.short_sample,
        model_return_pct,
        model_max_drawdown_pct,
        benchmark_return_pct,
        benchmark_max_drawdown_pct,
        comparison,
        sampled: None,
    };
    (statistics, stored)
}

impl RunStatistics {
    /// One line a reader can act on: the model against buy-and-hold on
    /// Sharpe, return and drawdown, and whether the Sharpe difference is
    /// more than luck (5% level of the bootstrap test). A model that never
    /// opened a position is called flat, whatever its figures.
    pub fn verdict(&self) -> String {
        let c = &self.comparison;
        let call = if self.entries == 0 {
            "flat: no evidence of skill".to_string()
        } else {
            match c.difference {
                Some(d) if d.p_value < 0.05 && d.difference > 0.0 => format!("beats buy-and-hold (p={:.3})", d.p_value),
                Some(d) if d.p_value < 0.05 => format!("worse than buy-and-hold (p={:.3})", d.p_value),
                Some(d) => format!("not distinguishable from buy-and-hold (p={:.3})", d.p_value),
                None => "no Sharpe difference could be computed".to_string(),
            }
        };
        format!(
            "model vs buy-and-hold: Sharpe {:+.2} vs {:+.2}, return {:+.1}% vs {:+.1}%, max drawdown {:.1}% vs {:.1}%: {call}",
            c.sharpe.sharpe,
            c.benchmark_sharpe.sharpe,
            self.model_return_pct,
            self.benchmark_return_pct,
            self.model_max_drawdown_pct,
            self.benchmark_max_drawdown_pct
        )
    }
}

/// Total return and maximum drawdown of an equity curve, in percent.
pub fn return_and_drawdown(equity: &[f64]) -> (f64, f64) {
    let (Some(first), Some(last)) = (equity.first(), equity.last()) else {
        return (0.0, 0.0);
    };
    ((last / first - 1.0) * 100.0, max_drawdown_pct(equity))
}

/// Reasoning segments per decision for a model with adaptive computation
/// (HRM): the histogram of the greedy passes, and per market whether it
/// spends more on turbulent bars (a second pass grouped by the bar's
/// recent volatility). `None` for other models.
fn segment_summary(
    agent: &mut (dyn Agent + Send),
    markets: &[TrainingMarket],
    split: Split,
    settings: &Settings,
) -> Result<Option<serde_json::Value>> {
    let segments = agent.take_segment_counts();
    let decisions: u64 = segments.iter().sum();
    let Some(mean) = mean_segments(&segments) else {
        return Ok(None);
    };
    let mut by_turbulence = Vec::new();
    for m in markets {
        let env = settings.env_config();
        if let Some(by) = segments_by_turbulence(agent, &m.data, m.key, split, &env)? {
            by_turbulence.push(serde_json::json!({"instrument": m.data.series.instrument, "calm": by.calm, "middle": by.middle, "turbulent": by.turbulent, "decisions": by.decisions, "window_bars": TURBULENCE_BARS}));
        }
    }
    Ok(Some(
        serde_json::json!({"mean": mean, "decisions": decisions, "histogram": segments, "by_turbulence": by_turbulence}),
    ))
}

/// The stretches of the evaluated split that `tradelab adapt` updates
/// learnt from or were selected on, one "instrument from..to" per overlap.
fn seen_bars(p: &Provenance, markets: &[TrainingMarket], split: Split) -> Vec<String> {
    let mut out = Vec::new();
    for m in markets {
        let series = &m.data.series;
        let h = data_hash(series);
        for adaptation in &p.adaptations {
            if let Some((from, to)) = adaptation.overlap(&h, &series.ts, m.data.bars(split)) {
                out.push(format!("{} {}..{}", h.instrument, format_date(from), format_date(to)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
