//! Saving and loading an HRM agent: weights (with the fixed initial states
//! as `buffer.*` tensors), Adam's moments, and metadata.json with the full
//! configuration and the training state needed to resume.

use std::collections::BTreeMap;
use std::path::Path;

use crate::settings::WeightsDtype;
use tradelab_nn::hrm::{Z_H_INIT, Z_L_INIT};

/// Prefix of the f32 master weights in the optimiser file.
const MASTER: &str = "master.";

use super::{HrmAgent, HrmConfig, KIND};
use crate::checkpoint::read_model_kind;
use crate::checkpoint::{
    read_verified, write_checkpoint, CheckpointMetadata, TrainingState, METADATA_FILE, WEIGHTS_FILE,
};
use crate::error::AgentError;
use crate::metadata::{timestamp_now, FORMAT_VERSION};

/// Everything in a HRM checkpoint's metadata.json.
pub type HrmMetadata = CheckpointMetadata<HrmConfig>;

pub(super) fn save(agent: &HrmAgent, dir: &Path) -> Result<(), AgentError> {
    let mut weights = agent.params.tensors();
    for (name, t) in agent.net.buffers() {
        weights.insert(name.to_string(), t.clone());
    }
    let dtype = agent.config.model.weights_dtype;
    let mut optimizer = agent.adam.state();
    if dtype != WeightsDtype::F32 {
        // The model file is rounded; resuming needs the exact weights.
        for (name, t) in &weights {
            optimizer.insert(format!("{MASTER}{name}"), t.clone());
        }
    }
    write_checkpoint(
        dir,
        (&weights, dtype),
        &optimizer,
        |weights_sha256, optimizer_sha256| HrmMetadata {
            format_version: FORMAT_VERSION,
            model: KIND.to_string(),
            version: 1,
            framework: format!("candle 0.11 (tradelab-agents {})", env!("CARGO_PKG_VERSION")),
            weights_sha256,
            optimizer_sha256,
            trained_at: timestamp_now(),
            parameters: agent.parameter_count(),
            config: agent.config.clone(),
            training: TrainingState {
                updates: agent.updates,
                env_steps: agent.env_steps,
                adam_step: agent.adam.step,
                reward_scaler: agent.scaler.clone(),
            },
            provenance: agent.provenance.clone(),
        },
    )
}

pub(super) fn load(dir: &Path) -> Result<HrmAgent, AgentError> {
    let kind = read_model_kind(dir)?;
    if kind != KIND {
        return Err(AgentError::Mismatch(format!(
            "{} holds a `{kind}` model, not an `{KIND}` one; load it as `{kind}`",
            dir.display()
        )));
    }
    let mut v = read_verified::<HrmMetadata>(dir, "HRM")?;
    // Exact f32 weights, where the model file holds rounded ones.
    let masters: BTreeMap<String, candle_core::Tensor> = v
        .optimizer
        .iter()
        .filter_map(|(k, t)| k.strip_prefix(MASTER).map(|name| (name.to_string(), t.clone())))
        .collect();
    if !masters.is_empty() {
        v.weights = masters;
    }
    let c = &v.meta.config;
    let m = &c.model;
    // Each layer of both modules holds at least one d_model x d_model
    // projection; the embeddings are tables of their stated sizes.
    let min_parameters = (|| {
        m.d_model
            .checked_mul(m.d_model)?
            .checked_mul(m.h_layers.checked_add(m.l_layers)?)?
            .checked_add(c.instruments.max(1).checked_mul(m.instrument_embedding)?)?
            .checked_add(c.timeframes.max(1).checked_mul(m.timeframe_embedding)?)
    })();
    crate::checkpoint::check_described_model(
        dir,
        &[
            ("features", c.features, crate::checkpoint::MAX_FEATURES),
            ("window bars", c.window, crate::checkpoint::MAX_WINDOW),
            ("instruments", c.instruments, crate::checkpoint::MAX_INSTRUMENTS),
            ("timeframes", c.timeframes, crate::checkpoint::MAX_TIMEFRAMES),
        ],
        |val| {
            c.ppo.validate(val);
            m.validate(val);
        },
        min_parameters,
        &v.weights,
    )?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut agent = HrmAgent::new(v.meta.config.clone())
        .map_err(|e| AgentError::checkpoint(&dir.join(METADATA_FILE), format!("describes an unusable model: {e}")))?;
    let (Some(z_h), Some(z_l)) = (v.weights.remove(Z_H_INIT), v.weights.remove(Z_L_INIT)) else {
        return Err(AgentError::checkpoint(
            &weights_path,
            format!("lacks the initial states {Z_H_INIT} and {Z_L_INIT}"),
        ));
    };
    agent
        .net
        .set_buffers(z_h, z_l)
        .map_err(|e| AgentError::checkpoint(&weights_path, e.to_string()))?;
    agent
        .params
        .assign(&v.weights)
        .map_err(|p| AgentError::checkpoint(&weights_path, p))?;
    agent
        .adam
        .restore(&v.optimizer, v.meta.training.adam_step)
        .map_err(|p| AgentError::checkpoint(&dir.join(crate::checkpoint::OPTIMIZER_FILE), p))?;
    agent.weights_changed();
    agent.updates = v.meta.training.updates;
    agent.env_steps = v.meta.training.env_steps;
    agent.scaler = v.meta.training.reward_scaler;
    agent.provenance = v.meta.provenance;
    Ok(agent)
}

/// Pads the instrument and timeframe embeddings of a checkpoint's tensors
/// (weights or Adam moments) with zero rows up to the new vocabulary sizes.
pub(super) fn pad_embeddings(
    tensors: &BTreeMap<String, candle_core::Tensor>,
    instruments: usize,
    timeframes: usize,
) -> Result<BTreeMap<String, candle_core::Tensor>, AgentError> {
    let mut out = BTreeMap::new();
    for (name, t) in tensors {
        let rows = if name.ends_with("embedding.instrument") {
            Some(instruments)
        } else if name.ends_with("embedding.timeframe") {
            Some(timeframes)
        } else {
            None
        };
        let padded = match rows {
            Some(rows) if rows > t.dim(0)? => {
                let extra = candle_core::Tensor::zeros((rows - t.dim(0)?, t.dim(1)?), t.dtype(), t.device())?;
                candle_core::Tensor::cat(&[t, &extra], 0)?
            }
            Some(rows) if rows < t.dim(0)? => {
                return Err(AgentError::Invalid(format!(
                    "{name} has {} rows; a vocabulary can grow but not shrink to {rows}",
                    t.dim(0)?
                )))
            }
            _ => t.clone(),
        };
        out.insert(name.clone(), padded);
    }
    Ok(out)
}
