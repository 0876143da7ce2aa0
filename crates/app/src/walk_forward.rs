//! Walk-forward evaluation with retraining. For each fold a fresh PPO
//! agent trains on a window of the past (its last share validating the
//! checkpoints), skips an embargo, and trades the next window through the
//! engine after costs; the test windows tile the series, so their returns
//! stitch into one out-of-sample equity curve, compared with buy-and-hold's
//! over the same bars.
//!
//! Normalisation is fitted, fold by fold, on the bars before the fold's
//! validation window only, so nothing in a test window shapes its inputs.
//! `tradelab walk-forward` prints and writes what this returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tradelab_agents::evaluate::AgentStrategy;
use tradelab_agents::kinds::AgentKind;
use tradelab_agents::ppo::PpoAgent;
use tradelab_agents::trainer::{train, Scoring, TrainPlan, Trainable, TrainingMarket};
use tradelab_agents::Agent;
use tradelab_core::BarSeries;
use tradelab_sim::engine;
use tradelab_sim::metrics::{drawdown, periods_per_year};
use tradelab_sim::stats::sharpe::{sharpe, BootstrapSettings};
use tradelab_sim::stats::{compare, equity_returns, Comparison};
use tradelab_sim::strategies::baseline;
use tradelab_sim::walkforward::{walk_forward, Fold};

use crate::markets::{data_hash, timeframe_name, vocabulary};
use crate::training::ppo_config;
use crate::Settings;

/// The folds to walk and where their models go.
#[derive(Debug, Clone)]
pub struct WalkForwardPlan {
    /// The PPO agent retrained each fold (`ppo-mlp`, `ppo-lstm`, `ppo-transformer`).
    pub agent: String,
    /// Bars each fold trains on (its last share validating).
    pub train_bars: usize,
    /// Bars each fold trades.
    pub test_bars: usize,
    /// Bars skipped between training and trading.
    pub embargo: usize,
    /// An expanding training window from the first bar instead of a rolling one.
    pub anchored: bool,
    /// Where each fold's checkpoints go (`fold-K/`).
    pub out: PathBuf,
}

/// One fold's out-of-sample result.
#[derive(Debug, Clone, Serialize)]
pub struct FoldResult {
    /// The fold's index, from 0.
    pub fold: usize,
    /// Bars trained on, `[start, end)`.
    pub train: [usize; 2],
    /// Bars that chose the checkpoint.
    pub validation: [usize; 2],
    /// Bars traded.
    pub test: [usize; 2],
    /// The first and last traded bars' dates.
    pub test_dates: [String; 2],
    /// The model's return over the test window, in percent.
    pub return_pct: f64,
    /// Its annualised Sharpe ratio there.
    pub sharpe: f64,
    /// Positions it opened (0: flat).
    pub entries: usize,
    /// Round trips it closed.
    pub closed_trades: usize,
    /// Buy-and-hold's return over the same bars, in percent.
    pub buy_and_hold_return_pct: f64,
    /// Buy-and-hold's Sharpe ratio there.
    pub buy_and_hold_sharpe: f64,
    /// The chosen checkpoint's validation Sharpe ratio.
    pub best_validation_sharpe: Option<f64>,
}

/// Every fold's result and the stitched out-of-sample curves.
#[derive(Debug, Clone)]
pub struct WalkForward {
    /// The folds walked, oldest first.
    pub folds: Vec<FoldResult>,
    /// The model's stitched equity, from 1.
    pub model_curve: Vec<f64>,
    /// Buy-and-hold's over the same bars, from 1.
    pub hold_curve: Vec<f64>,
    /// The one against the other, with intervals.
    pub comparison: Comparison,
}

impl WalkForward {
    /// Folds in which the model never opened a position.
    pub fn flat_folds(&self) -> usize {
        self.folds.iter().filter(|r| r.entries == 0).count()
    }
}

/// Refuses an agent walk-forward cannot retrain.
pub fn check_agent(agent: &str) -> Result<()> {
    match AgentKind::parse(agent) {
        Some(k) if k.encoder().is_some() => Ok(()),
        _ => {
            bail!("walk-forward retrains PPO agents: use --agent ppo-mlp, ppo-lstm or ppo-transformer (got `{agent}`)")
        }
    }
}

/// The folds `plan` cuts from `series`, or why there is not one.
pub fn folds(series: &BarSeries, plan: &WalkForwardPlan) -> Result<Vec<Fold>> {
    let folds = walk_forward(
        series.len(),
        plan.train_bars,
        plan.test_bars,
        plan.embargo,
        plan.anchored,
    );
    if folds.is_empty() {
        bail!(
            "{} has {} bars: too few for one fold of {} training + {} embargo + {} test bars; lower --train-bars or --test-bars",
            series.instrument,
            series.len(),
            plan.train_bars,
            plan.embargo,
            plan.test_bars
        );
    }
    Ok(folds)
}

