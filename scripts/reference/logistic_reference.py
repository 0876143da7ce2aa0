#!/usr/bin/env python3
"""Reference fits for tradelab's logistic-regression baseline.

scikit-learn's LogisticRegression (lbfgs, L2 penalty, intercept not
penalised, tolerance 1e-12) on seeded data shaped like the agents' inputs:
standardised features, some correlated, a weak signal in two of them, and
labels drawn from a logistic model (as a next-bar direction is, mostly
noise). Writes crates/agents/tests/fixtures/logistic/reference.json;
`--check` compares a fresh run with the file instead.
Needs requirements-sklearn.txt.
"""
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "crates/agents/tests/fixtures/logistic/reference.json"


def case(seed, n, d, signal, cs):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x[:, 1] = 0.6 * x[:, 0] + 0.8 * x[:, 1]  # correlated columns, as indicators are
    z = signal * x[:, 0] - 0.5 * signal * x[:, 2] + 0.1
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    x = np.round(x, 9)
    fits = []
    for c in cs:
        m = LogisticRegression(C=c, solver="lbfgs", tol=1e-12, max_iter=100000).fit(x, y)
        fits.append({
            "c": c,
            "weights": m.coef_[0].tolist(),
            "bias": float(m.intercept_[0]),
            "accuracy": float(m.score(x, y)),
        })
    return {"d": d, "x": x.ravel().tolist(), "y": y.tolist(), "fits": fits}


def build():
    return {
        "generated_by": "scripts/reference/logistic_reference.py",
        "scikit-learn": version("scikit-learn"),
        "cases": {
            "weak_signal": case(1, 600, 6, 0.4, [0.001, 0.1, 10.0]),
            "strong_signal": case(2, 300, 4, 2.0, [0.01, 1.0]),
        },
    }


def main():
    text = json.dumps(build(), indent=0, allow_nan=False) + "\n"
    if "--check" in sys.argv[1:]:
        on_disk, fresh = json.loads(OUT.read_text()), json.loads(text)
        for doc in (on_disk, fresh):
            doc.pop("scikit-learn", None)
        ok = True
        for name, c in fresh["cases"].items():
            for f, g in zip(c["fits"], on_disk["cases"][name]["fits"]):
                ok &= np.allclose(f["weights"], g["weights"], atol=1e-7) and abs(f["bias"] - g["bias"]) < 1e-7
        if not ok:
            sys.exit(f"{OUT} differs from a fresh run")
        print(f"{OUT.relative_to(REPO)} matches")
        return
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
