"""VecEnv: N environments in one call equal N single environments."""

from __future__ import annotations

import numpy as np
import pytest

import tradelab
from conftest import NVDA, ORCL

SETTINGS = {"env": {"window": 16, "random_start": True, "episode_bars": 40}}


@pytest.mark.parametrize("levels", [1, 3])
def test_vec_env_equals_single_envs(levels):
    n, seed = 4, 11
    venv = tradelab.VecEnv([ORCL, NVDA], n=n, seed=seed, quantity_levels=levels, **SETTINGS)
    singles = [
        tradelab.TradingEnv([ORCL, NVDA][i % 2], seed=seed + i, quantity_levels=levels, **SETTINGS) for i in range(n)
    ]
    obs = venv.reset()
    single_obs = [e.reset()[0] for e in singles]
    assert np.array_equal(obs, np.stack(single_obs))
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(150):
        if levels == 1:
            actions = rng.integers(0, 5, n)
        else:
            actions = np.stack([rng.integers(0, 5, n), rng.integers(0, levels, n)], axis=1)
        obs, rewards, dones, infos = venv.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, _ = env.step(actions[i])
            assert rewards[i] == pytest.approx(r, rel=1e-6, abs=1e-9)
            assert dones[i] == (term or trunc)
            if term or trunc:
                ended += 1
                assert np.array_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["TimeLimit.truncated"] == trunc
                o, _ = env.reset()
            assert np.array_equal(obs[i], o)
            assert np.array_equal(venv.action_masks()[i], env.action_masks())
    assert ended >= n, "episodes of 40 bars end and restart within 150 steps"


def test_step_into_writes_the_preallocated_buffers():
    venv = tradelab.VecEnv(ORCL, n=3, **SETTINGS)
    venv.reset()
    buffer = venv.obs
    venv.step_into(np.array([0, 4, 1]))
    assert venv.obs is buffer, "no new observation array per step"
    assert venv.masks[0].tolist() == [False, False, True, False, True]


def test_bad_vec_input_raises():
    venv = tradelab.VecEnv(ORCL, n=2, **SETTINGS)
    venv.reset()
    with pytest.raises(tradelab.TradelabError, match="expected 2"):
        venv.step(np.array([0, 1, 2]))
    with pytest.raises(tradelab.TradelabError, match="five actions"):
        venv.step(np.array([0, 9]))
    with pytest.raises(tradelab.TradelabError, match="at least 1"):
        tradelab.VecEnv(ORCL, n=0, **SETTINGS)