/// The share of each fold's training window that validates its checkpoints.
pub fn validation_share(settings: &Settings) -> f64 {
    settings.env.validation_fraction / (settings.env.train_fraction + settings.env.validation_fraction)
}

/// Walks `folds` of `series`, handing each fold's result to `on_fold` as
/// it ends.
pub fn run(
    series: &BarSeries,
    folds: &[Fold],
    settings: &Settings,
    plan: &WalkForwardPlan,
    on_fold: &mut dyn FnMut(&FoldResult),
) -> Result<WalkForward> {
    let per_year = periods_per_year(series);
    let share = validation_share(settings);
    let (mut results, mut agent_returns, mut hold_returns) = (Vec::new(), Vec::new(), Vec::new());
    for fold in folds {
        let r = run_fold(series, fold, share, settings, plan, &plan.out, per_year)?;
        agent_returns.extend(r.agent_returns);
        hold_returns.extend(r.hold_returns);
        on_fold(&r.result);
        results.push(r.result);
    }
    let (model_curve, hold_curve) = (stitched(&agent_returns), stitched(&hold_returns));
    let boot = BootstrapSettings {
        seed: settings.seed,
        ..Default::default()
    };
    let comparison = compare(&model_curve, &hold_curve, per_year, 1, 0.0, &boot);
    Ok(WalkForward {
        folds: results,
        model_curve,
        hold_curve,
        comparison,
    })
}

/// An equity curve from 1 compounding `returns`.
fn stitched(returns: &[f64]) -> Vec<f64> {
    let mut equity = Vec::with_capacity(returns.len() + 1);
    equity.push(1.0);
    for r in returns {
        equity.push(equity.last().unwrap_or(&1.0) * (1.0 + r));
    }
    equity
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
    plan: &WalkForwardPlan,
    out: &Path,
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
    let mut agent = PpoAgent::new(ppo_config(
        &plan.agent,
        &markets[0].data.feature_names,
        &vocab,
        settings,
    )?)?;
    {
        let p = agent.provenance_mut();
        p.vocabulary = vocab.clone();
        p.features = markets[0].data.feature_names.clone();
        p.settings = serde_json::to_value(settings)?;
        p.data = vec![data_hash(series)];
    }
    let train_plan = TrainPlan {
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
    let summary = train(&mut agent, &markets, &settings.env_config(), &train_plan, |_| {})
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
            test_dates: [date(slice.ts[0]), date(slice.ts[slice.len() - 1])],
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
pub fn max_drawdown_pct(curve: &[f64]) -> f64 {
    -drawdown(curve).0 * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deepest_fall_from_a_running_peak() {
        assert_eq!(max_drawdown_pct(&[1.0, 1.2, 0.9, 1.3, 1.04]), 25.0);
        assert_eq!(max_drawdown_pct(&[1.0, 1.1, 1.2]), 0.0);
    }

    #[test]
    fn returns_stitch_into_one_curve_and_bad_plans_are_refused() {
        let curve = stitched(&[0.1, -0.5, 1.0]);
        assert_eq!(curve.len(), 4);
        assert!((curve[3] - 1.1).abs() < 1e-12, "{curve:?}");
        assert!(check_agent("ppo-lstm").is_ok());
        let e = check_agent("hrm").unwrap_err().to_string();
        assert!(e.contains("retrains PPO agents") && e.contains("`hrm`"), "{e}");
        let series = tradelab_data::synthetic::generate(&tradelab_data::synthetic::SyntheticConfig {
            bars: 300,
            ..Default::default()
        })
        .series;
        let plan = WalkForwardPlan {
            agent: "ppo-mlp".into(),
            train_bars: 250,
            test_bars: 100,
            embargo: 5,
            anchored: false,
            out: PathBuf::from("unused"),
        };
        let e = folds(&series, &plan).unwrap_err().to_string();
        assert!(
            e.contains("300 bars: too few for one fold of 250 training + 5 embargo + 100 test bars"),
            "{e}"
        );
        let fit = WalkForwardPlan {
            train_bars: 100,
            test_bars: 50,
            ..plan
        };
        let cut = folds(&series, &fit).unwrap();
        assert!(!cut.is_empty() && cut.iter().all(|f| f.test.len() == 50), "{cut:?}");
        let s = Settings::default();
        let share = validation_share(&s);
        assert!(share > 0.0 && share < 1.0, "{share}");
    }
}
