//! Saving and loading a PPO agent as a checkpoint directory.

use std::path::Path;

use crate::settings::WeightsDtype;

use super::{PpoAgent, PpoConfig};
use crate::agent::Agent;
use crate::checkpoint::{
    check_described_model, read_model_kind, read_verified, write_checkpoint, CheckpointMetadata, TrainingState,
    MAX_FEATURES, MAX_INSTRUMENTS, MAX_TIMEFRAMES, MAX_WINDOW, METADATA_FILE, OPTIMIZER_FILE, WEIGHTS_FILE,
};
use crate::error::AgentError;
use crate::metadata::{timestamp_now, FORMAT_VERSION};

/// Everything in a PPO checkpoint's metadata.json.
pub type PpoMetadata = CheckpointMetadata<PpoConfig>;

pub(super) fn save(agent: &PpoAgent, dir: &Path) -> Result<(), AgentError> {
    write_checkpoint(
        dir,
        (&agent.params.tensors(), WeightsDtype::F32),
        &agent.adam.state(),
        |weights_sha256, optimizer_sha256| PpoMetadata {
            format_version: FORMAT_VERSION,
            model: agent.kind().to_string(),
            version: 1,
            framework: format!("candle {} (tradelab-agents {})", "0.11", env!("CARGO_PKG_VERSION")),
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

pub(super) fn load(dir: &Path) -> Result<PpoAgent, AgentError> {
    let meta_path = dir.join(METADATA_FILE);
    let kind = read_model_kind(dir)?;
    if !crate::kinds::AgentKind::parse(&kind).is_some_and(crate::kinds::AgentKind::is_ppo) {
        return Err(AgentError::Mismatch(format!(
            "{} holds a `{kind}` model, not a PPO one; load it as `{kind}`",
            dir.display()
        )));
    }
    let v = read_verified::<PpoMetadata>(dir, "PPO")?;
    let meta = v.meta;
    let weights_path = dir.join(WEIGHTS_FILE);
    let optimizer_path = dir.join(OPTIMIZER_FILE);
    let c = &meta.config;
    let experts = c.mixture.as_ref().map_or(1, |m| m.specialists.len().max(1));
    let (gate_hidden, max_column) = c.mixture.as_ref().map_or((1, 0), |m| {
        let columns = m.specialist_columns.iter().chain(&m.regime_columns);
        (m.gate_hidden, columns.max().map_or(0, |c| c + 1))
    });
    check_described_model(
        dir,
        &[
            ("features", c.features, MAX_FEATURES),
            ("window bars", c.window, MAX_WINDOW),
            ("instruments", c.instruments, MAX_INSTRUMENTS),
            ("timeframes", c.timeframes, MAX_TIMEFRAMES),
            ("specialists", experts, 64),
            ("gate hidden units", gate_hidden, 4096),
            // A mixture's columns index the features.
            ("as its highest feature column", max_column, c.features),
        ],
        |v| c.ppo.validate(v),
        c.policy()
            .ok()
            .and_then(|p| p.min_parameters())
            .and_then(|n| n.checked_mul(experts)),
        &v.weights,
    )?;
    let mut agent = PpoAgent::new(meta.config.clone())?;
    if agent.kind() != meta.model {
        return Err(AgentError::checkpoint(
            &meta_path,
            format!("says `{}` but its config describes a `{}`", meta.model, agent.kind()),
        ));
    }
    agent
        .params
        .assign(&v.weights)
        .map_err(|p| AgentError::checkpoint(&weights_path, p))?;
    agent
        .adam
        .restore(&v.optimizer, meta.training.adam_step)
        .map_err(|p| AgentError::checkpoint(&optimizer_path, p))?;
    agent.updates = meta.training.updates;
    agent.env_steps = meta.training.env_steps;
    agent.scaler = meta.training.reward_scaler;
    agent.provenance = meta.provenance;
    Ok(agent)
}
