//! `tradelab adapt`: online learning. A trained model continues PPO on a
//! sliding window of the newest bars of a market it knows and is validated
//! on the bars after that window; the update becomes a new checkpoint (and
//! registry version) only if validation does not fall by more than
//! `--max-worsening` points, so the previous version always stays loadable.
//!
//! `--walk-forward K` measures decay: the last K windows of `--validation`
//! bars are each traded greedily by the static model and by a model updated
//! (with the same guard) on the bars before that window, never after.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::json;
use tradelab_agents::hrm::{HrmAgent, KIND as HRM};
use tradelab_agents::metadata::Adaptation;
use tradelab_agents::ppo::{read_model_kind, PpoAgent};
use tradelab_agents::settings::Selection;
use tradelab_agents::trainer::{train, validate, Scoring, TrainPlan, Trainable, TrainingMarket};
use tradelab_app::Settings;
use tradelab_core::BarSeries;
use tradelab_env::MarketData;
use tradelab_store::tracking::RunStatus;

use crate::cli::{AdaptArgs, GlobalArgs};
use crate::context::{load_settings, model_settings};
use tradelab_app::markets::{data_hash, load_series, timeframe_name};
use tradelab_app::record::Recorder;

pub fn run(g: &GlobalArgs, a: &AdaptArgs) -> Result<()> {
    if a.window == 0 || a.validation == 0 || a.steps == 0 {
        bail!("--window, --validation and --steps must be positive");
    }
    if !a.max_worsening.is_finite() {
        bail!("--max-worsening must be a number of percentage points (negative: a gain the update must make)");
    }
    let folder = super::models::model_folder(g, &a.model)?;
    let kind = read_model_kind(&folder).with_context(|| format!("opening model {}", a.model.display()))?;
    if kind == HRM {
        run_for::<HrmAgent>(g, a, &folder)
    } else {
        run_for::<PpoAgent>(g, a, &folder)
    }
}

/// One update's outcome.
#[derive(Debug, Clone, Serialize)]
struct UpdateOutcome {
    before_pct: f64,
    after_pct: f64,
    accepted: bool,
    best_dir: PathBuf,
}

/// One walk-forward window.
#[derive(Debug, Clone, Serialize)]
struct FoldResult {
    bars: (usize, usize),
    static_pct: f64,
    updated_pct: f64,
    update_accepted: bool,
}

