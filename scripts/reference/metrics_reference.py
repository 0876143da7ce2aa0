#!/usr/bin/env python3
"""Reference values for tradelab's backtest metrics, computed with empyrical.

Builds three equity curves (two from the bundled real price files, one flat)
plus a fixed list of trade P&Ls per case, computes every backtest metric of
the `sim` crate with the published `empyrical-reloaded` library wherever its
definition matches ours, and writes them together with the inputs to
`crates/sim/tests/fixtures/metrics/reference.json`. The Rust test re-reads
the inputs from that file and compares its own metrics to `expected`.

Where each metric comes from (see also `metric_sources` in the output):

* sharpe            empyrical.sharpe_ratio(r, risk_free=rf_p, annualization=P)
* sortino           empyrical.sortino_ratio(r, required_return=rf_p, annualization=P)
* annual_volatility empyrical.annual_volatility(r, annualization=P)
* max_drawdown      empyrical.max_drawdown(r)
* cagr              empyrical.cagr(r, annualization=n_returns / years)
* calmar            empyrical.calmar_ratio(r, annualization=n_returns / years)
  empyrical's cagr/annual_return counts years as n_returns / P, while ours
  counts calendar years from the timestamps; passing annualization =
  n_returns / years makes empyrical's years equal ours, so the library still
  does the arithmetic. The plain formula is computed too and must agree.
* total_return      plain: E_last / E_first - 1 (checked against
                    empyrical.cum_returns_final(r), which multiplies out the
                    returns and so carries more rounding)
* max_drawdown_duration_bars   plain Python: empyrical has no such metric
* trade statistics  plain Python: empyrical has none, and quantstats' versions
                    work on return series with other conventions (its
                    win_rate leaves zero entries out of the denominator; ours
                    counts a 0.0 trade as a non-winning trade)

Every library value is checked against an independent plain numpy / Python
computation of the definition; the script fails if they disagree by more
than 1e-9 relative.

Usage (from anywhere):
    python scripts/reference/metrics_reference.py          # (re)write fixture
    python scripts/reference/metrics_reference.py --check  # compare to file
"""

import csv
import json
import math
import statistics
import sys
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np
import empyrical

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "crates" / "sim" / "tests" / "fixtures" / "metrics" / "reference.json"
NVDA = REPO / "data" / "raw" / "nvda-1999-2014.txt"
INTRADAY = REPO / "data" / "raw" / "2006-min-005.txt"

DAY_MS = 86_400_000
YEAR_MS = 365.25 * DAY_MS
REL_TOL = 1e-9


def utc_ms(date, time="00:00:00"):
    dt = datetime.strptime(f"{date} {time}", "%Y-%m-%d %H:%M:%S")
    return int(dt.replace(tzinfo=timezone.utc).timestamp() * 1000)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- inputs

def case_nvda():
    rows = read_rows(NVDA)
    ts = [utc_ms(r["Date"]) for r in rows]
    # cash 50000 plus 1000 shares
    eq = [50000.0 + 1000.0 * float(r["Close"]) for r in rows]
    return dict(
        timestamps=ts,
        equity=eq,
        trade_pnls=[120.5, -40.25, 300.0, -10.0, 0.0, 55.5, -220.75],
        periods_per_year=252,
        risk_free_rate=0.02,
    )


def case_intraday():
    rows = read_rows(INTRADAY)
    ts = [utc_ms(r["Date"], r["Time"]) for r in rows]
    closes = [float(r["Close"]) for r in rows]
    eq = [100000.0 * c / closes[0] for c in closes]
    per_date = {}
    for r in rows:
        per_date[r["Date"]] = per_date.get(r["Date"], 0) + 1
    median_bars = statistics.median(per_date.values())
    if median_bars != int(median_bars):
        sys.exit(f"median bars per date is not whole: {median_bars}")
    median_bars = int(median_bars)
    return dict(
        timestamps=ts,
        equity=eq,
        trade_pnls=[-5.0, -7.5, -1.25],
        periods_per_year=252 * median_bars,
        risk_free_rate=0.0,
        bars_per_day_median=median_bars,
    )


