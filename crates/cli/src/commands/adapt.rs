//! `tradelab adapt`: online learning (the use case is `tradelab_app::adapt`;
//! this records the run, registers an accepted update and prints). A trained model continues PPO on a
//! sliding window of the newest bars of a market it knows and is validated
//! on the bars after that window; the update becomes a new checkpoint (and
//! registry version) only if validation does not fall by more than
//! `--max-worsening` points, so the previous version always stays loadable.
//!
//! `--walk-forward K` measures decay: the last K windows of `--validation`
//! bars are each traded greedily by the static model and by a model updated
//! (with the same guard) on the bars before that window, never after.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tradelab_agents::hrm::{HrmAgent, KIND as HRM};
use tradelab_agents::ppo::{read_model_kind, PpoAgent};
use tradelab_agents::trainer::Trainable;
use tradelab_app::adapt::{first_unseen_bar, measure_decay, update, AdaptMarket, AdaptPlan, DecayWindow};
use tradelab_store::tracking::RunStatus;

use crate::cli::{AdaptArgs, GlobalArgs};
use crate::context::{load_settings, model_settings};
use tradelab_app::markets::{load_series, timeframe_name};
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

    let plan = AdaptPlan {
        window: a.window,
        validation: a.validation,
        steps: a.steps,
        max_worsening: a.max_worsening,
    };
    if let Some(k) = a.walk_forward {
        let market = AdaptMarket {
            series: &series,
            key,
            settings: &settings,
        };
        return decay::<A>(a, &plan, folder, market, &run_dir, k, unseen);
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
    let market = AdaptMarket {
        series: &series,
        key,
        settings: &settings,
    };
    let outcome = update::<A>(folder, market, window.clone(), validation.clone(), &plan, &run_dir);
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

/// `--walk-forward K`: the decay measurement, a line per window as it ends.
fn decay<A: Trainable>(
    a: &AdaptArgs,
    plan: &AdaptPlan,
    folder: &Path,
    market: AdaptMarket<'_>,
    run_dir: &Path,
    k: usize,
    unseen: usize,
) -> Result<()> {
    let folds = measure_decay::<A>(plan, folder, market, run_dir, k, unseen, &mut |i, w| {
        eprintln!(
            "window {}/{k} (bars {}..{}): static {:+.2}%, updated {:+.2}%{}",
            i + 1,
            w.bars.0,
            w.bars.1,
            w.static_pct,
            w.updated_pct,
            if w.update_accepted {
                ""
            } else {
                " (update refused by the guard)"
            }
        );
    })?;
    let mean = |f: &dyn Fn(&DecayWindow) -> f64| folds.iter().map(f).sum::<f64>() / folds.len() as f64;
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