fn run_for<A: Trainable>(g: &GlobalArgs, a: &AdaptArgs, folder: &Path) -> Result<()> {
    let current = load_settings(g, &[])?;
    let agent = A::load(folder).with_context(|| format!("opening model {}", a.model.display()))?;
    // The update's random streams follow the caller's seed.
    let mut settings = model_settings(&agent.provenance().settings, &current)?;
    settings.seed = current.seed;

    let mut series = load_series(&settings, std::slice::from_ref(&a.data), None, g.verbose)?;
    if series.len() != 1 {
        bail!("--data must name one series; `{}` gives {}", a.data, series.len());
    }
    let series = series.remove(0);
    let vocab = &agent.provenance().vocabulary;
    let key = vocab.key(&series.instrument, &timeframe_name(&series)).map_err(|e| {
        anyhow::anyhow!(
            "{e}; adapt updates a model on new data of a market it was trained on ({:?})",
            vocab.instruments
        )
    })?;
    if !vocab.knows(&series.instrument) {
        eprintln!(
            "note: the model never saw {}: the update trains its unknown-instrument embedding on it",
            series.instrument
        );
    }
    let run_dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/adapt-{}-seed{}", agent.kind(), settings.seed)));
    let unseen = first_unseen_bar(agent.provenance(), &series, &settings);
    drop(agent);

    if let Some(k) = a.walk_forward {
        return walk_forward::<A>(a, folder, &series, key, &settings, &run_dir, k, unseen);
    }
    if series.len().saturating_sub(a.validation) < unseen {
        eprintln!(
            "note: the validation bars overlap what the model was trained or selected on (bars before {unseen}); the guard is optimistic"
        );
    }
    let n = series.len();
    let validation = n.saturating_sub(a.validation)..n;
    let window = validation.start.saturating_sub(a.window)..validation.start;
    let recorder = Recorder::open(&settings)?;
    let run = match &recorder {
        Some(r) => Some(r.start_run(
            &format!("adapt {}", a.model.display()),
            &json!({"model": a.model.display().to_string(), "data": a.data, "window": a.window,
                    "validation": a.validation, "steps": a.steps, "max_worsening": a.max_worsening,
                    "seed": settings.seed}),
            &json!({"kind": "adapt"}),
        )?),
        None => None,
    };
    let outcome = update::<A>(
        folder,
        &series,
        key,
        &settings,
        window.clone(),
        validation.clone(),
        a,
        &run_dir,
    );
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if let (Some(r), Some(run)) = (&recorder, &run) {
                let _ = r.finish_run(run, RunStatus::Failed);
            }
            return Err(e);
        }
    };
    if let (Some(r), Some(run)) = (&recorder, &run) {
        r.log_metrics(
            run,
            &[
                ("validation_before_pct", 0, outcome.before_pct),
                ("validation_after_pct", 0, outcome.after_pct),
            ],
        );
    }
    let summary = format!(
        "validation return on bars {}..{}: {:+.2}% before, {:+.2}% after the update on bars {}..{}",
        validation.start, validation.end, outcome.before_pct, outcome.after_pct, window.start, window.end
    );
    if !outcome.accepted {
        if let (Some(r), Some(run)) = (&recorder, &run) {
            let _ = r.finish_run(run, RunStatus::Failed);
        }
        bail!(
            "refused: the update worsens validation by more than {} points ({summary}); the model stays as it was, and the rejected checkpoint is in {} for inspection",
            a.max_worsening,
            outcome.best_dir.display()
        );
    }
    eprintln!("{summary}");
    println!("updated model: {}", outcome.best_dir.display());
    if let (Some(r), Some(run)) = (&recorder, &run) {
        // A registered model's next version keeps its name; a folder's takes the agent type.
        let registered = (!a.model.exists()).then(|| a.model.to_string_lossy().split('@').next().map(str::to_string));
        let name = match (a.name.clone(), registered.flatten()) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => read_model_kind(&outcome.best_dir)?,
        };
        let (version, dir) = r.register_checkpoint(&name, &outcome.best_dir, Some(run))?;
        r.finish_run(run, RunStatus::Finished)?;
        println!(
            "registered: {name} version {version} ({}); earlier versions stay loadable",
            dir.display()
        );
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(())
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
#[allow(clippy::too_many_arguments)]
fn update<A: Trainable>(
    folder: &Path,
    series: &BarSeries,
    key: tradelab_agents::MarketKey,
    settings: &Settings,
    window: Range<usize>,
    validation: Range<usize>,
    a: &AdaptArgs,
    run_dir: &Path,
) -> Result<UpdateOutcome> {
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
    let total = agent.env_steps_done() + a.steps;
    agent.set_total_steps(total);
    let plan = TrainPlan {
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
    let summary = train(&mut agent, &markets, &settings.env_config(), &plan, |_| {})?;
    let after = summary
        .best
        .as_ref()
        .map(|b| b.return_pct)
        .context("the update was never validated; raise --steps or lower ppo.eval_every")?;
    let accepted = after >= before.return_pct - a.max_worsening;
    // Record the update in the checkpoint it produced.
    let mut best = A::load(&summary.best_dir)?;
    best.provenance_mut().adaptations.push(Adaptation {
        data: data_hash(series),
        train_bars: (window.start, window.end),
        validation_bars: (validation.start, validation.end),
        steps: a.steps,
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
fn first_unseen_bar(p: &tradelab_agents::metadata::Provenance, series: &BarSeries, settings: &Settings) -> usize {
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
fn trade<A: Trainable>(
    folder: &Path,
    series: &BarSeries,
    key: tradelab_agents::MarketKey,
    settings: &Settings,
    bars: Range<usize>,
) -> Result<f64> {
    let data = prepare(series, settings, 0..0, bars)?;
    let mut agent = A::load(folder)?;
    let scoring = Scoring {
        selection: Selection::Return,
        windows: 1,
    };
    let markets = [TrainingMarket { data, key }];
    Ok(validate(&mut agent, &markets, &settings.env_config(), scoring, 0)?.return_pct)
}

#[allow(clippy::too_many_arguments)]
fn walk_forward<A: Trainable>(
    a: &AdaptArgs,
    folder: &Path,
    series: &BarSeries,
    key: tradelab_agents::MarketKey,
    settings: &Settings,
    run_dir: &Path,
    k: usize,
    unseen: usize,
) -> Result<()> {
    let n = series.len();
    let need = a.window + (k + 1) * a.validation;
    if k == 0 || need > n {
        bail!(
            "--walk-forward {k} needs {need} bars (a {}-bar window and {} windows of {} bars) but the data has {n}",
            a.window,
            k + 1,
            a.validation
        );
    }
    if n - k * a.validation < unseen {
        bail!(
            "the traded windows would start at bar {} but the model learnt from or was selected on bars before {unseen}; \
             use fewer or shorter windows (--walk-forward, --validation) or data that extends past the model's",
            n - k * a.validation
        );
    }
    // The guard validates each update on the last `validation / 2` bars
    // before the window it will trade, so the traded bars stay unseen.
    let guard = (a.validation / 2).max(1);
    let mut current = folder.to_path_buf();
    let mut folds = Vec::new();
    for i in 0..k {
        let start = n - (k - i) * a.validation;
        let bars = start..start + a.validation;
        let static_pct = trade::<A>(folder, series, key, settings, bars.clone())?;
        let validation = start - guard..start;
        let window = validation.start.saturating_sub(a.window)..validation.start;
        let out = update::<A>(
            &current,
            series,
            key,
            settings,
            window,
            validation,
            a,
            &run_dir.join(format!("fold-{}", i + 1)),
        )?;
        if out.accepted {
            current = out.best_dir.clone();
        }
        let updated_pct = trade::<A>(&current, series, key, settings, bars.clone())?;
        eprintln!(
            "window {}/{k} (bars {}..{}): static {static_pct:+.2}%, updated {updated_pct:+.2}%{}",
            i + 1,
            bars.start,
            bars.end,
            if out.accepted {
                ""
            } else {
                " (update refused by the guard)"
            }
        );
        folds.push(FoldResult {
            bars: (bars.start, bars.end),
            static_pct,
            updated_pct,
            update_accepted: out.accepted,
        });
    }
    let mean = |f: &dyn Fn(&FoldResult) -> f64| folds.iter().map(f).sum::<f64>() / folds.len() as f64;
    let (s, u) = (mean(&|f| f.static_pct), mean(&|f| f.updated_pct));
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"folds": folds, "static_mean_pct": s, "updated_mean_pct": u}))?
        );
    } else {
        println!("mean return per window: static {s:+.2}%, updated on each new window {u:+.2}%");
    }
    Ok(())
}
