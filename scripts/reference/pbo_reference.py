#!/usr/bin/env python3
"""Independent reference for the probability of backtest overfitting (CSCV).

Bailey, Borwein, Lopez de Prado and Zhu (2015), "The probability of backtest
overfitting", section 2.2, written from the paper with numpy and itertools,
not from tradelab's Rust. Writes crates/sim/tests/fixtures/pbo/reference.json;
`--check` compares a fresh run with the file instead.

Conventions shared with the paper: the bars are cut into S equal blocks
(the remainder dropped from the start); each combination of S/2 blocks is
the in-sample set, the rest out of sample; the statistic is the Sharpe
ratio (mean / sample std, 0 without variation); the in-sample winner is the
first of equal maxima; its out-of-sample rank is averaged over ties and
divided by N + 1; PBO is the share of combinations whose logit is <= 0.
"""
import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "crates/sim/tests/fixtures/pbo/reference.json"


def sharpe(x):
    sd = x.std(ddof=1)
    return 0.0 if sd == 0 else x.mean() / sd


def avg_rank(values, at):
    v = values[at]
    below = np.sum(values < v)
    equal = np.sum(values == v)
    return below + (equal + 1) / 2.0


def cscv(m, s):
    t, n = m.shape
    per = t // s
    m = m[t - per * s:]
    blocks = [m[i * per:(i + 1) * per] for i in range(s)]
    logits, losses, is_best, oos_best = [], [], [], []
    for combo in itertools.combinations(range(s), s // 2):
        train = np.vstack([blocks[i] for i in combo])
        test = np.vstack([blocks[i] for i in range(s) if i not in combo])
        r_is = np.array([sharpe(train[:, j]) for j in range(n)])
        r_oos = np.array([sharpe(test[:, j]) for j in range(n)])
        best = int(np.argmax(r_is))
        w = avg_rank(r_oos, best) / (n + 1)
        logits.append(np.log(w / (1 - w)))
        losses.append(r_oos[best] < 0)
        is_best.append(r_is[best])
        oos_best.append(r_oos[best])
    logits = np.array(logits)
    return {
        "pbo": float(np.mean(logits <= 0)),
        "mean_logit": float(np.mean(logits)),
        "probability_of_loss": float(np.mean(losses)),
        "mean_in_sample_sharpe": float(np.mean(is_best)),
        "mean_out_of_sample_sharpe": float(np.mean(oos_best)),
        "splits": len(logits),
    }


def case(seed, bars, trials, edges, blocks):
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 0.01, size=(bars, trials))
    m += np.array(edges)[None, :]
    # A flat configuration (never trades) is part of every real search.
    m[:, 0] = 0.0
    m = np.round(m, 12)
    return {"blocks": blocks, "returns": m.T.tolist(), "expected": cscv(m, blocks)}


def build():
    return {
        "generated_by": "scripts/reference/pbo_reference.py",
        "numpy": np.__version__,
        "cases": {
            # Noise only: the null, PBO near 1/2.
            "noise_8_blocks": case(1, 241, 12, [0.0] * 12, 8),
            # Some configurations with a small edge, hidden in noise.
            "weak_edges_10_blocks": case(2, 300, 8, [0.0, 0.0, 0.0005, 0.001, 0.0, -0.0005, 0.0015, 0.0], 10),
            # The paper's S = 16.
            "paper_16_blocks": case(3, 160, 6, [0.0, 0.002, 0.0, 0.0, 0.0, 0.0], 16),
        },
    }


def main():
    doc = build()
    text = json.dumps(doc, indent=0, allow_nan=False) + "\n"
    if "--check" in sys.argv[1:]:
        on_disk = json.loads(OUT.read_text())
        on_disk.pop("numpy", None)
        fresh = json.loads(text)
        fresh.pop("numpy", None)
        if on_disk != fresh:
            sys.exit(f"{OUT} differs from a fresh run")
        print(f"{OUT.relative_to(REPO)} matches")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)} ({len(text)} bytes)")
    for name, c in doc["cases"].items():
        print(name, c["expected"])


if __name__ == "__main__":
    main()
