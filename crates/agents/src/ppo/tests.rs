use std::sync::Arc;

use crate::testing::TestSettings;
use tradelab_env::{MarketData, Split, VecEnv};
use tradelab_testkit::{default_seed, synthetic_market};

use super::*;

pub(crate) fn small_settings() -> TestSettings {
    let mut s = TestSettings::default();
    s.sections.env.window = 8;
    s.sections.env.episode_bars = 64;
    s.ppo.hidden = 16;
    s.ppo.heads = 2;
    s.ppo.layers = 1;
    s.ppo.envs = 4;
    s.ppo.rollout_steps = 32;
    s.ppo.minibatches = 2;
    s.ppo.epochs = 2;
    s.ppo.total_steps = 4 * 32 * 10;
    s
}

fn market(s: &TestSettings) -> Arc<MarketData> {
    synthetic_market(1500, default_seed(), &s.sections)
}

pub(crate) fn agent(s: &TestSettings, encoder: &str, data: &MarketData) -> PpoAgent {
    PpoAgent::new(PpoConfig {
        encoder: encoder.into(),
        features: data.n_features(),
        window: s.sections.env.window,
        instruments: 1,
        timeframes: 1,
        seed: 3,
        ppo: s.ppo.clone(),
        mixture: None,
    })
    .unwrap()
}

const KEY: [MarketKey; 1] = [MarketKey {
    instrument: 0,
    timeframe: 0,
}];

fn weights(a: &PpoAgent) -> Vec<u8> {
    crate::checkpoint::safetensors_bytes(&a.params.tensors()).unwrap()
}

#[test]
fn an_update_changes_the_policy_a_little_and_logs_finite_diagnostics() {
    let s = small_settings();
    let data = market(&s);
    for encoder in ["lstm", "transformer", "mlp"] {
        let mut a = agent(&s, encoder, &data);
        let before = weights(&a);
        let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 1).unwrap();
        let st = a.learn(&mut envs, &KEY).unwrap();
        assert_ne!(weights(&a), before, "{encoder}: weights moved");
        assert_eq!(st.env_steps, 128);
        assert_eq!(st.epochs, 2);
        for (name, v) in [
            ("policy", st.policy_loss),
            ("value", st.value_loss),
            ("entropy", st.entropy),
            ("kl", st.approx_kl),
            ("clip", st.clip_fraction),
            ("ev", st.explained_variance),
            ("grad", st.grad_norm),
        ] {
            assert!(v.is_finite(), "{encoder}: {name} = {v}");
        }
        // A first update from a near-uniform policy stays close to it.
        assert!(
            st.approx_kl >= 0.0 && st.approx_kl < 0.1,
            "{encoder}: kl {}",
            st.approx_kl
        );
        assert!((0.0..=1.0).contains(&st.clip_fraction));
        assert!(
            st.entropy > 0.5,
            "{encoder}: near-uniform start has high entropy: {}",
            st.entropy
        );
        assert!(
            (st.learning_rate - s.ppo.learning_rate).abs() < 1e-12,
            "first update uses lr0"
        );
        assert_eq!(a.updates, 1);
    }
}

#[test]
fn every_encoder_and_the_mixture_learn_and_act_on_an_exposure_target() {
    let s = small_settings();
    let data = market(&s);
    for encoder in ["mlp", "lstm", "transformer"] {
        let mut a = agent(&s, encoder, &data);
        crate::testing::learns_and_acts_on_an_exposure_target(&mut a, &s, &data, weights);
    }
    let (s, data, mut a, _) = mixture("mlp");
    crate::testing::learns_and_acts_on_an_exposure_target(&mut a, &s, &data, weights);
    // The mixture's view reads each specialist's intent as its greedy
    // target exposure, 2 E[q] - 1.
    let input = AgentInput {
        window: data.window(data.steps(Split::Train).start + 9),
        account: [0.0; 3],
        mask: tradelab_env::EXPOSURE_MASK,
        market: KEY[0],
    };
    let view = a.mixture_view(&input).unwrap().unwrap();
    for k in 0..view.exposures.len() {
        a.force_expert(Some(k)).unwrap();
        let q = a.select_action(&input, true).unwrap().quantity as f32;
        assert!(
            (view.exposures[k] - (2.0 * q - 1.0)).abs() < 1e-5,
            "specialist {k}: {view:?} vs q {q}"
        );
    }
}

