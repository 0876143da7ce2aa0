#!/usr/bin/env python3
"""Independent reference for hierarchical risk parity over a Ledoit-Wolf
covariance: scikit-learn's `ledoit_wolf` and PyPortfolioOpt's `HRPOpt`
(given the covariance only, as tradelab uses it), on seeded returns.

Writes crates/sim/tests/fixtures/hrp/reference.json, which
crates/sim/tests/hrp_reference.rs reads; `--check` compares a fresh run
with the file instead. Needs requirements-portfolio.txt.

Cases: correlated blocks of assets (a factor model), a case with more
assets than a short window has rows (where shrinkage matters), and the
three bundled daily stocks (nvda, orcl, yhoo)' returns over their common dates.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from pypfopt import HRPOpt
from sklearn.covariance import ledoit_wolf

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "crates/sim/tests/fixtures/hrp/reference.json"


def factor_returns(seed, rows, assets, blocks):
    rng = np.random.default_rng(seed)
    factors = rng.normal(0, 0.01, size=(rows, blocks))
    loading = rng.uniform(0.5, 1.5, size=assets)
    block = np.arange(assets) % blocks
    noise = rng.normal(0, 1, size=(rows, assets)) * rng.uniform(0.005, 0.03, size=assets)
    return factors[:, block] * loading + noise


def stock_returns():
    closes = {}
    for stem in ["nvda-1999-2014", "orcl-1995-2014", "yhoo-1996-2014"]:
        frame = pd.read_csv(REPO / "data/raw" / f"{stem}.txt", parse_dates=["Date"]).set_index("Date")
        closes[stem] = frame["Close"]
    joined = pd.DataFrame(closes).dropna()
    return np.log(joined).diff().dropna().values[-250:]


def case(name, returns):
    shrunk, shrinkage = ledoit_wolf(returns)
    tickers = [f"a{i}" for i in range(returns.shape[1])]
    cov = pd.DataFrame(shrunk, index=tickers, columns=tickers)
    weights = HRPOpt(cov_matrix=cov).optimize()
    return {
        "name": name,
        "assets": returns.shape[1],
        "returns": [float(x) for x in returns.ravel()],
        "shrinkage": float(shrinkage),
        "covariance": [float(x) for x in shrunk.ravel()],
        "weights": [float(weights[t]) for t in tickers],
    }


def build():
    return {
        "generated_by": "scripts/reference/hrp_reference.py",
        "cases": [
            case("factor blocks, 12 assets, 400 rows", factor_returns(7, 400, 12, 3)),
            case("more assets than rows: 30 assets, 20 rows", factor_returns(11, 20, 30, 4)),
            case("bundled daily stocks, last 250 common days", stock_returns()),
        ],
    }


def main():
    fresh = build()
    if "--check" in sys.argv:
        old = json.loads(OUT.read_text())
        for a, b in zip(old["cases"], fresh["cases"]):
            assert np.allclose(a["weights"], b["weights"], rtol=0, atol=1e-12), a["name"]
        print("reference unchanged")
        return
    OUT.write_text(json.dumps(fresh, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
