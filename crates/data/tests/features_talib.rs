//! The features equal TA-Lib's on real data.
//!
//! `fixtures/talib/<stem>.csv` holds TA-Lib's outputs for `data/raw/<stem>.txt`
//! at the default settings, written by `scripts/reference/talib_reference.py`.
//! This test re-reads the raw file, runs `FeatureEngine::compute`, and
//! compares every column (plus a synthetic `edge-cases` series built the
//! same way on both sides): NaN positions exactly, values to 1e-9 relative
//! (absolute floor 1e-9 near zero).

use std::path::{Path, PathBuf};

use tradelab_core::{Bar, BarSeries};
use tradelab_data::settings::FeatureSettings;
use tradelab_data::FeatureEngine;

const REL_TOL: f64 = 1e-9;
const ABS_FLOOR: f64 = 1e-9;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Crude UTC milliseconds for `YYYY-MM-DD` (+ `HH:MM:SS`): indicators ignore
/// the timestamp, so this only needs to be ascending.
fn crude_ts(date: &str, time: Option<&str>) -> i64 {
    let num = |s: &str| s.parse::<i64>().unwrap_or_else(|e| panic!("bad number {s:?}: {e}"));
    let d: Vec<i64> = date.split('-').map(num).collect();
    let days = (d[0] - 1970) * 372 + (d[1] - 1) * 31 + (d[2] - 1);
    let secs = time.map_or(0, |t| {
        let p: Vec<i64> = t.split(':').map(num).collect();
        p[0] * 3600 + p[1] * 60 + p.get(2).copied().unwrap_or(0)
    });
    (days * 86_400 + secs) * 1000
}

/// Reads a backtrader-style file: `Date[,Time],Open,High,Low,Close[,Adj Close],Volume[,...]`.
fn load_raw(path: &Path) -> BarSeries {
    let mut rd = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = rd.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column"))
    };
    let (date, open, high, low, close, volume) = (
        col("Date"),
        col("Open"),
        col("High"),
        col("Low"),
        col("Close"),
        col("Volume"),
    );
    let time = header.iter().position(|h| h == "Time");
    let mut series = BarSeries::new(path.file_stem().unwrap().to_string_lossy());
    for rec in rd.records() {
        let rec = rec.unwrap();
        let f = |i: usize| rec[i].parse::<f64>().unwrap_or_else(|e| panic!("{:?}: {e}", &rec[i]));
        series.push(Bar {
            ts: crude_ts(&rec[date], time.map(|t| &rec[t])),
            open: f(open),
            high: f(high),
            low: f(low),
            close: f(close),
            volume: f(volume),
        });
    }
    series
}

/// The fixture: header names (without `row`) and one column of values per name.
fn load_fixture(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut rd = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names: Vec<String> = rd.headers().unwrap().iter().skip(1).map(str::to_string).collect();
    let mut cols = vec![Vec::new(); names.len()];
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.unwrap();
        assert_eq!(
            rec[0].parse::<usize>().unwrap(),
            i,
            "fixture rows are numbered in order"
        );
        for (j, col) in cols.iter_mut().enumerate() {
            let s = &rec[j + 1];
            col.push(if s.is_empty() || s == "nan" {
                f64::NAN
            } else {
                s.parse().unwrap()
            });
        }
    }
    (names, cols)
}

/// The synthetic `edge-cases` series of `talib_reference.py` (every value is
/// exact in binary, so both sides build identical inputs).
fn edge_cases() -> BarSeries {
    (0..200)
        .map(|i| {
            let (o, h, l, c, v) = if i < 50 {
                (25.5, 25.5, 25.5, 25.5, 300.0)
            } else if i < 100 {
                let x = if i % 2 == 0 { 25.25 } else { 25.75 };
                (x, 26.0, 25.0, x, 100.0 + i as f64)
            } else if i < 150 {
                let x = 25.5 + 0.25 * (i - 100) as f64;
                (x, x + 0.5, x - 0.5, x, 1000.0)
            } else {
                (30.0, 30.0, 30.0, 30.0, 0.0)
            };
            Bar {
                ts: i * 60_000,
                open: o,
                high: h,
                low: l,
                close: c,
                volume: v,
            }
        })
        .collect()
}

fn check_raw(stem: &str) {
    check(
        stem,
        &load_raw(&repo_root().join("data/raw").join(format!("{stem}.txt"))),
    );
}

fn check(stem: &str, series: &BarSeries) {
    let root = repo_root();
    let fixture = root
        .join("crates/data/tests/fixtures/talib")
        .join(format!("{stem}.csv"));
    let (names, expected) = load_fixture(&fixture);

    let mut engine = FeatureEngine::new(&FeatureSettings::default());
    let got = engine.compute(series);
    assert_eq!(
        got.names, names,
        "{stem}: fixture columns differ from the engine's names"
    );
    assert_eq!(got.len(), expected[0].len(), "{stem}: row count");

    let mut failures = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let (mine, theirs) = (&got.columns[j], &expected[j]);
        let (mut max_rel, mut exact, mut finite) = (0.0f64, 0usize, 0usize);
        for (row, (&a, &b)) in mine.iter().zip(theirs).enumerate() {
            if a.is_nan() || b.is_nan() {
                if a.is_nan() != b.is_nan() {
                    failures.push(format!(
                        "{stem}: {name} row {row}: ours {a:?}, TA-Lib {b:?} (NaN mismatch)"
                    ));
                }
                continue;
            }
            finite += 1;
            exact += usize::from(a == b);
            let err = (a - b).abs();
            max_rel = max_rel.max(err / b.abs().max(f64::MIN_POSITIVE));
            if err.is_nan() || err > (REL_TOL * b.abs()).max(ABS_FLOOR) {
                failures.push(format!(
                    "{stem}: {name} row {row}: ours {a:?}, TA-Lib {b:?} (diff {err:e})"
                ));
            }
        }
        eprintln!("{stem:>16} {name:<13} {finite:5} values, {exact:5} bit-identical, max rel. error {max_rel:e}");
    }
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(20).collect();
        panic!(
            "{} mismatches against TA-Lib, first ones:\n{}",
            failures.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn nvda_daily_matches_talib() {
    check_raw("nvda-1999-2014");
}

#[test]
fn index_5min_matches_talib() {
    check_raw("2006-min-005");
}

/// Flat bars, ranges without direction, a trend, a level shift: the
/// zero-range conventions (RSI, stochastic, ADX, bands) against TA-Lib's.
#[test]
fn edge_cases_match_talib() {
    check("edge-cases", &edge_cases());
}