def case_flat():
    start = utc_ms("2020-01-01")
    return dict(
        timestamps=[start + i * DAY_MS for i in range(50)],
        equity=[1000.0] * 50,
        trade_pnls=[],
        periods_per_year=252,
        risk_free_rate=0.0,
    )


# ---------------------------------------------------------------- checks

def close(a, b, what):
    if a is None or b is None:
        if a is not None or b is not None:
            sys.exit(f"{what}: library {a!r} vs plain {b!r}")
        return
    if a == b:
        return
    if abs(a - b) > REL_TOL * max(abs(a), abs(b), 1e-300):
        sys.exit(f"{what}: library {a!r} vs plain {b!r}")


def finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------- metrics

def plain_metrics(eq, ts, P, rf):
    """Independent plain-numpy implementation of the definitions."""
    e = np.asarray(eq, dtype=float)
    r = e[1:] / e[:-1] - 1.0
    rfp = rf / P
    x = r - rfp
    out = {}
    sd = x.std(ddof=1)
    out["sharpe"] = None if sd == 0 else x.mean() / sd * math.sqrt(P)
    dd = math.sqrt(np.mean(np.minimum(x, 0.0) ** 2))
    out["sortino"] = None if dd == 0 else x.mean() * P / (dd * math.sqrt(P))
    out["annual_volatility"] = r.std(ddof=1) * math.sqrt(P)
    peak = np.maximum.accumulate(e)
    mdd = float(np.min(e / peak - 1.0))
    out["max_drawdown"] = mdd
    out["total_return"] = e[-1] / e[0] - 1.0
    years = (ts[-1] - ts[0]) / YEAR_MS
    cagr = (e[-1] / e[0]) ** (1.0 / years) - 1.0
    out["cagr"] = cagr
    out["calmar"] = None if mdd == 0 else cagr / abs(mdd)
    return out


def drawdown_duration_bars(eq):
    """Longest run of consecutive points strictly below the running peak."""
    peak = -math.inf
    run = best = 0
    for v in eq:
        if v > peak:
            peak = v
        if v < peak:
            run += 1
            best = max(best, run)
        else:
            run = 0
    return best


def trade_metrics(pnls):
    n = len(pnls)
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_win = math.fsum(wins)
    gross_loss = abs(math.fsum(losses))
    if not losses:
        pf = None
    else:
        pf = gross_win / gross_loss  # 0.0 when there are losses but no wins
    return dict(
        total_trades=n,
        win_rate=None if n == 0 else len(wins) / n,
        profit_factor=pf,
        avg_trade_pnl=None if n == 0 else math.fsum(pnls) / n,
        best_trade_pnl=None if n == 0 else max(pnls),
        worst_trade_pnl=None if n == 0 else min(pnls),
    )


