"""Type stubs for tradelab's Rust extension (tradelab._native).

Most users want the wrappers in ``tradelab`` (TradingEnv, VecEnv, backtest,
load_bars, features, load_model); these are the objects beneath them.
"""

from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class TradelabError(ValueError):
    """Bad data, settings or input, with the one-line cause the CLI prints."""

class Settings:
    """Validated settings: every section of config/settings.yaml."""

    def __init__(
        self,
        path: Optional[Union[str, PathLike[str]]] = None,
        yaml: Optional[str] = None,
        overrides: Sequence[str] = ...,
    ) -> None: ...
    def to_json(self) -> str:
        """Every section as JSON text."""
    @property
    def seed(self) -> int: ...

class Bars:
    """One instrument's validated bars."""

    @property
    def instrument(self) -> str: ...
    @property
    def timeframe(self) -> Optional[str]: ...
    def __len__(self) -> int: ...
    def report_json(self) -> Optional[str]:
        """The loader's findings as JSON (None for bars built from columns)."""
    def columns(self) -> Dict[str, np.ndarray]:
        """ts (int64 UTC ms), open, high, low, close, volume (float64)."""

def load_bars(source: Union[str, PathLike[str]], settings: Settings) -> Bars:
    """A price file, or an instrument name in data.raw_dir, validated and repaired per data.repair_policy."""

def bars_from_columns(
    instrument: str,
    ts: npt.NDArray[np.int64],
    open: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    volume: npt.NDArray[np.float64],
) -> Bars:
    """Bars from columns, refused at the first row that breaks the loader's rules."""

def features(bars: Bars, settings: Settings) -> Tuple[List[str], npt.NDArray[np.float64]]:
    """Feature names and the bars x features table (NaN during warm-up)."""

class Env:
    """One environment over one split (Gymnasium semantics; see tradelab.TradingEnv)."""

    def __init__(self, bars: Bars, settings: Settings, split: str = "train", seed: int = 0) -> None: ...
    @property
    def observation_size(self) -> int: ...
    @property
    def window(self) -> int: ...
    @property
    def feature_names(self) -> List[str]: ...
    @property
    def action_space(self) -> str:
        """env.actions: "trade", "target" or "exposure"."""
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float32]: ...
    def step(
        self, action: int, quantity: float
    ) -> Tuple[npt.NDArray[np.float32], float, bool, bool, Dict[str, Any]]: ...
    def action_mask(self) -> npt.NDArray[np.bool_]: ...
    def observation(self) -> npt.NDArray[np.float32]: ...
    def account(self) -> Dict[str, Any]: ...

class VecEnvCore:
    """Many environments stepped in one call into preallocated arrays (see tradelab.VecEnv)."""

    def __init__(self, bars: Sequence[Bars], settings: Settings, n: int, split: str = "train", seed: int = 0) -> None: ...
    @property
    def num_envs(self) -> int: ...
    @property
    def observation_size(self) -> int: ...
    @property
    def action_space(self) -> str: ...
    def run_random(self, steps: int, seed: int) -> float:
        """Seconds for `steps` lockstep steps with random valid actions, all in Rust (the Python figures' baseline)."""
    def reset(self, seed: int, obs: npt.NDArray[np.float32], masks: npt.NDArray[np.bool_]) -> None: ...
    def step(
        self,
        actions: npt.NDArray[np.int64],
        quantities: npt.NDArray[np.float64],
        obs: npt.NDArray[np.float32],
        rewards: npt.NDArray[np.float64],
        terminated: npt.NDArray[np.bool_],
        truncated: npt.NDArray[np.bool_],
        masks: npt.NDArray[np.bool_],
        final_obs: npt.NDArray[np.float32],
    ) -> None: ...

class BarView:
    """What a Python strategy's on_bar(bar) receives."""

    instrument: int
    index: int
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    position: float
    equity: float
    cash: float
    unrealized_pnl: float
    halted: bool

class BacktestOutcome:
    """A finished backtest (see tradelab.BacktestResult)."""

    @property
    def report_json(self) -> str: ...
    @property
    def instruments(self) -> List[str]: ...
    def equity_columns(self) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
    def trade_columns(self) -> Dict[str, Any]: ...

def backtest(strategy: Any, bars: Sequence[Bars], settings: Settings) -> BacktestOutcome:
    """A built-in strategy by name, or an object with on_bar(bar)."""

def strategies() -> List[str]:
    """The built-in strategies' names."""

class Model:
    """A trained checkpoint (see tradelab.load_model)."""

    def __init__(self, source: Union[str, PathLike[str]], settings: Settings) -> None: ...
    @property
    def kind(self) -> str: ...
    @property
    def folder(self) -> str: ...
    @property
    def observation_size(self) -> int: ...
    @property
    def settings(self) -> Settings: ...
    def provenance_json(self) -> str: ...
    def decide(
        self,
        bars: Bars,
        cash: float,
        position: float,
        avg_price: float,
        initial_equity: float,
        greedy: bool = True,
        instrument: Optional[str] = None,
        timeframe: Optional[str] = None,
    ) -> Dict[str, Any]:
        """The decision from raw bars and an account (the decision endpoint's bars form)."""
    def act(
        self,
        observation: npt.NDArray[np.float32],
        mask: Optional[npt.NDArray[np.bool_]] = None,
        greedy: bool = True,
        instrument: Optional[str] = None,
        timeframe: Optional[str] = None,
    ) -> Dict[str, Any]: ...

def optimize(
    strategy: str,
    bars: Sequence[Bars],
    settings: Settings,
    params: Sequence[str],
    constraints: Sequence[str],
    random: Optional[Tuple[int, int]],
    metric: str,
    walk_forward: Optional[int],
    pbo_blocks: int,
    threads: Optional[int],
) -> str:
    """The parameter search of `tradelab optimize`; its report as JSON text."""
