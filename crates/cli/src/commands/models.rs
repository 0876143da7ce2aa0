//! `tradelab models`: the model registry from the terminal: list, show,
//! register, promote, archive, verify, and garbage collection by the
//! retention policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tradelab_agents::checkpoint::{sha256_hex, WEIGHTS_FILE};
use tradelab_store::registry::{retention_plan, ModelRecord, Stage};
use tradelab_store::Store;

use crate::cli::{GlobalArgs, ModelsCommand};
use crate::context::load_settings;
use crate::record::{copy_into_registry, open_store, runtime};

/// `NAME@VERSION`, `NAME@production`, `NAME@staging` or `NAME` (the newest).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelRef {
    Version(String, i64),
    Stage(String, Stage),
    Latest(String),
}

impl ModelRef {
    pub fn parse(text: &str) -> Result<ModelRef> {
        let (name, tag) = match text.split_once('@') {
            Some((n, t)) => (n, Some(t)),
            None => (text, None),
        };
        if name.is_empty() {
            bail!("`{text}` names no model; use NAME, NAME@VERSION or NAME@production");
        }
        Ok(match tag {
            None => ModelRef::Latest(name.into()),
            Some(t) => match t.parse::<i64>() {
                Ok(v) if v >= 1 => ModelRef::Version(name.into(), v),
                Ok(_) => bail!("model versions start at 1; `{text}` asks for {t}"),
                Err(_) => ModelRef::Stage(
                    name.into(),
                    Stage::parse(t)
                        .with_context(|| format!("in `{text}`: after @ comes a version number or a stage"))?,
                ),
            },
        })
    }

    pub async fn resolve(&self, store: &Store) -> Result<ModelRecord> {
        Ok(match self {
            ModelRef::Version(n, v) => store.model(n, *v).await?,
            ModelRef::Stage(n, s) => store
                .model_at_stage(n, *s)
                .await?
                .with_context(|| format!("model `{n}` has no version in {}", s.as_str()))?,
            ModelRef::Latest(n) => {
                store.models(Some(n)).await?.into_iter().next().with_context(|| {
                    format!("no model called `{n}`; `tradelab models list` shows what is registered")
                })?
            }
        })
    }
}

/// The folder of a registered version, after checking that its weights
/// still match the checksum the registry recorded.
pub fn verified_location(m: &ModelRecord) -> Result<PathBuf> {
    if m.location.is_empty() {
        bail!(
            "{} version {} was removed by garbage collection; its record remains but its files do not",
            m.name,
            m.version
        );
    }
    let dir = PathBuf::from(&m.location);
    let weights = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).with_context(|| {
        format!(
            "reading {} of {} version {}; the registry's files were moved or deleted",
            weights.display(),
            m.name,
            m.version
        )
    })?;
    let found = sha256_hex(&bytes);
    if found != m.checksum {
        bail!(
            "{} of {} version {} has sha256 {found}, but the registry recorded {}: the file was changed after registration",
            weights.display(),
            m.name,
            m.version,
            m.checksum
        );
    }
    Ok(dir)
}

/// A checkpoint folder to open: a path as given, or a registry reference
/// resolved and verified.
pub fn model_folder(g: &GlobalArgs, spec: &Path) -> Result<PathBuf> {
    if spec.exists() {
        return Ok(spec.to_path_buf());
    }
    let text = spec.to_string_lossy();
    if text.contains('/') {
        bail!(
            "{} does not exist; pass a checkpoint folder or a registered model as NAME@VERSION",
            spec.display()
        );
    }
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    let record = rt.block_on(ModelRef::parse(&text)?.resolve(&store)).with_context(|| {
        format!("`{text}` is missing: no checkpoint folder of that name, and no such registered model")
    })?;
    verified_location(&record)
}

fn when(ms: i64) -> String {
    tradelab_core::time::format_datetime(ms)
}

fn score(m: &ModelRecord) -> Option<f64> {
    m.metadata["validation"]["return_pct"].as_f64()
}

