//! The model registry's use-cases, shared by `tradelab models`, training
//! runs and the API: resolving `NAME@VERSION` references, registering a
//! checkpoint (content-addressed copy, then a registry row), checking a
//! version's files against its checksum, and garbage collection by the
//! retention policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tradelab_agents::checkpoint::{
    sha256_hex, verify_checksum, write_dir_atomic, METADATA_FILE, OPTIMIZER_FILE, WEIGHTS_FILE,
};
use tradelab_store::registry::{retention_plan, ModelRecord, NewModel, Stage};
use tradelab_store::Store;

use crate::Settings;

/// `NAME@VERSION`, `NAME@production`, `NAME@staging` or `NAME` (the newest).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelRef {
    /// A version number.
    Version(String, i64),
    /// The version in a stage (`production`, `staging`).
    Stage(String, Stage),
    /// The newest version.
    Latest(String),
}

impl ModelRef {
    /// Reads `NAME`, `NAME@VERSION` or `NAME@STAGE`, or says what is wrong.
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

    /// The registry record the reference names.
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

/// A checkpoint folder to open: `spec` as a path when it exists, else a
/// registry reference (`NAME`, `NAME@VERSION`, `NAME@STAGE`) resolved in
/// the store `settings` name and verified against its checksum.
pub fn checkpoint_folder(settings: &Settings, spec: &Path) -> Result<PathBuf> {
    Ok(locate_checkpoint(settings, spec, false)?.folder)
}

/// A checkpoint to open: its folder and, when it was found in the
/// registry, its record (name, version, training run).
#[derive(Debug, Clone)]
pub struct LocatedCheckpoint {
    /// The folder holding the weights and `metadata.json`.
    pub folder: PathBuf,
    /// The registry's record, when `spec` named a registered model.
    pub registered: Option<ModelRecord>,
}

impl LocatedCheckpoint {
    /// How reports name the model: `NAME@VERSION` when registered, else the folder.
    pub fn label(&self) -> String {
        match &self.registered {
            Some(m) => format!("{}@{}", m.name, m.version),
            None => self.folder.display().to_string(),
        }
    }
}

/// Like [`checkpoint_folder`], keeping the registry's record; with
/// `registered_only`, `spec` is only ever a registry reference (jobs: a
/// client names no folder on the server, issue 19 finding 12).
pub fn locate_checkpoint(settings: &Settings, spec: &Path, registered_only: bool) -> Result<LocatedCheckpoint> {
    if !registered_only && spec.exists() {
        return Ok(LocatedCheckpoint {
            folder: spec.to_path_buf(),
            registered: None,
        });
    }
    let text = spec.to_string_lossy();
    if text.contains('/') {
        if registered_only {
            bail!("`{text}` is not a registered model; name one as NAME, NAME@VERSION or NAME@STAGE");
        }
        bail!(
            "{} does not exist; pass a checkpoint folder or a registered model as NAME@VERSION",
            spec.display()
        );
    }
    let rt = crate::runtime::runtime()?;
    let store = crate::record::open_store(&rt, settings)?;
    let record = rt
        .block_on(ModelRef::parse(&text)?.resolve(&store))
        .with_context(|| match registered_only {
            true => format!("`{text}` is not a registered model"),
            false => format!("`{text}` is missing: no checkpoint folder of that name, and no such registered model"),
        })?;
    rt.block_on(store.close());
    Ok(LocatedCheckpoint {
        folder: verified_location(&record)?,
        registered: Some(record),
    })
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

/// A version's validation return, the score retention keeps the best by.
pub fn score(m: &ModelRecord) -> Option<f64> {
    m.metadata["validation"]["return_pct"].as_f64()
}

/// What a listing should say about a version whose policy does not trade
/// on its validation split (flat, or buying once and never selling);
/// `None` when it trades or was never validated.
pub fn behaviour_note(m: &ModelRecord) -> Option<&'static str> {
    let v = &m.metadata["best_validation"];
    let v = if v.is_object() { v } else { &m.metadata["validation"] };
    // Models from before entries were counted cannot be told flat.
    v.get("entries")?;
    serde_json::from_value::<tradelab_agents::metadata::ValidationMetrics>(v.clone())
        .ok()?
        .warning()
        .map(|w| {
            if w.contains("flat") {
                "flat: never trades on validation"
            } else {
                "never closes a trade on validation"
            }
        })
}

/// Copies a checkpoint into the registry folder and registers it as the
/// next version of `name`; returns the version and where the files now are.
pub async fn register_checkpoint(
    store: &Store,
    model_dir: &Path,
    name: &str,
    checkpoint: &Path,
    run: Option<&str>,
) -> Result<(i64, PathBuf)> {
    let stored = copy_into_registry(checkpoint, model_dir, name)?;
    let text = |key: &str| stored.metadata[key].as_str().unwrap_or_default().to_string();
    let location = stored.dir.display().to_string();
    let version = store
        .register_model(&NewModel {
            name,
            checksum: &text("weights_sha256"),
            framework: &text("framework"),
            metadata: &stored.metadata,
            location: &location,
            run_id: run,
        })
        .await
        .context("registering the model")?;
    Ok((version, stored.dir))
}

/// A model version's files in the registry folder.
pub struct StoredModel {
    /// The version's folder (absolute).
    pub dir: PathBuf,
    /// Its `metadata.json`.
    pub metadata: Value,
}

/// Name-safe folder component.
/// Refuses a model name that would not stay one folder inside the model
/// directory: empty, `.` or `..`, a leading dot, path separators or control
/// characters.
pub fn check_model_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 128
        || name.starts_with('.')
        || name.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        anyhow::bail!(
            "`{}` is not a model name: use letters, digits, - _ . @ (no leading dot, no path separators, at most 128 characters)",
            name.escape_debug()
        );
    }
    Ok(())
}