def library_metrics(name, c):
    eq, ts, P, rf = c["equity"], c["timestamps"], c["periods_per_year"], c["risk_free_rate"]
    e = np.asarray(eq, dtype=float)
    r = e[1:] / e[:-1] - 1.0
    rfp = rf / P
    years = (ts[-1] - ts[0]) / YEAR_MS
    # empyrical's annual_return uses years = len(r) / annualization; choose
    # annualization so that equals our calendar years.
    ann_years = len(r) / years

    with np.errstate(divide="ignore", invalid="ignore"):
        lib = dict(
            sharpe=finite_or_none(empyrical.sharpe_ratio(r, risk_free=rfp, annualization=P)),
            sortino=finite_or_none(empyrical.sortino_ratio(r, required_return=rfp, annualization=P)),
            annual_volatility=finite_or_none(empyrical.annual_volatility(r, annualization=P)),
            max_drawdown=finite_or_none(empyrical.max_drawdown(r)),
            cagr=finite_or_none(empyrical.cagr(r, annualization=ann_years)),
            calmar=finite_or_none(empyrical.calmar_ratio(r, annualization=ann_years)),
        )
        lib_total_return = float(empyrical.cum_returns_final(r))
    # empyrical.max_drawdown returns -0.0 for a curve that never falls
    if lib["max_drawdown"] == 0:
        lib["max_drawdown"] = 0.0

    plain = plain_metrics(eq, ts, P, rf)
    for k, v in lib.items():
        close(v, plain[k], f"{name}.{k}")
    close(lib_total_return, plain["total_return"], f"{name}.total_return (cum_returns_final)")

    expected = dict(
        sharpe=lib["sharpe"],
        sortino=lib["sortino"],
        annual_volatility=lib["annual_volatility"],
        max_drawdown=lib["max_drawdown"],
        max_drawdown_duration_bars=drawdown_duration_bars(eq),
        total_return=float(plain["total_return"]),
        cagr=lib["cagr"],
        calmar=lib["calmar"],
    )
    expected.update(trade_metrics(c["trade_pnls"]))
    diffs = {k: (lib[k], plain[k]) for k in lib}
    diffs["total_return"] = (lib_total_return, plain["total_return"])
    return expected, diffs


METRIC_SOURCES = {
    "sharpe": "empyrical.sharpe_ratio(r, risk_free=rf/P, annualization=P)",
    "sortino": "empyrical.sortino_ratio(r, required_return=rf/P, annualization=P)",
    "annual_volatility": "empyrical.annual_volatility(r, annualization=P)",
    "max_drawdown": "empyrical.max_drawdown(r)",
    "max_drawdown_duration_bars": "plain python (not in empyrical)",
    "total_return": "plain: E_last/E_first - 1 (checked vs empyrical.cum_returns_final)",
    "cagr": "empyrical.cagr(r, annualization=len(r)/calendar_years)",
    "calmar": "empyrical.calmar_ratio(r, annualization=len(r)/calendar_years)",
    "trades": "plain python (not in empyrical)",
}


def build():
    cases = {
        "nvda_buy_and_hold": case_nvda(),
        "intraday_5m": case_intraday(),
        "flat": case_flat(),
    }
    out_cases = {}
    report = {}
    for name, c in cases.items():
        expected, diffs = library_metrics(name, c)
        oc = dict(c)
        oc["expected"] = expected
        out_cases[name] = oc
        report[name] = diffs
    doc = {
        "generated_by": "scripts/reference/metrics_reference.py",
        "library": {
            "empyrical-reloaded": version("empyrical-reloaded"),
            "numpy": version("numpy"),
            "pandas": version("pandas"),
            "bottleneck": version("bottleneck"),
        },
        "metric_sources": METRIC_SOURCES,
        "cases": out_cases,
    }
    return doc, report


def dumps(doc):
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def main():
    doc, report = build()
    text = dumps(doc)
    if "--check" in sys.argv[1:]:
        on_disk = json.loads(OUT.read_text())
        fresh = json.loads(text)
        on_disk.pop("library", None)
        fresh.pop("library", None)
        if on_disk != fresh:
            sys.exit(f"{OUT} differs from a fresh run")
        print(f"{OUT.relative_to(REPO)} matches")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)} ({len(text)} bytes)")
    for name, c in doc["cases"].items():
        print(f"\n[{name}] n={len(c['equity'])} P={c['periods_per_year']} rf={c['risk_free_rate']}")
        for k, v in c["expected"].items():
            print(f"  {k:28s} {v!r}")
        for k, (a, b) in report[name].items():
            if a is not None and b is not None and a != b:
                print(f"  (lib vs plain {k}: rel diff {abs(a - b) / max(abs(a), abs(b)):.1e})")


if __name__ == "__main__":
    main()
