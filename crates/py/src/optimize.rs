//! The parameter search of `tradelab optimize` from Python.

use pyo3::prelude::*;
use tradelab_app::optimize::{optimize as run_search, OptimizeRequest};
use tradelab_core::BarSeries;

use crate::bars::PyBars;
use crate::settings::PySettings;
use crate::{anyhow_err, to_py_err};

/// Searches `strategy`'s parameters over `bars` (the GIL released) and
/// returns the report `tradelab optimize --json` prints.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (strategy, bars, settings, params, constraints, random, metric, walk_forward, pbo_blocks, threads))]
pub fn optimize(
    py: Python<'_>,
    strategy: String,
    bars: Vec<PyRef<'_, PyBars>>,
    settings: &PySettings,
    params: Vec<String>,
    constraints: Vec<String>,
    random: Option<(usize, u64)>,
    metric: String,
    walk_forward: Option<usize>,
    pbo_blocks: usize,
    threads: Option<usize>,
) -> PyResult<String> {
    if bars.is_empty() {
        return Err(to_py_err("no bars: pass at least one instrument's bars"));
    }
    let feeds: Vec<BarSeries> = bars.iter().map(|b| b.series.clone()).collect();
    let req = OptimizeRequest {
        strategy,
        params,
        constraints,
        random,
        metric,
        walk_forward,
        heatmap: None,
        pbo_blocks,
        threads,
    };
    py.detach(|| {
        let report = run_search(&settings.inner, &req, &feeds, &mut |_, _| {}).map_err(anyhow_err)?;
        serde_json::to_string(&report).map_err(to_py_err)
    })
}