fn folder_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Copies a checkpoint's files (weights, optimiser state, metadata) from `checkpoint` into
/// `<model_dir>/<name>/<first 16 hex of the weights' sha256>/`, verifying
/// the weights against the metadata's checksum first. Content-addressed:
/// registering the same weights twice shares one folder.
pub fn copy_into_registry(checkpoint: &Path, model_dir: &Path, name: &str) -> Result<StoredModel> {
    check_model_name(name)?;
    let meta_path = checkpoint.join(METADATA_FILE);
    let meta_text = std::fs::read_to_string(&meta_path)
        .with_context(|| format!("reading {}; is it a checkpoint folder?", meta_path.display()))?;
    let metadata: Value =
        serde_json::from_str(&meta_text).with_context(|| format!("{} is not valid JSON", meta_path.display()))?;
    let checksum = metadata["weights_sha256"]
        .as_str()
        .filter(|s| s.len() >= 16)
        .with_context(|| format!("{} has no weights_sha256", meta_path.display()))?
        .to_string();
    let weights_path = checkpoint.join(WEIGHTS_FILE);
    let weights = std::fs::read(&weights_path).with_context(|| format!("reading {}", weights_path.display()))?;
    verify_checksum(&weights_path, &weights, &checksum)?;
    // The optimiser state travels too: it holds the f32 master weights of
    // a bf16 model, and lets a registered version be trained further.
    let optimizer_path = checkpoint.join(OPTIMIZER_FILE);
    let optimizer = std::fs::read(&optimizer_path).with_context(|| format!("reading {}", optimizer_path.display()))?;
    let dir = model_dir.join(folder_name(name)).join(&checksum[..16]);
    if !dir.join(WEIGHTS_FILE).is_file() {
        write_dir_atomic(
            &dir,
            &[
                (WEIGHTS_FILE, &weights),
                (OPTIMIZER_FILE, &optimizer),
                (METADATA_FILE, meta_text.as_bytes()),
            ],
        )
        .with_context(|| format!("copying the model into {}", dir.display()))?;
    }
    // Absolute, so the API server and workers started elsewhere find it.
    let dir = std::fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))?;
    Ok(StoredModel { dir, metadata })
}

/// One version garbage collection removed (or would remove).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrunedVersion {
    /// The model's name.
    pub name: String,
    /// The version pruned.
    pub version: i64,
    /// Where its files were.
    pub location: String,
    /// Bytes freed by removing its folder (0 when the folder is kept).
    pub bytes: u64,
    /// The folder stays because a kept version shares it (same weights).
    pub folder_kept: bool,
}

