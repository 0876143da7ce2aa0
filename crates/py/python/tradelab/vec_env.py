"""``VecEnv``: many environments stepped in one Rust call.

Observations, rewards, flags and masks are written into numpy arrays
allocated once; the GIL is released while the environments step. When
Stable-Baselines3 is installed this is one of its ``VecEnv``s (it imports
SB3 only then), so ``PPO("MlpPolicy", tradelab.VecEnv(...))`` works.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence

import numpy as np
from gymnasium import spaces

from . import _native
from ._settings import SettingsLike, make_settings
from .data import DataLike, native_bars
from .env import action_space_for

try:  # SB3 is optional: without it this is a plain class with the same methods.
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv as _Base
except ImportError:  # pragma: no cover - exercised where SB3 is absent
    _Base = object  # type: ignore[assignment,misc]


class VecEnv(_Base):  # type: ignore[misc,valid-type]
    """``n`` environments; environment ``i`` trades ``data[i % len(data)]``,
    seeded ``seed + i``. Ended episodes restart by themselves; the ended
    episode's last observation is in ``infos[i]["terminal_observation"]``
    (SB3's convention) and ``TimeLimit.truncated`` says whether it was cut
    by the episode window rather than ruin or the drawdown breaker."""

    render_mode = None

    def __init__(
        self,
        data: "DataLike | Sequence[DataLike]",
        n: int = 8,
        settings: SettingsLike = None,
        *,
        split: str = "train",
        seed: int = 0,
        quantity_levels: int = 1,
        **overrides: Any,
    ) -> None:
        self.settings = make_settings(settings, **overrides)
        items = list(data) if isinstance(data, (list, tuple)) else [data]
        bars = [native_bars(d, self.settings) for d in items]
        self._core = _native.VecEnvCore(bars, self.settings, n, split, seed)
        self._seed = seed
        self._levels = quantity_levels
        size = self._core.observation_size
        observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        action_space = action_space_for(self._core.action_space, quantity_levels)
        self.num_envs = n
        self.observation_space = observation_space
        self.action_space = action_space
        self._obs = np.zeros((n, size), dtype=np.float32)
        self._final = np.zeros((n, size), dtype=np.float32)
        self._rewards = np.zeros(n, dtype=np.float64)
        self._terminated = np.zeros(n, dtype=bool)
        self._truncated = np.zeros(n, dtype=bool)
        self._masks = np.zeros((n, 5), dtype=bool)
        self._actions = np.full(n, 4, dtype=np.int64)
        self._quantities = np.ones(n, dtype=np.float64)
        if _Base is not object:
            super().__init__(n, observation_space, action_space)

    # -- stepping -------------------------------------------------------
    def reset(self, seed: Optional[int] = None) -> np.ndarray:
        """Restarts every environment; returns the first observations (a copy)."""
        seeds = getattr(self, "_seeds", None)
        if seed is None and seeds and seeds[0] is not None:
            seed = seeds[0]
        if seed is not None:
            self._seed = int(seed)
        self._core.reset(self._seed, self._obs, self._masks)
        if hasattr(self, "_reset_seeds"):
            self._reset_seeds()
        return self._obs.copy()

    def _set_actions(self, actions: np.ndarray) -> None:
        a = np.asarray(actions)
        per_env = 2 if isinstance(self.action_space, spaces.MultiDiscrete) else 1
        if a.size != self.num_envs * per_env:
            raise _native.TradelabError(
                f"got {a.size} action values for {self.num_envs} environments; expected {self.num_envs * per_env}"
                f" (shape {(self.num_envs, per_env) if per_env > 1 else (self.num_envs,)})"
            )
        if isinstance(self.action_space, spaces.Box):
            target = np.clip(a.reshape(self.num_envs, -1)[:, 0].astype(np.float64), -1.0, 1.0)
            self._actions[:] = 0
            self._quantities[:] = (target + 1.0) / 2.0
        elif isinstance(self.action_space, spaces.MultiDiscrete):
            a = a.reshape(self.num_envs, 2)
            self._actions[:] = a[:, 0]
            self._quantities[:] = (a[:, 1] + 1) / float(self._levels)
        else:
            self._actions[:] = a.reshape(self.num_envs)
            self._quantities[:] = 1.0

    def step_into(self, actions: np.ndarray) -> None:
        """Steps every environment, leaving the results in ``obs``,
        ``rewards``, ``terminated``, ``truncated`` and ``masks`` (views of
        the preallocated buffers, overwritten by the next step)."""
        self._set_actions(actions)
        self._core.step(
            self._actions,
            self._quantities,
            self._obs,
            self._rewards,
            self._terminated,
            self._truncated,
            self._masks,
            self._final,
        )

    @property
    def obs(self) -> np.ndarray:
        """The observations buffer (``n x size``), overwritten by each step."""
        return self._obs

    @property
    def rewards(self) -> np.ndarray:
        """The last step's rewards."""
        return self._rewards

    @property
    def terminated(self) -> np.ndarray:
        """Which episodes ruin or the drawdown breaker ended at the last step."""
        return self._terminated

    @property
    def truncated(self) -> np.ndarray:
        """Which episodes the episode window cut at the last step."""
        return self._truncated

    @property
    def masks(self) -> np.ndarray:
        """Valid actions per environment (``n x 5``)."""
        return self._masks

    def step_async(self, actions: np.ndarray) -> None:
        """Stores the actions for ``step_wait`` (SB3's interface)."""
        self._pending = actions

    def step_wait(self):
        """Steps every environment: (observations, rewards, dones, infos), SB3's convention."""
        self.step_into(self._pending)
        dones = self._terminated | self._truncated
        infos: List[dict] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i] = {
                "terminal_observation": self._final[i].copy(),
                "TimeLimit.truncated": bool(self._truncated[i]),
            }
        return self._obs.copy(), self._rewards.astype(np.float32), dones, infos

    def step(self, actions: np.ndarray):
        """``step_async`` then ``step_wait``."""
        self.step_async(actions)
        return self.step_wait()

    def action_masks(self) -> np.ndarray:
        """Valid actions per environment (``n x 5``; for ``MultiDiscrete``
        followed by the quantity levels, all valid)."""
        if isinstance(self.action_space, spaces.MultiDiscrete):
            return np.concatenate([self._masks, np.ones((self.num_envs, self._levels), dtype=bool)], axis=1)
        return self._masks.copy()

    # -- SB3's VecEnv bookkeeping ----------------------------------------
    def close(self) -> None:
        """Nothing to release: the environments live in the Rust core."""
        pass

    def _indices(self, indices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices

    def get_attr(self, attr_name: str, indices=None) -> List[Any]:
        """An attribute of the environments (the same for all)."""
        if attr_name == "render_mode":
            return [None for _ in self._indices(indices)]
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        """Refused: the environments' settings are fixed at construction."""
        raise AttributeError(f"tradelab.VecEnv's environments have no settable attribute `{attr_name}`")

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> List[Any]:
        """Only ``action_masks`` is callable this way (MaskablePPO's use)."""
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in self._indices(indices)]
        raise AttributeError(f"tradelab.VecEnv's environments have no method `{method_name}` callable this way")

    def env_is_wrapped(self, wrapper_class, indices=None) -> List[bool]:
        """No environment is wrapped."""
        return [False for _ in self._indices(indices)]

    def get_images(self):
        """No rendering: one ``None`` per environment."""
        return [None for _ in range(self.num_envs)]


__all__ = ["VecEnv"]
