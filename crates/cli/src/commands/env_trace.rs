//! `tradelab env-trace`: a seeded environment run, one JSON line per step.

use anyhow::{bail, Result};
use tradelab_app::env_trace::trace;
use tradelab_app::markets::load_symbols;
use tradelab_env::Split;

use crate::cli::{EnvTraceArgs, GlobalArgs};
use crate::context::load_settings;

pub fn run(g: &GlobalArgs, a: &EnvTraceArgs) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let Some(split) = Split::parse(&a.split) else {
        bail!("unknown --split `{}`; use train, validation or test", a.split);
    };
    let mut feeds = load_symbols(&settings, std::slice::from_ref(&a.symbol), g.verbose)?;
    let series = feeds.remove(0);
    for step in trace(&settings, series, split, settings.seed, a.steps)? {
        println!("{}", serde_json::to_string(&step)?);
    }
    Ok(())
}
