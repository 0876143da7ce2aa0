//! Property-based fuzzing of checkpoint loading (issue 19): a real small
//! checkpoint with metadata.json values replaced, and with bytes of its
//! safetensors files changed (their checksums rewritten to match, so the
//! damage reaches the parsers). Loading must refuse or succeed, never
//! panic or allocate what the files do not hold. Cases: `TRADELAB_FUZZ_CASES`.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use tradelab_agents::agent::Agent;
use tradelab_agents::checkpoint::{sha256_hex, METADATA_FILE, OPTIMIZER_FILE, WEIGHTS_FILE};
use tradelab_agents::settings::PpoSettings;
use tradelab_agents::{load_agent, PpoAgent, PpoConfig};

/// A checkpoint's files: name and bytes.
type Files = Vec<(String, Vec<u8>)>;

/// The files of a small saved agent of each encoder, made once.
fn pristine(encoder: &str) -> Files {
    let ppo = PpoSettings {
        hidden: 8,
        heads: 2,
        layers: 1,
        envs: 2,
        rollout_steps: 8,
        minibatches: 1,
        epochs: 1,
        total_steps: 16,
        ..PpoSettings::default()
    };
    let agent = PpoAgent::new(PpoConfig {
        encoder: encoder.into(),
        features: 3,
        window: 4,
        instruments: 2,
        timeframes: 1,
        seed: 1,
        ppo,
        mixture: None,
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    agent.save(dir.path()).unwrap();
    [METADATA_FILE, WEIGHTS_FILE, OPTIMIZER_FILE]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(dir.path().join(f)).unwrap()))
        .collect()
}

/// Every JSON pointer to a number, string or boolean in `v`.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| leaves(c, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| leaves(c, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

#[derive(Debug, Clone)]
enum Damage {
    /// Replace the value at one of the metadata's leaves.
    Metadata(prop::sample::Index, Value),
    /// Change bytes of the weights (0) or optimizer (1) file and record the
    /// new checksum.
    Bytes(u8, Vec<(prop::sample::Index, u8)>, Option<prop::sample::Index>),
}

fn damage() -> impl Strategy<Value = Damage> {
    let value = prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        Just(Value::from(1u64 << 40)),
        Just(Value::from(0)),
        Just(Value::Null),
        ".{0,12}".prop_map(Value::from),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), value).prop_map(|(i, v)| Damage::Metadata(i, v)),
        (
            0u8..2,
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            prop::option::of(any::<prop::sample::Index>())
        )
            .prop_map(|(f, edits, cut)| Damage::Bytes(f, edits, cut)),
    ]
}

fn apply(files: &Files, d: &Damage, dir: &Path) {
    let mut meta: Value = serde_json::from_slice(&files[0].1).unwrap();
    let mut blobs = [files[1].1.clone(), files[2].1.clone()];
    match d {
        Damage::Metadata(i, v) => {
            let mut all = Vec::new();
            leaves(&meta, String::new(), &mut all);
            let at = &all[i.index(all.len())];
            *meta.pointer_mut(at).unwrap() = v.clone();
        }
        Damage::Bytes(which, edits, cut) => {
            let b = &mut blobs[*which as usize];
            for (at, byte) in edits {
                let i = at.index(b.len());
                b[i] = *byte;
            }
            if let Some(c) = cut {
                let n = c.index(b.len());
                b.truncate(n);
            }
            let key = if *which == 0 {
                "weights_sha256"
            } else {
                "optimizer_sha256"
            };
            meta[key] = Value::from(sha256_hex(b));
        }
    }
    std::fs::write(dir.join(METADATA_FILE), serde_json::to_vec(&meta).unwrap()).unwrap();
    std::fs::write(dir.join(WEIGHTS_FILE), &blobs[0]).unwrap();
    std::fs::write(dir.join(OPTIMIZER_FILE), &blobs[1]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: tradelab_testkit::fuzz_cases(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzz_damaged_checkpoints_are_refused_or_load_never_panic(
        encoder in prop::sample::select(vec!["mlp", "lstm", "transformer"]),
        d in damage(),
    ) {
        thread_local! {
            static PRISTINE: std::cell::RefCell<std::collections::HashMap<String, Files>> = Default::default();
        }
        let files = PRISTINE.with(|p| p.borrow_mut().entry(encoder.to_string()).or_insert_with(|| pristine(encoder)).clone());
        let dir = tempfile::tempdir().unwrap();
        apply(&files, &d, dir.path());
        if let Err(e) = load_agent(dir.path()) {
            prop_assert!(e.to_string().len() < 2000, "{} bytes", e.to_string().len());
        }
    }
}

#[test]
fn the_pristine_checkpoints_load() {
    for encoder in ["mlp", "lstm", "transformer"] {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in pristine(encoder) {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        load_agent(dir.path()).unwrap();
    }
}
