"""Trained checkpoints from Python."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Union

import numpy as np

from . import _native
from ._settings import SettingsLike, make_settings


class Model:
    """A trained agent, deciding as ``tradelab evaluate`` does (greedy by
    default). ``settings`` are the ones it runs under: build the
    environment with them (``TradingEnv(data, model.settings)``) to give it
    the observations it was trained on."""

    def __init__(self, native: _native.Model) -> None:
        self._model = native

    @property
    def kind(self) -> str:
        """The agent's type (``ppo-mlp``, ``hrm``, ...)."""
        return self._model.kind

    @property
    def settings(self) -> _native.Settings:
        """The settings it runs under: its own observation settings, the caller's costs and risk."""
        return self._model.settings

    @property
    def observation_size(self) -> int:
        """Length of the flat observation it reads."""
        return self._model.observation_size

    @property
    def provenance(self) -> Dict[str, Any]:
        """metadata.json's provenance: vocabulary, features, settings, data, validation."""
        return json.loads(self._model.provenance_json())

    def act(
        self,
        observation: np.ndarray,
        mask: Optional[np.ndarray] = None,
        *,
        greedy: bool = True,
        instrument: Optional[str] = None,
        timeframe: Optional[str] = None,
    ) -> Dict[str, Any]:
        """The decision for one observation: ``action`` (name),
        ``action_index``, ``quantity``, ``probabilities`` and ``value``
        (and ``target_exposure`` for exposure models)."""
        obs = np.ascontiguousarray(observation, dtype=np.float32).reshape(-1)
        m = None if mask is None else np.ascontiguousarray(mask, dtype=bool).reshape(-1)[:5]
        return self._model.act(obs, m, greedy, instrument, timeframe)

    def decide(
        self,
        bars: Any,
        *,
        cash: float,
        position: float = 0.0,
        avg_price: float = 0.0,
        initial_equity: Optional[float] = None,
        greedy: bool = True,
        instrument: Optional[str] = None,
        timeframe: Optional[str] = None,
    ) -> Dict[str, Any]:
        """The decision from raw bars (oldest first, ending with the latest;
        a DataFrame, a price file or ``Bars``) and an account, as the
        decision endpoint's ``bars`` form: the model's features, normalised
        with the statistics its checkpoint recorded for the market, and the
        account values the environment would compute (``position`` in
        signed units, ``initial_equity`` the equity trading started with,
        by default the equity now)."""
        from .data import native_bars

        b = native_bars(bars, self.settings)
        price = b.columns()["close"][-1]
        start = float(cash + position * price) if initial_equity is None else float(initial_equity)
        return self._model.decide(b, float(cash), float(position), float(avg_price), start, greedy, instrument,
                                  timeframe)

    def __repr__(self) -> str:
        return f"Model(kind={self.kind!r}, folder={str(self._model.folder)!r})"


def load_model(source: Union[str, "os.PathLike[str]"], settings: SettingsLike = None, **overrides: Any) -> Model:
    """Opens a checkpoint folder, or a registered model (``NAME``,
    ``NAME@VERSION``, ``NAME@production``) from the store the settings name."""
    s = make_settings(settings, **overrides)
    return Model(_native.Model(os.fspath(source), s))


__all__ = ["load_model", "Model"]
