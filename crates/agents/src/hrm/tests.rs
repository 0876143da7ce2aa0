use std::collections::BTreeMap;
use std::sync::Arc;

use crate::testing::TestSettings;
use tradelab_env::{MarketData, Split, VecEnv};
use tradelab_testkit::{default_seed, synthetic_market};

use super::*;
use crate::ppo::tests::small_settings;

pub(crate) fn hrm_settings() -> TestSettings {
    let mut s = small_settings();
    let m = &mut s.hierarchical_reasoning_model;
    m.d_model = 16;
    m.heads = 2;
    m.max_segments = 3;
    m.instrument_embedding = 8;
    m.timeframe_embedding = 4;
    s
}

fn market(bars: usize) -> Arc<MarketData> {
    synthetic_market(bars, default_seed(), &hrm_settings().sections)
}

fn agent(s: &TestSettings, data: &MarketData, instruments: usize) -> HrmAgent {
    HrmAgent::new(HrmConfig {
        features: data.n_features(),
        window: s.sections.env.window,
        instruments,
        timeframes: 1,
        seed: 3,
        ppo: s.ppo.clone(),
        model: s.hierarchical_reasoning_model.clone(),
    })
    .unwrap()
}

const KEY: [MarketKey; 1] = [MarketKey {
    instrument: 0,
    timeframe: 0,
}];

fn weights(a: &HrmAgent) -> Vec<u8> {
    crate::checkpoint::safetensors_bytes(&a.params.tensors()).unwrap()
}

fn input(data: &MarketData, t: usize) -> AgentInput<'_> {
    AgentInput {
        window: data.window(t),
        account: [0.0; 3],
        mask: [true, true, false, false, true],
        market: KEY[0],
    }
}

#[test]
fn learning_moves_every_head_and_logs_segments_and_halting() {
    let s = hrm_settings();
    let data = market(1500);
    let mut a = agent(&s, &data, 1);
    // Copies: a variable's tensor is updated in place.
    let before: BTreeMap<String, Tensor> = a
        .params
        .tensors()
        .into_iter()
        .map(|(k, t)| (k, t.copy().unwrap()))
        .collect();
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 1).unwrap();
    let st = a.learn(&mut envs, &KEY).unwrap();
    assert_eq!(st.env_steps, 128);
    for (name, v) in [
        ("policy", st.policy_loss),
        ("value", st.value_loss),
        ("entropy", st.entropy),
        ("kl", st.approx_kl),
        ("halt", st.halt_loss),
        ("grad", st.grad_norm),
    ] {
        assert!(v.is_finite(), "{name} = {v}");
    }
    assert!(st.halt_loss > 0.0);
    // The Q logits start equal (-5, -5), so nothing halts early: every
    // decision of the first rollout used M_max = 3 segments.
    assert!(
        (st.segments_per_decision - 3.0).abs() < 1e-9,
        "{}",
        st.segments_per_decision
    );
    let after = a.params.tensors();
    for name in [
        "head.q_halt.weight",
        "head.policy.weight",
        "l.block0.qkv.weight",
        "h.block0.down.weight",
        "input.bars.weight",
    ] {
        let diff = (&after[name] - &before[name])
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff > 0.0, "{name} did not move");
    }
}

#[test]
fn the_hrm_learns_and_acts_on_an_exposure_target() {
    let s = hrm_settings();
    let data = market(1500);
    let mut a = agent(&s, &data, 1);
    crate::testing::learns_and_acts_on_an_exposure_target(&mut a, &s, &data, weights);
}

