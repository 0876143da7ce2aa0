"""Stable-Baselines3 and sb3-contrib train on TradingEnv and VecEnv."""

from __future__ import annotations

import numpy as np
import pytest

import tradelab
from conftest import ORCL

sb3 = pytest.importorskip("stable_baselines3")
contrib = pytest.importorskip("sb3_contrib")

SETTINGS = {"env": {"window": 8, "random_start": True, "episode_bars": 256}}


def record_invalid_actions(env):
    """Wraps env.step to record, per step, whether the action was invalid."""
    invalid = []
    original_step = env.step

    def counting_step(action):
        out = original_step(action)
        invalid.append(out[4]["invalid_action"])
        return out

    env.step = counting_step
    return invalid


def test_ppo_trains_on_trading_env():
    from stable_baselines3 import PPO

    env = tradelab.TradingEnv(ORCL, seed=1, **SETTINGS)
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=1, device="cpu")
    model.learn(total_timesteps=2048)
    obs, _ = env.reset(seed=3)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_ppo_trains_on_the_vectorised_env():
    from stable_baselines3 import PPO

    venv = tradelab.VecEnv(ORCL, n=8, seed=2, **SETTINGS)
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=256, n_epochs=2, seed=2, device="cpu")
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048


@pytest.mark.parametrize("levels", [1, 3])
def test_maskable_ppo_never_takes_an_invalid_action(levels):
    from sb3_contrib import MaskablePPO

    env = tradelab.TradingEnv(ORCL, seed=4, quantity_levels=levels, **SETTINGS)
    invalid = record_invalid_actions(env)
    model = MaskablePPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=4, device="cpu")
    model.learn(total_timesteps=2048)
    assert len(invalid) >= 2048
    assert not any(invalid), f"{sum(invalid)} masked actions were taken"


def test_unmasked_ppo_does_take_invalid_actions():
    # The check above could not pass by accident: without masks, PPO's
    # random early policy picks forbidden actions often.
    from stable_baselines3 import PPO

    env = tradelab.TradingEnv(ORCL, seed=5, **SETTINGS)
    invalid = record_invalid_actions(env)
    PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=1, seed=5, device="cpu").learn(total_timesteps=512)
    assert sum(invalid) > 50


def test_maskable_ppo_on_the_vectorised_env():
    from sb3_contrib import MaskablePPO

    venv = tradelab.VecEnv(ORCL, n=4, seed=6, **SETTINGS)
    model = MaskablePPO("MlpPolicy", venv, n_steps=128, batch_size=128, n_epochs=1, seed=6, device="cpu")
    model.learn(total_timesteps=1024)
    assert model.num_timesteps >= 1024
