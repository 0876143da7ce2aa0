//! The error type for settings and domain validation.

use std::path::PathBuf;

/// Errors raised by the core crate. Every variant says what went wrong and,
/// where there is one, what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A settings file could not be read.
    #[error("cannot read settings file {path}: {source}; check the path or pass --config")]
    SettingsIo {
        /// The file that was being read.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// A settings file (or the compiled-in defaults) is not valid YAML.
    #[error("settings file {path} is not valid YAML: {message}")]
    SettingsSyntax {
        /// The file, or a label such as `<defaults>`.
        path: PathBuf,
        /// The first line of the YAML parser's message.
        message: String,
    },
    /// A key is unknown, has the wrong type or is out of range.
    #[error("setting `{key}` = {value}: {problem}; allowed: {allowed}")]
    SettingsInvalid {
        /// Dotted key path, e.g. `risk.max_drawdown`, or `(top level)`.
        key: String,
        /// The offending value as written (shortened past 60 characters),
        /// or `(missing)`.
        value: String,
        /// What is wrong, e.g. `is out of range`.
        problem: String,
        /// What would be accepted, e.g. `a number in [0, 1]`.
        allowed: String,
    },
    /// A `--set` override is not of the form `KEY.PATH=VALUE`, or its path
    /// runs through a value that is not a mapping.
    #[error("bad override `{0}`: expected KEY.PATH=VALUE, for example risk.max_asset_fraction=0.2")]
    BadOverride(String),
    /// An action name is not one of the five canonical names.
    #[error("unknown action `{0}`: expected one of BUY_LONG, SELL_SHORT, CLOSE_LONG, CLOSE_SHORT, HOLD")]
    UnknownAction(String),
    /// A timeframe string is not a positive number followed by a unit
    /// (`ms`, `s`, `m`/`min`, `h`, `d`, `w`, `M`/`mo` for calendar months).
    #[error("unknown timeframe `{0}`: expected a number and a unit, like 1m, 5m, 1h, 1d, 1w or 1M (a month)")]
    UnknownTimeframe(String),
}

/// A `Result` whose error defaults to the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
