//! Online learning: a trained model continues PPO on a sliding window of
//! the newest bars of a market it knows and is validated on the bars after
//! that window; the update is accepted only if validation does not fall by
//! more than `max_worsening` points. `measure_decay` trades the last
//! windows with the static model and with one updated before each window,
//! never after. `tradelab adapt` records, registers and prints.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tradelab_agents::metadata::{Adaptation, Provenance};
use tradelab_agents::settings::Selection;
use tradelab_agents::trainer::{train, validate, Scoring, TrainPlan, Trainable, TrainingMarket};
use tradelab_agents::MarketKey;
use tradelab_core::BarSeries;
use tradelab_env::MarketData;

use crate::markets::{data_hash, timeframe_name};
use crate::Settings;

/// How an update learns and when it is accepted.
#[derive(Debug, Clone)]
pub struct AdaptPlan {
    /// Bars the update trains on.
    pub window: usize,
    /// Bars it is validated on (and, for decay, each traded window).
    pub validation: usize,
    /// Environment steps of the update.
    pub steps: usize,
    /// Points of validation return the update may lose and still be kept
    /// (negative: a gain it must make).
    pub max_worsening: f64,
}

/// The market a model is updated and traded on, under the settings the
/// update runs with.
#[derive(Clone, Copy)]
pub struct AdaptMarket<'a> {
    /// The whole series (the update and validation windows are bars of it).
    pub series: &'a BarSeries,
    /// The model's row for it.
    pub key: MarketKey,
    /// The model's settings under the caller's seed.
    pub settings: &'a Settings,
}

/// One update's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateOutcome {
    /// Validation return before the update, in percent.
    pub before_pct: f64,
    /// After it (the best validated checkpoint).
    pub after_pct: f64,
    /// Whether the guard kept it.
    pub accepted: bool,
    /// Where the updated checkpoint is.
    pub best_dir: PathBuf,
}

/// One window of the decay measurement.
#[derive(Debug, Clone, Serialize)]
pub struct DecayWindow {
    /// The traded bars, `[start, end)`.
    pub bars: (usize, usize),
    /// The static model's greedy return there, in percent.
    pub static_pct: f64,
    /// The updated model's.
    pub updated_pct: f64,
    /// Whether this window's update passed the guard.
    pub update_accepted: bool,
}

/// The market prepared so that nothing from `validation` onward shapes the
/// observation: normalisation and the regime model are fitted on the bars
/// before it; then the splits are the window and the validation bars.
fn prepare(
    series: &BarSeries,
    settings: &Settings,
    window: Range<usize>,
    validation: Range<usize>,
) -> Result<Arc<MarketData>> {
    let n = series.len() as f64;
    let mut s = settings.clone();
    s.env.train_fraction = validation.start as f64 / n;
    s.env.validation_fraction = validation.len() as f64 / n;
    let name = format!("{} ({})", series.instrument, timeframe_name(series));
    let data = s
        .market_data(series.clone())
        .with_context(|| format!("preparing {name}"))?;
    let data = data
        .with_splits(window, validation, 0..0)
        .with_context(|| format!("splitting {name} into the update window and its validation"))?;
    Ok(Arc::new(data))
}

/// Trains a copy of the model at `folder` on `window`, validating on
/// `validation`; the best validated checkpoint lands in `run_dir/best`.
pub fn update<A: Trainable>(
    folder: &Path,
    market: AdaptMarket<'_>,
    window: Range<usize>,
    validation: Range<usize>,
    plan: &AdaptPlan,
    run_dir: &Path,
) -> Result<UpdateOutcome> {
    let AdaptMarket { series, key, settings } = market;
    let data = prepare(series, settings, window.clone(), validation.clone())?;
    let markets = [TrainingMarket { data, key }];
    let mut agent = A::load(folder)?;
    let updates = agent.updates_done();
    // An update is accepted on validation return (`max_worsening` is in
    // percent of return), so it is chosen by return too.
    let scoring = Scoring {
        selection: Selection::Return,
        windows: 1,
    };
    let before = validate(&mut agent, &markets, &settings.env_config(), scoring, updates)?;
    // The old run's best validation was on other bars: this update starts afresh.
    agent.provenance_mut().best_validation = None;
    agent.provenance_mut().evaluations_since_best = 0;
    let total = agent.env_steps_done() + plan.steps;
    agent.set_total_steps(total);
    let train_plan = TrainPlan {
        run_dir: run_dir.to_path_buf(),
        total_steps: total,
        eval_every: settings.ppo.eval_every.max(1),
        patience: settings.ppo.patience,
        seed: settings.seed,
        scoring,
        instrument_dropout: None,
        checkpoint_every: 0,
        interrupt: None,
    };
    let summary = train(&mut agent, &markets, &settings.env_config(), &train_plan, |_| {})?;
    let after = summary
        .best
        .as_ref()
        .map(|b| b.return_pct)
        .context("the update was never validated; raise --steps or lower ppo.eval_every")?;
    let accepted = after >= before.return_pct - plan.max_worsening;
    // Record the update in the checkpoint it produced.
    let mut best = A::load(&summary.best_dir)?;
    best.provenance_mut().adaptations.push(Adaptation {
        data: data_hash(series),
        train_bars: (window.start, window.end),
        validation_bars: (validation.start, validation.end),
        steps: plan.steps,
        validation_before_pct: before.return_pct,
        validation_after_pct: after,
        seen_span: Some((
            series.ts[window.start.min(validation.start)],
            series.ts[window.end.max(validation.end) - 1],
        )),
    });
    best.save(&summary.best_dir)?;
    Ok(UpdateOutcome {
        before_pct: before.return_pct,
        after_pct: after,
        accepted,
        best_dir: summary.best_dir,
    })
}

