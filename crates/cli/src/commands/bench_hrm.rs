//! `tradelab bench hrm`: what the HRM costs.
//!
//! - peak heap memory and time of one training step (both passes over
//!   M_max segments, backward, Adam) as N x T grows from 4 to 64, which the
//!   one-step gradient should keep flat;
//! - for the `small` (CPU default) and `paper` (27M) presets: parameters,
//!   training-step memory and time, checkpoint size, and decision latency
//!   at batch 1 (p50, p99) at M_max segments (adaptive halting off: the
//!   worst case) and at one segment (the best case).
//!
//! Peak memory is measured by the CLI's metered allocator: the most heap
//! bytes live at once during the step, less what was live before it.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tradelab_agents::hrm::{HrmAgent, HrmConfig};
use tradelab_agents::settings::hrm_preset;
use tradelab_agents::{Agent, AgentInput, MarketKey};
use tradelab_app::Settings;
use tradelab_env::{MarketData, Split};

use crate::alloc_meter;
use tradelab_app::markets::load_symbols;

const KEY: MarketKey = MarketKey {
    instrument: 0,
    timeframe: 0,
};

const MB: f64 = 1024.0 * 1024.0;

pub(super) fn agent(settings: &Settings, data: &MarketData) -> Result<HrmAgent> {
    Ok(HrmAgent::new(HrmConfig {
        features: data.n_features(),
        window: settings.env.window,
        instruments: 1,
        timeframes: 1,
        seed: settings.seed,
        ppo: settings.ppo.clone(),
        model: settings.hierarchical_reasoning_model.clone(),
    })?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Peak extra heap bytes and seconds of one training step.
fn measured_step(a: &mut HrmAgent, data: &MarketData, batch: usize) -> Result<(f64, f64)> {
    alloc_meter::reset_peak();
    let before = alloc_meter::live();
    let t = a.time_training_step(data, KEY, batch, 1)?;
    Ok(((alloc_meter::peak() - before) as f64 / MB, t[0]))
}

/// Decision latencies (seconds, sorted) over `n` test bars.
fn latencies(a: &mut HrmAgent, data: &MarketData, n: usize) -> Result<Vec<f64>> {
    let bars = data.steps(Split::Test);
    let mut out = Vec::with_capacity(n);
    for k in 0..n + 5 {
        let bar = bars.start + k % bars.len();
        let input = AgentInput {
            window: data.window(bar),
            account: [0.0; 3],
            mask: [true, true, false, false, true],
            market: KEY,
        };
        let start = Instant::now();
        a.select_action(&input, true)?;
        if k >= 5 {
            out.push(start.elapsed().as_secs_f64());
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

pub fn run(base: &Settings, batch: usize, decisions: usize, paper_batch: usize) -> Result<()> {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let series = load_symbols(base, &["orcl-1995-2014".to_string()], false)?.remove(0);
    let data = Arc::new(base.market_data(series)?);

    for (n, t) in [(2, 2), (2, 4), (4, 4), (4, 8), (8, 8)] {
        let mut s = base.clone();
        s.hierarchical_reasoning_model.h_cycles = n;
        s.hierarchical_reasoning_model.l_cycles = t;
        let mut a = agent(&s, &data)?;
        let (peak, secs) = measured_step(&mut a, &data, batch)?;
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"hrm_training_memory\",\"threads\":\"{threads}\",\"n\":{n},\"t\":{t},\"n_x_t\":{},\"batch\":{batch},\"max_segments\":{},\"d_model\":{},\"peak_mb\":{peak:.1},\"step_s\":{secs:.3}}}",
            n * t,
            s.hierarchical_reasoning_model.max_segments,
            s.hierarchical_reasoning_model.d_model,
        );
    }

    for (preset, step_batch) in [("small", batch), ("paper", paper_batch)] {
        let overrides: Vec<String> = hrm_preset(preset)?.iter().map(|s| s.to_string()).collect();
        // JSON is YAML: the base settings with the preset laid over them.
        let s = Settings::from_yaml_str(&serde_json::to_string(base)?, &overrides)?;
        let mut a = agent(&s, &data)?;
        let (peak, secs) = measured_step(&mut a, &data, step_batch)?;
        let ckpt = std::env::temp_dir().join(format!("tradelab-bench-hrm-{}", std::process::id()));
        a.save(&ckpt)?;
        let size = |name: &str| {
            std::fs::metadata(ckpt.join(name))
                .map(|m| m.len() as f64 / MB)
                .unwrap_or(0.0)
        };
        let (model_mb, optimizer_mb) = (size("model.safetensors"), size("optimizer.safetensors"));
        let _ = std::fs::remove_dir_all(&ckpt);
        // Adaptive halting off: every decision thinks M_max segments.
        a.config.model.act = false;
        let worst = latencies(&mut a, &data, decisions)?;
        let counts = a.take_segment_counts();
        anyhow::ensure!(
            counts.iter().take(counts.len() - 1).all(|c| *c == 0),
            "worst-case latency ran fewer than M_max segments: {counts:?}"
        );
        a.config.model.max_segments = 1;
        let best = latencies(&mut a, &data, decisions)?;
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"hrm_preset\",\"preset\":\"{preset}\",\"threads\":\"{threads}\",\"parameters\":{},\"d_model\":{},\"layers\":{},\"window\":{},\"train_batch\":{step_batch},\"train_peak_mb\":{peak:.1},\"train_step_s\":{secs:.3},\"model_file_mb\":{model_mb:.1},\"optimizer_file_mb\":{optimizer_mb:.1},\"decision_segments_worst\":{},\"decision_ms_p50_worst\":{:.3},\"decision_ms_p99_worst\":{:.3},\"decision_ms_p50_one_segment\":{:.3},\"decision_ms_p99_one_segment\":{:.3}}}",
            a.parameter_count(),
            s.hierarchical_reasoning_model.d_model,
            s.hierarchical_reasoning_model.h_layers + s.hierarchical_reasoning_model.l_layers,
            s.env.window,
            s.hierarchical_reasoning_model.max_segments,
            percentile(&worst, 0.5) * 1e3,
            percentile(&worst, 0.99) * 1e3,
            percentile(&best, 0.5) * 1e3,
            percentile(&best, 0.99) * 1e3,
        );
    }
    Ok(())
}
