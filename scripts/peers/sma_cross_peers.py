#!/usr/bin/env python3
"""Reference results for the SMA(10)/SMA(30) crossover strategy from peer libraries.

Runs the same long-only crossover strategy in backtrader and backtesting.py (and in
a literal plain-Python loop, as a third independent check) on each daily data file,
checks that all three agree, and writes one JSON fixture per file to
``crates/sim/tests/fixtures/peers/sma_cross_<stem>.json`` for the Rust engine's tests.

Rules (the Rust engine implements exactly these):
  * fast = SMA(10), slow = SMA(30) over Close (not Adj Close).
  * At bar t, with both SMAs valid at t and t-1 (so t >= 30):
      golden cross: fast[t] > slow[t] and fast[t-1] <= slow[t-1]
      death cross:  fast[t] < slow[t] and fast[t-1] >= slow[t-1]
  * Long only. Golden cross while flat: buy floor((cash - 25) / close[t]) whole shares
    (skip if < 1). Death cross while long: sell the whole position.
  * Fills at the signal bar's close, no slippage. Fixed fee 25 per buy, 35 per sell.
  * Starting cash 100000. An open position is not closed at the end:
    final equity = cash + qty * last close.

Usage: python3 scripts/peers/sma_cross_peers.py [DATA_DIR] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import sys
import warnings
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

# backtesting.py shows a tqdm progress bar per run; it is noise in a batch script.
os.environ.setdefault("TQDM_DISABLE", "1")

import backtrader as bt  # noqa: E402
import pandas as pd  # noqa: E402
from backtesting import Backtest, Strategy  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "raw"
DEFAULT_OUT_DIR = REPO_ROOT / "crates" / "sim" / "tests" / "fixtures" / "peers"
FILES = (
    "nvda-1999-2014.txt",
    "orcl-1995-2014.txt",
    "yhoo-1996-2014.txt",
    "2006-day-001.txt",
)

STRATEGY_NAME = "sma_cross_10_30_long_only"
FAST, SLOW = 10, 30
INITIAL_CASH = 100_000.0
ENTRY_FEE, EXIT_FEE = 25.0, 35.0
# Cash is accumulated in a different order by each engine (backtesting.py, e.g., never
# debits the notional, only the P&L), so final equities differ by float rounding only.
EQUITY_TOL = 1e-6


# ---------------------------------------------------------------------------
# Shared definitions of the rules. They are the specification itself, so all three
# engines use them; what stays independent is each engine's SMA, order handling,
# fills and cash accounting.
# ---------------------------------------------------------------------------


def cross_signal(fast_prev: float, slow_prev: float, fast_now: float, slow_now: float) -> int:
    """+1 golden cross, -1 death cross, 0 none (equality counts as 'not yet crossed')."""
    if fast_now > slow_now and fast_prev <= slow_prev:
        return 1
    if fast_now < slow_now and fast_prev >= slow_prev:
        return -1
    return 0


def entry_quantity(cash: float, close: float) -> int:
    """Whole shares affordable after reserving the entry fee."""
    return math.floor((cash - ENTRY_FEE) / close)


@dataclass(frozen=True)
class ClosedTrade:
    entry_date: str
    exit_date: str
    quantity: int
    entry_price: float
    exit_price: float

    @property
    def pnl(self) -> float:
        return self.quantity * (self.exit_price - self.entry_price) - ENTRY_FEE - EXIT_FEE

    def to_json(self) -> dict:
        return {**asdict(self), "pnl": self.pnl}


@dataclass(frozen=True)
class OpenPosition:
    quantity: int
    entry_date: str
    entry_price: float


@dataclass(frozen=True)
class RunResult:
    final_equity: float
    trades: list[ClosedTrade]
    open_position: OpenPosition | None


@dataclass(frozen=True)
class Bars:
    name: str
    dates: list[str]  # ISO YYYY-MM-DD, exactly as in the file
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]

    def __len__(self) -> int:
        return len(self.close)

    def frame(self, pad: bool) -> pd.DataFrame:
        """OHLC frame for the peers, optionally with one padding bar (see PADDING)."""
        dates = [dt.date.fromisoformat(d) for d in self.dates]
        cols = {"Open": self.open, "High": self.high, "Low": self.low, "Close": self.close}
        cols = {k: list(v) for k, v in cols.items()}
        if pad:
            dates.append(dates[-1] + dt.timedelta(days=1))
            for values in cols.values():
                values.append(self.close[-1])
        df = pd.DataFrame(cols, index=pd.DatetimeIndex(pd.to_datetime(dates), name="Date"))
        df["Volume"] = 0.0  # unused; zero on the index file anyway
        return df


# PADDING: both peers fill a close-of-bar order only when the *next* bar arrives
# (backtrader's cheat-on-close executes it in the following broker cycle at the
# creation bar's close; backtesting.py processes orders at the start of the next bar
# and, with trade_on_close, fills at the previous close). A signal on the final bar
# would therefore never fill, while the rules fill it at that bar's close. This
# happens for real: YHOO has a golden cross on its last bar (2014-12-31). So each
# peer gets one extra padding bar (a copy of the last close, dated the next day) on
# which the strategy does nothing: the pending order fills at the last real close,
# and equity read on the padding bar equals cash + qty * last close.


def load_bars(path: Path) -> Bars:
    # Parse with the csv module and float() (correctly rounded, like Rust's
    # str::parse::<f64>) rather than pandas' default C float parser, which is not
    # guaranteed to round every value correctly: SMA ties (see ORCL below) are
    # sensitive to the last bit.
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"Date", "Open", "High", "Low", "Close"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        rows = list(reader)
    bars = Bars(
        name=path.name,
        dates=[r["Date"] for r in rows],
        open=[float(r["Open"]) for r in rows],
        high=[float(r["High"]) for r in rows],
        low=[float(r["Low"]) for r in rows],
        close=[float(r["Close"]) for r in rows],
    )
    if any(b <= a for a, b in zip(bars.dates, bars.dates[1:])):
        raise ValueError(f"{path}: dates are not strictly increasing")
    if len(bars) <= SLOW:
        raise ValueError(f"{path}: too few bars ({len(bars)})")
    return bars


def pair_fills(
    fills: list[tuple[str, int, float]],
) -> tuple[list[ClosedTrade], OpenPosition | None]:
    """Turn an alternating buy/sell fill list (date, signed qty, price) into trades."""
    trades, pos = [], None
    for date, qty, price in fills:
        if qty > 0:
            assert pos is None, "buy while long"
            pos = OpenPosition(qty, date, price)
        else:
            assert pos is not None and -qty == pos.quantity, "sell must close the position"
            trades.append(ClosedTrade(pos.entry_date, date, pos.quantity, pos.entry_price, price))
            pos = None
    return trades, pos


# ---------------------------------------------------------------------------
# 1. Plain Python: the rules, literally.
# ---------------------------------------------------------------------------


def sma_plain(values: list[float], period: int) -> list[float | None]:
    # Fresh left-to-right sum of each window, divided by the period: the same float
    # operations as Rust's `window.iter().sum::<f64>() / period as f64`. This matters:
    # ORCL has an exact tie on 2004-06-29 (fast == slow in decimal arithmetic, and
    # also in these floats), so the golden cross comes on 2004-06-30. A running sum
    # (add new, subtract old) rounds the tie to fast > slow, moves the entry a day
    # earlier and changes every later ORCL trade (final equity 547979.999729 instead
    # of 540567.029362). backtrader (math.fsum) and pandas' rolling mean give the
    # tie exactly too. An explicit loop rather than sum(): from Python 3.12 on,
    # sum() of floats uses compensated summation.
    out: list[float | None] = [None] * len(values)
    for i in range(period - 1, len(values)):
        acc = 0.0
        for v in values[i - period + 1 : i + 1]:
            acc += v
        out[i] = acc / period
    return out


def run_plain(bars: Bars) -> RunResult:
    close = bars.close
    fast, slow = sma_plain(close, FAST), sma_plain(close, SLOW)
    cash, fills, qty = INITIAL_CASH, [], 0
    for t in range(SLOW, len(bars)):  # slow first valid at SLOW-1, so t-1 >= SLOW-1
        sig = cross_signal(fast[t - 1], slow[t - 1], fast[t], slow[t])
        if sig > 0 and qty == 0:
            q = entry_quantity(cash, close[t])
            if q >= 1:
                cash -= q * close[t] + ENTRY_FEE
                qty = q
                fills.append((bars.dates[t], q, close[t]))
        elif sig < 0 and qty > 0:
            cash += qty * close[t] - EXIT_FEE
            fills.append((bars.dates[t], -qty, close[t]))
            qty = 0
    trades, pos = pair_fills(fills)
    return RunResult(cash + qty * close[-1], trades, pos)


# ---------------------------------------------------------------------------
# 2. backtrader
# ---------------------------------------------------------------------------


class BtFixedFees(bt.CommInfoBase):
    """Fixed fee per order: 25 on buys, 35 on sells.

    backtrader passes the signed executed size (opened > 0 for a buy, closed < 0 for
    a sell) to _getcommission, so the sign tells entry from exit.
    """

    params = (
        ("stocklike", True),
        ("commtype", bt.CommInfoBase.COMM_FIXED),
        ("commission", 0.0),
    )

    def _getcommission(self, size, price, pseudoexec):
        return ENTRY_FEE if size > 0 else EXIT_FEE


class BtSmaCross(bt.Strategy):
    params = (("n_real", None),)

    def __init__(self):
        self.fast = bt.ind.SMA(self.data.close, period=FAST)
        self.slow = bt.ind.SMA(self.data.close, period=SLOW)
        self.fills = []
        # Not bt.ind.CrossOver: it compares against the last *non-zero* difference,
        # so fast > slow, then fast == slow, then fast > slow is no cross there, but
        # it is a golden cross under our rule (fast[t-1] <= slow[t-1]); the
        # comparison is written out in next() instead.

    def next(self):
        n = len(self)  # bars seen so far; current bar index is n - 1
        if n > self.p.n_real:  # the padding bar: only lets the last order fill
            return
        if n < SLOW + 1:  # need the slow SMA at t-1 as well
            return
        sig = cross_signal(self.fast[-1], self.slow[-1], self.fast[0], self.slow[0])
        if sig > 0 and not self.position:
            qty = entry_quantity(self.broker.getcash(), self.data.close[0])
            if qty >= 1:
                self.buy(size=qty)
        elif sig < 0 and self.position:
            self.sell(size=self.position.size)

    def notify_order(self, order):
        if order.status == order.Completed:
            # With coc the execution is stamped with the creation (signal) bar's time.
            # order.executed.price is a size-weighted average recomputed on every
            # fill (p * q / q), which can be off by an ulp from the close it filled
            # at (3839.9000000000005 vs 3839.9); the single execution bit carries
            # the exact fill price.
            (fill,) = order.executed.exbits
            date = bt.num2date(fill.dt).date().isoformat()
            self.fills.append((date, int(fill.size), fill.price))
        elif order.status in (order.Canceled, order.Margin, order.Rejected, order.Expired):
            raise RuntimeError(f"backtrader order not filled: {order.getstatusname()}")


def run_backtrader(bars: Bars) -> RunResult:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=bars.frame(pad=True), openinterest=None))
    cerebro.addstrategy(BtSmaCross, n_real=len(bars))
    cerebro.broker.setcash(INITIAL_CASH)
    cerebro.broker.set_coc(True)  # fill market orders at the signal bar's close
    cerebro.broker.addcommissioninfo(BtFixedFees())
    (strat,) = cerebro.run()
    trades, pos = pair_fills(strat.fills)
    # Value after the padding bar = cash + qty * last real close (padding close).
    return RunResult(cerebro.broker.getvalue(), trades, pos)


# ---------------------------------------------------------------------------
# 3. backtesting.py
# ---------------------------------------------------------------------------


class BpFeeSchedule:
    """Commission callable for backtesting.py that charges 25 on buys, 35 on sells.

    backtesting.py 0.6.6 calls commission(size, price) with the *order* size when a
    trade opens (and for its margin check), but on close it calls it with the *trade*
    size (positive for a long) and charges that at exit, and again with the trade
    size and entry price only to fill Trade._commissions for its stats. The sign
    therefore cannot tell a long's exit from its entry. Since this strategy has at
    most one order in flight, the strategy tells the schedule which fee its next
    order carries before placing it. (Consequence: backtesting.py's own per-trade
    stats report 35 + 35 commission; its cash, and so equity, is charged 25 + 35.
    Trade P&L here is computed from fills, not from those stats.)
    """

    def __init__(self):
        self.pending_fee = None

    def __call__(self, order_size, price):
        assert self.pending_fee is not None, "order placed without a fee"
        return self.pending_fee


class BpSmaCross(Strategy):
    n_real = None
    fees = None

    def init(self):
        def sma(values, period):
            return pd.Series(values).rolling(period).mean().to_numpy()

        self.fast = self.I(sma, self.data.Close, FAST, name="fast")
        self.slow = self.I(sma, self.data.Close, SLOW, name="slow")

    def next(self):
        t = len(self.data) - 1
        if t >= self.n_real:  # the padding bar: only lets the last order fill
            return
        # backtesting.py starts calling next() one bar after the last indicator
        # warm-up NaN, i.e. at t = SLOW, so [-2] (t-1) is valid here.
        f_prev, s_prev, f_now, s_now = self.fast[-2], self.slow[-2], self.fast[-1], self.slow[-1]
        assert not any(map(math.isnan, (f_prev, s_prev))), "SMA not warmed up"
        sig = cross_signal(f_prev, s_prev, f_now, s_now)
        if sig > 0 and not self.position:
            # Flat, so equity == cash (backtesting.py's equity = cash + open P&L).
            qty = entry_quantity(self.equity, self.data.Close[-1])
            if qty >= 1:
                self.fees.pending_fee = ENTRY_FEE
                self.buy(size=qty)  # integer size: an absolute unit count, not a fraction
        elif sig < 0 and self.position:
            self.fees.pending_fee = EXIT_FEE
            self.position.close()  # a non-contingent order: fills at prev close too


def run_backtesting(bars: Bars) -> RunResult:
    fees = BpFeeSchedule()
    bt_ = Backtest(
        bars.frame(pad=True),
        BpSmaCross,
        cash=INITIAL_CASH,
        spread=0.0,
        commission=fees,
        margin=1.0,  # no leverage: an order that does not fit in cash is cancelled
        trade_on_close=True,  # market orders fill at the signal bar's close
        hedging=False,
        exclusive_orders=False,  # explicit sizes; nothing auto-closes or resizes
        finalize_trades=False,  # the rules leave the last position open
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = bt_.run(n_real=len(bars), fees=fees)
    for w in caught:
        # The broker silently cancels orders it cannot afford; that must not happen.
        if "cancel" in str(w.message).lower():
            raise RuntimeError(f"backtesting.py: {w.message}")
    strat = stats._strategy
    dates = bars.dates + ["<padding>"]
    fills = []
    for tr in strat.closed_trades:
        fills.append((dates[tr.entry_bar], int(tr.size), float(tr.entry_price)))
        fills.append((dates[tr.exit_bar], -int(tr.size), float(tr.exit_price)))
    for tr in strat.trades:
        fills.append((dates[tr.entry_bar], int(tr.size), float(tr.entry_price)))
    trades, pos = pair_fills(fills)
    return RunResult(float(stats["Equity Final [$]"]), trades, pos)


# ---------------------------------------------------------------------------


def same_result(a: RunResult, b: RunResult) -> bool:
    # Trades must match exactly: fills are at Close values, so prices are the very
    # same floats; quantities and dates are discrete.
    return (
        a.trades == b.trades
        and a.open_position == b.open_position
        and abs(a.final_equity - b.final_equity) <= EQUITY_TOL
    )


def fixture(bars: Bars, ref: RunResult, peers: dict[str, RunResult], agree: bool) -> dict:
    versions = {"backtrader": version("backtrader"), "backtesting.py": version("backtesting")}
    out = {
        "file": bars.name,
        "strategy": STRATEGY_NAME,
        "initial_cash": INITIAL_CASH,
        "entry_fee": ENTRY_FEE,
        "exit_fee": EXIT_FEE,
        "fill": "signal_close",
        "final_equity": ref.final_equity,
        "peers_agree": agree,
        "peers": {
            name: {"version": versions[name], "final_equity": res.final_equity}
            for name, res in peers.items()
        },
        "open_position": asdict(ref.open_position) if ref.open_position else None,
        "trades": [t.to_json() for t in ref.trades],
    }
    if not agree:
        # Keep each peer's own trade list so the disagreement can be inspected.
        for name, res in peers.items():
            out["peers"][name]["trades"] = [t.to_json() for t in res.trades]
            out["peers"][name]["open_position"] = (
                asdict(res.open_position) if res.open_position else None
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    header = f"{'file':<20} {'bars':>5} {'trades':>6} {'open':>5} {'plain':>16} {'backtrader':>16} {'backtesting.py':>16}  agree"
    rows, all_agree = [header, "-" * len(header)], True
    for name in FILES:
        bars = load_bars(args.data_dir / name)
        ref = run_plain(bars)
        peers = {"backtrader": run_backtrader(bars), "backtesting.py": run_backtesting(bars)}
        agree = all(same_result(ref, res) for res in peers.values())
        all_agree &= agree
        out_path = args.out_dir / f"sma_cross_{Path(name).stem}.json"
        out_path.write_text(json.dumps(fixture(bars, ref, peers, agree), indent=2) + "\n")
        eq = [f"{r.final_equity:16.6f}" for r in (ref, *peers.values())]
        rows.append(
            f"{name:<20} {len(bars):>5} {len(ref.trades):>6} "
            f"{ref.open_position.quantity if ref.open_position else '-':>5} {' '.join(eq)}  "
            f"{'yes' if agree else 'NO'}"
        )
    print("\n".join(rows))
    print(f"fixtures written to {args.out_dir}")
    if not all_agree:
        print("ERROR: engines disagree; see peers_agree in the fixtures", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
