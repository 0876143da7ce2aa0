//! `tradelab._native`: the Rust half of the `tradelab` Python package.
//!
//! Each module binds one part of the platform, through the same crates
//! the command line uses, so a result from Python equals the CLI's:
//! [`settings`] (the layered `settings.yaml`), [`bars`] (validated bars and
//! the feature table), [`env`] (one environment and the vectorised one),
//! [`backtest`] (the engine, with built-in or Python strategies),
//! [`optimize`] (parameter searches) and [`model`] (trained checkpoints).
//! The Python half (`python/tradelab`) adds Gymnasium's and
//! Stable-Baselines3's interfaces and pandas frames.
//!
//! Errors cross as `tradelab.TradelabError` (a `ValueError`) carrying the
//! same one-line cause the CLI prints; nothing a caller passes may panic.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod backtest;
mod bars;
mod env;
mod model;
mod optimize;
mod settings;

create_exception!(
    _native,
    TradelabError,
    PyValueError,
    "A tradelab error: bad data, settings or input, with the one-line cause the CLI would print."
);

/// A Rust error as a Python exception, with the cause chain on one line.
pub(crate) fn to_py_err(e: impl std::fmt::Display) -> PyErr {
    TradelabError::new_err(e.to_string())
}

/// An anyhow error as a Python exception: the context and every cause,
/// joined with `: ` as the CLI prints them.
pub(crate) fn anyhow_err(e: anyhow::Error) -> PyErr {
    TradelabError::new_err(format!("{e:#}"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TradelabError", m.py().get_type::<TradelabError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<settings::PySettings>()?;
    m.add_class::<bars::PyBars>()?;
    m.add_function(wrap_pyfunction!(bars::load_bars, m)?)?;
    m.add_function(wrap_pyfunction!(bars::bars_from_columns, m)?)?;
    m.add_function(wrap_pyfunction!(bars::features, m)?)?;
    m.add_class::<env::PyEnv>()?;
    m.add_class::<env::PyVecEnv>()?;
    m.add_class::<backtest::PyBacktest>()?;
    m.add_class::<backtest::BarView>()?;
    m.add_function(wrap_pyfunction!(backtest::backtest, m)?)?;
    m.add_function(wrap_pyfunction!(backtest::strategies, m)?)?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(optimize::optimize, m)?)?;
    Ok(())
}
