//! Market regimes, detected without peeking at the future
//! (algorithms.md §5).
//!
//! - [`features`]: returns, realised volatility and trend strength, each
//!   computed from bars up to t only, standardised with statistics of the
//!   fitting window;
//! - [`hmm`]: a Gaussian hidden Markov model with diagonal covariances:
//!   Baum-Welch fitting (forward-backward is used here, on training data,
//!   and nowhere else), BIC to choose the number of states, states
//!   relabelled by volatility so state 0 is always the calmest;
//! - [`filter`]: the scaled forward recursion, one bar at a time:
//!   p(regime | data up to t), floored so it recovers after a switch, and
//!   the one-bar-ahead predictive distribution;
//! - [`detector`]: the three together: fit on a training series, filter any
//!   series;
//! - [`specialists`]: which of the mixture of experts' four specialists
//!   suits each state, and per-bar specialist weights from the filter.

#![warn(missing_docs)]

pub mod detector;
pub mod features;
pub mod filter;
pub mod hmm;
pub mod settings;
pub mod specialists;

pub use detector::{RegimeConfig, RegimeDetector};
pub use filter::RegimeFilter;
pub use hmm::GaussianHmm;
pub use settings::RegimeSettings;

/// Why a regime model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegimeError {
    /// The training window has fewer observations than ten per free
    /// parameter of the model.
    #[error(
        "too few observations to fit {states} states: {have} (need at least {need}); use a longer training window"
    )]
    TooShort {
        /// The state count being fitted.
        states: usize,
        /// Observations (feature rows) available.
        have: usize,
        /// Observations required: 10 × the model's parameter count.
        need: usize,
    },
    /// The configuration or fitting arguments are out of range; the message
    /// says which and what to use.
    #[error("the regime settings are invalid: {0}")]
    Config(String),
    /// An observation is NaN or infinite; the value is its row index.
    #[error("the observations contain a non-finite value at row {0}; repair the data first")]
    NonFinite(usize),
}
