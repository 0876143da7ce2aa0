#!/usr/bin/env python3
"""The Python package against its Python peers, side by side in one run.

    python scripts/bench/python_package.py [--rounds 3] [--bars 1000000] [--no-backtesting] [--no-sb3]

Run it with a Python where tradelab is installed from a release-like build
(`pip install ./crates/py`, the `wheel` profile) and the peers are
(`pip install -r scripts/peers/requirements.txt -r scripts/peers/requirements-rl.txt`).
Every figure is the median over --rounds, measured in this one process:

1. env: one `tradelab.TradingEnv`, one `step` call per step (window 32,
   default settings, uniformly random actions drawn up front), against
   gym-anytrading 2.0.0's `StocksEnv` (window 32) on the same closes.
2. vec: `tradelab.VecEnv` with 64 environments stepped from numpy arrays
   (`step_into`, and SB3's `step` with its info dicts), against the same
   environments stepped by the Rust core alone (`VecEnvCore.run_random`,
   observations copied as for numpy): the cost of crossing into Python.
3. backtest: the 10/30 SMA crossover (long on the golden cross, flat on the
   death cross, no fees, tradelab's breakers off so every cross trades) on
   --bars synthetic 1-minute bars from a DataFrame (conversion included),
   against vectorbt 1.2 (warm: its JIT compiled by an untimed first call)
   and backtesting.py 0.6.6 (one run: it takes seconds); and the same rule
   written as a Python strategy (`on_bar`), the cost of a Python call per bar.
4. sb3: Stable-Baselines3 PPO (MlpPolicy, defaults, CPU, one torch thread)
   training steps/s on `TradingEnv` against the same on `StocksEnv`.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tradelab  # noqa: E402

WINDOW = 32


def synthetic(bars: int, seed: int = 7) -> pd.DataFrame:
    """A geometric random walk as 1-minute OHLCV bars (UTC)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, bars)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.0005, bars)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.0005, bars)))
    index = pd.date_range("2020-01-01", periods=bars, freq="min", tz="UTC")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": np.full(bars, 1e6)}, index=index
    )


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_env(frame: pd.DataFrame, rounds: int, steps: int) -> dict:
    from gym_anytrading.envs import StocksEnv

    actions = np.random.default_rng(1).integers(0, 5, steps)
    env = tradelab.TradingEnv(frame, env={"window": WINDOW})

    def tradelab_loop():
        env.reset(seed=0)
        step = env.step
        for a in actions:
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                env.reset()

    peer_frame = frame.rename(columns=str.capitalize)
    peer = StocksEnv(df=peer_frame, window_size=WINDOW, frame_bound=(WINDOW, len(peer_frame)))
    peer_actions = np.random.default_rng(1).integers(0, 2, steps)

    def peer_loop():
        peer.reset(seed=0)
        step = peer.step
        for a in peer_actions:
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                peer.reset()

    ours = steps / median_time(tradelab_loop, rounds)
    theirs = steps / median_time(peer_loop, rounds)
    return {"tradelab_steps_per_s": ours, "gym_anytrading_steps_per_s": theirs, "ratio": ours / theirs,
            "gym_anytrading": version("gym-anytrading")}


def bench_vec(frame: pd.DataFrame, rounds: int, steps: int, n: int = 64) -> dict:
    venv = tradelab.VecEnv(frame, n=n, env={"window": WINDOW})
    venv.reset()
    actions = np.random.default_rng(2).integers(0, 5, (steps, n))

    def python_loop():
        for row in actions:
            venv.step_into(row)

    def sb3_loop():
        for row in actions:
            venv.step(row)

    core = tradelab.VecEnv(frame, n=n, env={"window": WINDOW})
    rust_times = [core._core.run_random(steps, 3) for _ in range(rounds)]
    rust = steps * n / statistics.median(rust_times)
    python = steps * n / median_time(python_loop, rounds)
    sb3 = steps * n / median_time(sb3_loop, rounds)
    return {"n": n, "rust_steps_per_s": rust, "step_into_steps_per_s": python, "sb3_step_steps_per_s": sb3,
            "rust_over_step_into": rust / python}


