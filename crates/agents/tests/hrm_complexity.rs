//! Market complexity: after training, does the HRM think longer (use more
//! segments) in volatile, regime-changing stretches than in calm ones?
//!
//! Trained by supervised pre-training on hindsight-optimal labels of a
//! synthetic regime-switching market, where the Q-head learns whether each
//! segment's decision is already right; then every test-split bar is
//! decided greedily and the segments it used are grouped by the market's
//! known regime.
//!
//! Ignored in the suite (two minutes in an optimised build, longer in the
//! test profile); run it with
//! `cargo test --profile quick -p tradelab-agents --test hrm_complexity -- --ignored --nocapture`.
//! Result recorded in BENCHMARKS.md: 1.046 segments per decision in
//! turbulent stretches against 1.000 in calm ones. The difference is
//! small: hindsight labels on this market are barely predictable from causal
//! features (about 50% accuracy at every depth), so deeper segments rarely
//! change the answer and the Q-head learns to halt after the first.

use std::sync::Arc;

use tradelab_agents::hindsight::LabelCosts;
use tradelab_agents::hrm::pretrain::training_labels;
use tradelab_agents::hrm::{HrmAgent, HrmConfig};
use tradelab_agents::settings::{HrmSettings, PpoSettings};
use tradelab_agents::{Agent, AgentInput, MarketKey};
use tradelab_data::synthetic::{generate, Regime, SyntheticConfig};
use tradelab_env::{Split, VecEnv};
use tradelab_testkit::EnvSections;

const KEY: MarketKey = MarketKey {
    instrument: 0,
    timeframe: 0,
};

#[test]
#[ignore = "an experiment of two minutes; see the module docs"]
fn segments_used_by_regime_after_pretraining() {
    let mut s = EnvSections::default();
    s.env.window = 8;
    let ppo = PpoSettings {
        envs: 4,
        rollout_steps: 128,
        minibatches: 2,
        epochs: 2,
        ..Default::default()
    };
    let mut model = HrmSettings::default();
    let m = &mut model;
    m.d_model = 32;
    m.heads = 4;
    m.max_segments = 4;
    m.pretrain_learning_rate = 3e-3;
    m.instrument_embedding = 8;
    m.timeframe_embedding = 4;
    let market = generate(&SyntheticConfig {
        bars: 4000,
        seed: 5,
        ..Default::default()
    });
    let data = Arc::new(s.market_data(market.series.clone()).unwrap());
    let mut agent = HrmAgent::new(HrmConfig {
        features: data.n_features(),
        window: s.env.window,
        instruments: 1,
        timeframes: 1,
        seed: 7,
        ppo: ppo.clone(),
        model: model.clone(),
    })
    .unwrap();
    let labels = training_labels(std::slice::from_ref(&data), LabelCosts::new(&s.backtest, &s.risk));
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 1).unwrap();
    for epoch in 0..40 {
        let st = agent.pretrain_epoch(&mut envs, &[KEY], &labels, epoch).unwrap();
        if epoch % 10 == 9 {
            eprintln!("epoch {epoch}: {st:?}");
        }
    }
    agent.take_segment_counts();
    let (mut calm, mut turbulent) = (Vec::new(), Vec::new());
    for t in data.steps(Split::Test) {
        let input = AgentInput {
            window: data.window(t),
            account: [0.0; 3],
            mask: [true, true, false, false, true],
            market: KEY,
        };
        agent.select_action(&input, true).unwrap();
        let counts = agent.take_segment_counts();
        let used = counts.iter().position(|c| *c > 0).unwrap() + 1;
        let recent = &market.regimes[t.saturating_sub(8)..=t];
        let changed = recent.iter().any(|r| *r != recent[0]);
        if market.regimes[t] == Regime::HighVolatility || changed {
            turbulent.push(used as f64);
        } else if market.regimes[t] == Regime::Sideways {
            calm.push(used as f64);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    eprintln!(
        "segments per decision: turbulent {:.3} over {} bars, calm {:.3} over {} bars",
        mean(&turbulent),
        turbulent.len(),
        mean(&calm),
        calm.len()
    );
    assert!(
        turbulent.len() > 100 && calm.len() > 30,
        "both kinds of stretch are sampled"
    );
    assert!(
        mean(&turbulent) >= mean(&calm),
        "fewer segments in turbulent stretches than in calm ones"
    );
}
