//! What training commands share: the shape of a new PPO agent or mixture
//! of experts for a set of markets (`train`, `meta-train` and
//! `walk-forward` build their agents with it).

use anyhow::{bail, Result};
use tradelab_agents::kinds::{self, AgentKind};
use tradelab_agents::metadata::Vocabulary;
use tradelab_agents::ppo::{MixtureConfig, PpoConfig, MOE_KIND};
use tradelab_regime::specialists::SPECIALISTS;

use crate::Settings;

/// The shape of a new PPO agent or mixture (`agent` names it) for these
/// features, markets and settings.
pub fn ppo_config(agent: &str, features: &[String], vocab: &Vocabulary, settings: &Settings) -> Result<PpoConfig> {
    let (encoder, mixture) = if agent == MOE_KIND {
        let m = MixtureConfig::from_features(features, &SPECIALISTS, &settings.moe)?;
        (settings.moe.encoder.name().to_string(), Some(m))
    } else {
        match AgentKind::parse(agent).and_then(AgentKind::encoder) {
            Some(e) => (e.name().to_string(), None),
            None => bail!("unknown agent `{agent}`; choose one of: {}", kinds::names(|_| true)),
        }
    };
    Ok(PpoConfig {
        encoder,
        features: features.len(),
        window: settings.env.window,
        instruments: vocab.instrument_rows(),
        timeframes: vocab.timeframes.len(),
        seed: settings.seed,
        ppo: settings.ppo.clone(),
        mixture,
    })
}
