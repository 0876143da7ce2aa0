//! `tradelab evaluate`: a trained model, greedily, through the backtesting
//! engine on its out-of-sample split (optionally in consecutive folds), next
//! to buy-and-hold, the SMA crossover, the volatility-targeted baselines
//! and the supervised baselines (logistic regression, boosted trees) fitted
//! on the train split, under the same costs and risk layer.
//! Each run's Sharpe ratio comes with a stationary-bootstrap 95% interval,
//! its difference to buy-and-hold's with an interval and p-value, and the
//! deflated Sharpe ratio for `--trials`; `--paths N` adds the policy
//! sampled as in training over N seeded paths (mean and spread), since a
//! greedy pass can hide a policy that trades (or one that only trades by
//! chance).

use anyhow::{bail, Context, Result};
use tradelab_agents::ensemble::Ensemble;
use tradelab_agents::evaluate::{AgentStrategy, TradedMarket};
use tradelab_agents::kinds::{GBT, LOGREG};
use tradelab_agents::load::load_agent;
use tradelab_agents::supervised::{fit_gbt, fit_logistic};
use tradelab_agents::trainer::{Scoring, TrainingMarket};
use tradelab_agents::Agent;
use tradelab_core::time::format_date;
use tradelab_env::{ActionSpace, Split};
use tradelab_sim::engine;
use tradelab_sim::metrics::periods_per_year;
use tradelab_sim::report::{render_comparison, BacktestReport, SHORT_SAMPLE_NOTE};
use tradelab_sim::stats::sharpe::BootstrapSettings;
use tradelab_sim::stats::sharpe::{sharpe, ReturnMoments};
use tradelab_sim::stats::{compare, equity_returns, Comparison};
use tradelab_sim::strategies::baseline;

use crate::cli::{EvaluateArgs, GlobalArgs};
use crate::context::{load_settings, model_settings};
use crate::output::{build_report, style, write_report};
use tradelab_agents::complexity::{mean_segments, segments_by_turbulence, TURBULENCE_BARS};
use tradelab_app::data_sources::{recorded_symbols, RecordedSymbols};
use tradelab_app::markets::{data_hash, load_series, markets};

/// The baselines every model is compared with: buy-and-hold first (the
/// statistics compare with it), the SMA crossover, and the two a sceptic
/// asks for, volatility-targeted buy-and-hold and time-series momentum.
const COMPARED: [&str; 4] = [
    "buy_and_hold",
    "sma_crossover",
    "buy_and_hold_vol_target",
    "momentum_vol_target",
];

