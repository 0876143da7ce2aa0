//! Explaining stored decisions with the models that made them: each
//! decision's model is opened once (a checkpoint folder, or a registered
//! NAME@VERSION checked against the registry's checksum), and must hold the
//! weights the session's `model` events recorded; a decision whose model
//! cannot be opened, or holds other weights, is passed over with a warning
//! and left unexplained.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tradelab_agents::Agent;
use tradelab_bus::{Event, EventBody};
use tradelab_store::audit_events::{AuditEventRow, AuditFilter};
use tradelab_store::explanations::ExplanationRow;
use tradelab_store::Store;

use super::explain::explain;
use crate::registry::{verified_location, ModelRef};

/// What one call explained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explained {
    /// Decisions explained and stored.
    pub explained: u64,
    /// Decisions passed over (their model could not be opened or holds
    /// other weights; warned about once per model).
    pub skipped: u64,
    /// Milliseconds from each explained decision to its explanation being
    /// stored.
    pub lags_ms: Vec<i64>,
}

struct Model {
    agent: Box<dyn Agent + Send>,
    features: Vec<String>,
    weights_sha256: String,
}

/// Explains decisions; keeps the models and each session's recorded
/// weights between calls.
pub struct Explainer {
    steps: usize,
    models: HashMap<String, std::result::Result<Model, String>>,
    session_weights: HashMap<String, Vec<String>>,
    /// Sessions already warned about (their model holds other weights).
    warned: std::collections::HashSet<String>,
}

async fn model_folder(store: &Store, spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let record = ModelRef::parse(spec)?
        .resolve(store)
        .await
        .with_context(|| format!("`{spec}` is neither a checkpoint folder here nor a registered model"))?;
    verified_location(&record)
}

async fn open_model(store: &Store, spec: &str) -> Result<Model> {
    let folder = model_folder(store, spec).await?;
    let weights = folder.join("model.safetensors");
    let bytes = std::fs::read(&weights).with_context(|| format!("reading {}", weights.display()))?;
    let agent = tradelab_agents::load::load_agent(&folder).with_context(|| format!("opening model {spec}"))?;
    Ok(Model {
        features: agent.provenance().features.clone(),
        weights_sha256: tradelab_agents::checkpoint::sha256_hex(&bytes),
        agent,
    })
}

impl Explainer {
    /// Integrated gradients over `steps` points.
    pub fn new(steps: usize) -> Explainer {
        Explainer {
            steps: steps.max(1),
            models: HashMap::new(),
            session_weights: HashMap::new(),
            warned: Default::default(),
        }
    }

    /// Whether session `session`'s `model` events recorded weights
    /// `digest`. A miss reads the store again: with several workers, the
    /// session's `model` event may be stored by another after this one
    /// first looked.
    async fn recorded(&mut self, store: &Store, session: &str, digest: &str) -> Result<bool> {
        if self
            .session_weights
            .get(session)
            .is_some_and(|w| w.iter().any(|d| d == digest))
        {
            return Ok(true);
        }
        let filter = AuditFilter {
            session_id: Some(session.to_string()),
            kind: Some("model".into()),
            ..Default::default()
        };
        let rows = store.audit_events(&filter, None, 1000).await?;
        let digests: Vec<String> = rows
            .iter()
            .filter_map(|r| Event::from_json(r.event.as_bytes()).ok())
            .filter_map(|e| match e.event {
                EventBody::Model(m) => Some(m.weights_sha256),
                _ => None,
            })
            .collect();
        let found = digests.iter().any(|d| d == digest);
        self.session_weights.insert(session.to_string(), digests);
        Ok(found)
    }

    /// Explains the decisions among `rows` (other kinds are passed over)
    /// and stores their explanations in one transaction.
    pub async fn explain_rows(
        &mut self,
        store: &Store,
        rows: &[AuditEventRow],
        warn: &mut dyn FnMut(String),
    ) -> Result<Explained> {
        let mut out = Explained::default();
        let mut stored = Vec::new();
        for row in rows.iter().filter(|r| r.kind == "decision") {
            let event = match Event::from_json(row.event.as_bytes()) {
                Ok(e) => e,
                Err(why) => {
                    warn(format!(
                        "decision {}:{} is damaged ({why}); not explained",
                        row.session_id, row.seq
                    ));
                    out.skipped += 1;
                    continue;
                }
            };
            let EventBody::Decision(d) = &event.event else { continue };
            if !self.models.contains_key(&d.model) {
                let opened = open_model(store, &d.model).await.map_err(|e| format!("{e:#}"));
                if let Err(why) = &opened {
                    warn(format!("decisions of model {} are not explained: {why}", d.model));
                }
                self.models.insert(d.model.clone(), opened);
            }
            let digest = match self.models.get(&d.model) {
                Some(Ok(model)) => model.weights_sha256.clone(),
                _ => {
                    out.skipped += 1;
                    continue;
                }
            };
            if !self.recorded(store, &row.session_id, &digest).await? {
                if self.warned.insert(row.session_id.clone()) {
                    warn(format!(
                    "decisions of session {} (from {}) are not explained: model {} now holds weights {}, not the ones the session recorded; restore that version",
                    row.session_id,
                    row.seq,
                    d.model,
                    &digest[..12]
                ));
                }
                out.skipped += 1;
                continue;
            }
            let Some(Ok(model)) = self.models.get_mut(&d.model) else {
                continue;
            };
            let explanation = match explain(model.agent.as_mut(), &model.features, d, self.steps) {
                Ok(e) => e,
                Err(why) => {
                    warn(format!(
                        "decision {}:{} is not explained: {why:#}",
                        row.session_id, row.seq
                    ));
                    out.skipped += 1;
                    continue;
                }
            };
            stored.push(ExplanationRow {
                session_id: row.session_id.clone(),
                seq: row.seq,
                at_ms: row.at_ms,
                model: d.model.clone(),
                weights_sha256: model.weights_sha256.clone(),
                summary: explanation.text.clone(),
                explanation: serde_json::to_string(&explanation)?,
                explained_ms: tradelab_core::time::now_ms(),
            });
        }
        out.explained = store
            .record_explanations(&stored)
            .await
            .context("storing explanations")?;
        let now = tradelab_core::time::now_ms();
        out.lags_ms = stored.iter().map(|r| now - r.at_ms).collect();
        Ok(out)
    }
}
