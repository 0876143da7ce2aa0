//! A batch of observations as the networks' input tensors, checked against
//! the model's shape and vocabulary first (a model from another feature set
//! or market list gets a clear error, not a shape panic deep in a kernel).

use candle_core::{Device, Tensor};
use tradelab_env::ACCOUNT_FEATURES;

use crate::agent::MarketKey;
use crate::error::AgentError;

/// What a model reads: its window shape and vocabulary sizes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputShape {
    pub window: usize,
    pub features: usize,
    pub instruments: usize,
    pub timeframes: usize,
}

/// `(window [n, W, F], account [n, A], instrument [n], timeframe [n])`.
pub(crate) struct InputTensors {
    pub window: Tensor,
    pub account: Tensor,
    pub instrument: Tensor,
    pub timeframe: Tensor,
}

/// Checks a batch against the model's window shape and vocabulary.
pub(crate) fn check_inputs(
    shape: InputShape,
    windows: &[f32],
    accounts: &[f32],
    keys: &[MarketKey],
) -> Result<(), AgentError> {
    let n = keys.len();
    let (w, f) = (shape.window, shape.features);
    if windows.len() != n * w * f {
        return Err(AgentError::Mismatch(format!(
            "the observation has {} values but the model reads a window of {w} bars x {f} features",
            windows.len() / n.max(1)
        )));
    }
    if let Some(k) = keys
        .iter()
        .find(|k| k.instrument as usize >= shape.instruments || k.timeframe as usize >= shape.timeframes)
    {
        return Err(AgentError::Mismatch(format!(
            "market ids {k:?} are outside the model's vocabulary ({} instruments, {} timeframes)",
            shape.instruments, shape.timeframes
        )));
    }
    if accounts.len() != n * ACCOUNT_FEATURES {
        return Err(AgentError::Mismatch(format!(
            "{} account values for {n} observations; each has {ACCOUNT_FEATURES}",
            accounts.len()
        )));
    }
    Ok(())
}

pub(crate) fn input_tensors(
    shape: InputShape,
    windows: &[f32],
    accounts: &[f32],
    keys: &[MarketKey],
    d: &Device,
) -> Result<InputTensors, AgentError> {
    check_inputs(shape, windows, accounts, keys)?;
    let (n, w, f) = (keys.len(), shape.window, shape.features);
    let inst: Vec<u32> = keys.iter().map(|k| k.instrument).collect();
    let tf: Vec<u32> = keys.iter().map(|k| k.timeframe).collect();
    Ok(InputTensors {
        window: Tensor::from_slice(windows, (n, w, f), d)?,
        account: Tensor::from_slice(accounts, (n, ACCOUNT_FEATURES), d)?,
        instrument: Tensor::from_vec(inst, n, d)?,
        timeframe: Tensor::from_vec(tf, n, d)?,
    })
}
