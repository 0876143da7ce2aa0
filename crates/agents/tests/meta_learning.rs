//! Meta-training a PPO agent: the inner loop adapts fast weights without
//! touching the meta-parameters, Reptile moves the meta-parameters toward
//! the adapted weights by its step, and every mode takes a finite,
//! deterministic outer step.

use std::sync::Arc;

use tradelab_agents::maml::MetaMode;
use tradelab_agents::meta_learning::{adapt_to_task, evaluate_held_out, meta_iteration, InnerLoop, MetaTask};
use tradelab_agents::ppo::{PpoAgent, PpoConfig};
use tradelab_agents::MarketKey;
use tradelab_core::Settings;
use tradelab_env::MarketData;
use tradelab_testkit::synthetic_series;

fn settings() -> Settings {
    let mut s = Settings::default();
    s.env.window = 8;
    s.env.episode_bars = 64;
    s.ppo.hidden = 16;
    s.ppo.envs = 2;
    s.ppo.rollout_steps = 32;
    s.ppo.normalize_rewards = false;
    s.meta.inner_steps = 2;
    s.meta.inner_lr = 0.05;
    s.meta.reptile_step = 0.5;
    s
}

fn task(seed: u64, s: &Settings) -> MetaTask {
    let data = MarketData::new(synthetic_series(1200, seed), s).unwrap();
    MetaTask {
        name: format!("synthetic {seed}"),
        data: Arc::new(data.with_splits(100..400, 420..560, 0..0).unwrap()),
        key: MarketKey {
            instrument: 0,
            timeframe: 0,
        },
    }
}

fn agent(s: &Settings, features: usize, seed: u64) -> PpoAgent {
    PpoAgent::new(PpoConfig {
        encoder: "mlp".into(),
        features,
        window: s.env.window,
        instruments: 1,
        timeframes: 1,
        seed,
        ppo: s.ppo.clone(),
        mixture: None,
    })
    .unwrap()
}

#[test]
fn reptile_moves_part_of_the_way_to_the_adapted_weights() {
    let s = settings();
    let t = task(1, &s);
    let f = t.data.n_features();
    let mut meta = agent(&s, f, 9);
    let theta = meta.flat_params().unwrap();
    meta_iteration(&mut meta, std::slice::from_ref(&t), &s, MetaMode::Reptile, 0).unwrap();

    // The same inner loop on an identical agent gives the fast weights θ'.
    let mut fast = agent(&s, f, 9);
    let iterates = adapt_to_task(&mut fast, &t, &s, InnerLoop::from_settings(&s.meta), s.seed).unwrap();
    assert_eq!(iterates.len(), 3, "θ and two inner steps");
    assert_eq!(iterates[0], theta, "the inner loop starts from the meta-parameters");
    let adapted = fast.flat_params().unwrap();
    assert!(
        adapted.iter().zip(&theta).any(|(a, b)| (a - b).abs() > 1e-6),
        "the inner loop moved"
    );
    let got = meta.flat_params().unwrap();
    for i in 0..theta.len() {
        let want = theta[i] + 0.5 * (adapted[i] - theta[i]);
        assert!((got[i] - want).abs() < 1e-5, "{i}: {} vs {want}", got[i]);
    }
}

#[test]
fn every_mode_takes_a_finite_deterministic_step_and_second_order_differs() {
    let s = settings();
    let tasks = [task(1, &s), task(2, &s)];
    let f = tasks[0].data.n_features();
    let mut after = Vec::new();
    for mode in [MetaMode::SecondOrder, MetaMode::FirstOrder, MetaMode::Reptile] {
        let run = || {
            let mut a = agent(&s, f, 4);
            let stats = meta_iteration(&mut a, &tasks, &s, mode, 0).unwrap();
            (a.flat_params().unwrap(), stats)
        };
        let (p1, stats) = run();
        let (p2, _) = run();
        assert_eq!(p1, p2, "{mode:?} is deterministic");
        assert!(stats.meta_loss.is_finite() && stats.grad_norm.is_finite() && stats.grad_norm > 0.0);
        assert!(stats.pre_return_pct.is_finite() && stats.post_return_pct.is_finite());
        assert_ne!(p1, agent(&s, f, 4).flat_params().unwrap(), "{mode:?} moved θ");
        after.push(p1);
    }
    // The Hessian term changes the meta-gradient: MAML and first-order MAML differ.
    let gap = after[0]
        .iter()
        .zip(&after[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(gap > 1e-7, "second-order and first-order MAML took the same step");
}

#[test]
fn held_out_evaluation_adapts_copies_and_leaves_both_initialisations_alone() {
    let s = settings();
    let t = task(3, &s);
    let f = t.data.n_features();
    let (mut meta, mut scratch) = (agent(&s, f, 1), agent(&s, f, 2));
    let (m0, s0) = (meta.flat_params().unwrap(), scratch.flat_params().unwrap());
    let r = evaluate_held_out(&mut meta, &mut scratch, &t, &s, 11).unwrap();
    assert!(r.no_adaptation_pct.is_finite() && r.meta_adapted_pct.is_finite() && r.scratch_adapted_pct.is_finite());
    assert_eq!(meta.flat_params().unwrap(), m0);
    assert_eq!(scratch.flat_params().unwrap(), s0);
}
