#!/usr/bin/env python3
"""Benchmark vectorbt on the SMA(10)/SMA(30) long-only crossover, for comparison with
the Rust engine's benchmark on the identical close series.

Rules as in sma_cross_peers.py: golden cross (fast[t] > slow[t], fast[t-1] <= slow[t-1])
enters with floor((cash - 25) / close) whole shares at the close; death cross
(fast[t] < slow[t], fast[t-1] >= slow[t-1]) sells everything at the close; fees 25 per
buy and 35 per sell; the last position stays open.

The close series is a synthetic geometric random walk (--bars, --seed), or read from a
CSV with a `close` column (--csv) so that another tool can be timed on exactly the same
numbers; --write-csv saves the series used.

Prints one JSON line:
  {"tool", "version", "bars", "median_s", "min_s", "bars_per_s", "final_value", "trades"}
where times are per run of (a) indicators + signals and (b) Portfolio.from_signals +
reading the final value, over --repeats runs after one untimed warm-up (numba JIT
compilation), bars_per_s = bars / median_s, and trades counts closed trades.
"""

from __future__ import annotations

import os

# Must be set before numba is imported: keep vectorbt single-threaded so that it is
# compared like for like with a single-threaded engine (and the timings are stable on
# a small machine).
os.environ["NUMBA_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import vectorbt as vbt  # noqa: E402

FAST, SLOW = 10, 30
INIT_CASH = 100_000.0
ENTRY_FEE, EXIT_FEE = 25.0, 35.0
# Synthetic series: 100 * exp(cumsum(N(0, SIGMA))), numpy's default_rng(seed).
# SIGMA = 0.001 keeps prices in a sane range over 1M bars (66..270 for seed 7). On a
# driftless walk the fixed fees drain the account all the same (seed 7: last fill at
# bar 87391, after which entries are skipped for lack of cash). With SIGMA = 0.01
# the drain goes further and vectorbt then refuses sells whose proceeds do not cover
# the 35 fee (keeping the position), where the rules sell into negative cash; --check
# catches that.
START_PRICE, SIGMA = 100.0, 0.001


def synthetic_close(bars: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return START_PRICE * np.exp(np.cumsum(rng.normal(0.0, SIGMA, bars)))


def read_close(path: Path) -> np.ndarray:
    # Python's float() rounds correctly, like Rust's str::parse::<f64>, so both tools
    # see bit-identical closes (pandas 3 deprecates its float_precision switch).
    with path.open(newline="") as fh:
        return np.array([float(row["close"]) for row in csv.DictReader(fh)], dtype=np.float64)


def write_close(path: Path, close: np.ndarray) -> None:
    # %.17g round-trips every float64 exactly.
    np.savetxt(path, close, fmt="%.17g", header="close", comments="")


def signals(close: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a) SMAs with vectorbt's MA indicator, then the crossover rule with numpy.

    Not MA.ma_crossed_above/below: vectorbt's crossed_above needs the fast line to
    have been strictly below before going above (an equal bar neither resets nor
    counts), so above, equal, above is no cross there but is a golden cross under
    our rule. NaN comparisons are False, so no signal fires before both SMAs are
    valid at t-1 and t.
    """
    fast = vbt.MA.run(close, FAST).ma.to_numpy()
    slow = vbt.MA.run(close, SLOW).ma.to_numpy()
    entries = np.zeros(fast.shape, dtype=bool)
    exits = np.zeros(fast.shape, dtype=bool)
    entries[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
    exits[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
    # from_signals takes one fixed_fees value per bar, not per side; a golden and a
    # death cross can never fall on the same bar, so a per-bar array charges exactly
    # 25 on buys and 35 on sells.
    fixed_fees = np.where(exits, EXIT_FEE, ENTRY_FEE)
    return entries, exits, fixed_fees


def backtest(close: pd.Series, entries, exits, fixed_fees) -> vbt.Portfolio:
    """(b) The portfolio simulation."""
    return vbt.Portfolio.from_signals(
        close,  # fills at the signal bar's close (price defaults to close)
        entries,
        exits,
        direction="longonly",
        accumulate=False,  # a golden cross while long is ignored
        size=np.inf,  # all cash: vectorbt then buys (cash - fixed_fees) / price ...
        size_granularity=1.0,  # ... rounded down to whole shares
        init_cash=INIT_CASH,
        fees=0.0,
        fixed_fees=fixed_fees,
        slippage=0.0,
    )


def run_once(close: pd.Series) -> tuple[float, float, vbt.Portfolio]:
    t0 = time.perf_counter()
    entries, exits, fixed_fees = signals(close)
    pf = backtest(close, entries, exits, fixed_fees)
    final_value = float(pf.final_value())
    return time.perf_counter() - t0, final_value, pf


def reference_final_value(close: np.ndarray) -> tuple[float, int]:
    """The rules as a plain loop, for --check (slow: a Python loop over all bars)."""
    c = close.tolist()
    csum = np.concatenate([[0.0], np.cumsum(close)])
    fast = (csum[FAST:] - csum[:-FAST]) / FAST  # fast[i] is the SMA ending at bar i+FAST-1
    slow = (csum[SLOW:] - csum[:-SLOW]) / SLOW
    f = lambda t: fast[t - FAST + 1]  # noqa: E731
    s = lambda t: slow[t - SLOW + 1]  # noqa: E731
    cash, qty, closed = INIT_CASH, 0, 0
    for t in range(SLOW, len(c)):
        if qty == 0 and f(t) > s(t) and f(t - 1) <= s(t - 1):
            q = math.floor((cash - ENTRY_FEE) / c[t])
            if q >= 1:
                cash -= q * c[t] + ENTRY_FEE
                qty = q
        elif qty > 0 and f(t) < s(t) and f(t - 1) >= s(t - 1):
            cash += qty * c[t] - EXIT_FEE
            qty, closed = 0, closed + 1
    return cash + qty * c[-1], closed


def main() -> int:
    global INIT_CASH
    ap = argparse.ArgumentParser(description="vectorbt SMA crossover benchmark")
    ap.add_argument("--bars", type=int, default=1_000_000, help="synthetic series length")
    ap.add_argument("--seed", type=int, default=7, help="synthetic series seed")
    ap.add_argument("--csv", type=Path, help="read the close series from this CSV instead")
    ap.add_argument("--write-csv", type=Path, help="save the close series used to this CSV")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs after one warm-up")
    ap.add_argument(
        "--init-cash",
        type=float,
        default=INIT_CASH,
        help="starting cash; tradelab's side-by-side run uses 1e9 so fees never exhaust it",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="also compare with a plain-loop implementation of the rules (stderr)",
    )
    args = ap.parse_args()
    INIT_CASH = args.init_cash

    raw = read_close(args.csv) if args.csv else synthetic_close(args.bars, args.seed)
    if args.write_csv:
        write_close(args.write_csv, raw)
    close = pd.Series(raw, name="close")

    run_once(close)  # warm-up: numba compiles (or loads its cache) here
    times, final_value, pf = [], None, None
    for _ in range(args.repeats):
        elapsed, final_value, pf = run_once(close)
        times.append(elapsed)
    trades = int(pf.trades.closed.count())

    if args.check:
        ref_value, ref_trades = reference_final_value(raw)
        ok = ref_trades == trades and math.isclose(ref_value, final_value, rel_tol=1e-9)
        print(
            f"check: plain loop final_value={ref_value!r} trades={ref_trades}: "
            f"{'agrees' if ok else 'DIFFERS'}",
            file=sys.stderr,
        )
        if not ok:
            return 1

    median_s = statistics.median(times)
    print(
        json.dumps(
            {
                "tool": "vectorbt",
                "version": vbt.__version__,
                "bars": len(raw),
                "median_s": median_s,
                "min_s": min(times),
                "bars_per_s": len(raw) / median_s,
                "final_value": final_value,
                "trades": trades,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
