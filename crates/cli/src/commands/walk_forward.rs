//! `tradelab walk-forward`: walk-forward evaluation with retraining. For
//! each fold a fresh agent trains on a window of the past (its last share
//! validating the checkpoints), skips an embargo, and trades the next
//! window through the engine after costs; the test windows tile the series,
//! so their returns stitch into one out-of-sample equity curve, compared
//! with buy-and-hold's over the same bars.
//!
//! Normalisation is fitted, fold by fold, on the bars before the fold's
//! validation window only, so nothing in a test window shapes its inputs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tradelab_agents::evaluate::AgentStrategy;
use tradelab_agents::kinds::AgentKind;
use tradelab_agents::ppo::PpoAgent;
use tradelab_agents::trainer::{train, Scoring, TrainPlan, Trainable, TrainingMarket};
use tradelab_agents::Agent;
use tradelab_app::markets::{data_hash, load_series, timeframe_name, vocabulary};
use tradelab_app::Settings;
use tradelab_core::BarSeries;
use tradelab_sim::engine;
use tradelab_sim::metrics::{drawdown, periods_per_year};
use tradelab_sim::stats::sharpe::{sharpe, BootstrapSettings};
use tradelab_sim::stats::{compare, equity_returns, Comparison};
use tradelab_sim::strategies::baseline;
use tradelab_sim::walkforward::{walk_forward, Fold};

use super::train::ppo_config;
use crate::cli::{GlobalArgs, WalkForwardArgs};
use crate::context::{ensure_dir, load_settings};

/// One fold's out-of-sample result.
#[derive(Serialize)]
struct FoldResult {
    fold: usize,
    train: [usize; 2],
    validation: [usize; 2],
    test: [usize; 2],
    test_dates: [String; 2],
    return_pct: f64,
    sharpe: f64,
    entries: usize,
    closed_trades: usize,
    buy_and_hold_return_pct: f64,
    buy_and_hold_sharpe: f64,
    best_validation_sharpe: Option<f64>,
}

