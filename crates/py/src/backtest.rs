//! The backtest engine from Python: a built-in strategy by name (run with
//! the GIL released) or a Python object with `on_bar`, called by the
//! engine at each bar's close.

use std::str::FromStr;

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use tradelab_app::markets::{build_report, strategy_by_name};
use tradelab_core::{Action, BarSeries};
use tradelab_sim::account::{Direction, Trade};
use tradelab_sim::engine::{self, BacktestResult};
use tradelab_sim::order::Order;
use tradelab_sim::strategies::BASELINES;
use tradelab_sim::strategy::{BarContext, Strategy};

use crate::bars::PyBars;
use crate::settings::PySettings;
use crate::{anyhow_err, to_py_err};

/// A finished backtest: the JSON report the CLI writes, the equity curve
/// and the closed trades.
#[pyclass(module = "tradelab._native", name = "BacktestOutcome", frozen)]
pub struct PyBacktest {
    report: String,
    instruments: Vec<String>,
    timestamps: Vec<i64>,
    equity: Vec<f64>,
    trades: Vec<Trade>,
}

impl PyBacktest {
    fn from_result(result: &BacktestResult<'_>, settings: &PySettings) -> Self {
        let (_, report) = build_report(result, &settings.inner);
        PyBacktest {
            report: report.to_json(),
            instruments: result.instruments.clone(),
            timestamps: result.timestamps.to_vec(),
            equity: result.equity.clone(),
            trades: result.trades.clone(),
        }
    }
}

#[pymethods]
impl PyBacktest {
    /// The report as JSON text, as `tradelab backtest --json` prints it.
    #[getter]
    fn report_json(&self) -> &str {
        &self.report
    }

    /// Instrument names, in feed order (trades refer to them by index).
    #[getter]
    fn instruments(&self) -> Vec<String> {
        self.instruments.clone()
    }

    /// The equity curve: timestamps (UTC ms) and marked equity.
    fn equity_columns<'py>(&self, py: Python<'py>) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>) {
        (
            PyArray1::from_slice(py, &self.timestamps),
            PyArray1::from_slice(py, &self.equity),
        )
    }

    /// Closed trades as columns.
    fn trade_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = &self.trades;
        let d = PyDict::new(py);
        let names: Vec<&str> = t.iter().map(|x| self.instruments[x.instrument].as_str()).collect();
        d.set_item("instrument", names)?;
        let dirs: Vec<&str> = t
            .iter()
            .map(|x| match x.direction {
                Direction::Long => "long",
                Direction::Short => "short",
            })
            .collect();
        d.set_item("direction", dirs)?;
        let ints = |f: fn(&Trade) -> i64| PyArray1::from_vec(py, t.iter().map(f).collect());
        d.set_item("entry_ts", ints(|x| x.entry_ts))?;
        d.set_item("exit_ts", ints(|x| x.exit_ts))?;
        let floats = |f: fn(&Trade) -> f64| PyArray1::from_vec(py, t.iter().map(f).collect());
        d.set_item("quantity", floats(|x| x.quantity))?;
        d.set_item("entry_price", floats(|x| x.entry_price))?;
        d.set_item("exit_price", floats(|x| x.exit_price))?;
        d.set_item("pnl", floats(|x| x.pnl))?;
        d.set_item("fees", floats(|x| x.fees))?;
        d.set_item("return_pct", floats(|x| x.return_pct))?;
        Ok(d)
    }
}

/// The names `backtest` accepts for a built-in strategy.
#[pyfunction]
pub fn strategies() -> Vec<&'static str> {
    BASELINES.to_vec()
}

/// What a Python strategy's `on_bar` sees: the bar that just closed and
/// the account.
#[pyclass(module = "tradelab._native", frozen, get_all)]
pub struct BarView {
    /// Index of the instrument in the list passed to `backtest`.
    pub instrument: usize,
    /// Index of this bar in the instrument's series.
    pub index: usize,
    /// The bar's timestamp, UTC milliseconds.
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    /// Signed units held in this instrument (negative: short).
    pub position: f64,
    /// Account equity, every instrument marked at its latest close.
    pub equity: f64,
    /// Cash on hand.
    pub cash: f64,
    /// Unrealised P&L of this instrument's position.
    pub unrealized_pnl: f64,
    /// True once the drawdown breaker has halted trading.
    pub halted: bool,
}