#[test]
fn masked_actions_are_never_chosen_and_greedy_is_repeatable() {
    let s = small_settings();
    let data = market(&s);
    let mut a = agent(&s, "lstm", &data);
    let t = data.steps(Split::Train).start + 5;
    let input = AgentInput {
        window: data.window(t),
        account: [0.0; 3],
        mask: [false, false, true, false, true],
        market: KEY[0],
    };
    for _ in 0..200 {
        let d = a.select_action(&input, false).unwrap();
        assert!(matches!(d.action, Action::CloseLong | Action::Hold), "{:?}", d.action);
        assert_eq!(d.probabilities[0], 0.0);
        assert!(d.quantity > 0.0 && d.quantity < 1.0);
    }
    let g1 = a.select_action(&input, true).unwrap();
    let g2 = a.select_action(&input, true).unwrap();
    assert_eq!(g1, g2);
    let bad = AgentInput {
        window: &data.window(t)[1..],
        ..input
    };
    let err = a.select_action(&bad, true).unwrap_err().to_string();
    assert!(err.contains("window of 8 bars"), "{err}");
}

#[test]
fn same_seed_same_weights_and_a_checkpoint_round_trips() {
    let s = small_settings();
    let data = market(&s);
    let train = |seed_env: u64| {
        let mut a = agent(&s, "transformer", &data);
        let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), seed_env).unwrap();
        a.learn(&mut envs, &KEY).unwrap();
        a.learn(&mut envs, &KEY).unwrap();
        a
    };
    let a = train(5);
    assert_eq!(weights(&a), weights(&train(5)), "deterministic");
    assert_ne!(weights(&a), weights(&train(6)), "the environment seed matters");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    a.save(&dir).unwrap();
    let mut b = PpoAgent::load(&dir).unwrap();
    assert_eq!(weights(&b), weights(&a));
    assert_eq!((b.updates, b.env_steps), (2, 256));
    assert_eq!(
        b.adam.state()["adam.v.head.value.weight"].to_vec2::<f32>().unwrap(),
        a.adam.state()["adam.v.head.value.weight"].to_vec2::<f32>().unwrap()
    );
    let t = data.steps(Split::Test).start;
    let input = AgentInput {
        window: data.window(t),
        account: [0.0; 3],
        mask: [true; 5],
        market: KEY[0],
    };
    let mut a = a;
    assert_eq!(
        a.select_action(&input, true).unwrap(),
        b.select_action(&input, true).unwrap()
    );

    // A flipped byte in the weights is caught by the checksum.
    let path = dir.join(crate::checkpoint::WEIGHTS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = PpoAgent::load(&dir).err().unwrap().to_string();
    assert!(err.contains("sha256") && err.contains("model.safetensors"), "{err}");

    // Another agent type is named, not half-loaded.
    let meta = dir.join(crate::checkpoint::METADATA_FILE);
    let text =
        std::fs::read_to_string(&meta)
            .unwrap()
            .replacen("\"model\": \"ppo-transformer\"", "\"model\": \"hrm\"", 1);
    std::fs::write(&meta, text).unwrap();
    let err = PpoAgent::load(&dir).err().unwrap().to_string();
    assert!(err.contains("`hrm` model"), "{err}");
}

/// The flat gradient meta-learning steps with is the derivative of the
/// batch's loss along the flat parameter layout: a central difference of
/// the loss along the gradient's direction matches its norm.
#[test]
fn the_flat_gradient_is_the_loss_derivative_in_the_flat_layout() {
    let mut s = small_settings();
    s.ppo.normalize_rewards = false;
    let data = market(&s);
    let key = MarketKey {
        instrument: 0,
        timeframe: 0,
    };
    for encoder in ["mlp", "lstm"] {
        let mut agent = agent(&s, encoder, &data);
        let tb = agent.task_batch(&data, key, Split::Train, &s.env_config(), 3).unwrap();
        let theta = agent.flat_params().unwrap();
        assert_eq!(theta.len(), agent.parameter_count());
        let (g, _) = agent.batch_gradient(&tb.batch, tb.advantages.clone()).unwrap();
        let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(norm > 0.0 && norm.is_finite());
        let eps = 0.05;
        let mut loss_at = |sign: f64| {
            let moved: Vec<f64> = theta.iter().zip(&g).map(|(t, gi)| t + sign * eps * gi / norm).collect();
            agent.set_flat_params(&moved).unwrap();
            agent.batch_gradient(&tb.batch, tb.advantages.clone()).unwrap().1
        };
        let difference = (loss_at(1.0) - loss_at(-1.0)) / (2.0 * eps);
        assert!(
            (difference - norm).abs() < 0.05 * norm,
            "{encoder}: central difference {difference} against gradient norm {norm}"
        );
        // Writing the flat vector back restores the weights exactly.
        agent.set_flat_params(&theta).unwrap();
        assert_eq!(agent.flat_params().unwrap(), theta);
    }
}

