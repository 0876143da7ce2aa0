#!/usr/bin/env python3
"""Benchmark gym-anytrading's StocksEnv (step throughput with random actions), for
comparison with tradelab's trading environment on the same price series.

The price series is a synthetic geometric random walk (--bars, --seed; the same
generator and seed as vectorbt_bench.py, so the same seed gives the same closes), or
is read from a CSV with a header row holding at least `close` (--csv; optional
open/high/low/volume columns). If only `close` is present, Open/High/Low are set equal
to Close and Volume to 1e6. StocksEnv itself only reads `Close`: its observation is
the window of [Close, diff(Close)] (float32), with frame_bound = (window, bars).

The timed loop calls env.step() --steps times with actions drawn up front (one
vectorised call per repeat, untimed) from numpy's default_rng(seed), not with
env.action_space.sample(), so that RNG cost stays out of the comparison. The env is
reset whenever an episode ends (terminated or truncated) and those resets are timed;
the first reset of each repeat is not. The env is StocksEnv constructed directly,
without gymnasium.make's wrappers (--make adds them: PassiveEnvChecker and
OrderEnforcing).

Prints one JSON line:
  {"tool", "version", "bars", "window", "steps", "median_s", "min_s", "steps_per_s"}
with times over --repeats runs and steps_per_s = steps / median_s.
"""

from __future__ import annotations

import os

# Must be set before numpy is imported: keep everything on one thread so the
# comparison is like for like (and timings are stable on a small machine).
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
):
    os.environ[_var] = "1"
# gym_anytrading imports matplotlib.pyplot at import time; never open a GUI.
os.environ.setdefault("MPLBACKEND", "Agg")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from gym_anytrading.envs import StocksEnv  # noqa: E402

# Same synthetic series as vectorbt_bench.py: 100 * exp(cumsum(N(0, SIGMA))).
START_PRICE, SIGMA = 100.0, 0.001
SYNTHETIC_VOLUME = 1e6


def synthetic_close(bars: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return START_PRICE * np.exp(np.cumsum(rng.normal(0.0, SIGMA, bars)))


def read_ohlcv(path: Path) -> pd.DataFrame:
    """Read a CSV with at least a `close` column (header names are case-insensitive).

    Python's float() rounds correctly, like Rust's str::parse::<f64>, so both tools
    start from bit-identical values (StocksEnv then rounds them to float32).
    """
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        names = {name.strip().lower(): name for name in reader.fieldnames or []}
        if "close" not in names:
            raise SystemExit(f"{path}: no `close` column in the header {reader.fieldnames}")
        wanted = [c for c in ("open", "high", "low", "close", "volume") if c in names]
        cols: dict[str, list[float]] = {c: [] for c in wanted}
        for row in reader:
            for c in wanted:
                cols[c].append(float(row[names[c]]))
    return ohlcv_frame(
        np.array(cols["close"], dtype=np.float64),
        **{c: np.array(v, dtype=np.float64) for c, v in cols.items() if c != "close"},
    )


def ohlcv_frame(close: np.ndarray, **other: np.ndarray) -> pd.DataFrame:
    """The DataFrame StocksEnv expects (it reads only `Close`); missing OHLC columns
    are set to the close and a missing volume to 1e6."""
    return pd.DataFrame(
        {
            "Open": other.get("open", close),
            "High": other.get("high", close),
            "Low": other.get("low", close),
            "Close": close,
            "Volume": other.get("volume", np.full(close.shape, SYNTHETIC_VOLUME)),
        }
    )


def make_env(df: pd.DataFrame, window: int, use_make: bool):
    frame_bound = (window, len(df))
    if use_make:
        import gymnasium as gym

        # stocks-v0 is registered by `import gym_anytrading`; kwargs override its data.
        return gym.make("stocks-v0", df=df, window_size=window, frame_bound=frame_bound)
    return StocksEnv(df=df, window_size=window, frame_bound=frame_bound)


def run_once(env, actions: list[int], seed: int) -> tuple[float, int]:
    """Time len(actions) steps; returns (seconds, episodes ended during the run)."""
    env.reset(seed=seed)  # untimed first reset
    step, reset = env.step, env.reset
    ended = 0
    t0 = time.perf_counter()
    for a in actions:
        _obs, _reward, terminated, truncated, _info = step(a)
        if terminated or truncated:
            reset()
            ended += 1
    return time.perf_counter() - t0, ended


def main() -> int:
    ap = argparse.ArgumentParser(description="gym-anytrading StocksEnv step benchmark")
    ap.add_argument("--csv", type=Path, help="read OHLCV (at least `close`) from this CSV")
    ap.add_argument("--bars", type=int, default=100_000, help="synthetic series length")
    ap.add_argument("--seed", type=int, default=7, help="series, action and reset seed")
    ap.add_argument("--window", type=int, default=32, help="StocksEnv window_size")
    ap.add_argument("--steps", type=int, default=200_000, help="env steps per timed run")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs")
    ap.add_argument(
        "--make",
        action="store_true",
        help="build the env with gymnasium.make (adds its checker/order wrappers)",
    )
    args = ap.parse_args()

    df = read_ohlcv(args.csv) if args.csv else ohlcv_frame(synthetic_close(args.bars, args.seed))
    if len(df) < args.window + 2:
        raise SystemExit(f"need at least window + 2 = {args.window + 2} bars, got {len(df)}")
    env = make_env(df, args.window, args.make)
    n_actions = int(env.action_space.n)  # 2: Sell = 0, Buy = 1

    times, ended = [], 0
    for r in range(args.repeats):
        # Python ints: cheaper to compare in StocksEnv's `action == Actions.Buy.value`
        # than numpy scalars, and what an agent loop would usually pass.
        actions = np.random.default_rng([args.seed, r]).integers(0, n_actions, args.steps).tolist()
        elapsed, ended = run_once(env, actions, args.seed)
        times.append(elapsed)
    env.close()

    median_s = statistics.median(times)
    print(
        f"episode length {len(df) - 1 - args.window} steps; "
        f"{ended} episode end(s) per timed run",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "tool": "gym-anytrading",
                "version": version("gym-anytrading"),
                "bars": len(df),
                "window": args.window,
                "steps": args.steps,
                "median_s": median_s,
                "min_s": min(times),
                "steps_per_s": args.steps / median_s,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
