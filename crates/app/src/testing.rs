//! The application layer's test kit: settings whose store is a fresh
//! SQLite file (and whose model registry is a folder) inside a temporary
//! directory, and that store opened on a runtime of its own.

use std::path::Path;

use tradelab_store::Store;

use crate::settings::Settings;

/// The default settings with the store and model registry under `dir`.
pub(crate) fn sqlite_settings(dir: &Path) -> Settings {
    let mut s = Settings::default();
    s.store.url = format!("sqlite://{}", dir.join("tradelab.db").display());
    s.store.model_dir = dir.join("models");
    s
}

/// A single-threaded runtime and the store of [`sqlite_settings`]`(dir)`.
pub(crate) fn sqlite_store(dir: &Path) -> (tokio::runtime::Runtime, Store) {
    let rt = crate::runtime::runtime().unwrap();
    let store = rt.block_on(Store::open(&sqlite_settings(dir).store.url)).unwrap();
    (rt, store)
}
