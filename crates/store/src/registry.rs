//! The model registry: every saved model by name and version, with its
//! checksum, framework, metadata.json, artefact location and stage.
//! Promoting a version to production archives the one it replaces.

use serde_json::Value;
use sqlx::Row;

use crate::error::StoreError;
use crate::{now_ms, Backend, Store};

/// Where a model version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Just registered; no stage yet.
    None,
    /// Being tried out before production.
    Staging,
    /// The version in use; promoting one archives the previous one.
    Production,
    /// Retired, often by a newer version's promotion to production.
    Archived,
}

impl Stage {
    /// The lower-case name stored in the database and accepted by
    /// [`Stage::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "none",
            Stage::Staging => "staging",
            Stage::Production => "production",
            Stage::Archived => "archived",
        }
    }

    /// A stage from its lower-case name; [`StoreError::Invalid`] naming the
    /// valid ones otherwise.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "none" => Stage::None,
            "staging" => Stage::Staging,
            "production" => Stage::Production,
            "archived" => Stage::Archived,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown stage `{other}`; use none, staging, production or archived"
                )))
            }
        })
    }
}

/// What registering a model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewModel<'a> {
    /// The model's name; versions count up per name.
    pub name: &'a str,
    /// Hex SHA-256 of the weights file, checked when the model is loaded.
    pub checksum: &'a str,
    /// The framework and versions that wrote the weights (`candle 0.11
    /// (tradelab-agents 0.1.0)`, say).
    pub framework: &'a str,
    /// The model's `metadata.json`.
    pub metadata: &'a Value,
    /// Where the model's files are (a directory path).
    pub location: &'a str,
    /// The training run that produced it, if recorded.
    pub run_id: Option<&'a str>,
}

/// A registered model version (see [`NewModel`] for the fields it was
/// given).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    /// The model's name.
    pub name: String,
    /// Its version under that name, from 1.
    pub version: i64,
    /// Hex SHA-256 of the weights file.
    pub checksum: String,
    /// The framework and versions that wrote the weights.
    pub framework: String,
    /// The model's `metadata.json`.
    pub metadata: Value,
    /// Where the model's files are.
    pub location: String,
    /// Where the version stands.
    pub stage: Stage,
    /// The training run that produced it, if recorded.
    pub run_id: Option<String>,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A stable 64-bit key for a model name's advisory lock (FNV-1a).
fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

impl Store {
    /// Registers the next version of `m.name` (1 for a new name). The
    /// version is computed and inserted in one statement; on PostgreSQL a
    /// transaction-scoped advisory lock on the name serialises concurrent
    /// registrations (SQLite serialises writers itself).
    pub async fn register_model(&self, m: &NewModel<'_>) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_key(m.name))
                .execute(&mut *tx)
                .await?;
        }
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO models (name, version, checksum, framework, metadata, location, stage, run_id, created_ms) \
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM models WHERE name = $1 \
             RETURNING version",
        )
        .bind(m.name)
        .bind(m.checksum)
        .bind(m.framework)
        .bind(m.metadata.to_string())
        .bind(m.location)
        .bind(Stage::None.as_str())
        .bind(m.run_id)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Versions of `name` (every model when `None`), newest first.
    pub async fn models(&self, name: Option<&str>) -> Result<Vec<ModelRecord>, StoreError> {
        let base =
            "SELECT name, version, checksum, framework, metadata, location, stage, run_id, created_ms FROM models";
        let rows = match name {
            Some(n) => {
                sqlx::query(&format!("{base} WHERE name = $1 ORDER BY version DESC"))
                    .bind(n)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{base} ORDER BY name, version DESC"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(ModelRecord {
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    checksum: r.try_get("checksum")?,
                    framework: r.try_get("framework")?,
                    metadata: serde_json::from_str(&r.try_get::<String, _>("metadata")?)
                        .map_err(|e| StoreError::Invalid(format!("stored metadata is damaged: {e}")))?,
                    location: r.try_get("location")?,
                    stage: Stage::parse(&r.try_get::<String, _>("stage")?)?,
                    run_id: r.try_get("run_id")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    /// Version `version` of `name`; [`StoreError::NotFound`] if there is
    /// none.
    pub async fn model(&self, name: &str, version: i64) -> Result<ModelRecord, StoreError> {
        self.models(Some(name))
            .await?
            .into_iter()
            .find(|m| m.version == version)
            .ok_or_else(|| StoreError::NotFound(format!("no model `{name}` version {version}")))
    }

    /// Moves a version to `stage`; promoting to production archives the
    /// current production version, in the same transaction.
    pub async fn set_stage(&self, name: &str, version: i64, stage: Stage) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if stage == Stage::Production {
            sqlx::query("UPDATE models SET stage = $1 WHERE name = $2 AND stage = $3 AND version <> $4")
                .bind(Stage::Archived.as_str())
                .bind(name)
                .bind(Stage::Production.as_str())
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("UPDATE models SET stage = $1 WHERE name = $2 AND version = $3")
            .bind(stage.as_str())
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no model `{name}` version {version}")));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Which versions of one model a retention policy keeps: the best scored,
/// every staging and production version, and the `keep_last` newest.
/// Returns the versions to prune (their files may be deleted), oldest
/// first. Versions already pruned (empty location) are left out.
pub fn retention_plan(
    versions: &[ModelRecord],
    keep_last: usize,
    score: impl Fn(&ModelRecord) -> Option<f64>,
) -> Vec<i64> {
    let mut newest_first: Vec<&ModelRecord> = versions.iter().collect();
    newest_first.sort_by_key(|m| std::cmp::Reverse(m.version));
    // Ties go to the newer version.
    let best = newest_first
        .iter()
        .filter_map(|m| score(m).filter(|s| s.is_finite()).map(|s| (m.version, s)))
        .fold(None::<(i64, f64)>, |acc, (v, s)| match acc {
            Some((_, best)) if best >= s => acc,
            _ => Some((v, s)),
        })
        .map(|(v, _)| v);
    let mut prune: Vec<i64> = newest_first
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            *i >= keep_last
                && Some(m.version) != best
                && !matches!(m.stage, Stage::Staging | Stage::Production)
                && !m.location.is_empty()
        })
        .map(|(_, m)| m.version)
        .collect();
    prune.sort_unstable();
    prune
}

impl Store {
    /// Marks a version's files as deleted: its row (checksum, metadata,
    /// stage history) stays for the record, archived, with no location.
    pub async fn mark_pruned(&self, name: &str, version: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE models SET location = $1, stage = $2 WHERE name = $3 AND version = $4")
            .bind("")
            .bind(Stage::Archived.as_str())
            .bind(name)
            .bind(version)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no model `{name}` version {version}")));
        }
        Ok(())
    }

    /// The newest version number of `name` (at `stage`, when given),
    /// without reading its metadata: the cheap lookup for every request
    /// that names a model by stage.
    pub async fn newest_version(&self, name: &str, stage: Option<Stage>) -> Result<Option<i64>, StoreError> {
        let v: Option<i64> = match stage {
            Some(stage) => {
                sqlx::query_scalar("SELECT MAX(version) FROM models WHERE name = $1 AND stage = $2")
                    .bind(name)
                    .bind(stage.as_str())
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT MAX(version) FROM models WHERE name = $1")
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(v)
    }

    /// The version of `name` at `stage`, if any (the newest when several).
    pub async fn model_at_stage(&self, name: &str, stage: Stage) -> Result<Option<ModelRecord>, StoreError> {
        Ok(self.models(Some(name)).await?.into_iter().find(|m| m.stage == stage))
    }
}
