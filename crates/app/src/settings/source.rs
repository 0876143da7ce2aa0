//! Where a process's settings come from, and the settings a trained model
//! runs under. Shared by every command, the server and the job workers.

use std::path::{Path, PathBuf};

use super::Settings;
use anyhow::{Context as _, Result};

/// The settings file read when none is named.
pub const DEFAULT_CONFIG: &str = "config/settings.yaml";

/// The sources of a process's settings, as the command line gives them
/// (`--config`, `--set key.path=value`, `--seed`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsSource {
    /// The settings file (`--config`); default `config/settings.yaml` if present.
    pub config: Option<PathBuf>,
    /// `key.path=value` overrides (`--set`), applied in order.
    pub overrides: Vec<String>,
    /// The seed (`--seed`), applied last.
    pub seed: Option<u64>,
}

impl SettingsSource {
    /// Loads settings: the config file, else `config/settings.yaml` if
    /// present, else the compiled-in defaults; then the overrides, `extra`
    /// and the seed.
    pub fn load(&self, extra: &[String]) -> Result<Settings> {
        let mut overrides = self.overrides.clone();
        overrides.extend_from_slice(extra);
        if let Some(seed) = self.seed {
            overrides.push(format!("seed={seed}"));
        }
        let settings = match &self.config {
            Some(path) => Settings::load(path, &overrides)?,
            None if Path::new(DEFAULT_CONFIG).exists() => Settings::load(Path::new(DEFAULT_CONFIG), &overrides)?,
            None => Settings::defaults_with(&overrides)?,
        };
        Ok(settings)
    }

    /// The global arguments a child `tradelab` needs to read the same
    /// settings (and so the same database) as this process.
    pub fn child_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(c) = &self.config {
            // Absolute, in case the child's working directory differs.
            let c = std::fs::canonicalize(c).unwrap_or_else(|_| c.clone());
            args.extend(["--config".to_string(), c.display().to_string()]);
        }
        for o in &self.overrides {
            args.extend(["--set".to_string(), o.clone()]);
        }
        args
    }
}

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

/// Creates a folder or says which one could not be created.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create folder {}; check permissions or choose another with --out-dir",
            dir.display()
        )
    })
}
