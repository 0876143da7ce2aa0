//! `tradelab bench forensics`: what explaining a decision costs beside
//! what deciding it costs, per agent kind at the default sizes. Over the
//! test split's bars of a bundled market, each bar is decided (greedy, as a
//! session does) and then explained as a forensics worker does it
//! (integrated gradients at `--steps` points, the model's internals, the
//! paragraph): decision latency and explanation time (p50, p99), the
//! decisions one worker explains per second, and the worst completeness gap.
//! Untrained weights: the costs do not depend on their values.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tradelab_agents::explanation::COMPLETENESS_TOLERANCE;
use tradelab_agents::{Agent, AgentInput, MarketKey};
use tradelab_app::audit::explain::explain;
use tradelab_app::markets::load_symbols;
use tradelab_app::Settings;
use tradelab_bus::{DecisionEvent, DecisionInputs};
use tradelab_env::{MarketData, Split};

const KEY: MarketKey = MarketKey {
    instrument: 0,
    timeframe: 0,
};

/// The agent of `kind` at the settings' sizes, as the HRM and PPO
/// benchmarks build theirs.
fn agent(s: &Settings, kind: &str, data: &MarketData) -> Result<Box<dyn Agent>> {
    Ok(match kind {
        "hrm" => Box::new(super::bench_hrm::agent(s, data)?),
        _ => Box::new(super::bench_ppo::agent(s, kind.trim_start_matches("ppo-"), data)?),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(settings: &Settings, decisions: usize, steps: usize) -> Result<()> {
    let series = load_symbols(settings, &["orcl-1995-2014".to_string()], false)?.remove(0);
    let data = Arc::new(settings.market_data(series)?);
    let features = data.feature_names.clone();
    let bars: Vec<usize> = data.steps(Split::Test).take(decisions.max(2)).collect();
    println!(
        "{} decisions per agent on orcl-1995-2014's test split, window {} x {} features, {steps} integration points, one thread",
        bars.len(),
        settings.env.window,
        features.len()
    );
    for kind in ["ppo-lstm", "ppo-transformer", "ppo-mlp", "hrm"] {
        let mut a = agent(settings, kind, &data)?;
        let (mut decide_us, mut explain_ms) = (Vec::new(), Vec::new());
        let (mut worst_gap, mut incomplete) = (0f64, 0usize);
        let started = Instant::now();
        for &t in &bars {
            let input = AgentInput {
                window: data.window(t),
                account: [0.0; 3],
                mask: [true, true, false, false, true],
                market: KEY,
            };
            let t0 = Instant::now();
            let d = a.select_action(&input, true)?;
            decide_us.push(t0.elapsed().as_secs_f64() * 1e6);
            let event = DecisionEvent {
                instrument: "ORCL".into(),
                model: kind.into(),
                action: d.action.as_str().into(),
                quantity: d.quantity,
                probabilities: d.probabilities,
                value: d.value,
                inputs: DecisionInputs::new(
                    input.window,
                    settings.env.window,
                    input.account,
                    input.mask,
                    [0, 0],
                    1.0,
                    0.0,
                    1.0,
                    1.0,
                ),
            };
            let t1 = Instant::now();
            let e = explain(a.as_mut(), &features, &event, steps)?;
            explain_ms.push(t1.elapsed().as_secs_f64() * 1e3);
            if let Some(at) = &e.attributions {
                worst_gap = worst_gap.max(at.completeness_gap.abs() as f64);
                incomplete += usize::from(!at.complete);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        decide_us.sort_by(f64::total_cmp);
        explain_ms.sort_by(f64::total_cmp);
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"forensics\",\"agent\":\"{kind}\",\"decisions\":{},\"steps\":{steps},\"decide_p50_us\":{:.0},\"decide_p99_us\":{:.0},\"explain_p50_ms\":{:.2},\"explain_p99_ms\":{:.2},\"explained_per_s\":{:.0},\"worst_gap\":{worst_gap:.2e},\"incomplete\":{incomplete},\"tolerance\":{COMPLETENESS_TOLERANCE}}}",
            bars.len(),
            percentile(&decide_us, 0.5),
            percentile(&decide_us, 0.99),
            percentile(&explain_ms, 0.5),
            percentile(&explain_ms, 0.99),
            bars.len() as f64 / (seconds - decide_us.iter().sum::<f64>() / 1e6),
        );
    }
    Ok(())
}
