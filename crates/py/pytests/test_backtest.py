"""backtest(): equal to the CLI's report; Python strategies driven by the engine."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import tradelab
from conftest import NVDA, ORCL, cli_json, synthetic_frame



@pytest.mark.parametrize("strategy", ["sma_crossover", "rsi_mean_reversion", "buy_and_hold_vol_target"])
def test_backtest_equals_the_cli_report(strategy, tmp_path):
    cli = cli_json("backtest", "--strategy", strategy, "--symbol", str(ORCL), "--json", cwd=tmp_path)
    py = tradelab.backtest(strategy, ORCL).report()
    assert py == cli


def test_several_instruments_and_settings_overrides(tmp_path):
    cli = cli_json(
        "backtest", "--strategy", "sma_crossover", "--symbol", str(ORCL), "--symbol", str(NVDA),
        "--json", "--set", "strategies.sma_crossover.fast=5", cwd=tmp_path,
    )
    py = tradelab.backtest("sma_crossover", [ORCL, NVDA], strategies={"sma_crossover": {"fast": 5}})
    assert py.report() == cli
    assert set(py.trades["instrument"]) == {"orcl-1995-2014", "nvda-1999-2014"}


def test_result_frames_agree_with_the_metrics():
    result = tradelab.backtest("sma_crossover", ORCL)
    trades, equity = result.trades, result.equity
    assert len(trades) == result.metrics["total_trades"]
    report = result.report()
    assert trades["pnl"].tolist() == pytest.approx([t["pnl"] for t in report["trades"]], rel=1e-12)
    assert report["portfolio_end"] - report["portfolio_start"] == pytest.approx(result.metrics["total_pnl"])
    assert isinstance(equity.index, pd.DatetimeIndex)
    assert equity["equity"].iloc[-1] == pytest.approx(report["portfolio_end"])
    assert (trades["exit_time"] >= trades["entry_time"]).all()


class BuyAndHoldInPython:
    """The built-in buy_and_hold, written as a migrating user would."""

    def on_bar(self, bar):
        return "BUY_LONG" if bar.position == 0 else None


class SmaCrossInPython:
    """A 10/30 SMA crossover over numpy arrays, the built-in's rule."""

    name = "sma in python"

    def __init__(self, close, fast=10, slow=30):
        c = pd.Series(close)
        self.fast = c.rolling(fast).mean().to_numpy()
        self.slow = c.rolling(slow).mean().to_numpy()

    def on_bar(self, bar):
        i = bar.index
        if i == 0 or np.isnan(self.slow[i - 1]):
            return None
        above, was_above = self.fast[i] > self.slow[i], self.fast[i - 1] > self.slow[i - 1]
        if above and not was_above:
            return "BUY_LONG"
        if not above and was_above:
            return "CLOSE_LONG"
        return None


def test_a_python_strategy_matches_the_built_in_it_copies():
    built_in = tradelab.backtest("buy_and_hold", ORCL)
    python = tradelab.backtest(BuyAndHoldInPython(), ORCL)
    assert python.metrics == built_in.metrics
    assert python.report()["model_used"] == "BuyAndHoldInPython"


def test_a_python_crossover_matches_the_built_in_crossover():
    close = tradelab.load_bars(ORCL)["close"].to_numpy()
    built_in = tradelab.backtest("sma_crossover", ORCL, strategies={"sma_crossover": {"fast": 10, "slow": 30}})
    python = tradelab.backtest(SmaCrossInPython(close), ORCL)
    assert python.report()["model_used"] == "sma in python"
    assert python.metrics["total_trades"] == built_in.metrics["total_trades"]
    assert python.metrics["total_pnl"] == pytest.approx(built_in.metrics["total_pnl"], rel=1e-9)


def test_sized_orders_from_python():
    class Sized:
        def on_bar(self, bar):
            return ("BUY_LONG", 10) if bar.index == 50 else ("CLOSE_LONG", 10) if bar.index == 60 else None

    result = tradelab.backtest(Sized(), synthetic_frame(200))
    trades = result.trades
    assert len(trades) == 1 and trades["quantity"].iloc[0] == 10


def test_python_strategy_errors_surface():
    class Broken:
        def on_bar(self, bar):
            if bar.index == 5:
                raise RuntimeError("boom at five")

    with pytest.raises(RuntimeError, match="boom at five"):
        tradelab.backtest(Broken(), synthetic_frame(50))

    class WrongAnswer:
        def on_bar(self, bar):
            return 3.5

    with pytest.raises(tradelab.TradelabError, match="on_bar returned 3.5"):
        tradelab.backtest(WrongAnswer(), synthetic_frame(50))

    class UnknownAction:
        def on_bar(self, bar):
            return "BUY_EVERYTHING"

    with pytest.raises(tradelab.TradelabError, match="unknown action"):
        tradelab.backtest(UnknownAction(), synthetic_frame(50))


def test_unknown_strategies_and_objects_raise():
    with pytest.raises(tradelab.TradelabError, match="unknown strategy"):
        tradelab.backtest("sma_crosover", ORCL)
    with pytest.raises(tradelab.TradelabError, match="on_bar"):
        tradelab.backtest(object(), ORCL)
    assert "sma_crossover" in tradelab.strategies()


def test_plot_draws_equity_and_drawdown():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    fig = tradelab.backtest("sma_crossover", ORCL).plot()
    top, bottom = fig.axes
    assert len(top.lines[0].get_xdata()) == len(tradelab.load_bars(ORCL))
    assert bottom.get_ylabel() == "drawdown %"
