"""TradingEnv: Gymnasium's interface over the CLI's environment."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import tradelab
from conftest import ORCL, QUICK, synthetic_frame


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"quantity_levels": 4},
        {"env": {"window": 16, "actions": "exposure"}},
        {"env": {"window": 16, "random_start": True, "episode_bars": 200}},
    ],
    ids=["discrete", "multi-discrete", "exposure", "random-start"],
)
def test_check_env_passes(kwargs):
    options = {**QUICK, **kwargs}
    env = tradelab.TradingEnv(ORCL, **options)
    check_env(env, skip_render_check=True)


def test_spaces_follow_the_action_setting():
    assert tradelab.TradingEnv(ORCL, **QUICK).action_space == gym.spaces.Discrete(5)
    multi = tradelab.TradingEnv(ORCL, quantity_levels=4, **QUICK)
    assert multi.action_space == gym.spaces.MultiDiscrete([5, 4])
    assert multi.action_masks().shape == (9,)
    exposure = tradelab.TradingEnv(ORCL, env={"window": 16, "actions": "exposure"})
    assert isinstance(exposure.action_space, gym.spaces.Box)
    env = tradelab.TradingEnv(ORCL, **QUICK)
    n_features = len(env.feature_names)
    assert env.observation_space.shape == (16 * n_features + 3,)


def test_gymnasium_make_builds_it():
    env = gym.make("tradelab/Trading-v0", data=str(ORCL), env={"window": 16})
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.float32
    obs, reward, terminated, truncated, info = env.step(0)
    assert isinstance(reward, float) and not terminated
    assert info["position"] > 0, "BUY_LONG from flat opens a long position"


def test_seeded_resets_repeat_and_seeds_differ():
    env = tradelab.TradingEnv(ORCL, env={"window": 16, "random_start": True, "episode_bars": 100})
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    c, _ = env.reset(seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_masks_follow_the_position_and_invalid_actions_hold():
    env = tradelab.TradingEnv(ORCL, **QUICK)
    env.reset(seed=0)
    assert env.action_masks().tolist() == [True, True, False, False, True]
    _, _, _, _, info = env.step(0)
    assert info["position"] > 0
    assert env.action_masks().tolist() == [False, False, True, False, True]
    # SELL_SHORT while long is invalid: it acts as HOLD and says so.
    _, _, _, _, info = env.step(1)
    assert info["invalid_action"] and info["position"] > 0
    _, _, _, _, info = env.step(2)
    assert info["position"] == 0 and info["fees"] > 0


def test_an_episode_ends_and_must_be_reset():
    env = tradelab.TradingEnv(ORCL, env={"window": 16, "episode_bars": 30})
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(4)
        done = terminated or truncated
        steps += 1
    assert steps == 29
    with pytest.raises(tradelab.TradelabError, match="call reset"):
        env.step(4)


def test_costs_reach_the_reward():
    # A round trip with nothing else changing loses exactly its fees: the
    # fixed 25 INR entry and 35 INR exit commissions are in the default costs.
    env = tradelab.TradingEnv(ORCL, **QUICK)
    env.reset(seed=0)
    fees = 0.0
    for a in (0, 2):
        _, _, _, _, info = env.step(a)
        fees += info["fees"]
    assert fees >= 60.0


def test_dataframes_work_like_files():
    frame = synthetic_frame(800)
    env = tradelab.TradingEnv(frame, **QUICK)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and np.isfinite(obs).all()


@pytest.mark.parametrize(
    "action, message",
    [(7, "not one of the five actions"), (-1, "not one of the five actions")],
)
def test_bad_actions_raise(action, message):
    env = tradelab.TradingEnv(ORCL, **QUICK)
    env.reset(seed=0)
    with pytest.raises(tradelab.TradelabError, match=message):
        env.step(action)


def test_nan_quantity_raises():
    env = tradelab.TradingEnv(ORCL, **QUICK)
    env.reset(seed=0)
    with pytest.raises(tradelab.TradelabError, match="NaN"):
        env.step_raw(0, float("nan"))


def test_unknown_settings_and_splits_raise():
    with pytest.raises(tradelab.TradelabError, match="windw"):
        tradelab.TradingEnv(ORCL, env={"windw": 16})
    with pytest.raises(tradelab.TradelabError, match="unknown split"):
        tradelab.TradingEnv(ORCL, split="holdout", **QUICK)
    with pytest.raises(tradelab.TradelabError, match="window"):
        tradelab.TradingEnv(ORCL, env={"window": 0})


def test_too_little_data_says_so():
    with pytest.raises(tradelab.TradelabError, match="split has"):
        tradelab.TradingEnv(synthetic_frame(60), **QUICK)


@pytest.mark.parametrize("split", ["train", "test"])
def test_episodes_match_the_cli_environment_step_for_step(split, tmp_path):
    from conftest import run_cli

    seed, steps = 5, 600
    trace = [
        json.loads(line)
        for line in run_cli(
            "env-trace", "--symbol", str(ORCL), "--split", split, "--steps", str(steps), "--seed", str(seed),
            "--set", "env.episode_bars=100", "--set", "env.random_start=true", cwd=tmp_path,
        ).splitlines()
    ]
    assert len(trace) == steps
    # The CLI's --seed seeds both the settings and the environment.
    settings = tradelab.settings(seed=seed, env={"episode_bars": 100, "random_start": True})
    env = tradelab.TradingEnv(ORCL, settings, split=split, seed=seed)
    env.reset()
    ends = 0
    for k, expected in enumerate(trace):
        _, reward, terminated, truncated, info = env.step_raw(expected["action"], expected["quantity"])
        got = (reward, terminated, truncated, info["equity"], info["position"], info["fees"], info["bar"])
        want = tuple(expected[key] for key in ("reward", "terminated", "truncated", "equity", "position", "fees", "bar"))
        assert got == want, f"step {k}"
        if terminated or truncated:
            ends += 1
            env.reset()
    assert ends >= 5, "episodes of 100 bars end and restart"