#[test]
fn segments_by_turbulence_cover_every_decision_and_average_to_the_greedy_pass() {
    use crate::complexity::segments_by_turbulence;
    let s = hrm_settings();
    let data = market(1500);
    let mut a = agent(&s, &data, 1);
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 1).unwrap();
    a.learn(&mut envs, &KEY).unwrap();
    let env = s.env_config();
    let by = segments_by_turbulence(&mut a, &data, KEY[0], Split::Validation, &env)
        .unwrap()
        .expect("the HRM reports segments");
    // The same greedy pass, counted as one histogram.
    a.take_segment_counts();
    let pass = crate::evaluate::greedy_episode(&mut a, &data, KEY[0], Split::Validation, &env).unwrap();
    let counts = a.take_segment_counts();
    let decisions: u64 = counts.iter().sum();
    assert_eq!(by.decisions as u64, decisions);
    assert_eq!(by.decisions, pass.steps);
    let overall = crate::complexity::mean_segments(&counts).unwrap();
    let n = by.decisions;
    let (a3, b3) = (n / 3, 2 * n / 3);
    let weighted = (by.calm * a3 as f64 + by.middle * (b3 - a3) as f64 + by.turbulent * (n - b3) as f64) / n as f64;
    assert!((weighted - overall).abs() < 1e-9, "{by:?} vs {overall}");
    let max = s.hierarchical_reasoning_model.max_segments as f64;
    for m in [by.calm, by.middle, by.turbulent] {
        assert!((1.0..=max).contains(&m), "{by:?}");
    }
    // A policy without adaptive computation has nothing to report.
    let mut ppo = crate::ppo::tests::agent(&s, "mlp", &data);
    assert_eq!(
        segments_by_turbulence(&mut ppo, &data, KEY[0], Split::Validation, &env).unwrap(),
        None
    );
}

/// Makes the Q-head prefer halting: bias (halt, continue) = (+5, -5).
fn prefer_halting(a: &mut HrmAgent) {
    let mut all: BTreeMap<String, Tensor> = a
        .params
        .tensors()
        .into_iter()
        .map(|(k, t)| (k, t.copy().unwrap()))
        .collect();
    all.insert(
        "head.q_halt.bias".into(),
        Tensor::new(&[5f32, -5.0], &Device::Cpu).unwrap(),
    );
    a.params.assign(&all).unwrap();
    a.weights_changed();
}

#[test]
fn inference_halts_by_the_q_head_and_reports_segments() {
    let s = hrm_settings();
    let data = market(800);
    let mut a = agent(&s, &data, 1);
    let t = data.steps(Split::Train).start + 3;
    // Untrained: Q_halt == Q_continue, so it thinks to M_max.
    a.select_action(&input(&data, t), true).unwrap();
    assert_eq!(a.take_segment_counts(), vec![0, 0, 1]);
    prefer_halting(&mut a);
    let d = a.select_action(&input(&data, t), true).unwrap();
    assert_eq!(a.take_segment_counts(), vec![1, 0, 0]);
    assert!(matches!(d.action, Action::BuyLong | Action::SellShort | Action::Hold));
    // With adaptive halting off, M_max every time.
    a.config.model.act = false;
    a.select_action(&input(&data, t), true).unwrap();
    assert_eq!(a.take_segment_counts(), vec![0, 0, 1]);
}

#[test]
fn the_hrm_explains_a_decision_through_the_segments_it_ran() {
    let s = hrm_settings();
    let data = market(800);
    let mut a = agent(&s, &data, 1);
    let t = data.steps(Split::Train).start + 3;
    // Untrained, it thinks to M_max: three segments, the last forced.
    crate::testing::sharpen(&a.params, 100.0, 1.0);
    a.weights_changed();
    let parts = a.internals(&input(&data, t)).unwrap();
    assert_eq!(parts.segments.len(), 3);
    assert!(parts.specialists.is_empty());
    crate::testing::explains_its_decision(&mut a, &input(&data, t));
    // The decision's statistics are not the explanation's.
    a.take_segment_counts();
    a.attribute(&input(&data, t), Action::Hold, 4).unwrap();
    assert_eq!(a.take_segment_counts(), vec![0, 0, 0]);
    // A Q-head that prefers halting: one segment, and it halts there.
    prefer_halting(&mut a);
    let parts = a.internals(&input(&data, t)).unwrap();
    assert_eq!(parts.segments.len(), 1);
    assert!(parts.segments[0].q_halt > parts.segments[0].q_continue);
    crate::testing::explains_its_decision(&mut a, &input(&data, t));
}

