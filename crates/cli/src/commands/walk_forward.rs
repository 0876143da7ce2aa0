//! `tradelab walk-forward`: walk-forward evaluation with retraining (the
//! use case is `tradelab_app::walk_forward`): the folds as they end, the
//! stitched out-of-sample curve against buy-and-hold's, and
//! `walk_forward.json`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use tradelab_app::markets::{load_series, timeframe_name};
use tradelab_app::walk_forward::{self, max_drawdown_pct, validation_share, WalkForwardPlan};
use tradelab_sim::stats::Comparison;

use crate::cli::{GlobalArgs, WalkForwardArgs};
use crate::context::{ensure_dir, load_settings};

pub fn run(g: &GlobalArgs, a: &WalkForwardArgs) -> Result<()> {
    let mut extra = Vec::new();
    if let Some(steps) = a.steps {
        extra.push(format!("ppo.total_steps={steps}"));
    }
    let settings = load_settings(g, &extra)?;
    walk_forward::check_agent(&a.agent)?;
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
    let plan = WalkForwardPlan {
        agent: a.agent.clone(),
        train_bars,
        test_bars,
        embargo,
        anchored: a.anchored,
        out: a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("runs/walk-forward-{}-seed{}", a.agent, settings.seed))),
    };
    let folds = walk_forward::folds(&series, &plan)?;
    let out = plan.out.clone();
    ensure_dir(&out)?;
    println!(
        "walk-forward with retraining: {} on {} ({} bars), {} folds of {train_bars} train ({:.0}% of it validating) + {embargo} embargo + {test_bars} test bars, {}, {} steps a fold, seed {}",
        a.agent,
        series.instrument,
        series.len(),
        folds.len(),
        validation_share(&settings) * 100.0,
        if a.anchored { "expanding" } else { "rolling" },
        settings.ppo.total_steps,
        settings.seed
    );
    let walked = walk_forward::run(&series, &folds, &settings, &plan, &mut |r| {
        println!(
            "fold {}: test {}..{}: model {:+.2}% (Sharpe {:+.2}, {} entries, {} trades), buy-and-hold {:+.2}% (Sharpe {:+.2})",
            r.fold + 1,
            r.test_dates[0],
            r.test_dates[1],
            r.return_pct,
            r.sharpe,
            r.entries,
            r.closed_trades,
            r.buy_and_hold_return_pct,
            r.buy_and_hold_sharpe
        );
    })?;
    let (model_curve, hold_curve) = (&walked.model_curve, &walked.hold_curve);
    let flat_folds = walked.flat_folds();
    print_summary(
        &walked.comparison,
        model_curve,
        hold_curve,
        flat_folds,
        walked.folds.len(),
    );
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
        "folds": walked.folds,
        "flat_folds": flat_folds,
        "stitched": {
            "return_pct": (model_curve.last().copied().unwrap_or(1.0) - 1.0) * 100.0,
            "buy_and_hold_return_pct": (hold_curve.last().copied().unwrap_or(1.0) - 1.0) * 100.0,
            "max_drawdown_pct": max_drawdown_pct(model_curve),
            "buy_and_hold_max_drawdown_pct": max_drawdown_pct(hold_curve),
            "statistics": walked.comparison,
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

fn print_summary(c: &Comparison, model: &[f64], hold: &[f64], flat_folds: usize, folds: usize) {
    let (sr, bh) = (c.sharpe, c.benchmark_sharpe);
    println!(
        "stitched out of sample ({} bars): model {:+.2}%, Sharpe {:+.2} [{:+.2}, {:+.2}], max drawdown {:.1}%; buy-and-hold {:+.2}%, Sharpe {:+.2} [{:+.2}, {:+.2}], max drawdown {:.1}%",
        c.observations,
        (model.last().copied().unwrap_or(1.0) - 1.0) * 100.0,
        sr.sharpe,
        sr.low,
        sr.high,
        max_drawdown_pct(model),
        (hold.last().copied().unwrap_or(1.0) - 1.0) * 100.0,
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