pub fn run(g: &GlobalArgs, a: &WalkForwardArgs) -> Result<()> {
    let mut extra = Vec::new();
    if let Some(steps) = a.steps {
        extra.push(format!("ppo.total_steps={steps}"));
    }
    let settings = load_settings(g, &extra)?;
    match AgentKind::parse(&a.agent) {
        Some(k) if k.encoder().is_some() => {}
        _ => bail!(
            "walk-forward retrains PPO agents: use --agent ppo-mlp, ppo-lstm or ppo-transformer (got `{}`)",
            a.agent
        ),
    }
    let wf = &settings.walk_forward;
    let (train_bars, test_bars, embargo) = (
        a.train_bars.unwrap_or(wf.train_bars),
        a.test_bars.unwrap_or(wf.test_bars),
        a.embargo.unwrap_or(wf.embargo_bars),
    );
    let mut series = load_series(
        &settings,
        std::slice::from_ref(&a.symbol),
        a.timeframe.as_deref(),
        g.verbose,
    )?;
    if series.len() != 1 {
        bail!(
            "--symbol {} matches {} series; name one (add --timeframe)",
            a.symbol,
            series.len()
        );
    }
    let series = series.remove(0);
    let folds = walk_forward(series.len(), train_bars, test_bars, embargo, a.anchored);
    if folds.is_empty() {
        bail!(
            "{} has {} bars: too few for one fold of {train_bars} training + {embargo} embargo + {test_bars} test bars; lower --train-bars or --test-bars",
            series.instrument,
            series.len()
        );
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/walk-forward-{}-seed{}", a.agent, settings.seed)));
    ensure_dir(&out)?;
    let validation_share =
        settings.env.validation_fraction / (settings.env.train_fraction + settings.env.validation_fraction);
    println!(
        "walk-forward with retraining: {} on {} ({} bars), {} folds of {train_bars} train ({:.0}% of it validating) + {embargo} embargo + {test_bars} test bars, {}, {} steps a fold, seed {}",
        a.agent,
        series.instrument,
        series.len(),
        folds.len(),
        validation_share * 100.0,
        if a.anchored { "expanding" } else { "rolling" },
        settings.ppo.total_steps,
        settings.seed
    );
    let per_year = periods_per_year(&series);
    let (mut results, mut agent_returns, mut hold_returns) = (Vec::new(), Vec::new(), Vec::new());
    for fold in &folds {
        let r = run_fold(&series, fold, validation_share, &settings, a, &out, per_year)?;
        agent_returns.extend(r.agent_returns);
        hold_returns.extend(r.hold_returns);
        println!(
            "fold {}: test {}..{}: model {:+.2}% (Sharpe {:+.2}, {} entries, {} trades), buy-and-hold {:+.2}% (Sharpe {:+.2})",
            r.result.fold + 1,
            r.result.test_dates[0],
            r.result.test_dates[1],
            r.result.return_pct,
            r.result.sharpe,
            r.result.entries,
            r.result.closed_trades,
            r.result.buy_and_hold_return_pct,
            r.result.buy_and_hold_sharpe
        );
        results.push(r.result);
    }
    let stitched = |returns: &[f64]| {
        let mut equity = Vec::with_capacity(returns.len() + 1);
        equity.push(1.0);
        for r in returns {
            equity.push(equity.last().unwrap() * (1.0 + r));
        }
        equity
    };
    let (model_curve, hold_curve) = (stitched(&agent_returns), stitched(&hold_returns));
    let boot = BootstrapSettings {
        seed: settings.seed,
        ..Default::default()
    };
    let comparison = compare(&model_curve, &hold_curve, per_year, 1, 0.0, &boot);
    let flat_folds = results.iter().filter(|r| r.entries == 0).count();
    print_summary(&comparison, &model_curve, &hold_curve, flat_folds, results.len());
    let report = serde_json::json!({
        "agent": a.agent,
        "instrument": series.instrument,
        "timeframe": timeframe_name(&series),
        "train_bars": train_bars,
        "test_bars": test_bars,
        "embargo_bars": embargo,
        "anchored": a.anchored,
        "steps_per_fold": settings.ppo.total_steps,
        "seed": settings.seed,
        "folds": results,
        "flat_folds": flat_folds,
        "stitched": {
            "return_pct": (model_curve.last().unwrap() - 1.0) * 100.0,
            "buy_and_hold_return_pct": (hold_curve.last().unwrap() - 1.0) * 100.0,
            "max_drawdown_pct": max_drawdown_pct(&model_curve),
            "buy_and_hold_max_drawdown_pct": max_drawdown_pct(&hold_curve),
            "statistics": comparison,
        },
    });
    let path = out.join("walk_forward.json");
    tradelab_data::cache::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "report: {} (one model per fold under {}/fold-K/)",
        path.display(),
        out.display()
    );
    Ok(())
}

struct FoldRun {
    result: FoldResult,
    agent_returns: Vec<f64>,
    hold_returns: Vec<f64>,
}

