//! The composed settings: layers, strict keys, every section's checks
//! reached through the whole file, and the written-out defaults.

use std::path::Path;

use super::*;
use tradelab_core::Timeframe;
use tradelab_sim::settings::FillPolicy;

fn err(yaml: &str) -> String {
    Settings::from_yaml_str(yaml, &[]).unwrap_err().to_string()
}

#[test]
fn defaults_load_and_carry_the_seed_costs() {
    let s = Settings::default();
    assert_eq!(s.backtest.costs.entry_fixed, 25.0);
    assert_eq!(s.backtest.costs.exit_fixed, 35.0);
    assert_eq!(s.risk.max_asset_fraction, 0.25);
    assert_eq!(s.backtest.fill, FillPolicy::NextOpen);
}

#[test]
fn section_defaults_match_the_file_and_a_model_saved_before_the_store_section_loads() {
    assert_eq!(Settings::default().store, StoreSettings::default());
    assert_eq!(Settings::default().auth, AuthSettings::default());
    assert_eq!(Settings::default().regime, RegimeSettings::default());
    assert_eq!(Settings::default().moe, MoeSettings::default());
    assert_eq!(Settings::default().meta, MetaSettings::default());
    assert!(Settings::defaults_with(&["meta.mode=sgd".into()])
        .unwrap_err()
        .to_string()
        .contains("meta.mode"));
    assert!(Settings::defaults_with(&["moe.specialist_coef=-1".into()])
        .unwrap_err()
        .to_string()
        .contains("moe.specialist_coef"));
    let e = Settings::defaults_with(&["regime.max_states=1".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("regime.max_states"), "{e}");
    // A model saved before the store section existed still loads.
    let mut old = serde_json::to_value(Settings::default()).unwrap();
    old.as_object_mut().unwrap().remove("store");
    let parsed: Settings = serde_json::from_value(old).unwrap();
    assert_eq!(parsed.store, StoreSettings::default());
}

#[test]
fn partial_file_keeps_other_defaults() {
    let s = Settings::from_yaml_str("risk:\n  max_asset_fraction: 0.1\n", &[]).unwrap();
    assert_eq!(s.risk.max_asset_fraction, 0.1);
    assert_eq!(s.risk.max_gross_leverage, 1.0);
    assert_eq!(Settings::from_yaml_str("", &[]).unwrap(), Settings::default());
}

#[test]
fn unknown_key_is_refused_with_its_path() {
    let e = err("risk:\n  max_asset_fractoin: 0.1\n");
    assert!(e.contains("risk"), "{e}");
    assert!(e.contains("max_asset_fractoin"), "{e}");
    assert!(e.contains("max_asset_fraction"), "lists allowed keys: {e}");
}

#[test]
fn wrong_type_is_refused_with_path_value_and_expectation() {
    let e = err("backtest:\n  costs:\n    entry_fixed: lots\n");
    assert!(e.contains("backtest.costs.entry_fixed"), "{e}");
    assert!(e.contains("lots"), "{e}");
    assert!(e.contains("allowed: a number"), "{e}");
}

#[test]
fn out_of_range_value_is_refused_with_allowed_range() {
    let e = err("risk:\n  max_drawdown: 1.5\n");
    assert!(e.contains("risk.max_drawdown"), "{e}");
    assert!(e.contains("1.5"), "{e}");
    assert!(e.contains("[0, 1]"), "{e}");
    let e = err("backtest:\n  fill: tomorrow\n");
    assert!(e.contains("backtest.fill") && e.contains("next_open"), "{e}");
    let e = err("strategies:\n  sma_crossover:\n    fast: 50\n    slow: 20\n");
    assert!(e.contains("strategies.sma_crossover.fast"), "{e}");
}

#[test]
fn overrides_win_over_file_and_are_validated() {
    let s = Settings::from_yaml_str(
        "backtest:\n  initial_cash: 5000\n",
        &["backtest.initial_cash=7000".into(), "backtest.fill=signal_close".into()],
    )
    .unwrap();
    assert_eq!(s.backtest.initial_cash, 7000.0);
    assert_eq!(s.backtest.fill, FillPolicy::SignalClose);
    let e = Settings::defaults_with(&["risk.nope=1".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let e = Settings::defaults_with(&["no_equals_sign".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("KEY.PATH=VALUE"), "{e}");
}

#[test]
fn per_instrument_lots_are_read_and_checked() {
    let s = Settings::from_yaml_str(
        "data:\n  instruments:\n    nifty:\n      lot_size: 50\n      timeframe: 5m\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.data.instruments["nifty"].lot_size, Some(50.0));
    assert_eq!(
        s.data.instruments["nifty"].timeframe,
        Some(Timeframe::from_millis(300_000))
    );
    assert_eq!(s.data.instruments["nifty"].fractional, None);
    let e = err("data:\n  instruments:\n    nifty:\n      lot_size: -5\n");
    assert!(e.contains("data.instruments.nifty.lot_size"), "{e}");
    let e = err("data:\n  instruments:\n    nifty:\n      lots: 5\n");
    assert!(e.contains("lots"), "{e}");
}

#[test]
fn environment_splits_and_rewards_are_checked() {
    let e = err("env:\n  train_fraction: 0.8\n  validation_fraction: 0.3\n");
    assert!(
        e.contains("env.validation_fraction") && e.contains("no test split"),
        "{e}"
    );
    let e = err("env:\n  reward: sharpe\n");
    assert!(e.contains("env.reward") && e.contains("differential_sharpe"), "{e}");
    let e = err("env:\n  window: 0\n");
    assert!(e.contains("env.window"), "{e}");
}

#[test]
fn syntax_errors_and_missing_files_are_named() {
    let e = err("risk: [unclosed\n");
    assert!(e.contains("not valid YAML"), "{e}");
    let e = Settings::load(Path::new("/nonexistent/settings.yaml"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/settings.yaml") && e.contains("--config"),
        "{e}"
    );
}

#[test]
fn every_section_is_validated_through_the_whole_file() {
    // One out-of-range value per section: a section whose `validate` the
    // composition forgot would let its value through.
    for bad in [
        "features.bollinger_width=0",
        "backtest.initial_cash=0",
        "risk.max_drawdown=2",
        "data.lot_size=0",
        "strategies.momentum.threshold=20",
        "walk_forward.test_bars=0",
        "env.dsr_eta=1",
        "ppo.clip=1",
        "hierarchical_reasoning_model.h_cycles=0",
        "monte_carlo.vol_scales=[]",
        "store.keep_last=0",
        "regime.floor=1",
        "meta.inner_steps=0",
        "moe.gate_hidden=0",
        "auth.login_attempts=0",
    ] {
        let key = bad.split('=').next().unwrap();
        let e = Settings::defaults_with(&[bad.into()]).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{bad}: {e}");
    }
}

#[test]
fn closed_choices_are_refused_in_the_settings_words() {
    let e = Settings::defaults_with(&["meta.mode=sgd".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "setting `meta.mode` = sgd: is not a meta-learning mode; allowed: maml, fomaml or reptile"
    );
    let e = Settings::defaults_with(&["moe.encoder=gru".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "setting `moe.encoder` = gru: is not an encoder; allowed: lstm, transformer or mlp"
    );
    let s = Settings::defaults_with(&["meta.mode=reptile".into(), "moe.encoder=mlp".into()]).unwrap();
    assert_eq!(s.meta.mode, tradelab_agents::settings::MetaMode::Reptile);
    assert_eq!(s.moe.encoder.name(), "mlp");
    // Saved as the names the file uses, so metadata.json reads the same.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        (json["meta"]["mode"].as_str(), json["moe"]["encoder"].as_str()),
        (Some("reptile"), Some("mlp"))
    );
}

#[test]
fn a_section_default_is_the_files_section() {
    let s = Settings::default();
    assert_eq!(s.env, EnvSettings::default());
    assert_eq!(s.backtest, BacktestSettings::default());
    assert_eq!(s.ppo, PpoSettings::default());
    assert_eq!(s.hierarchical_reasoning_model, HrmSettings::default());
    assert_eq!(s.data, DataSettings::default());
    assert_eq!(s.features, FeatureSettings::default());
    assert_eq!(s.env_config(), EnvConfig::default());
}

/// Models saved before a settings key existed still open: their
/// metadata's settings lack the keys this session added (issue 20's
/// `data.adjusted_close`, issue 21's `backtest.sizing.hrp_*`).
#[test]
fn settings_saved_before_newer_keys_still_load() {
    let mut saved = serde_json::to_value(Settings::default()).unwrap();
    saved["data"].as_object_mut().unwrap().remove("adjusted_close");
    let sizing = saved["backtest"]["sizing"].as_object_mut().unwrap();
    sizing.remove("hrp_window");
    sizing.remove("hrp_rebalance");
    let loaded = crate::settings::model_settings(&saved, &Settings::default()).unwrap();
    assert_eq!(loaded.backtest.sizing.hrp_window, 60);
    let old: Settings = serde_json::from_value(saved).unwrap();
    assert!(!old.data.adjusted_close);
    assert_eq!(
        (old.backtest.sizing.hrp_window, old.backtest.sizing.hrp_rebalance),
        (60, 20)
    );
}
