"""``backtest``: the event-driven engine from Python.

A built-in strategy by name runs wholly in Rust (the GIL released), with the
report ``tradelab backtest --json`` prints. A Python object with
``on_bar(bar)`` is called by the engine at each bar's close instead: the
migration path from backtrader or backtesting.py. That costs one Python
call per bar (measured in BENCHMARKS.md), so prefer a built-in where one
fits.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _native
from ._settings import SettingsLike, make_settings
from .data import DataLike, native_bars


class BacktestResult:
    """A finished backtest: ``metrics`` (dict), ``trades`` and ``equity``
    (DataFrames), ``report()`` (the JSON report as a dict) and ``plot()``."""

    def __init__(self, outcome: _native.BacktestOutcome) -> None:
        self._outcome = outcome
        self._report: Optional[Dict[str, Any]] = None

    def report(self) -> Dict[str, Any]:
        """The JSON report, as ``tradelab backtest --json`` prints it."""
        if self._report is None:
            self._report = json.loads(self._outcome.report_json)
        return self._report

    def to_json(self) -> str:
        """The report as JSON text."""
        return self._outcome.report_json

    @property
    def metrics(self) -> Dict[str, Any]:
        """Sharpe, Sortino, drawdown, returns, trade statistics, costs."""
        return self.report()["metrics"]

    @property
    def equity(self) -> pd.DataFrame:
        """Marked equity after each timestamp (UTC index)."""
        ts, equity = self._outcome.equity_columns()
        index = pd.DatetimeIndex(pd.to_datetime(ts, unit="ms", utc=True), name="timestamp")
        return pd.DataFrame({"equity": equity}, index=index)

    @property
    def trades(self) -> pd.DataFrame:
        """Closed round trips, in the order they closed."""
        cols = self._outcome.trade_columns()
        frame = pd.DataFrame(cols)
        for c in ("entry_ts", "exit_ts"):
            frame[c.replace("_ts", "_time")] = pd.to_datetime(frame.pop(c), unit="ms", utc=True)
        return frame

    def plot(self, ax: Any = None):
        """Equity and drawdown with matplotlib (an optional dependency:
        ``pip install matplotlib``). Returns the figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ImportError("plot() needs matplotlib: pip install matplotlib") from e
        equity = self.equity["equity"]
        drawdown = equity / equity.cummax() - 1.0
        if ax is None:
            fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), height_ratios=[3, 1])
        else:
            top, bottom = ax
            fig = top.figure
        top.plot(equity.index, equity.values, lw=1.2)
        top.set_ylabel("equity")
        top.set_title(self.report().get("model_used", "backtest"))
        bottom.fill_between(drawdown.index, drawdown.values * 100.0, 0.0, color="tab:red", alpha=0.4)
        bottom.set_ylabel("drawdown %")
        return fig

    def __repr__(self) -> str:
        m = self.metrics
        return (
            f"BacktestResult(strategy={self.report().get('model_used')!r}, "
            f"total_return={m.get('total_return')}, sharpe={m.get('sharpe')}, trades={m.get('total_trades')})"
        )


def strategies():
    """Names of the built-in strategies."""
    return list(_native.strategies())


def backtest(
    strategy: Any,
    data: Union[DataLike, Sequence[DataLike]],
    settings: SettingsLike = None,
    **overrides: Any,
) -> BacktestResult:
    """Runs ``strategy`` over ``data`` (one or several instruments) under
    ``settings``' costs, fills, sizing and risk layer.

    ``strategy`` is a built-in's name (see ``strategies()``; its parameters
    come from ``strategies.<name>`` in the settings, e.g.
    ``strategies={"sma_crossover": {"fast": 10, "slow": 50}}``) or an object
    with ``on_bar(bar)`` returning ``None``, an action name or
    ``(action, units)``; see ``tradelab._native.BarView`` for what a bar holds.
    """
    s = make_settings(settings, **overrides)
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    bars = [native_bars(d, s) for d in items]
    return BacktestResult(_native.backtest(strategy, bars, s))


__all__ = ["backtest", "BacktestResult", "strategies"]