pub fn run(g: &GlobalArgs, c: ModelsCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    rt.block_on(async {
        match c {
            ModelsCommand::List { name } => {
                let models = store.models(name.as_deref()).await?;
                if models.is_empty() {
                    println!("no models registered; `tradelab train` registers its best model");
                }
                for m in &models {
                    println!(
                        "{:<24} v{:<4} {:<10} {:<18} val {:>8}  {}",
                        m.name,
                        m.version,
                        m.stage.as_str(),
                        m.metadata["model"].as_str().unwrap_or("?"),
                        score(m).map_or("-".into(), |s| format!("{s:+.2}%")),
                        if m.location.is_empty() {
                            "(files removed)".to_string()
                        } else {
                            m.location.clone()
                        }
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
                let stored = copy_into_registry(&checkpoint, &settings.store.model_dir, &name)?;
                let text = |k: &str| stored.metadata[k].as_str().unwrap_or_default().to_string();
                let location = stored.dir.display().to_string();
                let version = store
                    .register_model(&tradelab_store::registry::NewModel {
                        name: &name,
                        checksum: &text("weights_sha256"),
                        framework: &text("framework"),
                        metadata: &stored.metadata,
                        location: &location,
                        run_id: None,
                    })
                    .await?;
                println!("registered: {name} version {version} ({location})");
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

/// One version garbage collection removed (or would remove).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PrunedVersion {
    pub name: String,
    pub version: i64,
    pub location: String,
    pub bytes: u64,
    /// The folder stays because a kept version shares it (same weights).
    pub folder_kept: bool,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct GcReport {
    pub dry_run: bool,
    pub keep_last: usize,
    pub pruned: Vec<PrunedVersion>,
    pub freed_bytes: u64,
}

/// Applies the retention policy to every model name: the versions it does
/// not keep lose their files (unless a kept version shares the folder) and
/// are marked pruned; their records stay.
pub async fn collect_garbage(store: &Store, keep_last: usize, dry_run: bool) -> Result<GcReport> {
    let keep_last = keep_last.max(1);
    let all = store.models(None).await?;
    let mut names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    names.dedup();
    let mut doomed: Vec<&ModelRecord> = Vec::new();
    for name in names {
        let versions: Vec<ModelRecord> = all.iter().filter(|m| m.name == name).cloned().collect();
        for v in retention_plan(&versions, keep_last, score) {
            if let Some(m) = all.iter().find(|m| m.name == name && m.version == v) {
                doomed.push(m);
            }
        }
    }
    let is_doomed = |o: &ModelRecord| doomed.iter().any(|d| d.name == o.name && d.version == o.version);
    let mut report = GcReport {
        dry_run,
        keep_last,
        pruned: Vec::new(),
        freed_bytes: 0,
    };
    for (i, m) in doomed.iter().enumerate() {
        // Kept by a surviving version, or already handled for an earlier doomed one.
        let kept_by_survivor = all.iter().any(|o| o.location == m.location && !is_doomed(o));
        let seen = doomed[..i].iter().any(|d| d.location == m.location);
        let dir = Path::new(&m.location);
        let bytes = if kept_by_survivor || seen { 0 } else { folder_size(dir) };
        if !dry_run {
            if !kept_by_survivor && !seen && dir.exists() {
                std::fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))?;
            }
            store.mark_pruned(&m.name, m.version).await?;
        }
        report.freed_bytes += bytes;
        report.pruned.push(PrunedVersion {
            name: m.name.clone(),
            version: m.version,
            location: m.location.clone(),
            bytes,
            folder_kept: kept_by_survivor,
        });
    }
    Ok(report)
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

fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_references_parse_or_explain() {
        assert_eq!(ModelRef::parse("m@3").unwrap(), ModelRef::Version("m".into(), 3));
        assert_eq!(
            ModelRef::parse("m@production").unwrap(),
            ModelRef::Stage("m".into(), Stage::Production)
        );
        assert_eq!(ModelRef::parse("m").unwrap(), ModelRef::Latest("m".into()));
        assert!(ModelRef::parse("m@0").unwrap_err().to_string().contains("start at 1"));
        assert!(format!("{:#}", ModelRef::parse("m@live").unwrap_err()).contains("stage"));
        assert!(ModelRef::parse("@3").is_err());
    }
}
