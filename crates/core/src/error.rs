//! The error type for settings and domain validation.

use std::path::PathBuf;

/// Errors raised by the core crate. Every variant says what went wrong and,
/// where there is one, what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read settings file {path}: {source}; check the path or pass --config")]
    SettingsIo { path: PathBuf, source: std::io::Error },
    #[error("settings file {path} is not valid YAML: {message}")]
    SettingsSyntax { path: PathBuf, message: String },
    /// A key is unknown, has the wrong type or is out of range.
    #[error("setting `{key}` = {value}: {problem}; allowed: {allowed}")]
    SettingsInvalid {
        key: String,
        value: String,
        problem: String,
        allowed: String,
    },
    #[error("bad override `{0}`: expected KEY.PATH=VALUE, for example risk.max_asset_fraction=0.2")]
    BadOverride(String),
    #[error("unknown action `{0}`: expected one of BUY_LONG, SELL_SHORT, CLOSE_LONG, CLOSE_SHORT, HOLD")]
    UnknownAction(String),
    #[error("unknown timeframe `{0}`: expected a number and a unit, like 1m, 5m, 1h, 1d")]
    UnknownTimeframe(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