/// The first bar of `series` the model has not learnt from or been
/// selected on: after its training and validation splits when this is the
/// series it was trained on, else after the last bar of that market it saw.
pub fn first_unseen_bar(p: &Provenance, series: &BarSeries, settings: &Settings) -> usize {
    let h = data_hash(series);
    let Some(seen) = p
        .data
        .iter()
        .find(|d| d.instrument == h.instrument && d.timeframe == h.timeframe)
    else {
        return 0;
    };
    if seen.sha256 == h.sha256 {
        let e = &settings.env;
        return (series.len() as f64 * (e.train_fraction + e.validation_fraction)).round() as usize;
    }
    series
        .ts
        .iter()
        .position(|t| tradelab_core::time::format_date(*t) > seen.last)
        .unwrap_or(series.len())
}

/// Greedy return of the model at `folder` on `bars`.
pub fn trade<A: Trainable>(folder: &Path, market: AdaptMarket<'_>, bars: Range<usize>) -> Result<f64> {
    let AdaptMarket { series, key, settings } = market;
    let data = prepare(series, settings, 0..0, bars)?;
    let mut agent = A::load(folder)?;
    let scoring = Scoring {
        selection: Selection::Return,
        windows: 1,
    };
    let markets = [TrainingMarket { data, key }];
    Ok(validate(&mut agent, &markets, &settings.env_config(), scoring, 0)?.return_pct)
}

/// Measures decay: the last `k` windows of `plan.validation` bars are each
/// traded greedily by the static model at `folder` and by a model updated
/// (with the same guard) on the bars before that window, never after;
/// each window's result goes to `on_window` as it ends.
pub fn measure_decay<A: Trainable>(
    plan: &AdaptPlan,
    folder: &Path,
    market: AdaptMarket<'_>,
    run_dir: &Path,
    k: usize,
    unseen: usize,
    on_window: &mut dyn FnMut(usize, &DecayWindow),
) -> Result<Vec<DecayWindow>> {
    let series = market.series;
    let n = series.len();
    let need = plan.window + (k + 1) * plan.validation;
    if k == 0 || need > n {
        bail!(
            "--walk-forward {k} needs {need} bars (a {}-bar window and {} windows of {} bars) but the data has {n}",
            plan.window,
            k + 1,
            plan.validation
        );
    }
    if n - k * plan.validation < unseen {
        bail!(
            "the traded windows would start at bar {} but the model learnt from or was selected on bars before {unseen}; \
             use fewer or shorter windows (--walk-forward, --validation) or data that extends past the model's",
            n - k * plan.validation
        );
    }
    // The guard validates each update on the last `validation / 2` bars
    // before the window it will trade, so the traded bars stay unseen.
    let guard = (plan.validation / 2).max(1);
    let mut current = folder.to_path_buf();
    let mut folds = Vec::new();
    for i in 0..k {
        let start = n - (k - i) * plan.validation;
        let bars = start..start + plan.validation;
        let static_pct = trade::<A>(folder, market, bars.clone())?;
        let validation = start - guard..start;
        let window = validation.start.saturating_sub(plan.window)..validation.start;
        let out = update::<A>(
            &current,
            market,
            window,
            validation,
            plan,
            &run_dir.join(format!("fold-{}", i + 1)),
        )?;
        if out.accepted {
            current = out.best_dir.clone();
        }
        let updated_pct = trade::<A>(&current, market, bars.clone())?;
        let window = DecayWindow {
            bars: (bars.start, bars.end),
            static_pct,
            updated_pct,
            update_accepted: out.accepted,
        };
        on_window(i, &window);
        folds.push(window);
    }
    Ok(folds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_unseen_bar_follows_what_the_model_learnt_from() {
        let series = tradelab_data::synthetic::generate(&tradelab_data::synthetic::SyntheticConfig {
            bars: 1_000,
            ..Default::default()
        })
        .series;
        let settings = Settings::default();
        let mut p = Provenance::default();
        assert_eq!(first_unseen_bar(&p, &series, &settings), 0, "a market it never saw");
        // The same file: after its training and validation splits.
        p.data = vec![data_hash(&series)];
        let e = &settings.env;
        let expected = (1_000.0 * (e.train_fraction + e.validation_fraction)).round() as usize;
        assert_eq!(first_unseen_bar(&p, &series, &settings), expected);
        // A longer file of the same market: the first bar after the last date it saw.
        let seen = data_hash(&series.slice(0, 600));
        p.data = vec![seen];
        assert_eq!(first_unseen_bar(&p, &series, &settings), 600);
    }
}
