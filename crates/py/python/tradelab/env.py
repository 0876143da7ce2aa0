"""``TradingEnv``: the CLI's trading environment as a ``gymnasium.Env``.

The same costs, fills, risk layer, masks and rewards as ``tradelab train``:
every step runs in Rust, through the backtest's broker.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from . import _native
from ._settings import SettingsLike, make_settings
from .data import DataLike, native_bars

#: The five actions, by index.
ACTIONS = ("BUY_LONG", "SELL_SHORT", "CLOSE_LONG", "CLOSE_SHORT", "HOLD")


def action_space_for(kind: str, quantity_levels: int) -> spaces.Space:
    """The Gymnasium action space for ``env.actions`` = ``kind``.

    - ``exposure``: ``Box(-1, 1, (1,))``, the target exposure in risk budgets.
    - otherwise, ``quantity_levels == 1``: ``Discrete(5)``, entries commit the
      whole risk budget;
    - otherwise ``MultiDiscrete([5, quantity_levels])``: the action and a
      quantity of ``(k + 1) / quantity_levels`` of the risk budget.
    """
    if quantity_levels < 1:
        raise _native.TradelabError(f"quantity_levels must be at least 1, not {quantity_levels}")
    if kind == "exposure":
        return spaces.Box(-1.0, 1.0, (1,), np.float32)
    if quantity_levels == 1:
        return spaces.Discrete(5)
    return spaces.MultiDiscrete([5, quantity_levels])


def decode_action(space: spaces.Space, action: Any) -> Tuple[int, float]:
    """An action of ``space`` as (action index, quantity)."""
    if isinstance(space, spaces.Box):
        target = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        # The exposure head reads its quantity q as the target 2q - 1.
        return 0, (target + 1.0) / 2.0
    if isinstance(space, spaces.MultiDiscrete):
        a = np.asarray(action).reshape(-1)
        if a.shape[0] != 2:
            raise _native.TradelabError(f"expected [action, quantity level], got {action!r}")
        return int(a[0]), (int(a[1]) + 1) / float(space.nvec[1])
    return int(np.asarray(action).reshape(-1)[0]) if np.ndim(action) else int(action), 1.0


def _discrete(action: Any) -> Tuple[int, float]:
    # The hot path for Discrete(5): a Python int or a numpy integer.
    try:
        return int(action), 1.0
    except TypeError:
        return int(np.asarray(action).reshape(-1)[0]), 1.0


class TradingEnv(gym.Env):
    """One instrument, one split, the environment ``tradelab train`` trains in.

    ``data`` is a price file's path, an instrument name in ``data.raw_dir``
    or a pandas DataFrame; ``settings`` a settings file, a dict or a
    ``Settings``; keyword ``overrides`` set any key
    (``env={"window": 32, "reward": "log_return"}``). Observations are the
    normalised feature window, flattened, then the three account values.
    ``action_masks()`` gives the valid actions as sb3-contrib's MaskablePPO
    expects them.
    """

    metadata = {"render_modes": []}
    render_mode = None

    def __init__(
        self,
        data: DataLike,
        settings: SettingsLike = None,
        *,
        split: str = "train",
        seed: int = 0,
        quantity_levels: int = 1,
        instrument: Optional[str] = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.settings = make_settings(settings, **overrides)
        self.bars = native_bars(data, self.settings, instrument)
        self._env = _native.Env(self.bars, self.settings, split, seed)
        self.split = split
        self.observation_space = spaces.Box(-np.inf, np.inf, (self._env.observation_size,), np.float32)
        self.action_space = action_space_for(self._env.action_space, quantity_levels)
        self._levels = quantity_levels
        space = self.action_space
        self._decode = _discrete if isinstance(space, spaces.Discrete) else lambda a: decode_action(space, a)

    @property
    def feature_names(self):
        """The observation window's columns, in order."""
        return self._env.feature_names

    @property
    def window(self) -> int:
        """Bars in the observation window."""
        return self._env.window

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
    ) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Starts an episode (``seed`` restarts the stream episode starts are drawn from): the first observation and the account."""
        super().reset(seed=seed)
        obs = self._env.reset(seed)
        return obs, self._env.account()

    def step(self, action: Any) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
        """Acts at the current close and advances one bar: (observation, reward, terminated, truncated, info)."""
        index, quantity = self._decode(action)
        return self._env.step(index, quantity)

    def step_raw(self, action: int, quantity: float = 1.0):
        """Steps with an action index (0..4) and a quantity in (0, 1]
        directly, whatever the action space."""
        return self._env.step(int(action), float(quantity))

    def action_masks(self) -> np.ndarray:
        """Valid actions now: five booleans (for ``MultiDiscrete``, followed
        by one per quantity level, all valid)."""
        mask = self._env.action_mask()
        if isinstance(self.action_space, spaces.MultiDiscrete):
            return np.concatenate([mask, np.ones(self._levels, dtype=bool)])
        return mask

    def account(self) -> Dict[str, Any]:
        """Equity, cash, position (units), bar index and timestamp now."""
        return self._env.account()


__all__ = ["TradingEnv", "ACTIONS", "action_space_for", "decode_action"]
