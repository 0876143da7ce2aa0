"""Bars and features as DataFrames; bad data is refused with the row named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tradelab
from conftest import ORCL, REPO, synthetic_frame


def test_load_bars_reads_a_file_with_its_findings():
    frame = tradelab.load_bars(ORCL)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index.is_monotonic_increasing
    findings = frame.attrs["findings"]
    assert findings["rows_loaded"] == len(frame)
    assert frame.attrs["timeframe"] == "1d"


def test_load_bars_by_instrument_name_uses_the_data_folder():
    by_name = tradelab.load_bars("orcl-1995-2014")
    assert by_name.equals(tradelab.load_bars(ORCL))


def test_a_dataframe_round_trips():
    frame = synthetic_frame(300)
    back = tradelab.load_bars(frame, instrument="synthetic")
    assert np.allclose(back.to_numpy(), frame.to_numpy())
    assert (back.index == frame.index).all()


def test_a_date_column_works_instead_of_an_index():
    frame = synthetic_frame(50).reset_index().rename(columns={"index": "Date"})
    assert len(tradelab.load_bars(frame)) == 50


def test_nan_prices_are_refused_with_the_row():
    frame = synthetic_frame(100)
    frame.iloc[42, frame.columns.get_loc("close")] = np.nan
    with pytest.raises(tradelab.TradelabError, match=r"row 42"):
        tradelab.load_bars(frame)


def test_high_below_low_is_refused():
    frame = synthetic_frame(100)
    frame.iloc[7, frame.columns.get_loc("high")] = frame["low"].iloc[7] * 0.5
    with pytest.raises(tradelab.TradelabError, match=r"row 7"):
        tradelab.load_bars(frame)


def test_missing_columns_and_timestamps_are_named():
    with pytest.raises(tradelab.TradelabError, match="volume"):
        tradelab.load_bars(synthetic_frame(20).drop(columns=["volume"]))
    with pytest.raises(tradelab.TradelabError, match="timestamps"):
        tradelab.load_bars(synthetic_frame(20).reset_index(drop=True))


def test_a_missing_file_and_a_corrupt_file_say_what_to_do(tmp_path):
    with pytest.raises(tradelab.TradelabError, match="file not found"):
        tradelab.load_bars(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("this is not,a price file\n\x00\x01,2\n")
    with pytest.raises(tradelab.TradelabError, match="bad.csv"):
        tradelab.load_bars(bad)


def test_features_match_the_environment_columns():
    table = tradelab.features(ORCL)
    env = tradelab.TradingEnv(ORCL, env={"window": 16})
    assert list(table.columns) == env.feature_names[: len(table.columns)]
    assert len(table) == len(tradelab.load_bars(ORCL))
    assert table.iloc[:5].isna().any().any(), "indicators warm up"
    assert np.isfinite(table.iloc[-1].to_numpy()).all()


def test_features_follow_their_settings():
    default = tradelab.features(ORCL)
    longer = tradelab.features(ORCL, features={"rsi_period": 21})
    rsi = [c for c in default.columns if "rsi" in c.lower()][0]
    assert not np.allclose(default[rsi].iloc[100:], longer[rsi].iloc[100:])


def test_settings_files_and_errors():
    s = tradelab.settings(REPO / "config" / "settings.yaml", seed=5)
    assert s.seed == 5
    with pytest.raises(tradelab.TradelabError):
        tradelab.settings(backtest={"initial_cash": -1})
    with pytest.raises(tradelab.TradelabError, match="not_a_section"):
        tradelab.settings(not_a_section={"x": 1})
