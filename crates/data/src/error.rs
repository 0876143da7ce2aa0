//! Errors from loading and preparing market data. Each names the file (and
//! line, where there is one) and says what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}:{line}: {problem}; set data.repair_policy to drop or repair to skip or fix such rows")]
    InvalidRow {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{path}: no usable rows after validation ({dropped} dropped); check the file's contents")]
    NoRows { path: PathBuf, dropped: usize },
    #[error("no data files (*.csv, *.txt) in {dir}; copy OHLCV files there or point data.raw_dir elsewhere")]
    EmptyDir { dir: PathBuf },
    #[error("no instrument matches `{symbol}` in {dir}; available: {available}")]
    UnknownSymbol {
        symbol: String,
        dir: PathBuf,
        available: String,
    },
    #[error("`{symbol}` is ambiguous in {dir}: it matches {matches}; give more of the name")]
    AmbiguousSymbol {
        symbol: String,
        dir: PathBuf,
        matches: String,
    },
    #[error("cannot resample {from} bars to {to}: {reason}")]
    Resample { from: String, to: String, reason: String },
    #[error("{0}")]
    Other(String),
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}