/// What garbage collection did (or, dry, would do).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcReport {
    /// Nothing was removed: the report says what would be.
    pub dry_run: bool,
    /// Versions kept per model besides the best and the staged ones.
    pub keep_last: usize,
    /// Every version pruned.
    pub pruned: Vec<PrunedVersion>,
    /// Bytes freed in all.
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
    fn a_version_that_does_not_trade_on_validation_is_said_to_be_one() {
        let record = |validation: serde_json::Value| ModelRecord {
            name: "m".into(),
            version: 1,
            checksum: String::new(),
            framework: String::new(),
            metadata: serde_json::json!({"best_validation": validation}),
            location: String::new(),
            stage: tradelab_store::registry::Stage::None,
            run_id: None,
            created_ms: 0,
        };
        let v = |entries: usize, trades: usize| serde_json::json!({"return_pct": 0.0, "trades": trades, "at_update": 1, "entries": entries});
        assert_eq!(
            behaviour_note(&record(v(0, 0))),
            Some("flat: never trades on validation")
        );
        assert_eq!(
            behaviour_note(&record(v(1, 0))),
            Some("never closes a trade on validation")
        );
        assert_eq!(behaviour_note(&record(v(5, 4))), None);
        let old = serde_json::json!({"return_pct": 1.0, "trades": 0, "at_update": 1});
        assert_eq!(behaviour_note(&record(old)), None, "unknowable for old models");
        assert_eq!(behaviour_note(&record(serde_json::Value::Null)), None);
    }

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

    /// A checkpoint folder holding `weights`, an optimiser file and the
    /// metadata the registry reads (checksum, framework, validation score).
    fn checkpoint(dir: &Path, weights: &[u8], return_pct: f64) -> PathBuf {
        let sha = sha256_hex(weights);
        let ck = dir.join(format!("checkpoint-{}", &sha[..8]));
        std::fs::create_dir_all(&ck).unwrap();
        std::fs::write(ck.join(WEIGHTS_FILE), weights).unwrap();
        std::fs::write(ck.join(OPTIMIZER_FILE), b"adam state").unwrap();
        let meta = serde_json::json!({
            "weights_sha256": sha,
            "framework": "candle",
            "validation": {"return_pct": return_pct},
        });
        std::fs::write(ck.join(METADATA_FILE), meta.to_string()).unwrap();
        ck
    }

    #[test]
    fn registering_copies_by_content_resolves_references_and_catches_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, store) = crate::testing::sqlite_store(dir.path());
        let models = dir.path().join("models");
        let ck = checkpoint(dir.path(), b"weights one", 1.0);
        let (v1, at1) = rt
            .block_on(register_checkpoint(&store, &models, "nifty", &ck, None))
            .unwrap();
        let (v2, at2) = rt
            .block_on(register_checkpoint(&store, &models, "nifty", &ck, None))
            .unwrap();
        assert_eq!((v1, v2), (1, 2));
        assert_eq!(at1, at2, "the same weights share one folder");
        let latest = rt.block_on(ModelRef::Latest("nifty".into()).resolve(&store)).unwrap();
        assert_eq!((latest.version, latest.framework.as_str()), (2, "candle"));
        assert_eq!(verified_location(&latest).unwrap(), at2);
        assert_eq!(score(&latest), Some(1.0));
        let e = format!(
            "{:#}",
            rt.block_on(ModelRef::Latest("other".into()).resolve(&store))
                .unwrap_err()
        );
        assert!(e.contains("no model called `other`"), "{e}");
        let e = format!(
            "{:#}",
            rt.block_on(ModelRef::Stage("nifty".into(), Stage::Production).resolve(&store))
                .unwrap_err()
        );
        assert!(e.contains("has no version in production"), "{e}");
        std::fs::write(at2.join(WEIGHTS_FILE), b"tampered").unwrap();
        let e = verified_location(&latest).unwrap_err().to_string();
        assert!(e.contains("was changed after registration"), "{e}");
        // A checkpoint whose weights do not match its own metadata is refused.
        std::fs::write(ck.join(WEIGHTS_FILE), b"not what the metadata says").unwrap();
        assert!(copy_into_registry(&ck, &models, "nifty").is_err());
        // Names that would leave the model folder are refused before any write.
        for bad in ["..", ".", ".hidden", "a/b", "..\\x", "", "x\ny"] {
            let e = format!("{:#}", copy_into_registry(&ck, &models, bad).err().unwrap());
            assert!(e.contains("is not a model name"), "{bad:?}: {e}");
        }
        let e = format!("{:#}", copy_into_registry(dir.path(), &models, "nifty").err().unwrap());
        assert!(e.contains("is it a checkpoint folder?"), "{e}");
    }

    #[test]
    fn garbage_collection_keeps_the_best_and_the_newest_and_a_dry_run_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, store) = crate::testing::sqlite_store(dir.path());
        let models = dir.path().join("models");
        let mut folders = Vec::new();
        for (weights, return_pct) in [(&b"best"[..], 5.0), (b"worst", 1.0), (b"newest", 2.0)] {
            let ck = checkpoint(dir.path(), weights, return_pct);
            folders.push(
                rt.block_on(register_checkpoint(&store, &models, "m", &ck, None))
                    .unwrap()
                    .1,
            );
        }
        let dry = rt.block_on(collect_garbage(&store, 1, true)).unwrap();
        assert_eq!(dry.pruned.iter().map(|p| p.version).collect::<Vec<_>>(), [2]);
        assert!(dry.freed_bytes > 0 && folders[1].exists());
        let done = rt.block_on(collect_garbage(&store, 1, false)).unwrap();
        assert_eq!(done.freed_bytes, dry.freed_bytes);
        assert!(!folders[1].exists() && folders[0].exists() && folders[2].exists());
        let pruned = rt.block_on(ModelRef::Version("m".into(), 2).resolve(&store)).unwrap();
        let e = verified_location(&pruned).unwrap_err().to_string();
        assert!(e.contains("removed by garbage collection"), "{e}");
        // Nothing is left to prune.
        assert!(rt
            .block_on(collect_garbage(&store, 1, false))
            .unwrap()
            .pruned
            .is_empty());
    }
}
