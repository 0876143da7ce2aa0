//! What every handler shares: the store, the settings, the metrics and the
//! models loaded so far.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tradelab_agents::agent::Agent;
use tradelab_agents::load::load_agent;
use tradelab_app::Settings;
use tradelab_data::settings::FeatureSettings;
use tradelab_env::ActionSpace;
use tradelab_store::registry::ModelRecord;
use tradelab_store::Store;

use super::audit::AuditLog;
use super::problem::Problem;
use tradelab_app::jobs::queue::Queue;
use tradelab_app::metrics::Metrics;
use tradelab_app::registry::verified_location;

/// A model held in memory for decisions, with the input shape it reads.
pub struct LoadedModel {
    /// The agent, with its per-call buffers.
    pub agent: Box<dyn Agent + Send>,
    /// Rows in its observation window (`env.window` at training).
    pub window: usize,
    /// Feature values per row.
    pub features: usize,
    /// How its outputs are read (`env.actions` at training): orders, or
    /// targets the endpoint turns into orders.
    pub actions: ActionSpace,
    /// Its no-trade band under `env.actions: exposure`.
    pub exposure_band: f64,
    /// Its feature settings, to build windows from raw bars (`None` when
    /// its metadata's cannot be read: the `window` form still works).
    pub feature_settings: Option<FeatureSettings>,
}

/// Copies of one loaded model, each locked while it decides (agents keep
/// per-call buffers): concurrent requests decide in parallel, one per copy.
pub struct ModelReplicas {
    /// The registry record of the loaded version.
    pub record: ModelRecord,
    copies: Vec<Mutex<LoadedModel>>,
    next: std::sync::atomic::AtomicUsize,
}

impl ModelReplicas {
    /// A free copy, or (all busy) the next one in turn, waited for.
    /// Blocking: call it off the async threads.
    pub fn acquire(&self) -> std::sync::MutexGuard<'_, LoadedModel> {
        for c in &self.copies {
            if let Ok(g) = c.try_lock() {
                return g;
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.copies.len();
        self.copies[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A loaded version, shared by the requests that use it.
pub type SharedModel = Arc<ModelReplicas>;

/// Copies of each served model: one per core, at most 4.
fn replica_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// The state every handler shares.
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The queue training and backtest jobs are submitted to.
    pub queue: Queue,
    /// The settings the server started with.
    pub settings: Settings,
    /// The Prometheus metrics served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The decision audit trail's writer.
    pub audit: AuditLog,
    /// The authorization server: keys, login sessions, rate limits.
    pub auth: Arc<super::oauth::AuthServer>,
    /// By (name, version): a version's files never change (the checksum is
    /// checked on load), so a loaded version stays valid.
    models: Mutex<HashMap<(String, i64), SharedModel>>,
    /// The trading sessions this server runs, by id, with the flag that
    /// stops each after its bar in progress.
    trading: Mutex<HashMap<String, Arc<std::sync::atomic::AtomicBool>>>,
}

impl AppState {
    /// The shared state; starts the audit writer, so it needs a runtime.
    pub fn new(store: Store, queue: Queue, settings: Settings, auth: Arc<super::oauth::AuthServer>) -> AppState {
        AppState {
            auth,
            audit: AuditLog::spawn(store.clone()),
            store,
            queue,
            settings,
            metrics: Arc::new(Metrics::default()),
            models: Mutex::new(HashMap::new()),
            trading: Mutex::new(HashMap::new()),
        }
    }

    /// The trading sessions this server runs, with their stop flags.
    pub fn trading_stops(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<std::sync::atomic::AtomicBool>>> {
        self.trading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The loaded model `name` version `version`, loading (and verifying)
    /// it on first use. A version's files never change, so a loaded version
    /// is served from memory without asking the database.
    pub async fn model(&self, name: &str, version: i64) -> Result<SharedModel, Problem> {
        let key = (name.to_string(), version);
        if let Some(found) = self.models.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(found.clone());
        }
        let record = self.store.model(name, version).await?;
        let dir =
            verified_location(&record).map_err(|e| Problem::new(axum::http::StatusCode::CONFLICT, format!("{e:#}")))?;
        let copies = tokio::task::spawn_blocking(move || -> Result<Vec<Mutex<LoadedModel>>, Problem> {
            (0..replica_count())
                .map(|_| {
                    let agent = load_agent(&dir).map_err(|e| Problem::internal("loading the model", e))?;
                    let p = agent.provenance();
                    let window = p.settings["env"]["window"]
                        .as_u64()
                        .ok_or_else(|| Problem::internal("loading the model", "its metadata has no env.window"))?
                        as usize;
                    let features = p.features.len();
                    // Models saved before the choice existed have no key: trade.
                    let actions = match p.settings["env"].get("actions") {
                        None => ActionSpace::Trade,
                        Some(v) => serde_json::from_value(v.clone())
                            .map_err(|e| Problem::internal("loading the model", format!("its env.actions: {e}")))?,
                    };
                    let exposure_band = p.settings["env"]["exposure_band"].as_f64().unwrap_or(0.1);
                    let feature_settings = serde_json::from_value(p.settings["features"].clone()).ok();
                    Ok(Mutex::new(LoadedModel {
                        agent,
                        window,
                        features,
                        actions,
                        exposure_band,
                        feature_settings,
                    }))
                })
                .collect()
        })
        .await
        .map_err(|e| Problem::internal("loading the model", e))??;
        let loaded = Arc::new(ModelReplicas {
            record,
            copies,
            next: Default::default(),
        });
        // Two requests may both have loaded it; the first insert wins.
        Ok(self
            .models
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert(loaded)
            .clone())
    }

    /// Drops cached versions of `name` (after a stage change, so stage
    /// lookups and memory follow the registry).
    pub fn forget_model(&self, name: &str) {
        self.models
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(n, _), _| n != name);
    }
}
