//! Errors of agents, checkpoints and training. Each names the problem and
//! what to do about it.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in this crate; each message names the
/// problem and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A checkpoint file is missing, corrupt, of another format version,
    /// inconsistent with itself, or fails its checksum.
    #[error("{path}: {problem}")]
    Checkpoint {
        /// The checkpoint file at fault.
        path: PathBuf,
        /// What is wrong with it and what to do.
        problem: String,
    },
    /// The input does not fit the model: window shape, account values,
    /// market ids outside the vocabulary, or a checkpoint of another kind.
    #[error("the model does not fit this data: {0}")]
    Mismatch(String),
    /// The environment failed.
    #[error(transparent)]
    Env(#[from] tradelab_env::EnvError),
    /// A tensor operation failed (shapes, dtypes, device).
    #[error("neural network error: {0}")]
    Model(#[from] candle_core::Error),
    /// Settings or a call that cannot work, e.g. an unknown encoder or a
    /// rollout missing where one is needed.
    #[error("{0}")]
    Invalid(String),
}

impl AgentError {
    /// An [`AgentError::Io`] at `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        AgentError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An [`AgentError::Checkpoint`] at `path`.
    pub fn checkpoint(path: &Path, problem: impl Into<String>) -> Self {
        AgentError::Checkpoint {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}
