//! Property-based fuzzing of the settings parser (issue 19): the YAML file
//! with values swapped for hostile ones, `--set` overrides, and the
//! settings a model's metadata.json carries. No input may panic; whatever
//! parses passes every range check. Cases: `TRADELAB_FUZZ_CASES`.

use proptest::prelude::*;
use tradelab_app::settings::{model_settings, Settings};

const DEFAULTS: &str = include_str!("../../../config/settings.yaml");

/// A value a careless or hostile settings file might hold.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:e}")),
        Just(".nan".to_string()),
        Just("-.inf".to_string()),
        Just("~".to_string()),
        Just("[]".to_string()),
        Just("{a: 1}".to_string()),
        Just("\"../../etc/passwd\"".to_string()),
        "[a-z_0-9.:/-]{0,20}",
        Just("18446744073709551616".to_string()),
    ]
}

/// The real settings file with some values replaced.
fn edited_file() -> impl Strategy<Value = String> {
    let lines: Vec<String> = DEFAULTS.lines().map(str::to_string).collect();
    let n = lines.len();
    prop::collection::vec((0..n, value()), 1..6).prop_map(move |edits| {
        let mut l = lines.clone();
        for (i, v) in edits {
            if let Some((key, _)) = l[i].split_once(": ") {
                if !key.trim_start().starts_with('#') {
                    l[i] = format!("{key}: {v}");
                }
            }
        }
        l.join("\n")
    })
}

/// `key=value` overrides on real and made-up keys.
fn overrides() -> impl Strategy<Value = Vec<String>> {
    let keys: Vec<String> = DEFAULTS
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with('#') && l.contains(':'))
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_string()))
        .collect();
    let sections = [
        "data", "env", "ppo", "risk", "store", "auth", "report", "backtest", "nosuch",
    ];
    let key =
        (prop::sample::select(sections.to_vec()), prop::sample::select(keys)).prop_map(|(s, k)| format!("{s}.{k}"));
    let pair = prop_oneof![(key, value()).prop_map(|(k, v)| format!("{k}={v}")), ".{0,30}",];
    prop::collection::vec(pair, 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: tradelab_testkit::fuzz_cases(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzz_settings_never_panic_and_what_parses_is_in_range(
        text in prop_oneof![edited_file(), ".{0,200}"],
        sets in overrides(),
    ) {
        if let Ok(s) = Settings::from_yaml_str(&text, &sets) {
            prop_assert!(s.validate().is_ok());
        }
    }

    /// A model's saved settings, with values replaced: used only once they
    /// pass the range checks (an absurd window used to size buffers).
    #[test]
    fn fuzz_a_models_saved_settings_are_checked_before_use(
        path in prop::sample::select(vec![
            "/env/window", "/env/episode_bars", "/ppo/hidden", "/features/sma_slow",
            "/regime/states", "/env/reward", "/features/volatility_window", "/env",
        ]),
        v in prop_oneof![
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            ".{0,10}".prop_map(serde_json::Value::from),
        ],
    ) {
        let current = Settings::default();
        let mut saved = serde_json::to_value(&current).unwrap();
        if let Some(slot) = saved.pointer_mut(path) {
            *slot = v;
        }
        if let Ok(s) = model_settings(&saved, &current) {
            prop_assert!(s.validate().is_ok());
        }
    }
}

#[test]
fn a_models_absurd_window_is_refused_by_name() {
    let current = Settings::default();
    let mut saved = serde_json::to_value(&current).unwrap();
    saved["env"]["window"] = serde_json::Value::from(1u64 << 40);
    let e = format!("{:#}", model_settings(&saved, &current).unwrap_err());
    assert!(e.contains("env.window") && e.contains("out of range"), "{e}");
}
