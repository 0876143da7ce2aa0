//! Errors from loading and preparing market data. Each names the file (and
//! line, where there is one) and says what to do.

use std::path::PathBuf;

/// Why market data could not be loaded, prepared or resampled.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    // The OS error is in the message, not a `source`: an error chain
    // would print it twice.
    #[error("cannot read {path}: {error}; check that it exists and is readable")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A file's structure is wrong as a whole: not CSV, no rows, an
    /// unrecognisable header or timestamp, a corrupt manifest.
    #[error("{path}: {message}")]
    Format {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong and, where possible, what to do.
        message: String,
    },
    /// A row failed validation under `data.repair_policy: refuse`.
    #[error("{path}:{line}: {problem}; set data.repair_policy to drop or repair to skip or fix such rows")]
    InvalidRow {
        /// The file holding the row.
        path: PathBuf,
        /// The row's 1-based line in the file.
        line: usize,
        /// Which rule the row broke, with its values.
        problem: String,
    },
    /// Every row of a file was dropped by validation.
    #[error("{path}: no usable rows after validation ({dropped} dropped); check the file's contents")]
    NoRows {
        /// The file.
        path: PathBuf,
        /// How many rows were dropped.
        dropped: usize,
    },
    /// A data folder does not exist.
    #[error(
        "the data folder {} does not exist: relative data paths are read from the folder tradelab runs in ({}); \
         run tradelab from the project folder (the one holding config/ and data/) or set data.raw_dir and \
         data.final_dir to absolute paths",
        dir.display(), cwd.display()
    )]
    MissingDir {
        /// The folder as configured.
        dir: PathBuf,
        /// The working directory it was resolved from.
        cwd: PathBuf,
    },
    /// A folder holds no `*.csv` or `*.txt` data files.
    #[error("no data files (*.csv, *.txt) in {dir}; copy OHLCV files there or point data.raw_dir elsewhere")]
    EmptyDir {
        /// The folder searched.
        dir: PathBuf,
    },
    /// No data file's stem equals or starts with the requested symbol.
    #[error("no instrument matches `{symbol}` in {dir}; available: {available}")]
    UnknownSymbol {
        /// The symbol as requested.
        symbol: String,
        /// The folder searched.
        dir: PathBuf,
        /// The instrument names found, comma-separated.
        available: String,
    },
    /// The symbol is a prefix of several file stems and equals none.
    #[error("`{symbol}` is ambiguous in {dir}: it matches {matches}; give more of the name")]
    AmbiguousSymbol {
        /// The symbol as requested.
        symbol: String,
        /// The folder searched.
        dir: PathBuf,
        /// The matching instrument names, comma-separated.
        matches: String,
    },
    /// A series cannot be aggregated to the requested timeframe.
    #[error("cannot resample {from} bars to {to}: {reason}")]
    Resample {
        /// The series' timeframe (declared or inferred), or `unknown`.
        from: String,
        /// The requested timeframe.
        to: String,
        /// Why, e.g. the target is not a whole multiple of the source.
        reason: String,
    },
    /// Any other failure; the message is the whole error text.
    #[error("{0}")]
    Other(String),
}

impl DataError {
    /// A [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            error,
        }
    }

    /// A [`DataError::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}
