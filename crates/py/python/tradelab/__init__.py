"""tradelab from Python: the trading environment (Gymnasium), the vectorised
environment (Stable-Baselines3), validated data and features (pandas), the
backtest engine and trained models, all running in tradelab's Rust core.

    >>> import tradelab
    >>> result = tradelab.backtest("sma_crossover", "data/raw/ORCL.csv")
    >>> result.metrics["sharpe"]
"""

from __future__ import annotations

from typing import Any

from . import _native
from ._native import Settings, TradelabError, __version__
from ._settings import make_settings as settings
from .backtest import BacktestResult, backtest, strategies
from .data import features, load_bars
from .env import ACTIONS, TradingEnv
from .model import Model, load_model
from .optimize import OptimizeResult, optimize


def __getattr__(name: str) -> Any:
    # VecEnv imports Stable-Baselines3 (and torch) when present: only on use.
    if name == "VecEnv":
        from .vec_env import VecEnv

        return VecEnv
    raise AttributeError(f"module 'tradelab' has no attribute {name!r}")


def _register() -> None:
    import gymnasium

    if "tradelab/Trading-v0" not in gymnasium.registry:
        gymnasium.register(id="tradelab/Trading-v0", entry_point="tradelab.env:TradingEnv")


_register()

__all__ = [
    "ACTIONS",
    "BacktestResult",
    "Model",
    "OptimizeResult",
    "Settings",
    "TradelabError",
    "TradingEnv",
    "VecEnv",
    "__version__",
    "backtest",
    "features",
    "load_bars",
    "load_model",
    "optimize",
    "settings",
    "strategies",
]
