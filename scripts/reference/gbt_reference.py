#!/usr/bin/env python3
"""Reference accuracy for tradelab's boosted-trees baseline.

scikit-learn's HistGradientBoostingClassifier with the growth tradelab's
gbt uses (depth 3, learning rate 0.1, 32 bins, 20 rows a leaf, L2 1.0, no
early stopping) on seeded data with a nonlinear signal (an interaction and
a threshold, which a linear model cannot draw) and noise, split into train
and test. The two implementations bin and grow differently (scikit-learn
grows best-first to max_leaf_nodes; tradelab level by level), so the test
compares out-of-sample accuracy, not trees. Writes
crates/agents/tests/fixtures/gbt/reference.json; needs
requirements-sklearn.txt.
"""
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "crates/agents/tests/fixtures/gbt/reference.json"


def case(seed, n_train, n_test, d, trees):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(n_train + n_test, d)), 3)
    z = 1.5 * x[:, 0] * x[:, 1] + 1.0 * (x[:, 2] > 0.5) - 0.5
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-2 * z))).astype(float)
    xt, yt, xs, ys = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    out = {"d": d, "x_train": xt.ravel().tolist(), "y_train": yt.tolist(),
           "x_test": xs.ravel().tolist(), "y_test": ys.tolist(), "fits": []}
    for t in trees:
        m = HistGradientBoostingClassifier(
            max_iter=t, learning_rate=0.1, max_depth=3, max_leaf_nodes=None, max_bins=32,
            min_samples_leaf=20, l2_regularization=1.0, early_stopping=False, random_state=0,
        ).fit(xt, yt)
        out["fits"].append({"trees": t, "test_accuracy": float(m.score(xs, ys))})
    lr = LogisticRegression(C=1.0, max_iter=10000).fit(xt, yt)
    out["logistic_test_accuracy"] = float(lr.score(xs, ys))
    return out


def build():
    return {
        "generated_by": "scripts/reference/gbt_reference.py",
        "scikit-learn": version("scikit-learn"),
        "cases": {"interaction": case(1, 3000, 2000, 5, [25, 100, 300])},
    }


def main():
    text = json.dumps(build(), indent=0, allow_nan=False) + "\n"
    if "--check" in sys.argv[1:]:
        on_disk, fresh = json.loads(OUT.read_text()), json.loads(text)
        for doc in (on_disk, fresh):
            doc.pop("scikit-learn", None)
        if on_disk != fresh:
            sys.exit(f"{OUT} differs from a fresh run")
        print(f"{OUT.relative_to(REPO)} matches")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)} ({len(text)} bytes)")
    for f in json.loads(text)["cases"]["interaction"]["fits"]:
        print(f)


if __name__ == "__main__":
    main()
