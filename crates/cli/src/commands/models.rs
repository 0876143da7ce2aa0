//! `tradelab models`: the model registry from the terminal: list, show,
//! register, promote, archive, verify, and garbage collection by the
//! retention policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tradelab_app::record::open_store;
use tradelab_app::registry::{
    behaviour_note, checkpoint_folder, collect_garbage, register_checkpoint, score, verified_location, ModelRef,
};
use tradelab_app::runtime::runtime;
use tradelab_store::registry::Stage;
use tradelab_store::Store;

use crate::cli::{GlobalArgs, ModelsCommand};
use crate::context::load_settings;

/// A checkpoint folder to open: a path as given, or a registry reference
/// resolved and verified.
pub fn model_folder(g: &GlobalArgs, spec: &Path) -> Result<PathBuf> {
    if spec.exists() {
        return Ok(spec.to_path_buf());
    }
    checkpoint_folder(&load_settings(g, &[])?, spec)
}

fn when(ms: i64) -> String {
    tradelab_core::time::format_datetime(ms)
}

pub fn run(g: &GlobalArgs, c: ModelsCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    rt.block_on(async {
        match c {
            ModelsCommand::List { name, json } => {
                let models = store.models(name.as_deref()).await?;
                if json {
                    let rows: Vec<serde_json::Value> = models
                        .iter()
                        .map(|m| {
                            serde_json::json!({
                                "name": m.name, "version": m.version, "stage": m.stage.as_str(),
                                "kind": m.metadata["model"], "validation_return_pct": score(m),
                                "does_not_trade": behaviour_note(m), "location": m.location,
                                "created": when(m.created_ms), "run_id": m.run_id,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                    return Ok(());
                }
                if models.is_empty() {
                    println!("no models registered; `tradelab train` registers its best model");
                } else {
                    println!(
                        "{:<24} {:<5} {:<10} {:<18} {:>12}  location",
                        "name", "ver", "stage", "kind", "val return"
                    );
                }
                for m in &models {
                    println!(
                        "{:<24} v{:<4} {:<10} {:<18} {:>12}  {}{}",
                        m.name,
                        m.version,
                        m.stage.as_str(),
                        m.metadata["model"].as_str().unwrap_or("?"),
                        score(m).map_or("-".into(), |s| format!("{s:+.2}%")),
                        if m.location.is_empty() {
                            "(files removed)".to_string()
                        } else {
                            m.location.clone()
                        },
                        // A policy that does not trade is said to be one.
                        behaviour_note(m).map_or(String::new(), |n| format!("  [{n}]"))
                    );
                }
            }
            ModelsCommand::Show { model } => {
                let m = ModelRef::parse(&model)?.resolve(&store).await?;
                println!("{} version {} ({})", m.name, m.version, m.stage.as_str());
                println!("  created:    {}", when(m.created_ms));
                println!("  framework:  {}", m.framework);
                println!("  checksum:   {}", m.checksum);
                println!(
                    "  location:   {}",
                    if m.location.is_empty() {
                        "(removed by gc)"
                    } else {
                        &m.location
                    }
                );
                println!("  run:        {}", m.run_id.as_deref().unwrap_or("-"));
                if !m.location.is_empty() {
                    match verified_location(&m) {
                        Ok(_) => println!("  files:      weights match the checksum"),
                        Err(e) => println!("  files:      DAMAGED: {e:#}"),
                    }
                }
                println!("{}", serde_json::to_string_pretty(&m.metadata)?);
            }
            ModelsCommand::Register { checkpoint, name } => {
                let (version, dir) =
                    register_checkpoint(&store, &settings.store.model_dir, &name, &checkpoint, None).await?;
                println!("registered: {name} version {version} ({})", dir.display());
            }
            ModelsCommand::Promote { model, stage } => {
                let stage = Stage::parse(&stage)?;
                let m = ModelRef::parse(&model)?.resolve(&store).await?;
                if m.location.is_empty() && stage != Stage::Archived {
                    bail!(
                        "{} version {} has no files left (removed by gc); it cannot be staged",
                        m.name,
                        m.version
                    );
                }
                verified_location(&m).or_else(|e| {
                    if stage == Stage::Archived {
                        Ok(PathBuf::new())
                    } else {
                        Err(e)
                    }
                })?;
                store.set_stage(&m.name, m.version, stage).await?;
                println!("{} version {} -> {}", m.name, m.version, stage.as_str());
            }
            ModelsCommand::Archive { model } => {
                let m = ModelRef::parse(&model)?.resolve(&store).await?;
                store.set_stage(&m.name, m.version, Stage::Archived).await?;
                println!("{} version {} -> archived", m.name, m.version);
            }
            ModelsCommand::Gc { keep_last, dry_run } => {
                let keep = keep_last.unwrap_or(settings.store.keep_last).max(1);
                gc(&store, keep, dry_run).await?;
            }
        }
        Ok(())
    })
}

async fn gc(store: &Store, keep_last: usize, dry_run: bool) -> Result<()> {
    let report = collect_garbage(store, keep_last, dry_run).await?;
    for p in &report.pruned {
        println!(
            "{}{} version {}: {} ({:.1} MB){}",
            if dry_run { "would prune " } else { "pruned " },
            p.name,
            p.version,
            p.location,
            p.bytes as f64 / 1e6,
            if p.folder_kept {
                ", folder kept: shared with a kept version"
            } else {
                ""
            }
        );
    }
    println!(
        "{} version(s) {}, {:.1} MB {}; kept the best, staging, production and the newest {} of each model",
        report.pruned.len(),
        if dry_run { "to prune" } else { "pruned" },
        report.freed_bytes as f64 / 1e6,
        if dry_run { "to free" } else { "freed" },
        report.keep_last
    );
    Ok(())
}
