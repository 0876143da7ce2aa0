"""Bars and features as pandas DataFrames (index: UTC timestamps)."""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from . import _native
from ._settings import SettingsLike, make_settings

DataLike = Union[str, "os.PathLike[str]", pd.DataFrame, _native.Bars]

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _timestamps_ms(frame: pd.DataFrame) -> np.ndarray:
    """UTC milliseconds from a DatetimeIndex or a timestamp/date/datetime column."""
    if isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index
    else:
        lower = {str(c).lower(): c for c in frame.columns}
        column = next((lower[n] for n in ("timestamp", "datetime", "date", "time") if n in lower), None)
        if column is None:
            raise _native.TradelabError(
                "the DataFrame has no timestamps: give it a DatetimeIndex or a timestamp/date column"
            )
        index = pd.DatetimeIndex(pd.to_datetime(frame[column], utc=True))
    if index.tz is None:
        index = index.tz_localize("UTC")
    else:
        index = index.tz_convert("UTC")
    return np.asarray(index.as_unit("ms").asi8, dtype=np.int64)


def _bars_from_frame(frame: pd.DataFrame, instrument: str) -> _native.Bars:
    lower = {str(c).lower(): c for c in frame.columns}
    missing = [c for c in _PRICE_COLUMNS if c not in lower]
    if missing:
        raise _native.TradelabError(
            f"the DataFrame lacks column(s) {', '.join(missing)}; it needs open, high, low, close and volume"
        )
    columns = []
    for name in _PRICE_COLUMNS:
        try:
            columns.append(np.ascontiguousarray(frame[lower[name]].to_numpy(dtype=np.float64)))
        except (TypeError, ValueError) as e:
            raise _native.TradelabError(f"column `{name}` is not numeric: {e}") from None
    return _native.bars_from_columns(instrument, _timestamps_ms(frame), *columns)


def native_bars(data: DataLike, settings: _native.Settings, instrument: Optional[str] = None) -> _native.Bars:
    """``data`` (a path, an instrument name in data.raw_dir, a DataFrame or
    Bars) as validated bars."""
    if isinstance(data, _native.Bars):
        return data
    if isinstance(data, pd.DataFrame):
        name = instrument or data.attrs.get("instrument") or "dataframe"
        return _bars_from_frame(data, str(name))
    if isinstance(data, (str, os.PathLike)):
        return _native.load_bars(os.fspath(data), settings)
    raise TypeError(f"data must be a path, an instrument name or a pandas DataFrame, not {type(data).__name__}")


def _frame(bars: _native.Bars) -> pd.DataFrame:
    cols = bars.columns()
    index = pd.to_datetime(cols.pop("ts"), unit="ms", utc=True)
    frame = pd.DataFrame(cols, index=pd.DatetimeIndex(index, name="timestamp"))
    frame.attrs["instrument"] = bars.instrument
    frame.attrs["timeframe"] = bars.timeframe
    report = bars.report_json()
    frame.attrs["findings"] = json.loads(report) if report else None
    return frame


def load_bars(
    source: DataLike, settings: SettingsLike = None, *, instrument: Optional[str] = None, **overrides: Any
) -> pd.DataFrame:
    """Validated bars as a DataFrame (UTC DatetimeIndex; open, high, low,
    close, volume). A file goes through the loader's validation and repairs
    (``data.repair``); what it found is in ``frame.attrs["findings"]``
    (rows read, loaded, and each repaired or dropped row with its line). A
    DataFrame is checked by the same rules and refused at the first bad row."""
    s = make_settings(settings, **overrides)
    return _frame(native_bars(source, s, instrument))


def features(
    data: DataLike, settings: SettingsLike = None, *, instrument: Optional[str] = None, **overrides: Any
) -> pd.DataFrame:
    """The indicator table ``features:`` describes, one row per bar (NaN
    while an indicator warms up), as the environment computes it before
    normalising."""
    s = make_settings(settings, **overrides)
    bars = native_bars(data, s, instrument)
    names, values = _native.features(bars, s)
    index = pd.to_datetime(bars.columns()["ts"], unit="ms", utc=True)
    return pd.DataFrame(values, index=pd.DatetimeIndex(index, name="timestamp"), columns=names)


__all__ = ["load_bars", "features", "native_bars", "DataLike"]
