//! From the command line's global flags to the application's settings.

use std::path::PathBuf;

use anyhow::Result;
use tradelab_app::settings::SettingsSource;
use tradelab_app::Settings;

pub use tradelab_app::settings::{ensure_dir, model_settings};

use crate::cli::GlobalArgs;

impl GlobalArgs {
    /// Where this invocation's settings come from.
    pub fn settings_source(&self) -> SettingsSource {
        SettingsSource {
            config: self.config.clone(),
            overrides: self.overrides.clone(),
            seed: self.seed,
        }
    }
}

/// Loads settings: `--config`, else `config/settings.yaml` if present, else
/// the compiled-in defaults; then `--set` overrides and `--seed`.
pub fn load_settings(g: &GlobalArgs, extra: &[String]) -> Result<Settings> {
    g.settings_source().load(extra)
}

/// A `key=value` override for an optional path flag.
pub fn path_override(key: &str, value: &Option<PathBuf>) -> Option<String> {
    value.as_ref().map(|p| format!("{key}={}", p.display()))
}
