"""The Python package's test kit: paths to the repository's data and to the
CLI binary these tests compare against, and small shared builders."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[3]
ORCL = REPO / "data" / "raw" / "orcl-1995-2014.txt"
NVDA = REPO / "data" / "raw" / "nvda-1999-2014.txt"

# Small, quick settings shared by the environment tests: a short window and
# the default costs, fills and risk layer.
QUICK = {"env": {"window": 16}}


def cli_binary() -> Path:
    """The `tradelab` binary the CLI comparisons run (TRADELAB_BIN, or the
    workspace's debug build)."""
    path = Path(os.environ.get("TRADELAB_BIN", REPO / "target" / "debug" / "tradelab"))
    if not path.exists():
        pytest.skip(f"{path} is not built; run `cargo build -p tradelab-cli` or set TRADELAB_BIN")
    return path


def run_cli(*args: str, cwd: Path) -> str:
    """Runs the CLI in ``cwd`` (a test's own folder, so its store and
    reports stay there; no settings file, so the compiled-in defaults, as
    Python's) and returns stdout."""
    done = subprocess.run(
        [str(cli_binary()), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise AssertionError(f"tradelab {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def cli_json(*args: str, cwd: Path) -> dict:
    return json.loads(run_cli(*args, cwd=cwd))


def synthetic_frame(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """A random-walk daily series as a DataFrame with a UTC DatetimeIndex."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = close * (1.0 + rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.003, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.003, n)))
    volume = rng.integers(1_000, 10_000, n).astype(float)
    index = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    # Settings name data.raw_dir relative to the working directory, as the
    # CLI does; the tests run from the repository root.
    monkeypatch.chdir(REPO)
