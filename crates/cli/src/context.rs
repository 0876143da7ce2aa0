//! Settings resolution shared by every command.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tradelab_core::Settings;

use crate::cli::GlobalArgs;

pub const DEFAULT_CONFIG: &str = "config/settings.yaml";

/// Loads settings: `--config`, else `config/settings.yaml` if present, else
/// the compiled-in defaults; then `--set` overrides and `--seed`.
pub fn load_settings(g: &GlobalArgs, extra: &[String]) -> Result<Settings> {
    let mut overrides = g.overrides.clone();
    overrides.extend_from_slice(extra);
    if let Some(seed) = g.seed {
        overrides.push(format!("seed={seed}"));
    }
    let settings = match &g.config {
        Some(path) => Settings::load(path, &overrides)?,
        None if Path::new(DEFAULT_CONFIG).exists() => Settings::load(Path::new(DEFAULT_CONFIG), &overrides)?,
        None => Settings::defaults_with(&overrides)?,
    };
    Ok(settings)
}

/// Adds a `key=value` override for an optional path flag.
/// The settings to run a trained model under: its own for everything that
/// shapes its observation (features, window, regime model), today's for
/// costs, risk, data paths, reports and the store.
pub fn model_settings(saved: &serde_json::Value, current: &Settings) -> Result<Settings> {
    let mut settings: Settings = serde_json::from_value(saved.clone())
        .context("the model's metadata.json holds settings this build cannot read; retrain the model")?;
    settings.backtest = current.backtest.clone();
    settings.risk = current.risk.clone();
    settings.data = current.data.clone();
    settings.report = current.report.clone();
    settings.store = current.store.clone();
    Ok(settings)
}

pub fn path_override(key: &str, value: &Option<PathBuf>) -> Option<String> {
    value.as_ref().map(|p| format!("{key}={}", p.display()))
}

/// Creates a folder or says which one could not be created.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create folder {}; check permissions or choose another with --out-dir",
            dir.display()
        )
    })
}