/// A Python object with `on_bar(bar)` (and optionally `start(instruments)`
/// and a `name`), driven by the engine. `on_bar` returns `None` (hold), an
/// action name (`"BUY_LONG"`, ... acted on as a rule strategy means it:
/// go long unless long, exit if the position matches) or `(action, units)`
/// for a market order of that many units. The first exception stops the
/// strategy and is raised when the run ends.
struct PythonStrategy<'py> {
    object: Bound<'py, PyAny>,
    name: String,
    error: Option<PyErr>,
}

impl PythonStrategy<'_> {
    fn decide(&self, ctx: &mut BarContext<'_>) -> PyResult<()> {
        let py = self.object.py();
        let view = BarView {
            instrument: ctx.instrument,
            index: ctx.index,
            ts: ctx.bar.ts,
            open: ctx.bar.open,
            high: ctx.bar.high,
            low: ctx.bar.low,
            close: ctx.bar.close,
            volume: ctx.bar.volume,
            position: ctx.position,
            equity: ctx.equity,
            cash: ctx.cash,
            unrealized_pnl: ctx.unrealized_pnl,
            halted: ctx.halted,
        };
        let answer = self.object.call_method1("on_bar", (Bound::new(py, view)?,))?;
        if answer.is_none() {
            return Ok(());
        }
        if let Ok(name) = answer.cast::<PyString>() {
            ctx.act(parse_action(&name.to_cow()?)?);
            return Ok(());
        }
        if let Ok(pair) = answer.cast::<PyTuple>() {
            if pair.len() == 2 {
                let action = parse_action(&pair.get_item(0)?.extract::<String>()?)?;
                let units: f64 = pair.get_item(1)?.extract()?;
                if !(units.is_finite() && units > 0.0) {
                    return Err(to_py_err(format!(
                        "on_bar returned {units} units; an order needs a positive, finite number of units"
                    )));
                }
                if action != Action::Hold {
                    ctx.submit(Order::market(ctx.instrument, action).units(units));
                }
                return Ok(());
            }
        }
        Err(to_py_err(format!(
            "on_bar returned {}; return None, an action name such as \"BUY_LONG\", or (action, units)",
            answer.repr()?
        )))
    }
}

fn parse_action(name: &str) -> PyResult<Action> {
    Action::from_str(name).map_err(|_| {
        to_py_err(format!(
            "unknown action `{name}`; use BUY_LONG, SELL_SHORT, CLOSE_LONG, CLOSE_SHORT or HOLD"
        ))
    })
}

impl Strategy for PythonStrategy<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        if self.object.hasattr("start").unwrap_or(false) {
            let names: Vec<&str> = feeds.iter().map(|f| f.instrument.as_str()).collect();
            if let Err(e) = self.object.call_method1("start", (names,)) {
                self.error = Some(e);
            }
        }
    }

    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.decide(ctx) {
            self.error = Some(e);
        }
    }
}

/// Runs `strategy` (a built-in's name, or a Python object with `on_bar`)
/// over `bars` under `settings`'s costs, fills and risk layer.
#[pyfunction]
pub fn backtest(
    py: Python<'_>,
    strategy: &Bound<'_, PyAny>,
    bars: Vec<PyRef<'_, PyBars>>,
    settings: &PySettings,
) -> PyResult<PyBacktest> {
    if bars.is_empty() {
        return Err(to_py_err("no bars: pass at least one instrument's bars"));
    }
    let feeds: Vec<&BarSeries> = bars.iter().map(|b| &b.series).collect();
    let engine_config = settings.inner.engine_config();
    if let Ok(name) = strategy.cast::<PyString>() {
        let name: String = name.extract()?;
        return py.detach(|| {
            let mut s = strategy_by_name(&name, &settings.inner).map_err(anyhow_err)?;
            let result = engine::run(&feeds, s.as_mut(), &engine_config);
            Ok(PyBacktest::from_result(&result, settings))
        });
    }
    if !strategy.hasattr("on_bar")? {
        return Err(to_py_err(format!(
            "strategy must be a built-in's name ({}) or an object with an on_bar(bar) method",
            BASELINES.join(", ")
        )));
    }
    let name = match strategy.getattr("name") {
        Ok(n) if n.is_instance_of::<PyString>() => n.extract::<String>()?,
        _ => strategy.get_type().name()?.to_string(),
    };
    let mut s = PythonStrategy {
        object: strategy.clone(),
        name,
        error: None,
    };
    let result = engine::run(&feeds, &mut s, &engine_config);
    if let Some(e) = s.error {
        return Err(e);
    }
    Ok(PyBacktest::from_result(&result, settings))
}