/// The fused MLP (how PPO trains `ppo-mlp`) against the candle network it
/// stands in for: the same draws and log-probabilities while acting, the
/// same loss figures and gradient on a minibatch.
#[test]
fn the_fused_mlp_acts_and_differentiates_like_the_candle_policy() {
    let mut s = small_settings();
    s.ppo.entropy_coef = 0.05; // weight the entropy's gradient visibly
    let data = market(&s);
    let mut a = agent(&s, "mlp", &data);
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 1).unwrap();
    a.learn(&mut envs, &KEY).unwrap();
    let mut b = a.buffer.take().unwrap();
    let mut fused = a.fused.take().expect("an MLP agent trains on the fused path");
    fused.pull(&a.adam).unwrap();

    // Acting: the same observations and random stream give the same actions.
    let wlen = s.sections.env.window * data.n_features();
    let rows = 4 * 8;
    let (windows, accounts, masks) = (&b.windows[..rows * wlen], &b.accounts[..rows * 3], &b.masks[..rows * 5]);
    let keys = vec![KEY[0]; rows];
    let mut rng_candle = ChaCha8Rng::seed_from_u64(42);
    let mut rng_fused = rng_candle.clone();
    std::mem::swap(&mut a.rng, &mut rng_candle);
    let by_candle = a.act(windows, accounts, masks, &keys, false).unwrap();
    let mut actor = fused::FusedActor {
        net: &mut fused,
        rng: &mut rng_fused,
        scaler: None,
    };
    let by_fused = actor.act(windows, accounts, masks, &keys, false).unwrap();
    assert_eq!(by_candle.actions, by_fused.actions);
    for (x, y) in [
        (&by_candle.quantities, &by_fused.quantities),
        (&by_candle.log_probs, &by_fused.log_probs),
        (&by_candle.values, &by_fused.values),
    ] {
        for (x, y) in x.iter().zip(y) {
            assert!((x - y).abs() < 2e-4 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
    let greedy = actor.act(windows, accounts, masks, &keys, true).unwrap();
    assert!(greedy.log_probs.is_empty() && greedy.actions.len() == rows);

    // A minibatch's loss and gradient, with advantages of both signs and
    // old log-probabilities shifted so that ratios fall on both sides of
    // the clip range as well as inside it.
    for (i, lp) in b.log_probs.iter_mut().enumerate() {
        *lp += [0.0, 0.5, -0.5][i % 3];
    }
    let (_, returns) = b.advantages(s.ppo.gamma, s.ppo.gae_lambda);
    let idx: Vec<u32> = (0..(4 * 32) as u32).collect();
    let adv: Vec<f32> = (0..idx.len()).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
    let batch = b
        .batch(s.sections.env.window, data.n_features(), &returns, &a.device)
        .unwrap();
    let parts = a.minibatch_loss(&batch, &idx, adv.clone()).unwrap();
    let (candle_grad, _) = a.batch_gradient(&batch, adv.clone()).unwrap();
    let samples = fused::Samples {
        rollout: &b,
        returns: &returns,
        idx: &idx,
        advantages: &adv,
    };
    let figures = fused.loss_gradient(&samples, &s.ppo);
    let scalar = |t: &Tensor| t.to_scalar::<f32>().unwrap() as f64;
    for (name, x, y) in [
        ("policy loss", figures[0], scalar(&parts.policy_loss)),
        ("value loss", figures[1], scalar(&parts.value_loss)),
        ("entropy", figures[2], scalar(&parts.entropy)),
    ] {
        assert!(
            (x - y).abs() < 1e-4 * y.abs().max(1.0),
            "{name}: fused {x} vs candle {y}"
        );
    }
    let g = fused.gradient();
    assert_eq!(g.len(), candle_grad.len());
    let scale = candle_grad.iter().fold(0f64, |m, x| m.max(x.abs()));
    for (i, (x, y)) in g.iter().zip(&candle_grad).enumerate() {
        assert!(
            (*x as f64 - y).abs() < 1e-4 * scale.max(1e-3),
            "gradient {i}: fused {x} vs candle {y} (largest {scale})"
        );
    }
}

/// A small mixture of experts over a synthetic market with the regime
/// features on, its specialists named by the market's weight columns, and
/// the market's true regime switches.
fn mixture(encoder: &str) -> (TestSettings, Arc<MarketData>, PpoAgent, Vec<usize>) {
    use tradelab_data::synthetic::{generate, SyntheticConfig};
    let mut s = small_settings();
    s.sections.regime.features = true;
    let synthetic = generate(&SyntheticConfig {
        bars: 1500,
        seed: default_seed(),
        ..Default::default()
    });
    let switches = (1..synthetic.regimes.len())
        .filter(|&t| synthetic.regimes[t] != synthetic.regimes[t - 1])
        .collect();
    let data = Arc::new(s.sections.market_data(synthetic.series).unwrap());
    let specialists: Vec<&str> = data
        .feature_names
        .iter()
        .filter_map(|f| f.strip_prefix("specialist_"))
        .collect();
    let moe = MixtureConfig::from_features(&data.feature_names, &specialists, &Default::default()).unwrap();
    let agent = PpoAgent::new(PpoConfig {
        mixture: Some(moe),
        ..agent(&s, encoder, &data).config.clone()
    })
    .unwrap();
    (s, data, agent, switches)
}

#[test]
fn a_mixture_learns_as_one_policy_and_acts_through_any_one_specialist() {
    let (s, data, mut a, _) = mixture("mlp");
    assert_eq!((a.kind(), a.config.kind().unwrap()), (MOE_KIND, MOE_KIND));
    assert_eq!(a.specialists().len(), 4);
    let before = weights(&a);
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 1).unwrap();
    let st = a.learn(&mut envs, &KEY).unwrap();
    assert_ne!(weights(&a), before, "gate and specialists train together");
    for v in [st.policy_loss, st.value_loss, st.entropy, st.approx_kl, st.grad_norm] {
        assert!(v.is_finite(), "{st:?}");
    }
    let t = data.steps(Split::Train).start + 5;
    let input = AgentInput {
        window: data.window(t),
        account: [0.0; 3],
        mask: [true, true, false, false, true],
        market: KEY[0],
    };
    let view = a.mixture_view(&input).unwrap().expect("a mixture has a view");
    assert!((view.gate.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{view:?}");
    assert!(view.exposures.iter().all(|e| (-1.0..=1.0).contains(e)));
    assert!(view.regime_specialist < 4);
    let e = a.force_expert(Some(4)).unwrap_err().to_string();
    assert!(e.contains("specialist 4 does not exist; this model has 4"), "{e}");
    for k in [Some(0), Some(3), None] {
        a.force_expert(k).unwrap();
        let d = a.select_action(&input, true).unwrap();
        assert!(input.mask[d.action.index()], "{k:?}: {:?} is masked", d.action);
    }
}

#[test]
fn every_encoder_and_the_mixture_explain_a_decision_completely() {
    use crate::testing::explains_its_decision;
    let s = small_settings();
    let data = market(&s);
    let t = data.steps(Split::Train).start + 9;
    let input = AgentInput {
        window: data.window(t),
        account: [0.02, 0.0, 0.0],
        mask: [true, true, false, false, true],
        market: KEY[0],
    };
    for encoder in ["lstm", "transformer", "mlp"] {
        let mut a = agent(&s, encoder, &data);
        crate::testing::sharpen(&a.params, 100.0, 3.0);
        explains_its_decision(&mut a, &input);
        assert_eq!(
            a.internals(&input).unwrap(),
            Internals::default(),
            "{encoder}: one policy, no parts"
        );
    }
    let (_, data, mut a, _) = mixture("lstm");
    crate::testing::sharpen(&a.params, 100.0, 3.0);
    let input = AgentInput {
        window: data.window(t),
        ..input
    };
    explains_its_decision(&mut a, &input);
    let parts = a.internals(&input).unwrap();
    assert_eq!(parts.specialists.len(), 4);
    assert_eq!(parts.specialists[0].name, a.specialists()[0]);
    assert!((parts.specialists.iter().map(|v| v.gate).sum::<f32>() - 1.0).abs() < 1e-4);
    assert!(parts
        .specialists
        .iter()
        .all(|v| input.mask[v.preferred.index()] && v.probability > 0.2));
    // A window the model does not read is refused, not explained.
    let short = AgentInput {
        window: &input.window[1..],
        ..input
    };
    assert!(a.attribute(&short, Action::Hold, 8).is_err());
}

/// Captum's `IntegratedGradients` on the same weights rebuilt in PyTorch
/// (scripts/reference/captum_reference.py) gives the same attributions.
/// The policy head is sharpened first, so the policy is far from uniform
/// and the attributions are large. Runs when `TRADELAB_TEST_CAPTUM` names a
/// Python with torch and Captum (`.ci/run` installs one).
#[test]
fn attributions_match_captums_integrated_gradients_on_the_same_weights() {
    let Some(python) = std::env::var("TRADELAB_TEST_CAPTUM").ok().filter(|p| !p.is_empty()) else {
        eprintln!("skipped: set TRADELAB_TEST_CAPTUM to a Python with torch and captum");
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/captum_reference.py");
    let s = small_settings();
    let data = market(&s);
    let dir = tempfile::tempdir().unwrap();
    for encoder in ["lstm", "mlp"] {
        let mut a = agent(&s, encoder, &data);
        crate::testing::sharpen(&a.params, 100.0, 3.0);
        let t = data.steps(Split::Train).start + 17;
        let input = AgentInput {
            window: data.window(t),
            account: [0.04, 0.35, -0.02],
            mask: [false, false, true, false, true],
            market: KEY[0],
        };
        let d = a.select_action(&input, true).unwrap();
        let ours = a.attribute(&input, d.action, 48).unwrap().unwrap();
        let points = crate::attribution::path_points(48);
        let weights_file = dir.path().join(format!("{encoder}.safetensors"));
        std::fs::write(&weights_file, weights(&a)).unwrap();
        let case = dir.path().join(format!("{encoder}.json"));
        let spec = serde_json::json!({
            "encoder": encoder, "window": input.window, "bars": ours.bars, "features": ours.features,
            "account": input.account, "mask": [0, 0, 1, 0, 1], "instrument": 0, "timeframe": 0,
            "action": d.action.index(),
            "alphas": points.iter().map(|p| p.0).collect::<Vec<_>>(),
            "weights": points.iter().map(|p| p.1).collect::<Vec<_>>(),
        });
        std::fs::write(&case, spec.to_string()).unwrap();
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(&weights_file)
            .arg(&case)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let captum: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let theirs = |k: &str| -> Vec<f64> {
            captum[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (window, account) = (theirs("window"), theirs("account"));
        let largest = window.iter().chain(&account).fold(0f64, |m, v| m.max(v.abs()));
        assert!(
            largest > 1e-3,
            "{encoder}: a sharpened policy has attributions well above rounding ({largest})"
        );
        let worst = ours
            .window
            .iter()
            .chain(&ours.account)
            .zip(window.iter().chain(&account))
            .fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
        eprintln!("{encoder}: largest attribution {largest:.3e}, largest difference from Captum {worst:.3e}");
        assert!(
            worst <= 1e-4 * largest + 1e-7,
            "{encoder}: attributions differ from Captum's by {worst} (largest {largest})"
        );
        let output = captum["output"].as_f64().unwrap();
        assert!(
            (ours.output as f64 - output).abs() < 1e-4,
            "{encoder}: {} vs {output}",
            ours.output
        );
        // Both integrals make the same numerical error.
        let delta = captum["delta"].as_f64().unwrap();
        assert!(
            (ours.completeness_gap() as f64 - delta).abs() < 1e-3 * largest + 1e-5,
            "{encoder}: gap {} vs delta {delta}",
            ours.completeness_gap()
        );
    }
}

#[test]
fn transition_smoothness_is_measured_for_a_mixture_and_refused_for_a_single_policy() {
    let (s, data, a, switches) = mixture("mlp");
    let m =
        crate::transitions::transition_smoothness(&a, &data, KEY[0], Split::Validation, &s.env_config(), &switches, 3)
            .unwrap();
    // Every decision bar of the split but the last, whose observation ends
    // the episode (the environment's truncation).
    let steps = data.steps(Split::Validation);
    assert_eq!(m.bars, steps.len() - 1);
    let walked = steps.start..steps.end - 1;
    let inside = switches.iter().filter(|&&b| b > walked.start && b < walked.end).count();
    assert_eq!(m.switches, inside);
    assert!(m.switches > 0, "the synthetic market switches regime in validation");
    for v in [
        m.soft_blending,
        m.hard_switching,
        m.top_gate_switching,
        m.soft_mean_change,
        m.hard_mean_change,
    ] {
        assert!((0.0..=1.0).contains(&v), "{m:?}");
    }
    let single = agent(&s, "mlp", &data);
    let e = crate::transitions::transition_smoothness(
        &single,
        &data,
        KEY[0],
        Split::Validation,
        &s.env_config(),
        &switches,
        3,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs a mixture of experts"), "{e}");
}

#[test]
fn a_mixture_without_regime_features_is_refused_with_the_setting_to_change() {
    let s = small_settings();
    let data = market(&s);
    let e = MixtureConfig::from_features(&data.feature_names, &["trend"], &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`specialist_trend`") && e.contains("regime.features"), "{e}");
}

#[test]
fn sampled_evaluation_paths_are_reproducible_from_their_seed_and_differ_between_seeds() {
    use crate::evaluate::AgentStrategy;
    use tradelab_sim::engine;

    let s = small_settings();
    let data = market(&s);
    let mut a = agent(&s, "mlp", &data);
    let test = data.bars(Split::Test);
    let slice = data.series.slice(test.start, test.end);
    let cfg = s.sections.engine_config();
    let env = s.env_config();
    let mut path = |seed: Option<u64>| {
        let mut strategy = AgentStrategy::new(&mut a, &data, KEY[0], test.start, &env);
        let mut strategy = match seed {
            Some(seed) => {
                strategy.agent_mut().seed_sampling(seed);
                strategy.sampled()
            }
            None => strategy,
        };
        let r = engine::run(&[&slice], &mut strategy, &cfg);
        assert!(strategy.error.is_none());
        r.fills.iter().map(|f| (f.ts, f.qty.to_bits())).collect::<Vec<_>>()
    };
    let (one, again, other) = (path(Some(1)), path(Some(1)), path(Some(2)));
    assert!(!one.is_empty(), "an untrained policy sampled trades");
    assert_eq!(one, again, "the same seed, the same path");
    assert_ne!(one, other, "another seed, another path");
    assert_ne!(one, path(None), "greedy is not a sampled path");
}

/// Issue 19 finding 7: a metadata.json that declares absurd sizes is
/// refused by name before anything of that size is allocated (the server
/// used to abort on the first decision).
#[test]
fn a_checkpoint_describing_an_absurd_network_is_refused_before_allocating() {
    let s = small_settings();
    let data = market(&s);
    let tmp = tempfile::tempdir().unwrap();
    for encoder in ["mlp", "lstm", "transformer"] {
        let dir = tmp.path().join(encoder);
        agent(&s, encoder, &data).save(&dir).unwrap();
        let meta_path = dir.join(crate::checkpoint::METADATA_FILE);
        let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
        let forge = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut m = original.clone();
            edit(&mut m);
            std::fs::write(&meta_path, serde_json::to_vec(&m).unwrap()).unwrap();
            PpoAgent::load(&dir).err().map(|e| e.to_string())
        };
        let e = forge(&|m| m["config"]["ppo"]["hidden"] = (1u64 << 40).into()).unwrap();
        assert!(e.contains("ppo.hidden"), "{encoder}: {e}");
        // Within every bound, yet far more than the weights file holds.
        let e = forge(&|m| {
            m["config"]["ppo"]["hidden"] = 4096.into();
            m["config"]["ppo"]["heads"] = 2.into();
        })
        .unwrap();
        assert!(
            e.contains("at least") && e.contains("model.safetensors holds"),
            "{encoder}: {e}"
        );
        let e = forge(&|m| m["config"]["window"] = (1u64 << 40).into()).unwrap();
        assert!(e.contains("window bars"), "{encoder}: {e}");
        let e = forge(&|m| m["config"]["instruments"] = u64::MAX.into()).unwrap();
        assert!(e.contains("instruments"), "{encoder}: {e}");
        assert_eq!(forge(&|_| {}), None, "{encoder}: the genuine metadata still loads");
    }
}