#[test]
fn checkpoint_round_trip_keeps_config_states_and_optimizer_and_is_deterministic() {
    let s = hrm_settings();
    let data = market(1500);
    let train = || {
        let mut a = agent(&s, &data, 1);
        let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 5).unwrap();
        a.learn(&mut envs, &KEY).unwrap();
        a
    };
    let mut a = train();
    assert_eq!(weights(&a), weights(&train()), "same seed, same model");
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("a"), tmp.path().join("b"));
    a.save(&d1).unwrap();
    train().save(&d2).unwrap();
    let file = crate::checkpoint::WEIGHTS_FILE;
    assert_eq!(
        std::fs::read(d1.join(file)).unwrap(),
        std::fs::read(d2.join(file)).unwrap(),
        "byte-identical"
    );

    let mut b = HrmAgent::load(&d1).unwrap();
    assert_eq!(b.config, a.config, "full configuration restored");
    assert_eq!(weights(&b), weights(&a));
    assert_eq!(
        b.net.buffers()[0].1.to_vec1::<f32>().unwrap(),
        a.net.buffers()[0].1.to_vec1::<f32>().unwrap()
    );
    assert_eq!(
        (b.updates, b.env_steps, b.adam.step),
        (a.updates, a.env_steps, a.adam.step)
    );
    let t = data.steps(Split::Test).start;
    assert_eq!(
        a.select_action(&input(&data, t), true).unwrap(),
        b.select_action(&input(&data, t), true).unwrap()
    );
    // Resuming continues exactly as the uninterrupted run would.
    let mut envs_a = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 9).unwrap();
    let mut envs_b = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 9).unwrap();
    a.learn(&mut envs_a, &KEY).unwrap();
    b.learn(&mut envs_b, &KEY).unwrap();
    assert_eq!(weights(&a), weights(&b), "resume is exact");

    // A PPO checkpoint is named, not half-loaded; a damaged file is refused.
    let meta = d2.join(crate::checkpoint::METADATA_FILE);
    let text = std::fs::read_to_string(&meta)
        .unwrap()
        .replacen("\"model\": \"hrm\"", "\"model\": \"ppo-lstm\"", 1);
    std::fs::write(&meta, text).unwrap();
    let err = HrmAgent::load(&d2).err().unwrap().to_string();
    assert!(err.contains("`ppo-lstm` model"), "{err}");
    let path = d1.join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = HrmAgent::load(&d1).err().unwrap().to_string();
    assert!(err.contains("sha256"), "{err}");
}

#[test]
fn a_new_instrument_joins_without_changing_what_the_model_does_for_the_others() {
    let s = hrm_settings();
    let data = market(800);
    let mut a = agent(&s, &data, 1);
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 2).unwrap();
    a.learn(&mut envs, &KEY).unwrap();
    let t = data.steps(Split::Validation).start;
    let before = a.select_action(&input(&data, t), true).unwrap();
    a.extend_vocabulary(2, 1).unwrap();
    assert_eq!(a.config.instruments, 2);
    assert_eq!(
        a.select_action(&input(&data, t), true).unwrap(),
        before,
        "old market unchanged"
    );
    let new = AgentInput {
        market: MarketKey {
            instrument: 1,
            timeframe: 0,
        },
        ..input(&data, t)
    };
    a.select_action(&new, true).unwrap();
    let err = a.extend_vocabulary(1, 1).unwrap_err().to_string();
    assert!(err.contains("grow but not shrink"), "{err}");
    // It keeps learning with the grown vocabulary.
    a.learn(&mut envs, &KEY).unwrap();
}

