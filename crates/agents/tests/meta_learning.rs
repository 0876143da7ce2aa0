//! Meta-training a PPO agent: the inner loop adapts fast weights without
//! touching the meta-parameters, Reptile moves the meta-parameters toward
//! the adapted weights by its step, and every mode takes a finite,
//! deterministic outer step.

use std::sync::Arc;

use tradelab_agents::maml::MetaMode;
use tradelab_agents::meta_learning::{
    adapt_to_task, evaluate_held_out, meta_iteration, InnerLoop, MetaSetup, MetaTask,
};
use tradelab_agents::ppo::{PpoAgent, PpoConfig};
use tradelab_agents::settings::{MetaSettings, PpoSettings};
use tradelab_agents::MarketKey;
use tradelab_testkit::{synthetic_series, EnvSections};

/// The sections meta-learning reads: the environment's, `ppo:` and `meta:`.
struct Settings {
    sections: EnvSections,
    ppo: PpoSettings,
    meta: MetaSettings,
    seed: u64,
}

impl Settings {
    fn setup(&self) -> MetaSetup {
        MetaSetup {
            env: self.sections.env_config(),
            meta: self.meta.clone(),
            seed: self.seed,
            max_grad_norm: self.ppo.max_grad_norm,
        }
    }
}

fn settings() -> Settings {
    let mut sections = EnvSections::default();
    sections.env.window = 8;
    sections.env.episode_bars = 64;
    let ppo = PpoSettings {
        hidden: 16,
        envs: 2,
        rollout_steps: 32,
        normalize_rewards: false,
        ..Default::default()
    };
    let meta = MetaSettings {
        inner_steps: 2,
        inner_lr: 0.05,
        reptile_step: 0.5,
        ..Default::default()
    };
    let seed = tradelab_core::settings::default_section("seed");
    Settings {
        sections,
        ppo,
        meta,
        seed,
    }
}

fn task(seed: u64, s: &Settings) -> MetaTask {
    let data = s.sections.market_data(synthetic_series(1200, seed)).unwrap();
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
        window: s.sections.env.window,
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
    meta_iteration(&mut meta, std::slice::from_ref(&t), &s.setup(), MetaMode::Reptile, 0).unwrap();

    // The same inner loop on an identical agent gives the fast weights θ'.
    let mut fast = agent(&s, f, 9);
    let iterates = adapt_to_task(
        &mut fast,
        &t,
        &s.sections.env_config(),
        InnerLoop::from_settings(&s.meta),
        s.seed,
    )
    .unwrap();
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
            let stats = meta_iteration(&mut a, &tasks, &s.setup(), mode, 0).unwrap();
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
    let r = evaluate_held_out(&mut meta, &mut scratch, &t, &s.setup(), 11).unwrap();
    assert!(r.no_adaptation_pct.is_finite() && r.meta_adapted_pct.is_finite() && r.scratch_adapted_pct.is_finite());
    assert_eq!(meta.flat_params().unwrap(), m0);
    assert_eq!(scratch.flat_params().unwrap(), s0);
}
