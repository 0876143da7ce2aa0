//! Validated bars (from a price file or from columns a DataFrame holds)
//! and the indicator table the environment is built from.

use std::path::{Path, PathBuf};

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tradelab_core::{Bar, BarSeries};
use tradelab_data::load::{bar_problem, find_symbol};
use tradelab_data::FeatureEngine;
use tradelab_data::{load_file, LoadOptions};

use crate::settings::PySettings;
use crate::to_py_err;

/// One instrument's bars, validated by the loader's rules.
#[pyclass(module = "tradelab._native", name = "Bars", frozen)]
pub struct PyBars {
    pub series: BarSeries,
    /// What loading a file found and did (none for bars from columns).
    report: Option<String>,
}

#[pymethods]
impl PyBars {
    /// The instrument's name (from the file name, or as given).
    #[getter]
    fn instrument(&self) -> &str {
        &self.series.instrument
    }

    /// The declared or inferred bar spacing (`1d`, `5m`, ...), or `None`.
    #[getter]
    fn timeframe(&self) -> Option<String> {
        self.series.timeframe_or_inferred().map(|t| t.to_string())
    }

    fn __len__(&self) -> usize {
        self.series.len()
    }

    /// The loader's findings (rows read, repaired, dropped, each with its
    /// line) as JSON text; `None` for bars built from columns.
    fn report_json(&self) -> Option<String> {
        self.report.clone()
    }

    /// The bars as numpy columns: `ts` (UTC milliseconds), `open`, `high`,
    /// `low`, `close`, `volume`.
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.series;
        let d = PyDict::new(py);
        d.set_item("ts", PyArray1::from_slice(py, &s.ts))?;
        for (name, col) in [
            ("open", &s.open),
            ("high", &s.high),
            ("low", &s.low),
            ("close", &s.close),
            ("volume", &s.volume),
        ] {
            d.set_item(name, PyArray1::from_slice(py, col))?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Bars(instrument={:?}, bars={}, timeframe={})",
            self.series.instrument,
            self.series.len(),
            self.timeframe().unwrap_or_else(|| "unknown".into())
        )
    }
}

/// Loads a price file, or an instrument by name from `data.raw_dir`, with
/// the loader's validation and repairs (`data.repair`).
#[pyfunction]
pub fn load_bars(py: Python<'_>, source: PathBuf, settings: &PySettings) -> PyResult<PyBars> {
    let s = &settings.inner;
    let text = source.to_string_lossy().to_string();
    let path = if source.is_file() {
        source
    } else if text.contains(['/', '\\']) || Path::new(&text).extension().is_some() {
        return Err(to_py_err(format!(
            "file not found: {text}; check the path, or name an instrument in {}",
            s.data.raw_dir.display()
        )));
    } else {
        find_symbol(&s.data.raw_dir, &text).map_err(to_py_err)?
    };
    let opts = LoadOptions::for_file(&s.data, &path);
    let (series, report) = py
        .detach(|| load_file(&path, &opts))
        .map_err(|e| to_py_err(format!("loading {}: {e}", path.display())))?;
    let report = serde_json::to_string(&report).map_err(to_py_err)?;
    Ok(PyBars {
        series,
        report: Some(report),
    })
}

/// Bars from columns (a DataFrame's), refused with the first bad row named:
/// prices must be positive and finite, high the highest and low the
/// lowest, volume finite and non-negative, timestamps strictly ascending.
#[pyfunction]
#[pyo3(signature = (instrument, ts, open, high, low, close, volume))]
#[allow(clippy::too_many_arguments)]
pub fn bars_from_columns(
    instrument: String,
    ts: PyReadonlyArray1<'_, i64>,
    open: PyReadonlyArray1<'_, f64>,
    high: PyReadonlyArray1<'_, f64>,
    low: PyReadonlyArray1<'_, f64>,
    close: PyReadonlyArray1<'_, f64>,
    volume: PyReadonlyArray1<'_, f64>,
) -> PyResult<PyBars> {
    let ts = ts.as_slice().map_err(to_py_err)?;
    let cols = [&open, &high, &low, &close, &volume];
    let names = ["open", "high", "low", "close", "volume"];
    let mut slices = Vec::with_capacity(5);
    for (c, name) in cols.iter().zip(names) {
        let s = c.as_slice().map_err(to_py_err)?;
        if s.len() != ts.len() {
            return Err(to_py_err(format!(
                "column `{name}` has {} values but there are {} timestamps; every column needs one value per bar",
                s.len(),
                ts.len()
            )));
        }
        slices.push(s);
    }
    if ts.is_empty() {
        return Err(to_py_err("no bars: the data has no rows"));
    }
    let mut series = BarSeries::with_capacity(instrument, ts.len());
    let mut previous = None;
    for i in 0..ts.len() {
        let bar = Bar {
            ts: ts[i],
            open: slices[0][i],
            high: slices[1][i],
            low: slices[2][i],
            close: slices[3][i],
            volume: slices[4][i],
        };
        if let Some(problem) = bar_problem(&bar, previous) {
            return Err(to_py_err(format!(
                "row {i} ({}): {problem}",
                tradelab_core::time::format_datetime(bar.ts)
            )));
        }
        previous = Some(bar.ts);
        series.push(bar);
    }
    Ok(PyBars { series, report: None })
}

/// The indicator table `features:` describes: the column names and a
/// bars x features array (NaN while an indicator warms up).
#[pyfunction]
pub fn features<'py>(
    py: Python<'py>,
    bars: &PyBars,
    settings: &PySettings,
) -> PyResult<(Vec<String>, Bound<'py, numpy::PyArray2<f64>>)> {
    let matrix = py.detach(|| FeatureEngine::new(&settings.inner.features).compute(&bars.series));
    let (rows, cols) = (matrix.len(), matrix.names.len());
    let mut flat = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        flat.extend(matrix.columns.iter().map(|c| c[i]));
    }
    let array = PyArray1::from_vec(py, flat).reshape([rows, cols])?;
    Ok((matrix.names, array))
}