#[test]
fn bf16_weights_halve_the_model_file_and_still_resume_exactly() {
    let mut s = hrm_settings();
    let data = market(800);
    let mut a = agent(&s, &data, 1);
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 3).unwrap();
    a.learn(&mut envs, &KEY).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    a.save(&tmp.path().join("f32")).unwrap();
    a.config.model.weights_dtype = crate::settings::WeightsDtype::Bf16;
    s.hierarchical_reasoning_model.weights_dtype = a.config.model.weights_dtype;
    a.save(&tmp.path().join("bf16")).unwrap();
    let size = |d: &str| {
        std::fs::metadata(tmp.path().join(d).join(crate::checkpoint::WEIGHTS_FILE))
            .unwrap()
            .len()
    };
    let (full, half) = (size("f32"), size("bf16"));
    assert!(half < full * 6 / 10, "{half} vs {full}");
    let mut b = HrmAgent::load(&tmp.path().join("bf16")).unwrap();
    assert_eq!(weights(&b), weights(&a), "master weights restore the exact f32 values");
    let mut envs_a = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 4).unwrap();
    let mut envs_b = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 4).unwrap();
    a.learn(&mut envs_a, &KEY).unwrap();
    b.learn(&mut envs_b, &KEY).unwrap();
    assert_eq!(weights(&a), weights(&b));
}

/// A market whose hindsight-optimal actions are predictable from causal
/// features: a noiseless cycle (period 40 bars, +-8%), where oscillators
/// give the phase.
fn cycle_market(s: &TestSettings) -> Arc<MarketData> {
    let mut series = tradelab_core::BarSeries::new("CYCLE");
    series.timeframe = Some(tradelab_core::Timeframe::DAY);
    for i in 0..1500 {
        let price = |k: f64| 100.0 * (1.0 + 0.08 * (k * std::f64::consts::TAU / 40.0).sin());
        let (open, close) = (price(i as f64 - 0.5), price(i as f64));
        series.ts.push(i as i64 * 86_400);
        series.open.push(open);
        series.close.push(close);
        series.high.push(open.max(close) * 1.001);
        series.low.push(open.min(close) * 0.999);
        series.volume.push(1000.0);
    }
    Arc::new(s.sections.market_data(series).unwrap())
}

#[test]
fn pretraining_learns_hindsight_labels_where_they_are_predictable() {
    let s = hrm_settings();
    let data = cycle_market(&s);
    let mut a = agent(&s, &data, 1);
    a.config.model.pretrain_learning_rate = 3e-3;
    let labels = pretrain::training_labels(std::slice::from_ref(&data), s.label_costs());
    let mut envs = VecEnv::new(std::slice::from_ref(&data), 4, Split::Train, &s.env_config(), 8).unwrap();
    let stats: Vec<_> = (0..30)
        .map(|e| a.pretrain_epoch(&mut envs, &KEY, &labels, e).unwrap())
        .collect();
    let (first, last) = (stats[0], stats[stats.len() - 1]);
    eprintln!("{first:?} -> {last:?}");
    assert_eq!(first.samples, 128);
    assert!(last.cross_entropy < 0.6 * first.cross_entropy, "{first:?} -> {last:?}");
    assert!(last.accuracy > 0.8, "{last:?}");
}

/// Issue 19 finding 7, for the HRM's own sizes.
#[test]
fn an_hrm_checkpoint_describing_an_absurd_network_is_refused() {
    let s = hrm_settings();
    let data = market(400);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hrm");
    agent(&s, &data, 1).save(&dir).unwrap();
    let meta_path = dir.join(crate::checkpoint::METADATA_FILE);
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let forge = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut m = original.clone();
        edit(&mut m);
        std::fs::write(&meta_path, serde_json::to_vec(&m).unwrap()).unwrap();
        HrmAgent::load(&dir).err().map(|e| e.to_string())
    };
    let e = forge(&|m| m["config"]["model"]["d_model"] = (1u64 << 40).into()).unwrap();
    assert!(e.contains("d_model"), "{e}");
    let e = forge(&|m| {
        m["config"]["model"]["d_model"] = 8192.into();
        m["config"]["model"]["heads"] = 2.into();
    })
    .unwrap();
    assert!(e.contains("at least"), "{e}");
    assert_eq!(forge(&|_| {}), None);
}
