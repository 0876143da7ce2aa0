"""``optimize``: the parameter search of ``tradelab optimize`` from Python."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

import pandas as pd

from . import _native
from ._settings import SettingsLike, make_settings
from .data import DataLike, native_bars

ParamSpec = Union[str, Sequence[Any]]


def _spec(name: str, value: ParamSpec) -> str:
    if isinstance(value, str):
        return f"{name}={value}"
    return f"{name}={','.join(str(v) for v in value)}"


class OptimizeResult:
    """A finished search: ``report()`` (what ``tradelab optimize --json``
    prints), ``results`` (every combination, best first, as a DataFrame),
    ``best`` (the winning parameters), and the overfitting statistics."""

    def __init__(self, report_json: str) -> None:
        self._report: Dict[str, Any] = json.loads(report_json)

    def report(self) -> Dict[str, Any]:
        """The whole report as a dict."""
        return self._report

    @property
    def results(self) -> pd.DataFrame:
        """One row per combination, best first: rank, the parameters, the
        score and the headline metrics."""
        rows = []
        for r in self._report["results"]["rows"]:
            m = r["metrics"]
            rows.append({"rank": r["rank"], **r["params"], "score": r["score"], "final_equity": r["final_equity"],
                         "total_return": m["total_return"], "sharpe": m["sharpe"],
                         "max_drawdown": m["max_drawdown"], "total_trades": m["total_trades"]})
        return pd.DataFrame(rows).set_index("rank")

    @property
    def best(self) -> Dict[str, Any]:
        """The best combination's parameters."""
        return dict(self._report["results"]["rows"][0]["params"])

    @property
    def deflated_sharpe(self) -> Optional[float]:
        """The best combination's deflated Sharpe ratio (None for one combination)."""
        d = self._report["results"].get("deflation")
        return None if d is None else d["deflated_sharpe"]

    @property
    def pbo(self) -> Optional[float]:
        """The probability of backtest overfitting (CSCV), where it could be computed."""
        o = self._report["results"].get("overfitting")
        return None if o is None else o["pbo"]

    def __repr__(self) -> str:
        return (f"OptimizeResult(strategy={self._report['strategy']!r}, combinations={self._report['combinations']}, "
                f"best={self.best}, deflated_sharpe={self.deflated_sharpe}, pbo={self.pbo})")


def optimize(
    strategy: str,
    data: Union[DataLike, Sequence[DataLike]],
    params: Mapping[str, ParamSpec],
    *,
    constraints: Iterable[str] = (),
    metric: str = "sharpe",
    method: str = "grid",
    trials: Optional[int] = None,
    walk_forward: Optional[int] = None,
    pbo_blocks: int = 16,
    threads: Optional[int] = None,
    settings: SettingsLike = None,
    **overrides: Any,
) -> OptimizeResult:
    """Searches ``strategy``'s parameters over ``data``, as ``tradelab
    optimize`` does (the GIL released while it runs).

    ``params`` maps a name (one of the strategy's settings, or a key path
    under ``strategies.``, ``backtest.`` or ``risk.``) to ``"START:END[:STEP]"``
    or a list of values; ``constraints`` such as ``"fast < slow"``;
    ``method="random"`` draws ``trials`` combinations with the settings'
    seed; ``walk_forward=K`` adds walk-forward optimisation over K folds.
    """
    if method not in ("grid", "random"):
        raise _native.TradelabError(f"unknown method `{method}`; choose grid or random")
    if method == "random" and trials is None:
        raise _native.TradelabError("method='random' needs trials=N (how many combinations to draw)")
    if method == "grid" and trials is not None:
        raise _native.TradelabError("trials is for method='random'; a grid runs every combination")
    s = make_settings(settings, **overrides)
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    bars = [native_bars(d, s) for d in items]
    specs = [_spec(name, value) for name, value in params.items()]
    random = None if trials is None else (int(trials), s.seed)
    report = _native.optimize(strategy, bars, s, specs, list(constraints), random, metric, walk_forward,
                              pbo_blocks, threads)
    return OptimizeResult(report)


__all__ = ["optimize", "OptimizeResult"]