/// Trains a fresh agent on `fold.train` (its last `validation_share`
/// choosing the checkpoint) and trades the best one on `fold.test`.
fn run_fold(
    series: &BarSeries,
    fold: &Fold,
    validation_share: f64,
    settings: &Settings,
    a: &WalkForwardArgs,
    out: &std::path::Path,
    per_year: f64,
) -> Result<FoldRun> {
    let k = fold.index + 1;
    let val_len = ((fold.train.len() as f64 * validation_share).round() as usize).max(1);
    let validation = fold.train.end - val_len..fold.train.end;
    let train_bars = fold.train.start..validation.start;
    // Normalisation (and the regime model) fit on the bars before the
    // validation window: the past only.
    let n = series.len() as f64;
    let mut s = settings.clone();
    s.env.train_fraction = validation.start as f64 / n;
    s.env.validation_fraction = validation.len() as f64 / n;
    let data = s
        .market_data(series.clone())
        .and_then(|d| d.with_splits(train_bars.clone(), validation.clone(), fold.test.clone()))
        .with_context(|| format!("fold {k}: preparing its windows (use longer --train-bars or --test-bars)"))?;
    let vocab = vocabulary(std::slice::from_ref(series));
    let key = vocab
        .key(&series.instrument, &timeframe_name(series))
        .map_err(anyhow::Error::msg)?;
    let markets = [TrainingMarket {
        data: Arc::new(data),
        key,
    }];
    let mut agent = PpoAgent::new(ppo_config(&a.agent, &markets[0].data.feature_names, &vocab, settings)?)?;
    {
        let p = agent.provenance_mut();
        p.vocabulary = vocab.clone();
        p.features = markets[0].data.feature_names.clone();
        p.settings = serde_json::to_value(settings)?;
        p.data = vec![data_hash(series)];
    }
    let plan = TrainPlan {
        run_dir: out.join(format!("fold-{k}")),
        total_steps: settings.ppo.total_steps,
        eval_every: settings.ppo.eval_every,
        patience: settings.ppo.patience,
        seed: settings.seed.wrapping_add(fold.index as u64),
        scoring: Scoring::from_settings(&settings.ppo),
        instrument_dropout: None,
        checkpoint_every: 0,
        interrupt: None,
    };
    let summary = train(&mut agent, &markets, &settings.env_config(), &plan, |_| {})
        .with_context(|| format!("fold {k}: training"))?;
    let mut best = PpoAgent::load(&summary.best_dir).with_context(|| format!("fold {k}: opening its best model"))?;

    let slice = series.slice(fold.test.start, fold.test.end);
    let cfg = settings.engine_config();
    let mut strategy = AgentStrategy::new(
        &mut best,
        &markets[0].data,
        key,
        fold.test.start,
        &settings.env_config(),
    );
    let result = engine::run(&[&slice], &mut strategy, &cfg);
    if let Some(e) = strategy.error.take() {
        return Err(e).with_context(|| format!("fold {k}: the model failed while deciding"));
    }
    let mut hold = baseline("buy_and_hold", &settings.strategies).expect("buy_and_hold exists");
    let held = engine::run(&[&slice], hold.as_mut(), &cfg);
    let (agent_returns, hold_returns) = (equity_returns(&result.equity), equity_returns(&held.equity));
    let date = |t: i64| tradelab_core::time::format_date(t);
    Ok(FoldRun {
        result: FoldResult {
            fold: fold.index,
            train: [train_bars.start, train_bars.end],
            validation: [validation.start, validation.end],
            test: [fold.test.start, fold.test.end],
            test_dates: [date(slice.ts[0]), date(*slice.ts.last().unwrap())],
            return_pct: (result.final_equity / result.initial_cash - 1.0) * 100.0,
            sharpe: sharpe(&agent_returns, per_year),
            entries: result.fills.iter().filter(|f| f.is_entry).count(),
            closed_trades: result.trades.len(),
            buy_and_hold_return_pct: (held.final_equity / held.initial_cash - 1.0) * 100.0,
            buy_and_hold_sharpe: sharpe(&hold_returns, per_year),
            best_validation_sharpe: summary.best.as_ref().map(|b| b.sharpe),
        },
        agent_returns,
        hold_returns,
    })
}

/// The deepest fall from a running peak of `curve`, in percent (positive).
fn max_drawdown_pct(curve: &[f64]) -> f64 {
    -drawdown(curve).0 * 100.0
}

fn print_summary(c: &Comparison, model: &[f64], hold: &[f64], flat_folds: usize, folds: usize) {
    let (sr, bh) = (c.sharpe, c.benchmark_sharpe);
    println!(
        "stitched out of sample ({} bars): model {:+.2}%, Sharpe {:+.2} [{:+.2}, {:+.2}], max drawdown {:.1}%; buy-and-hold {:+.2}%, Sharpe {:+.2} [{:+.2}, {:+.2}], max drawdown {:.1}%",
        c.observations,
        (model.last().unwrap() - 1.0) * 100.0,
        sr.sharpe,
        sr.low,
        sr.high,
        max_drawdown_pct(model),
        (hold.last().unwrap() - 1.0) * 100.0,
        bh.sharpe,
        bh.low,
        bh.high,
        max_drawdown_pct(hold)
    );
    if let Some(d) = c.difference {
        println!(
            "difference {:+.2} [{:+.2}, {:+.2}], p={:.3}; deflated Sharpe (1 trial) {:.3}",
            d.difference, d.low, d.high, d.p_value, c.deflated_sharpe
        );
    }
    if flat_folds > 0 {
        println!("{flat_folds} of {folds} fold(s) never opened a position (flat)");
    }
}

#[cfg(test)]
mod tests {
    use super::max_drawdown_pct;

    #[test]
    fn the_deepest_fall_from_a_running_peak() {
        assert_eq!(max_drawdown_pct(&[1.0, 1.2, 0.9, 1.3, 1.04]), 25.0);
        assert_eq!(max_drawdown_pct(&[1.0, 1.1, 1.2]), 0.0);
    }
}
