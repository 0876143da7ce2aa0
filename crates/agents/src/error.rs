//! Errors of agents, checkpoints and training. Each names the problem and
//! what to do about it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {problem}")]
    Checkpoint { path: PathBuf, problem: String },
    #[error("the model does not fit this data: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Env(#[from] tradelab_env::EnvError),
    #[error("neural network error: {0}")]
    Model(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
}

impl AgentError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        AgentError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn checkpoint(path: &Path, problem: impl Into<String>) -> Self {
        AgentError::Checkpoint {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}