pub fn run(g: &GlobalArgs, a: &EvaluateArgs) -> Result<()> {
    let current = load_settings(g, &[])?;
    let split = match a.split.as_str() {
        "test" => Split::Test,
        "validation" => Split::Validation,
        other => bail!("unknown split `{other}`; use test or validation"),
    };
    if a.folds == 0 {
        bail!("--folds must be at least 1");
    }
    if a.portfolio && a.folds > 1 {
        bail!("--portfolio trades the split once in one account; drop --folds");
    }
    if a.trials == 0 {
        bail!("--trials must be at least 1 (the number of models or settings tried before this one)");
    }
    if a.trials > 1 && !(a.trial_sharpe_std > 0.0 && a.trial_sharpe_std.is_finite()) {
        bail!(
            "--trials {} needs --trial-sharpe-std: the spread of the annualised Sharpe ratios those trials reached",
            a.trials
        );
    }
    let mut members = Vec::with_capacity(a.models.len());
    for model in &a.models {
        let folder = super::models::model_folder(g, model)?;
        members.push(load_agent(&folder).with_context(|| format!("opening model {}", model.display()))?);
    }
    // Several models decide together from their averaged distributions.
    let mut agent: Box<dyn Agent + Send> = if members.len() == 1 {
        members.remove(0)
    } else {
        let n = members.len();
        Box::new(Ensemble::new(members).with_context(|| format!("building an ensemble of the {n} models"))?)
    };
    agent.take_segment_counts();

    let mut settings = model_settings(&agent.provenance().settings, &current)?;
    settings.report.out_dir = match &a.out_dir {
        Some(dir) => dir.clone(),
        None => crate::output::run_folder(&settings.report.out_dir, "evaluate", &settings)?,
    };

    let mut recorded = RecordedSymbols::default();
    let symbols: Vec<String> = if a.symbols.is_empty() {
        // The files the model was trained on, found by path or by content;
        // where paths are not allowed (jobs), instrument names in the data
        // folders only (issue 19 finding 12).
        let p = agent.provenance();
        recorded = recorded_symbols(&p.data, &settings, &p.vocabulary.instruments)?;
        settings.data.symbol_paths = settings.data.symbol_paths && p.data.iter().any(|d| d.source.is_some());
        recorded.symbols.clone()
    } else {
        a.symbols.clone()
    };
    let trained_on = agent.provenance().data.clone();
    let vocabulary = agent.provenance().vocabulary.clone();
    let mut series = load_series(&settings, &symbols, None, g.verbose)?;
    recorded.rename(&mut series);
    // A market the model trained on, or (for a model with an
    // unknown-instrument embedding) an unseen instrument on a timeframe it knows.
    series.retain(|s| {
        let tf = tradelab_app::markets::timeframe_name(s);
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
    let markets = markets(series, &agent.provenance().vocabulary, &settings)?;
    let seen_bars = seen_bars(agent.provenance(), &markets, split);
    if !seen_bars.is_empty() {
        let list = seen_bars.join("; ");
        if !a.allow_seen_bars {
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

    let cfg = settings.engine_config();
    let mut reports: Vec<BacktestReport> = Vec::new();
    let mut statistics: Vec<RunStatistics> = Vec::new();
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
    for m in &markets {
        let range = m.data.bars(split);
        let fold_len = range.len() / a.folds;
        if fold_len < 2 {
            bail!(
                "{}: the {} split has {} bars, too few for {} folds; use fewer --folds",
                m.data.series.instrument,
                split.name(),
                range.len(),
                a.folds
            );
        }
        for f in 0..a.folds {
            let start = range.start + f * fold_len;
            let end = if f + 1 == a.folds { range.end } else { start + fold_len };
            let slice = m.data.series.slice(start, end);
            let out_dir = if a.folds > 1 {
                settings.report.out_dir.join(format!("fold-{}", f + 1))
            } else {
                settings.report.out_dir.clone()
            };
            let mut strategy = AgentStrategy::new(agent.as_mut(), &m.data, m.key, start, &settings.env_config());
            let result = engine::run(&[&slice], &mut strategy, &cfg);
            if let Some(e) = strategy.error.take() {
                return Err(e).context("the model failed while deciding");
            }
            let (_, report) = build_report(&result, &settings);
            write_report(&out_dir, &report, &result, &[&slice])?;
            let label = format!(
                "{} {}..{}{}",
                m.data.series.instrument,
                report.start_date,
                report.end_date,
                if a.folds > 1 {
                    format!(" (fold {})", f + 1)
                } else {
                    String::new()
                }
            );
            let agent_equity = result.equity.clone();
            let per_year = periods_per_year(&slice);
            let mut sampled = (a.paths > 0)
                .then(|| sampled_paths(agent.as_mut(), m, start, &slice, &settings, a.paths, per_year))
                .transpose()?;
            let entries = result.fills.iter().filter(|f| f.is_entry).count();
            reports.push(report);
            for name in COMPARED {
                let mut b = baseline(name, &settings.strategies).expect("compared baselines exist");
                let result = engine::run(&[&slice], b.as_mut(), &cfg);
                if name == "buy_and_hold" {
                    let trial_variance = (a.trial_sharpe_std * a.trial_sharpe_std) / per_year;
                    let comparison = compare(&agent_equity, &result.equity, per_year, a.trials, trial_variance, &boot);
                    let (model_return_pct, model_max_drawdown_pct) = return_and_drawdown(&agent_equity);
                    let (benchmark_return_pct, benchmark_max_drawdown_pct) = return_and_drawdown(&result.equity);
                    statistics.push(RunStatistics {
                        run: label.clone(),
                        entries,
                        closed_trades: reports.last().map_or(0, |r| r.total_trades),
                        short_sample: reports.last().is_some_and(|r| r.metrics.curve.short_sample),
                        model_return_pct,
                        model_max_drawdown_pct,
                        benchmark_return_pct,
                        benchmark_max_drawdown_pct,
                        comparison,
                        sampled: sampled.take(),
                    });
                }
                let (_, report) = build_report(&result, &settings);
                write_report(&out_dir, &report, &result, &[&slice])?;
                reports.push(report);
            }
            for l in supervised.iter_mut() {
                let mut s = AgentStrategy::new(l.as_mut(), &m.data, m.key, start, &target_env);
                let result = engine::run(&[&slice], &mut s, &cfg);
                if let Some(e) = s.error.take() {
                    return Err(e).context("a supervised baseline failed while deciding");
                }
                let (_, report) = build_report(&result, &settings);
                write_report(&out_dir, &report, &result, &[&slice])?;
                reports.push(report);
            }
        }
    }
    if a.portfolio {
        let boot = &boot;
        let (mut runs, stats) = portfolio(
            agent.as_mut(),
            &markets,
            split,
            &settings,
            a.trials,
            a.trial_sharpe_std,
            boot,
        )?;
        reports.append(&mut runs);
        statistics.push(stats);
    }
    println!(
        "{} on the {} split{} (greedy; fill {}, fees {}/{} {}; features and window as trained)",
        agent.kind(),
        split.name(),
        if a.folds > 1 {
            format!(", {} folds", a.folds)
        } else {
            String::new()
        },
        settings.backtest.fill.name(),
        settings.backtest.costs.entry_fixed,
        settings.backtest.costs.exit_fixed,
        settings.backtest.currency
    );
    println!("{}", render_comparison(&reports, style()));
    print_statistics(&statistics, a.trials);
    let segments = agent.take_segment_counts();
    let decisions: u64 = segments.iter().sum();
    let mut segment_summary = None;
    if let Some(mean) = mean_segments(&segments) {
        println!(
            "reasoning segments per decision: mean {mean:.2} over {decisions} decisions; histogram (1..{}): {segments:?}",
            segments.len()
        );
        // Does adaptive computation spend more on turbulent bars? A second
        // greedy pass per market, grouped by the bar's recent volatility.
        let mut by_turbulence = Vec::new();
        for m in &markets {
            let env = settings.env_config();
            if let Some(by) = segments_by_turbulence(agent.as_mut(), &m.data, m.key, split, &env)? {
                println!(
                    "  {}: calm third {:.2}, middle {:.2}, turbulent third {:.2} (terciles of the {TURBULENCE_BARS}-bar mean |log return|)",
                    m.data.series.instrument, by.calm, by.middle, by.turbulent
                );
                by_turbulence.push(serde_json::json!({"instrument": m.data.series.instrument, "calm": by.calm, "middle": by.middle, "turbulent": by.turbulent, "decisions": by.decisions}));
            }
        }
        segment_summary = Some(
            serde_json::json!({"mean": mean, "decisions": decisions, "histogram": segments, "by_turbulence": by_turbulence}),
        );
    }
    let summary: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| serde_json::json!({"model_used": r.model_used, "instruments": r.instruments, "start": r.start_date, "end": r.end_date, "total_pnl": r.metrics.total_pnl, "sharpe": r.metrics.curve.sharpe, "max_drawdown_pct": r.max_drawdown_pct, "total_trades": r.total_trades}))
        .collect();
    let path = settings.report.out_dir.join("evaluation.json");
    crate::context::ensure_dir(&settings.report.out_dir)?;
    tradelab_data::cache::write_atomic(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({"model": a.models[0], "models": a.models, "unseen_instruments": unseen, "kind": agent.kind(), "split": split.name(), "seen_bars": seen_bars, "folds": a.folds, "runs": summary, "statistics": statistics, "segments_per_decision": segment_summary}))?.as_bytes(),
    )?;
    println!(
        "reports and charts: {}/ (evaluation.json, one .json, .svg and interactive .html per run)",
        settings.report.out_dir.display()
    );
    Ok(())
}

/// All the markets traded by `agent` in one account from the latest start
/// of their `split`s (every bar out of sample for each), sized by
/// `backtest.sizing`, and buy-and-hold of the same instruments in one
/// account under the same sizing: their reports, and the statistics of the
/// one against the other.
fn portfolio(
    agent: &mut (dyn Agent + Send),
    markets: &[TrainingMarket],
    split: Split,
    settings: &tradelab_app::Settings,
    trials: usize,
    trial_sharpe_std: f64,
    boot: &BootstrapSettings,
) -> Result<(Vec<BacktestReport>, RunStatistics)> {
    if markets.len() < 2 {
        bail!("--portfolio trades several instruments in one account: name at least two with --symbol");
    }
    let first_bar = |m: &TrainingMarket| m.data.series.ts[m.data.bars(split).start];
    let start_ts = markets.iter().map(first_bar).max().unwrap_or_default();
    let mut slices = Vec::with_capacity(markets.len());
    let mut traded = Vec::with_capacity(markets.len());
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
        traded.push(TradedMarket {
            data: m.data.as_ref(),
            key: m.key,
            offset: k,
        });
    }
    let feeds: Vec<&tradelab_core::BarSeries> = slices.iter().collect();
    let cfg = settings.engine_config();
    let mut strategy = AgentStrategy::for_markets(agent, traded, &settings.env_config());
    let result = engine::run(&feeds, &mut strategy, &cfg);
    if let Some(e) = strategy.error.take() {
        return Err(e).context("the model failed while deciding");
    }
    let out_dir = settings.report.out_dir.join("portfolio");
    let (_, report) = build_report(&result, settings);
    write_report(&out_dir, &report, &result, &feeds)?;
    let mut hold = baseline("buy_and_hold", &settings.strategies).expect("buy-and-hold exists");
    let held = engine::run(&feeds, hold.as_mut(), &cfg);
    let (_, held_report) = build_report(&held, settings);
    write_report(&out_dir, &held_report, &held, &feeds)?;
    let per_year = periods_per_year(&slices[0]);
    let trial_variance = trial_sharpe_std * trial_sharpe_std / per_year;
    let comparison = compare(&result.equity, &held.equity, per_year, trials, trial_variance, boot);
    let (model_return_pct, model_max_drawdown_pct) = return_and_drawdown(&result.equity);
    let (benchmark_return_pct, benchmark_max_drawdown_pct) = return_and_drawdown(&held.equity);
    let stats = RunStatistics {
        run: format!(
            "portfolio of {} ({} sizing) {}..{}",
            feeds
                .iter()
                .map(|f| f.instrument.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            serde_json::to_value(settings.backtest.sizing.method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            report.start_date,
            report.end_date
        ),
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
    Ok((vec![report, held_report], stats))
}

/// Total return and maximum drawdown of an equity curve, in percent.
fn return_and_drawdown(equity: &[f64]) -> (f64, f64) {
    let (Some(first), Some(last)) = (equity.first(), equity.last()) else {
        return (0.0, 0.0);
    };
    let mut peak = f64::MIN;
    let mut worst: f64 = 0.0;
    for e in equity {
        peak = peak.max(*e);
        if peak > 0.0 {
            worst = worst.min(e / peak - 1.0);
        }
    }
    ((last / first - 1.0) * 100.0, -worst * 100.0)
}

/// One line a reader can act on: the model against buy-and-hold on Sharpe,
/// return and drawdown, and whether the Sharpe difference is more than
/// luck (5% level of the bootstrap test).
fn verdict(s: &RunStatistics) -> String {
    let c = &s.comparison;
    let call = if s.entries == 0 {
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
        "verdict: model vs buy-and-hold: Sharpe {:+.2} vs {:+.2}, return {:+.1}% vs {:+.1}%, max drawdown {:.1}% vs {:.1}%: {call}",
        c.sharpe.sharpe,
        c.benchmark_sharpe.sharpe,
        s.model_return_pct,
        s.benchmark_return_pct,
        s.model_max_drawdown_pct,
        s.benchmark_max_drawdown_pct
    )
}

/// The model's figures on one run (market and fold) with their uncertainty,
/// against buy-and-hold over the same bars.
#[derive(serde::Serialize)]
struct RunStatistics {
    run: String,
    /// Positions the model opened: 0 means it stayed flat.
    entries: usize,
    closed_trades: usize,
    /// Annualised from under three months or 30 bars (issue 20): the
    /// Sharpe ratios are noise, and the report says so.
    short_sample: bool,
    /// Total return and maximum drawdown, in percent, of the model and of
    /// buy-and-hold over the same bars (the verdict line's figures).
    model_return_pct: f64,
    model_max_drawdown_pct: f64,
    benchmark_return_pct: f64,
    benchmark_max_drawdown_pct: f64,
    #[serde(flatten)]
    comparison: Comparison,
    /// The sampled policy over `--paths` seeded paths (absent without).
    #[serde(skip_serializing_if = "Option::is_none")]
    sampled: Option<SampledPaths>,
}

/// The policy sampled as in training, over several seeded paths: the mean
/// and spread of what greedy evaluation reports once.
#[derive(serde::Serialize)]
struct SampledPaths {
    paths: usize,
    return_pct_mean: f64,
    return_pct_std: f64,
    sharpe_mean: f64,
    sharpe_std: f64,
    entries_mean: f64,
    /// Paths on which the policy never opened a position.
    flat_paths: usize,
}

/// Runs the agent sampled on `slice` (bar 0 = `start` of `m`'s data) once
/// per seed `settings.seed + p`, `p < paths`.
fn sampled_paths(
    agent: &mut dyn tradelab_agents::Agent,
    m: &tradelab_agents::trainer::TrainingMarket,
    start: usize,
    slice: &tradelab_core::BarSeries,
    settings: &tradelab_app::Settings,
    paths: usize,
    per_year: f64,
) -> Result<SampledPaths> {
    let cfg = settings.engine_config();
    let (mut returns, mut sharpes, mut entries) = (Vec::new(), Vec::new(), Vec::new());
    for p in 0..paths {
        agent.seed_sampling(settings.seed.wrapping_add(p as u64));
        let mut strategy = AgentStrategy::new(agent, &m.data, m.key, start, &settings.env_config()).sampled();
        let result = engine::run(&[slice], &mut strategy, &cfg);
        if let Some(e) = strategy.error.take() {
            return Err(e).context("the model failed while deciding (sampled)");
        }
        returns.push((result.final_equity / result.initial_cash - 1.0) * 100.0);
        sharpes.push(sharpe(&equity_returns(&result.equity), per_year));
        entries.push(result.fills.iter().filter(|f| f.is_entry).count() as f64);
    }
    let mean_std = |v: &[f64]| {
        let m = ReturnMoments::of(v);
        (m.mean, m.std)
    };
    let ((return_pct_mean, return_pct_std), (sharpe_mean, sharpe_std)) = (mean_std(&returns), mean_std(&sharpes));
    Ok(SampledPaths {
        paths,
        return_pct_mean,
        return_pct_std,
        sharpe_mean,
        sharpe_std,
        entries_mean: entries.iter().sum::<f64>() / paths as f64,
        flat_paths: entries.iter().filter(|e| **e == 0.0).count(),
    })
}

fn print_statistics(statistics: &[RunStatistics], trials: usize) {
    println!(
        "Sharpe ratios with stationary-bootstrap 95% intervals; the difference to buy-and-hold with its interval and p-value; the deflated Sharpe ratio for {trials} trial(s) (P[true Sharpe > the best of {trials} lucky trials]):"
    );
    for s in statistics {
        let c = &s.comparison;
        let (sr, bh) = (c.sharpe, c.benchmark_sharpe);
        let difference = c.difference.map_or("n/a".to_string(), |d| {
            format!(
                "{:+.2} [{:+.2}, {:+.2}] p={:.3}",
                d.difference, d.low, d.high, d.p_value
            )
        });
        println!(
            "  {}: model {:+.2} [{:+.2}, {:+.2}], buy-and-hold {:+.2} [{:+.2}, {:+.2}], difference {difference}, deflated Sharpe {:.3}",
            s.run, sr.sharpe, sr.low, sr.high, bh.sharpe, bh.low, bh.high, c.deflated_sharpe
        );
        if let Some(p) = &s.sampled {
            println!(
                "    sampled, {} paths: return {:+.2}% ± {:.2}, Sharpe {:+.2} ± {:.2}, {:.1} entries a path, {} flat path(s)",
                p.paths, p.return_pct_mean, p.return_pct_std, p.sharpe_mean, p.sharpe_std, p.entries_mean, p.flat_paths
            );
        }
        println!("    {}", verdict(s));
        if s.short_sample {
            println!("    {SHORT_SAMPLE_NOTE}");
        }
        if s.entries == 0 {
            println!(
                "    flat: the model never opened a position here (greedy); its Sharpe ratio of 0 is standing aside, not skill"
            );
        } else if s.closed_trades == 0 {
            println!(
                "    the model opened {} position(s) and never closed one: it bought and held",
                s.entries
            );
        }
    }
    let better = statistics
        .iter()
        .filter(|s| s.entries > 0 && s.comparison.difference.is_some_and(|d| d.difference > 0.0))
        .count();
    let significant = statistics
        .iter()
        .filter(|s| {
            s.entries > 0
                && s.comparison
                    .difference
                    .is_some_and(|d| d.difference > 0.0 && d.p_value < 0.05)
        })
        .count();
    println!(
        "overall: the model's Sharpe ratio is above buy-and-hold's in {better} of {} run(s), significantly (p < 0.05) in {significant}",
        statistics.len()
    );
}

/// The stretches of the evaluated split that `tradelab adapt` updates
/// learnt from or were selected on, one "instrument from..to" per overlap.
fn seen_bars(p: &tradelab_agents::metadata::Provenance, markets: &[TrainingMarket], split: Split) -> Vec<String> {
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
