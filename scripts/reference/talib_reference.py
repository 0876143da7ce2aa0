#!/usr/bin/env python3
"""Reference values for tradelab's technical indicators, computed with TA-Lib.

Reads the bundled real price files, computes every feature of
`tradelab_data::FeatureEngine` with TA-Lib (the C library bundled in the
`TA-Lib` wheel) at the default settings of `config/settings.yaml`, and writes
one CSV of outputs per input file to `crates/data/tests/fixtures/talib/`
(plus `edge-cases.csv` for a small synthetic series that both sides build
from the same formula). The Rust test `crates/data/tests/features_talib.rs`
re-reads the same inputs and compares its own values to these.

Usage (from anywhere): python scripts/reference/talib_reference.py
"""

import csv
import math
import sys
from pathlib import Path

import numpy as np
import talib

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "crates" / "data" / "tests" / "fixtures" / "talib"

def feature_settings():
    """The `features:` section of config/settings.yaml (flat `key: number`
    lines), so the fixtures follow the defaults the Rust test uses."""
    settings, inside = {}, False
    for line in (REPO / "config" / "settings.yaml").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            inside = line.rstrip() == "features:"
            continue
        if inside:
            key, value = (part.strip() for part in line.split("#")[0].split(":", 1))
            settings[key] = float(value) if "." in value else int(value)
    return settings


NAMES = [
    "sma_fast", "sma_slow", "ema_fast", "ema_slow", "rsi", "macd", "macd_signal",
    "macd_hist", "atr", "bb_upper", "bb_middle", "bb_lower", "roc", "log_return",
    "realized_vol", "stoch_k", "stoch_d", "adx", "obv",
]

# file stem -> the columns holding open, high, low, close, volume.
INPUTS = {
    # Date,Open,High,Low,Close,Adj Close,Volume: Close, not Adj Close.
    "nvda-1999-2014": ("Open", "High", "Low", "Close", "Volume"),
    # Date,Time,Open,High,Low,Close,Volume,OpenInterest
    "2006-min-005": ("Open", "High", "Low", "Close", "Volume"),
}


def edge_cases():
    """A synthetic series for the edge conventions, defined identically in
    `crates/data/tests/features_talib.rs` (every value is exact in binary):
    flat bars (high == low), a range without directional movement, a trend,
    then flat again at a new level."""
    o, h, l, c, v = [], [], [], [], []
    for i in range(200):
        if i < 50:
            bar = (25.5, 25.5, 25.5, 25.5, 300.0)
        elif i < 100:
            x = 25.25 if i % 2 == 0 else 25.75
            bar = (x, 26.0, 25.0, x, 100.0 + i)
        elif i < 150:
            x = 25.5 + 0.25 * (i - 100)
            bar = (x, x + 0.5, x - 0.5, x, 1000.0)
        else:
            bar = (30.0, 30.0, 30.0, 30.0, 0.0)
        for arr, val in zip((o, h, l, c, v), bar):
            arr.append(val)
    return [np.array(a, dtype=np.float64) for a in (o, h, l, c, v)]


def read_ohlcv(path, columns):
    # Python's float() rounds correctly, like Rust's str::parse::<f64>, so both
    # sides start from bit-identical inputs.
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [np.array([float(r[c]) for r in rows], dtype=np.float64) for c in columns]


def features(o, h, l, c, v, s):
    out = {}
    out["sma_fast"] = talib.SMA(c, timeperiod=s["sma_fast"])
    out["sma_slow"] = talib.SMA(c, timeperiod=s["sma_slow"])
    out["ema_fast"] = talib.EMA(c, timeperiod=s["ema_fast"])
    out["ema_slow"] = talib.EMA(c, timeperiod=s["ema_slow"])
    out["rsi"] = talib.RSI(c, timeperiod=s["rsi_period"])
    macd, signal, hist = talib.MACD(
        c, fastperiod=s["macd_fast"], slowperiod=s["macd_slow"], signalperiod=s["macd_signal"]
    )
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, hist
    out["atr"] = talib.ATR(h, l, c, timeperiod=s["atr_period"])
    w = s["bollinger_width"]
    up, mid, lo = talib.BBANDS(
        c, timeperiod=s["bollinger_period"], nbdevup=w, nbdevdn=w, matype=talib.MA_Type.SMA
    )
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = up, mid, lo
    out["roc"] = talib.ROC(c, timeperiod=s["roc_period"])
    # ln(c_t / c_{t-1}); NaN at t = 0.
    logret = talib.LN(talib.ROCR(c, timeperiod=1))
    out["log_return"] = logret
    # Realised volatility: STDDEV over the log-return series with its leading
    # NaN dropped, re-aligned so that row t uses returns up to t.
    vol = np.full_like(c, np.nan)
    vol[1:] = talib.STDDEV(logret[1:], timeperiod=s["volatility_window"], nbdev=1.0)
    out["realized_vol"] = vol
    k, d = talib.STOCH(
        h, l, c,
        fastk_period=s["stoch_k"],
        slowk_period=s["stoch_slow_k"], slowk_matype=talib.MA_Type.SMA,
        slowd_period=s["stoch_d"], slowd_matype=talib.MA_Type.SMA,
    )
    out["stoch_k"], out["stoch_d"] = k, d
    out["adx"] = talib.ADX(h, l, c, timeperiod=s["adx_period"])
    out["obv"] = talib.OBV(c, v)
    return out


def fmt(x):
    # repr() is the shortest string that parses back to the same double.
    return "" if math.isnan(x) else repr(float(x))


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    series = {stem: read_ohlcv(REPO / "data" / "raw" / f"{stem}.txt", cols) for stem, cols in INPUTS.items()}
    series["edge-cases"] = edge_cases()
    settings = feature_settings()
    for stem, (o, h, l, c, v) in series.items():
        out = features(o, h, l, c, v, settings)
        dst = OUT_DIR / f"{stem}.csv"
        with open(dst, "w", newline="") as f:
            wr = csv.writer(f, lineterminator="\n")
            wr.writerow(["row"] + NAMES)
            for i in range(len(c)):
                wr.writerow([i] + [fmt(out[n][i]) for n in NAMES])
        print(f"{dst.relative_to(REPO)}: {len(c)} rows (TA-Lib {talib.__ta_version__.decode()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
