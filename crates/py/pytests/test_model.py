"""Models trained by the CLI act from Python as they do in Rust."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tradelab
from conftest import ORCL, run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small PPO trained by the CLI on ORCL (a few seconds)."""
    d = tmp_path_factory.mktemp("model")
    run_cli("train", "--agent", "ppo-mlp", "--symbol", str(ORCL), "--steps", "2048", "--out", "run", "--seed", "3", cwd=d)
    return d / "run" / "best"


def greedy_validation_pass(model):
    """The validation split from its first bar, deciding greedily with
    model.act: what training scored the checkpoint by."""
    env = tradelab.TradingEnv(ORCL, model.settings, split="validation", env={"random_start": False, "episode_bars": 0})
    obs, account = env.reset()
    start, entries, done = account["equity"], 0, False
    while not done:
        decision = model.act(obs, env.action_masks())
        was_flat = env.account()["position"] == 0
        obs, _, terminated, truncated, info = env.step_raw(decision["action_index"], decision["quantity"])
        entries += int(was_flat and info["position"] != 0)
        done = terminated or truncated
    return (info["equity"] / start - 1.0) * 100.0, entries


def test_a_cli_model_acts_identically_from_python(trained):
    model = tradelab.load_model(trained)
    recorded = json.loads((trained / "metadata.json").read_text())["validation"]
    return_pct, entries = greedy_validation_pass(model)
    assert recorded["entries"] > 0, "the check needs a model that trades"
    assert entries == recorded["entries"]
    assert return_pct == pytest.approx(recorded["return_pct"], rel=1e-9, abs=1e-9)


def test_act_reports_the_decision(trained):
    model = tradelab.load_model(trained)
    assert model.kind == "ppo-mlp"
    env = tradelab.TradingEnv(ORCL, model.settings)
    obs, _ = env.reset(seed=0)
    d = model.act(obs)
    assert d["action"] in tradelab.ACTIONS and tradelab.ACTIONS.index(d["action"]) == d["action_index"]
    assert sum(d["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    # Flat: the closes are masked, so they get probability 0.
    assert d["probabilities"][2] == 0 and d["probabilities"][3] == 0
    assert model.provenance["vocabulary"]["instruments"] == ["orcl-1995-2014"]


def test_bad_observations_and_masks_raise(trained):
    model = tradelab.load_model(trained)
    with pytest.raises(tradelab.TradelabError, match="this model reads"):
        model.act(np.zeros(10, dtype=np.float32))
    obs = np.zeros(model.observation_size, dtype=np.float32)
    obs[3] = np.nan
    with pytest.raises(tradelab.TradelabError, match="not a finite number"):
        model.act(obs)
    with pytest.raises(tradelab.TradelabError, match="allows no action"):
        model.act(np.zeros(model.observation_size, dtype=np.float32), np.zeros(5, dtype=bool))
    with pytest.raises(tradelab.TradelabError, match="not in"):
        model.act(np.zeros(model.observation_size, dtype=np.float32), instrument="nosuch")


def test_a_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(tradelab.TradelabError, match="does not exist"):
        tradelab.load_model(tmp_path / "nope" / "best")


def test_decide_from_raw_bars_equals_act_on_the_observation(trained):
    model = tradelab.load_model(trained)
    env = tradelab.TradingEnv(ORCL, model.settings, split="validation", env={"random_start": False, "episode_bars": 0})
    obs, account = env.reset()
    bar = account["bar"]
    frame = tradelab.load_bars(ORCL)
    # The bars from the series' start to the bar the observation ends on:
    # the indicators warm up exactly as in the environment.
    decided = model.decide(frame.iloc[: bar + 1], cash=account["cash"])
    acted = model.act(obs, env.action_masks())
    assert decided["action"] == acted["action"]
    assert decided["probabilities"] == pytest.approx(acted["probabilities"], abs=1e-6)
    assert decided["value"] == pytest.approx(acted["value"], abs=1e-5)


def test_decide_explains_what_is_missing(trained):
    model = tradelab.load_model(trained)
    frame = tradelab.load_bars(ORCL)
    with pytest.raises(tradelab.TradelabError, match="warming up|bars given"):
        model.decide(frame.iloc[:20], cash=100_000.0)
    with pytest.raises(tradelab.TradelabError, match="positive"):
        model.decide(frame.iloc[:500], cash=-5.0)


def test_a_registered_model_loads_by_name(trained, monkeypatch):
    # The CLI registered the model in the store of the folder it ran in.
    monkeypatch.chdir(trained.parent.parent)
    by_name = tradelab.load_model("ppo-mlp@1")
    by_folder = tradelab.load_model(trained)
    obs = np.zeros(by_name.observation_size, dtype=np.float32)
    assert by_name.act(obs)["probabilities"] == by_folder.act(obs)["probabilities"]
    with pytest.raises(tradelab.TradelabError, match="no model called|missing"):
        tradelab.load_model("no-such-model")
