//! `tradelab regimes`: the regime model of each market, fitted on its
//! training split, and the filtered probabilities of every bar.

use anyhow::{Context, Result};
use serde_json::json;
use tradelab_core::time::format_datetime;
use tradelab_regime::features::{FEATURES, VOLATILITY};
use tradelab_regime::{RegimeConfig, RegimeDetector};

use crate::cli::{GlobalArgs, RegimesArgs};
use crate::context::load_settings;
use tradelab_app::markets::{load_series, timeframe_name};

/// The detector's configuration from settings.
pub fn regime_config(settings: &tradelab_app::Settings) -> RegimeConfig {
    let r = &settings.regime;
    RegimeConfig {
        min_states: r.min_states,
        max_states: r.max_states,
        vol_window: r.vol_window,
        trend_window: r.trend_window,
        floor: r.floor,
        ..RegimeConfig::default()
    }
}

pub fn run(g: &GlobalArgs, a: &RegimesArgs) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let series = load_series(&settings, &a.symbols, a.timeframe.as_deref(), g.verbose)?;
    let config = regime_config(&settings);
    let mut reports = Vec::new();
    for s in &series {
        let train = ((s.close.len() as f64) * settings.env.train_fraction) as usize;
        let detector = RegimeDetector::fit(&s.close[..train], &config)
            .with_context(|| format!("fitting the regime model of {} on {train} training bars", s.instrument))?;
        let probs = detector.filter(&s.close);
        let k = detector.states();
        let argmax = |t: usize| {
            (0..k)
                .max_by(|&x, &y| probs[t * k + x].total_cmp(&probs[t * k + y]))
                .unwrap_or(0)
        };
        let share = |range: std::ops::Range<usize>| {
            let n = range.len().max(1) as f64;
            let mut c = vec![0.0; k];
            for t in range {
                c[argmax(t)] += 1.0 / n;
            }
            c
        };
        let (in_train, after) = (share(detector.warm_up()..train), share(train..s.close.len()));
        // Back from z-scores to a bar's return and volatility.
        let st = &detector.standardizer;
        let m = &detector.model;
        let states: Vec<_> = (0..k)
            .map(|i| {
                let mean = |f: usize| m.means[i * FEATURES + f] * st.std[f] + st.mean[f];
                json!({
                    "state": i,
                    "mean_return": mean(0),
                    "volatility": mean(VOLATILITY).exp(),
                    "trend_strength": mean(2),
                    "stay_probability": m.transition[i * k + i],
                    "share_training": in_train[i],
                    "share_after": after[i],
                })
            })
            .collect();
        let last = s.close.len() - 1;
        if !a.json {
            let bic: Vec<String> = detector.bic.iter().map(|(n, b)| format!("K={n}: {b:.1}")).collect();
            println!(
                "{} {}: {k} states by BIC ({}), fitted on the first {train} of {} bars",
                s.instrument,
                timeframe_name(s),
                bic.join(", "),
                s.close.len()
            );
            println!(
                "  {:<5}  {:>10}  {:>14}  {:>6}  {:>6}  {:>16}  {:>6}",
                "state", "return/bar", "volatility/bar", "trend", "stays", "share: training", "after"
            );
            for st in &states {
                println!(
                    "  {:<5}  {:>+9.3}%  {:>13.2}%  {:>+6.2}  {:>6.3}  {:>15.0}%  {:>5.0}%",
                    st["state"].as_u64().unwrap_or(0),
                    st["mean_return"].as_f64().unwrap_or(0.0) * 100.0,
                    st["volatility"].as_f64().unwrap_or(0.0) * 100.0,
                    st["trend_strength"].as_f64().unwrap_or(0.0),
                    st["stay_probability"].as_f64().unwrap_or(0.0),
                    st["share_training"].as_f64().unwrap_or(0.0) * 100.0,
                    st["share_after"].as_f64().unwrap_or(0.0) * 100.0,
                );
            }
            let p: Vec<String> = probs[last * k..(last + 1) * k]
                .iter()
                .map(|p| format!("{p:.3}"))
                .collect();
            println!(
                "  latest bar {}: p(state) = [{}], most likely {}",
                format_datetime(s.ts[last]),
                p.join(", "),
                argmax(last)
            );
        }
        reports.push(json!({
            "instrument": s.instrument,
            "timeframe": timeframe_name(s),
            "training_bars": train,
            "bic": detector.bic,
            "states": states,
            "ts": s.ts,
            "probabilities": probs.chunks(k).collect::<Vec<_>>(),
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string(&reports)?);
    }
    Ok(())
}
