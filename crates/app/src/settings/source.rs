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
    settings.bus = current.bus.clone();
    settings.audit = current.audit.clone();
    // A model's metadata is outside input: its settings pass the same
    // range checks as a settings file before they size anything.
    settings
        .validate()
        .context("the model's metadata.json holds settings out of range; the file is damaged or not tradelab's")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_file_then_overrides_then_the_seed_and_children_get_the_same_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.yaml");
        std::fs::write(&file, "seed: 3\nenv:\n  window: 12\n").unwrap();
        let source = SettingsSource {
            config: Some(file.clone()),
            overrides: vec!["env.window=16".into()],
            seed: Some(9),
        };
        let s = source.load(&["ppo.hidden=32".into()]).unwrap();
        assert_eq!((s.seed, s.env.window, s.ppo.hidden), (9, 16, 32));
        let canonical = std::fs::canonicalize(&file).unwrap().display().to_string();
        assert_eq!(
            source.child_args(),
            ["--config", canonical.as_str(), "--set", "env.window=16"]
        );
        let e = format!(
            "{:#}",
            SettingsSource {
                config: Some(dir.path().join("missing.yaml")),
                ..Default::default()
            }
            .load(&[])
            .unwrap_err()
        );
        assert!(e.contains("missing.yaml") && e.contains("--config"), "{e}");
    }

    #[test]
    fn a_model_keeps_what_shapes_its_observation_and_takes_todays_costs_and_store() {
        let mut trained = Settings::default();
        trained.env.window = 12;
        trained.backtest.costs.entry_fixed = 1.0;
        let mut today = Settings::default();
        today.backtest.costs.entry_fixed = 50.0;
        today.store.experiment = "today".into();
        let saved = serde_json::to_value(&trained).unwrap();
        let s = model_settings(&saved, &today).unwrap();
        assert_eq!(s.env.window, 12);
        assert_eq!(s.backtest.costs.entry_fixed, 50.0);
        assert_eq!(s.store.experiment, "today");
        let e = format!(
            "{:#}",
            model_settings(&serde_json::json!({"env": 3}), &today).unwrap_err()
        );
        assert!(e.contains("retrain the model"), "{e}");
    }

    #[test]
    fn a_folder_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        ensure_dir(&dir.path().join("a/b")).unwrap();
        let e = ensure_dir(&blocker.join("sub")).unwrap_err().to_string();
        assert!(e.contains("cannot create folder") && e.contains("--out-dir"), "{e}");
    }
}
