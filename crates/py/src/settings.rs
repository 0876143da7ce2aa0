//! Settings from Python: the compiled-in defaults, a YAML file or YAML
//! text, then `key.path=value` overrides, validated as the CLI validates
//! `settings.yaml`.

use std::path::PathBuf;

use pyo3::prelude::*;
use tradelab_app::Settings;

use crate::to_py_err;

/// Validated settings (every section of `config/settings.yaml`).
#[pyclass(module = "tradelab._native", name = "Settings", frozen)]
#[derive(Clone)]
pub struct PySettings {
    pub inner: Settings,
}

#[pymethods]
impl PySettings {
    /// Settings from `path` (a YAML file) or `yaml` (YAML text), laid over
    /// the compiled-in defaults, then each `key.path=value` override.
    #[new]
    #[pyo3(signature = (path=None, yaml=None, overrides=Vec::new()))]
    fn new(path: Option<PathBuf>, yaml: Option<&str>, overrides: Vec<String>) -> PyResult<Self> {
        let inner = match (path, yaml) {
            (Some(_), Some(_)) => return Err(to_py_err("pass a settings file or YAML text, not both")),
            (Some(p), None) => Settings::load(&p, &overrides),
            (None, Some(text)) => Settings::from_yaml_str(text, &overrides),
            (None, None) => Settings::defaults_with(&overrides),
        }
        .map_err(to_py_err)?;
        Ok(PySettings { inner })
    }

    /// Every section as JSON text.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner).map_err(to_py_err)
    }

    /// The seed every random stream derives from.
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed
    }
}