def bench_backtest(frame: pd.DataFrame, rounds: int, with_backtesting: bool) -> dict:
    import vectorbt as vbt

    # Like for like: no fees anywhere, and tradelab's drawdown breaker and
    # daily loss limit off, so that every crossover trades in all three.
    settings = {
        "strategies": {"sma_crossover": {"fast": 10, "slow": 30}},
        "backtest": {"costs": {"entry_fixed": 0.0, "exit_fixed": 0.0}},
        "risk": {"max_drawdown": 0.0, "daily_loss_limit": 0.0},
    }
    out = {"bars": len(frame)}
    result = {}

    def ours():
        result["r"] = tradelab.backtest("sma_crossover", frame, **settings)

    out["tradelab_s"] = median_time(ours, rounds)
    out["tradelab_trades"] = result["r"].metrics["total_trades"]

    class SmaCrossInPython:
        """The same rule as a Python strategy: one Python call per bar."""

        def __init__(self, closes):
            c = pd.Series(closes)
            self.fast = c.rolling(10).mean().to_numpy()
            self.slow = c.rolling(30).mean().to_numpy()

        def on_bar(self, bar):
            i = bar.index
            if i == 0 or self.slow[i - 1] != self.slow[i - 1]:
                return None
            above, was = self.fast[i] > self.slow[i], self.fast[i - 1] > self.slow[i - 1]
            if above and not was:
                return "BUY_LONG"
            if was and not above:
                return "CLOSE_LONG"
            return None

    def python_strategy():
        result["p"] = tradelab.backtest(SmaCrossInPython(frame["close"].to_numpy()), frame, **settings)

    out["python_strategy_s"] = median_time(python_strategy, rounds)
    out["python_strategy_trades"] = result["p"].metrics["total_trades"]

    close = frame["close"]

    def vectorbt_run():
        fast = vbt.MA.run(close, 10)
        slow = vbt.MA.run(close, 30)
        pf = vbt.Portfolio.from_signals(close, fast.ma_crossed_above(slow), fast.ma_crossed_below(slow),
                                        fees=0.0, init_cash=100_000.0, freq="1min")
        result["v"] = pf.trades.count()

    vectorbt_run()  # compile the JIT, untimed
    out["vectorbt_s"] = median_time(vectorbt_run, rounds)
    out["vectorbt_trades"] = int(result["v"])
    out["vectorbt"] = version("vectorbt")
    if with_backtesting:
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover

        def sma(values, n):
            return pd.Series(values).rolling(n).mean().to_numpy()

        class SmaCross(Strategy):
            def init(self):
                self.fast = self.I(sma, self.data.Close, 10)
                self.slow = self.I(sma, self.data.Close, 30)

            def next(self):
                if crossover(self.fast, self.slow):
                    self.buy()
                elif crossover(self.slow, self.fast):
                    self.position.close()

        peer_frame = frame.rename(columns=str.capitalize).tz_localize(None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = Backtest(peer_frame, SmaCross, cash=1e9, commission=0.0, finalize_trades=True)
            start = time.perf_counter()
            stats = bt.run()
            out["backtesting_s"] = time.perf_counter() - start
        out["backtesting_trades"] = int(stats["# Trades"])
        out["backtesting"] = version("backtesting")
    return out


def bench_sb3(frame: pd.DataFrame, rounds: int, timesteps: int) -> dict:
    import torch
    from gym_anytrading.envs import StocksEnv
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    small = frame.iloc[:20_000]

    def train(env):
        model = PPO("MlpPolicy", env, seed=0, device="cpu", n_steps=1024, batch_size=64, n_epochs=4)
        model.learn(total_timesteps=timesteps)

    ours = timesteps / median_time(lambda: train(tradelab.TradingEnv(small, env={"window": WINDOW})), rounds)
    peer_frame = small.rename(columns=str.capitalize)
    theirs = timesteps / median_time(
        lambda: train(StocksEnv(df=peer_frame, window_size=WINDOW, frame_bound=(WINDOW, len(peer_frame)))), rounds
    )
    return {"timesteps": timesteps, "tradelab_steps_per_s": ours, "gym_anytrading_steps_per_s": theirs,
            "ratio": ours / theirs, "stable_baselines3": version("stable-baselines3"), "torch": version("torch")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bars", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=200_000, help="single-environment steps per round")
    p.add_argument("--vec-steps", type=int, default=5_000, help="VecEnv calls per round (x 64 environments)")
    p.add_argument("--sb3-steps", type=int, default=4_096)
    p.add_argument("--no-backtesting", action="store_true", help="skip backtesting.py (minutes on 1M bars)")
    p.add_argument("--no-sb3", action="store_true")
    p.add_argument("--only", choices=["env", "vec", "backtest", "sb3"], action="append",
                   help="run only these parts (repeatable)")
    a = p.parse_args()
    parts = set(a.only or ["env", "vec", "backtest", "sb3"])
    frame = synthetic(a.bars)
    report = {"tradelab": tradelab.__version__, "rounds": a.rounds}
    if "env" in parts:
        report["env"] = bench_env(frame, a.rounds, a.steps)
        print(json.dumps({"env": report["env"]}), flush=True)
    if "vec" in parts:
        report["vec"] = bench_vec(frame, a.rounds, a.vec_steps)
        print(json.dumps({"vec": report["vec"]}), flush=True)
    if "backtest" in parts:
        report["backtest"] = bench_backtest(frame, a.rounds, not a.no_backtesting)
        print(json.dumps({"backtest": report["backtest"]}), flush=True)
    if "sb3" in parts and not a.no_sb3:
        report["sb3"] = bench_sb3(frame, a.rounds, a.sb3_steps)
        print(json.dumps({"sb3": report["sb3"]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
