"""optimize(): the CLI's parameter search from Python."""

from __future__ import annotations

import pytest

import tradelab
from conftest import ORCL, cli_json

VOLATILE = ("seconds", "threads")


def test_optimize_equals_the_cli(tmp_path):
    cli = cli_json(
        "optimize", "--strategy", "sma_crossover", "--symbol", str(ORCL), "--param", "fast=5:20:5",
        "--param", "slow=30,50", "--constraint", "fast < slow", "--json", "--threads", "2", cwd=tmp_path,
    )
    py = tradelab.optimize("sma_crossover", ORCL, {"fast": "5:20:5", "slow": [30, 50]},
                           constraints=["fast < slow"], threads=2)
    strip = lambda r: {k: v for k, v in r.items() if k not in VOLATILE}  # noqa: E731
    assert strip(py.report()) == strip(cli)
    assert len(py.results) == 8 and py.results.index[0] == 1
    assert py.best == py.report()["results"]["rows"][0]["params"]
    assert py.deflated_sharpe is not None


def test_optimize_refuses_bad_searches():
    with pytest.raises(tradelab.TradelabError, match="fast"):
        tradelab.optimize("sma_crossover", ORCL, {"fast": "40:50", "slow": "20:30"})
    with pytest.raises(tradelab.TradelabError, match="trials"):
        tradelab.optimize("sma_crossover", ORCL, {"fast": "5:10"}, method="random")
    with pytest.raises(tradelab.TradelabError, match="unknown"):
        tradelab.optimize("sma_crossover", ORCL, {"fast": "5:10"}, metric="luck")
