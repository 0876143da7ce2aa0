//! `tradelab bench ppo`: PPO training throughput (MLP policy, the shape
//! Stable-Baselines3's `MlpPolicy` compares with), one update step of the
//! LSTM and Transformer policies (compared with PyTorch), and decision
//! latency at batch 1. Set RAYON_NUM_THREADS to fix the thread count.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tradelab_agents::{Agent, AgentInput, MarketKey, PpoAgent, PpoConfig};
use tradelab_app::Settings;
use tradelab_env::{MarketData, Split, VecEnv};

use tradelab_app::markets::load_symbols;

const KEY: MarketKey = MarketKey {
    instrument: 0,
    timeframe: 0,
};

pub(super) fn agent(settings: &Settings, encoder: &str, data: &MarketData) -> Result<PpoAgent> {
    Ok(PpoAgent::new(PpoConfig {
        encoder: encoder.into(),
        features: data.n_features(),
        window: settings.env.window,
        instruments: 1,
        timeframes: 1,
        seed: settings.seed,
        ppo: settings.ppo.clone(),
        mixture: None,
    })?)
}

/// The benchmark's lockstep environments on the training split.
fn training_envs(settings: &Settings, data: &Arc<MarketData>) -> Result<VecEnv> {
    Ok(VecEnv::new(
        std::slice::from_ref(data),
        settings.ppo.envs,
        Split::Train,
        &settings.env_config(),
        settings.seed,
    )?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(settings: &Settings, steps: usize, repeats: usize, update_steps: bool) -> Result<()> {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let series = load_symbols(settings, &["orcl-1995-2014".to_string()], false)?.remove(0);
    let data = Arc::new(settings.market_data(series)?);
    let obs = data.observation_len();
    let p = &settings.ppo;

    // Throughput: environment steps per second including updates.
    let mut rates = Vec::new();
    let mut parameters = 0;
    for _ in 0..repeats.max(1) {
        let mut a = agent(settings, "mlp", &data)?;
        parameters = a.parameter_count();
        let mut envs = training_envs(settings, &data)?;
        let start = Instant::now();
        let mut done = 0;
        while done < steps {
            done += a.learn(&mut envs, &[KEY])?.env_steps;
        }
        rates.push(done as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{{\"tool\":\"tradelab\",\"bench\":\"ppo_mlp_training\",\"threads\":\"{threads}\",\"obs\":{obs},\"parameters\":{parameters},\"envs\":{},\"n_steps\":{},\"batch_size\":{},\"epochs\":{},\"hidden\":{},\"timesteps\":{steps},\"steps_per_s_median\":{:.0},\"steps_per_s_all\":{:?}}}",
        p.envs,
        p.rollout_steps,
        p.envs * p.rollout_steps / p.minibatches,
        p.epochs,
        p.hidden,
        percentile(&rates, 0.5),
        rates.iter().map(|r| r.round()).collect::<Vec<_>>()
    );

    if !update_steps {
        return Ok(());
    }
    for encoder in ["lstm", "transformer"] {
        // One update step on a 256-sample minibatch (8 envs x 128 steps / 4).
        let mut a = agent(settings, encoder, &data)?;
        let mut envs = training_envs(settings, &data)?;
        a.learn(&mut envs, &[KEY])?;
        let mut t = a.time_update_step(20)?;
        t.sort_by(f64::total_cmp);
        // Decision latency: one greedy decision for one observation.
        let bar = data.steps(Split::Test).start;
        let input = AgentInput {
            window: data.window(bar),
            account: [0.0; 3],
            mask: [true, true, false, false, true],
            market: KEY,
        };
        for _ in 0..20 {
            a.select_action(&input, true)?;
        }
        let mut lat: Vec<f64> = (0..1000)
            .map(|_| {
                let s = Instant::now();
                let _ = a.select_action(&input, true);
                s.elapsed().as_secs_f64()
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"ppo_{encoder}\",\"threads\":\"{threads}\",\"batch\":{},\"window\":{},\"features\":{},\"hidden\":{},\"update_ms_median\":{:.3},\"update_ms_p10\":{:.3},\"update_ms_p90\":{:.3},\"decision_ms_p50\":{:.4},\"decision_ms_p99\":{:.4}}}",
            p.envs * p.rollout_steps / p.minibatches,
            settings.env.window,
            data.n_features(),
            p.hidden,
            percentile(&t, 0.5) * 1e3,
            percentile(&t, 0.1) * 1e3,
            percentile(&t, 0.9) * 1e3,
            percentile(&lat, 0.5) * 1e3,
            percentile(&lat, 0.99) * 1e3,
        );
    }
    Ok(())
}
