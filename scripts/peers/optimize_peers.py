#!/usr/bin/env python3
"""Parameter grids of the SMA crossover in vectorbt and backtesting.py, for
comparison with `tradelab optimize` (scripts/bench/optimize_vs_peers.sh).

Rules, as in sma_cross_peers.py and vectorbt_bench.py: golden cross
(fast[t] > slow[t], fast[t-1] <= slow[t-1]) buys floor((cash - fee) / close) whole
shares at the signal bar's close; a death cross sells everything at the close;
long only; a fixed fee of 25 per order (entry and exit); 100,000 starting cash;
the last position stays open.

  optimize_peers.py vectorbt --file F --fast 5:50 --slow 20:200:4 [--repeats 3] [--write-returns OUT.json]
  optimize_peers.py backtesting --file F --fast 5:50:5 --slow 20:200:20
  optimize_peers.py synthetic --bars 1000000 --out F     (an OHLC file for both tools)

Ranges are START:END[:STEP], both ends included; only fast < slow pairs run.
Each timing mode prints one JSON line:
  {"tool", "version", "bars", "combinations", "median_s", "min_s", "best", "best_total_return", "peak_rss_mb"}
vectorbt: the time of one grid (indicators for every combination with vbt.MA.run,
signals, Portfolio.from_signals over all columns, total returns), median of --repeats
after one untimed warm-up for numba's JIT. backtesting.py: one Backtest.optimize().
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from backtesting import Strategy  # noqa: E402

INIT_CASH = 100_000.0
FEE = 25.0


def span(text: str) -> list[int]:
    parts = [int(p) for p in text.split(":")]
    start, end = parts[0], parts[1]
    step = parts[2] if len(parts) > 2 else 1
    return list(range(start, end + 1, step))


def pairs(fast: list[int], slow: list[int]) -> list[tuple[int, int]]:
    # tradelab's grid order: the first parameter varies slowest.
    return [(f, s) for f in fast for s in slow if f < s]


def read_ohlc(path: Path) -> pd.DataFrame:
    # float() rounds correctly, like Rust's parser, so both tools see the same bits.
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    key = "Date" if "Date" in rows[0] else "timestamp"
    idx = pd.DatetimeIndex(pd.to_datetime([r[key] for r in rows]))
    cols = {c: np.array([float(r[c]) for r in rows]) for c in ("Open", "High", "Low", "Close")}
    return pd.DataFrame(cols, index=idx)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_vectorbt(args) -> dict:
    import vectorbt as vbt

    close = read_ohlc(Path(args.file))["Close"]
    grid = pairs(span(args.fast), span(args.slow))
    fw = [f for f, _ in grid]
    sw = [s for _, s in grid]

    def once():
        fast = vbt.MA.run(close, fw, short_name="fast").ma.to_numpy()
        slow = vbt.MA.run(close, sw, short_name="slow").ma.to_numpy()
        entries = np.zeros(fast.shape, dtype=bool)
        exits = np.zeros(fast.shape, dtype=bool)
        entries[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
        exits[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
        pf = vbt.Portfolio.from_signals(
            close.to_numpy()[:, None],
            entries,
            exits,
            direction="longonly",
            accumulate=False,
            size=np.inf,
            size_granularity=1.0,
            init_cash=INIT_CASH,
            fees=0.0,
            fixed_fees=FEE,
            slippage=0.0,
        )
        return np.asarray(pf.total_return())

    once()  # numba JIT compilation, untimed
    times, totals = [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        totals = once()
        times.append(time.perf_counter() - t0)
    best = int(np.argmax(totals))  # the first of equal bests, as tradelab ranks
    if args.write_returns:
        Path(args.write_returns).write_text(
            json.dumps({f"{f},{s}": float(r) for (f, s), r in zip(grid, totals)})
        )
    return {
        "tool": "vectorbt",
        "version": version("vectorbt"),
        "bars": int(len(close)),
        "combinations": len(grid),
        "median_s": statistics.median(times),
        "min_s": min(times),
        "best": list(grid[best]),
        "best_total_return": float(totals[best]),
        "peak_rss_mb": peak_rss_mb(),
    }


def fixed_fee(size, price):
    return FEE


class Cross(Strategy):
    """The rules in backtesting.py, at module level so its worker processes
    can unpickle it. The padding bar is marked by a volume of -1."""

    fast = 10
    slow = 30

    def init(self):
        def sma(values, period):
            return pd.Series(values).rolling(period).mean().to_numpy()

        self.f = self.I(sma, self.data.Close, self.fast)
        self.s = self.I(sma, self.data.Close, self.slow)

    def next(self):
        if self.data.Volume[-1] < 0:
            return
        fp, sp, fn, sn = self.f[-2], self.s[-2], self.f[-1], self.s[-1]
        if fn > sn and fp <= sp and not self.position:
            qty = int((self.equity - FEE) // self.data.Close[-1])
            if qty >= 1:
                self.buy(size=qty)
        elif fn < sn and fp >= sp and self.position:
            self.position.close()


def fast_below_slow(p):
    return p.fast < p.slow


def run_backtesting(args) -> dict:
    import warnings

    from backtesting import Backtest

    frame = read_ohlc(Path(args.file))
    n_real = len(frame)
    # One padding bar so a signal on the last bar fills at its close (see
    # sma_cross_peers.py, PADDING).
    pad = frame.iloc[[-1]].copy()
    pad.index = pad.index + pd.Timedelta(days=1)
    for col in ("Open", "High", "Low"):
        pad[col] = pad["Close"]
    frame["Volume"] = 0.0
    pad["Volume"] = -1.0
    frame = pd.concat([frame, pad])
    bt = Backtest(
        frame,
        Cross,
        cash=INIT_CASH,
        commission=fixed_fee,
        trade_on_close=True,
        exclusive_orders=False,
        finalize_trades=False,
    )
    grid = pairs(span(args.fast), span(args.slow))
    fast, slow = span(args.fast), span(args.slow)
    times = []
    stats = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = bt.optimize(fast=fast, slow=slow, constraint=fast_below_slow, maximize="Return [%]")
        times.append(time.perf_counter() - t0)
    return {
        "tool": "backtesting.py",
        "version": version("backtesting"),
        "bars": n_real,
        "combinations": len(grid),
        "median_s": statistics.median(times),
        "min_s": min(times),
        "best": [int(stats._strategy.fast), int(stats._strategy.slow)],
        "best_total_return": float(stats["Return [%]"]) / 100.0,
        "peak_rss_mb": peak_rss_mb(),
    }


def write_synthetic(args) -> None:
    rng = np.random.default_rng(args.seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, args.bars)))
    start = np.datetime64("2000-01-03T00:00")
    with open(args.out, "w") as fh:
        fh.write("Date,Open,High,Low,Close,Volume\n")
        for i, c in enumerate(close):
            ts = str(start + np.timedelta64(i, "m")).replace("T", " ")
            v = repr(float(c))
            fh.write(f"{ts},{v},{v},{v},{v},0\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("vectorbt", "backtesting"):
        s = sub.add_parser(name)
        s.add_argument("--file", required=True)
        s.add_argument("--fast", default="5:50")
        s.add_argument("--slow", default="20:200:4")
        s.add_argument("--repeats", type=int, default=3)
        s.add_argument("--write-returns")
    s = sub.add_parser("synthetic")
    s.add_argument("--bars", type=int, default=1_000_000)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--out", required=True)
    args = p.parse_args()
    if args.cmd == "synthetic":
        write_synthetic(args)
        return
    try:
        out = run_vectorbt(args) if args.cmd == "vectorbt" else run_backtesting(args)
    except MemoryError:
        out = {"tool": args.cmd, "failed": "MemoryError", "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
