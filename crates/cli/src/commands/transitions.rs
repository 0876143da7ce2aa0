//! `tradelab transitions`: a mixture of experts' position disruption
//! around regime switches, soft blending against hard switching, on a
//! seeded synthetic market whose switches are known.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tradelab_agents::ppo::PpoAgent;
use tradelab_agents::transitions::transition_smoothness;
use tradelab_agents::{Agent, MarketKey};
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_env::Split;

use crate::cli::{GlobalArgs, TransitionsArgs};
use crate::context::{load_settings, model_settings};

pub fn run(g: &GlobalArgs, a: &TransitionsArgs) -> Result<()> {
    let current = load_settings(g, &[])?;
    let folder = super::models::model_folder(g, &a.model)?;
    let agent = PpoAgent::load(&folder).with_context(|| format!("opening model {}", a.model.display()))?;
    if agent.config.mixture.is_none() {
        bail!(
            "{} holds a `{}` model; transitions measures a mixture of experts (train one with --agent moe)",
            a.model.display(),
            agent.kind()
        );
    }
    // The observation follows the model's own settings (regime features included).
    let settings = model_settings(&agent.provenance().settings, &current)?;
    let market = generate(&SyntheticConfig {
        bars: a.bars,
        seed: current.seed,
        ..Default::default()
    });
    let switches: Vec<usize> = (1..market.regimes.len())
        .filter(|&i| market.regimes[i] != market.regimes[i - 1])
        .collect();
    let data = Arc::new(
        settings
            .market_data(market.series)
            .context("preparing the synthetic market")?,
    );
    let key = MarketKey {
        instrument: 0,
        timeframe: 0,
    };
    let r = transition_smoothness(
        &agent,
        &data,
        key,
        Split::Test,
        &settings.env_config(),
        &switches,
        a.half_width,
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{} bars of a synthetic market (seed {}), test split: {} bars, {} regime switches",
        a.bars, current.seed, r.bars, r.switches
    );
    println!(
        "position disruption within {} bars of a switch (largest one-bar change, share of the long-to-short range):",
        r.half_width
    );
    println!(
        "  soft blending                              {:6.2}%",
        100.0 * r.soft_blending
    );
    println!(
        "  hard switching to the regime's specialist  {:6.2}%",
        100.0 * r.hard_switching
    );
    println!(
        "  hard switching to the gate's top choice    {:6.2}%",
        100.0 * r.top_gate_switching
    );
    println!(
        "mean one-bar change over all bars: soft {:.2}%, hard {:.2}%",
        100.0 * r.soft_mean_change,
        100.0 * r.hard_mean_change
    );
    Ok(())
}
