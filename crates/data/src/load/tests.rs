use std::path::PathBuf;

use crate::settings::RepairPolicy;
use tradelab_core::time::format_datetime;
use tradelab_core::Timeframe;

use super::*;

fn raw_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/raw")
}

fn load_str(text: &str, policy: RepairPolicy) -> Result<(BarSeries, LoadReport), DataError> {
    let opts = LoadOptions {
        repair: policy,
        ..Default::default()
    };
    load_bytes(text.as_bytes(), Path::new("test.csv"), &opts)
}

#[test]
fn every_bundled_file_loads_with_its_documented_bar_count_and_timeframe() {
    let cases = [
        ("nvda-1999-2014.txt", 4012, "1d"),
        ("orcl-1995-2014.txt", 5036, "1d"),
        ("yhoo-1996-2014.txt", 4713, "1d"),
        ("2006-day-001.txt", 255, "1d"),
        ("2006-min-005.txt", 2142, "5m"),
        ("2006-01-02-volume-min-001.txt", 30889, "1m"),
    ];
    for (file, bars, tf) in cases {
        let (s, r) = load_file(&raw_dir().join(file), &LoadOptions::default()).unwrap();
        assert_eq!(s.len(), bars, "{file}");
        assert_eq!(r.issues, vec![], "{file}: the bundled data is clean");
        assert_eq!(s.timeframe.unwrap().to_string(), tf, "{file}");
    }
}

#[test]
fn one_minute_file_with_mismatched_header_is_read_column_by_column_correctly() {
    let (s, r) = load_file(
        &raw_dir().join("2006-01-02-volume-min-001.txt"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(r.header_note.as_deref().unwrap().contains("time of day"));
    // First row: 2006-01-02,09:01:00,3602.00,3603.00,3597.00,3599.00,5699,0
    let b = s.bar(0);
    assert_eq!(format_datetime(b.ts), "2006-01-02T09:01:00");
    assert_eq!(
        (b.open, b.high, b.low, b.close, b.volume),
        (3602.0, 3603.0, 3597.0, 3599.0, 5699.0)
    );
    assert_eq!(format_datetime(*s.ts.last().unwrap()), "2006-02-27T22:00:00");
}

#[test]
fn yahoo_layout_uses_close_not_adjusted_close() {
    let (s, _) = load_symbol(&raw_dir(), "nvda", &LoadOptions::default()).unwrap();
    assert_eq!(s.instrument, "nvda-1999-2014");
    let b = s.bar(0);
    assert_eq!(format_datetime(b.ts), "1999-01-22T00:00:00");
    assert_eq!((b.open, b.close, b.volume), (1.75, 1.640625, 67_867_200.0));
}

#[test]
fn lower_case_iso_dmy_and_epoch_files_load_to_the_same_bars() {
    let iso = "datetime,open,high,low,close,volume\n2024-01-02T09:15:00,10,11,9,10.5,100\n2024-01-02T09:16:00,10.5,12,10,11,200\n";
    let dmy = "Gmt time,Open,High,Low,Close,Volume\n02.01.2024 09:15:00.000,10,11,9,10.5,100\n02.01.2024 09:16:00.000,10.5,12,10,11,200\n";
    let epoch = "timestamp,open,high,low,close,volume\n1704186900,10,11,9,10.5,100\n1704186960,10.5,12,10,11,200\n";
    let epoch_ms =
        "timestamp,open,high,low,close,volume\n1704186900000,10,11,9,10.5,100\n1704186960000,10.5,12,10,11,200\n";
    let a = load_str(iso, RepairPolicy::Refuse).unwrap().0;
    for text in [dmy, epoch, epoch_ms] {
        let b = load_str(text, RepairPolicy::Refuse).unwrap().0;
        assert_eq!(a.ts, b.ts);
        assert_eq!(a.close, b.close);
        assert_eq!(b.timeframe, Some(Timeframe::MINUTE));
    }
}

const BAD: &str = "date,open,high,low,close,volume
2024-01-01,10,11,9,10.5,100
2024-01-02,10,9,11,10.5,100
2024-01-03,10,10.2,9,10.5,100
2024-01-04,-1,11,9,10.5,100
2024-01-04,10,11,9,10.5,100
2024-01-03,10,11,9,10.5,100
2024-01-05,10,11,9,abc,100
2024-01-06,10,11,9,10.5,100
2024-01-06,10,11,9,10.5,100
";

#[test]
fn refuse_policy_rejects_the_file_naming_the_line() {
    let e = load_str(BAD, RepairPolicy::Refuse).unwrap_err().to_string();
    assert!(e.contains("test.csv:3") && e.contains("inconsistent OHLC"), "{e}");
    assert!(e.contains("repair_policy"), "{e}");
}

#[test]
fn drop_policy_skips_every_bad_row_and_reports_each_line() {
    let (s, r) = load_str(BAD, RepairPolicy::Drop).unwrap();
    let lines: Vec<usize> = r.issues.iter().map(|i| i.line).collect();
    // 3: high<low, 4: high<close, 5: negative open, 7: out of order,
    // 8: unparseable close, 10: duplicate timestamp.
    assert_eq!(lines, vec![3, 4, 5, 7, 8, 10]);
    assert!(r.issues.iter().all(|i| i.action == IssueAction::Dropped));
    assert_eq!(s.len(), 3);
    assert_eq!(r.rows_read, 9);
}

#[test]
fn repair_policy_fixes_unambiguous_rows_and_drops_the_rest() {
    let (s, r) = load_str(BAD, RepairPolicy::Repair).unwrap();
    let summary: Vec<(usize, IssueAction)> = r.issues.iter().map(|i| (i.line, i.action)).collect();
    use IssueAction::*;
    assert_eq!(
        summary,
        vec![
            (3, Repaired),
            (4, Repaired),
            (5, Dropped),
            (7, Dropped),
            (8, Dropped),
            (10, Repaired)
        ]
    );
    assert!(r.issues[0].message.contains("swapped high and low"));
    assert!(r.issues[5].message.contains("exact duplicate"));
    assert_eq!(s.len(), 5);
    assert_eq!((s.high[1], s.low[1]), (11.0, 9.0));
    assert_eq!(s.high[2], 10.5);
    for i in 0..s.len() {
        assert!(s.high[i] >= s.open[i].max(s.close[i]) && s.low[i] <= s.open[i].min(s.close[i]));
    }
}

#[test]
fn corrupt_or_empty_inputs_get_clear_errors() {
    let e = load_str("", RepairPolicy::Repair).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    let e = load_str("date,open,high,low,close\n", RepairPolicy::Repair)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no rows"), "{e}");
    let e = load_str("\u{0}\u{1}garbage\n\u{2}binary,,,\n", RepairPolicy::Repair)
        .unwrap_err()
        .to_string();
    assert!(e.contains("test.csv"), "{e}");
    let e = load_str("date,open,high,low,close\nxx,1,2,0.5,1\n", RepairPolicy::Repair)
        .unwrap_err()
        .to_string();
    assert!(e.contains("timestamp"), "{e}");
    let e = load_str("date,open,high,low,close\n2024-01-01,a,b,c,d\n", RepairPolicy::Drop)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no usable rows"), "{e}");
    let e = load_file(Path::new("/no/such/file.csv"), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such/file.csv") && e.contains("exists"), "{e}");
}

#[test]
fn a_corrupt_file_among_good_ones_is_reported_and_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(raw_dir().join("2006-day-001.txt"), dir.path().join("good.txt")).unwrap();
    std::fs::write(dir.path().join("bad.csv"), "this is not,a price file\n1,2\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "ignored").unwrap();
    let loaded = load_dir(dir.path(), RepairPolicy::Repair).unwrap();
    assert_eq!(loaded.series.len(), 1);
    assert_eq!(loaded.failures.len(), 1);
    assert!(loaded.failures[0].0.ends_with("bad.csv"));
}

#[test]
fn empty_folder_and_unknown_or_ambiguous_symbols_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_dir(dir.path(), RepairPolicy::Repair).unwrap_err().to_string();
    assert!(e.contains("no data files"), "{e}");
    let e = find_symbol(&raw_dir(), "msft").unwrap_err().to_string();
    assert!(e.contains("nvda-1999-2014"), "lists what is available: {e}");
    let e = find_symbol(&raw_dir(), "2006").unwrap_err().to_string();
    assert!(e.contains("ambiguous"), "{e}");
    assert!(find_symbol(&raw_dir(), "2006-day").is_ok());
}

/// Issue 19 finding 19: a runaway field stops the load at the line limit
/// (it is never buffered whole), an oversized file is refused before it is
/// read, and echoed values are cut short.
#[test]
fn runaway_lines_and_files_are_refused_and_echoed_values_cut_short() {
    let header = "date,open,high,low,close,volume\n2020-01-01,1,2,0.5,1.5,10\n";
    let runaway = format!("{header}2020-01-02,{}\n", "9".repeat(50 << 20));
    let t0 = std::time::Instant::now();
    let e = load_str(&runaway, RepairPolicy::Refuse).unwrap_err().to_string();
    assert!(
        e.contains("line 3 is longer than 4096 bytes") && e.contains("data.max_line_bytes"),
        "{}",
        &e[..e.len().min(300)]
    );
    assert!(e.len() < 400, "the error is short: {} bytes", e.len());
    eprintln!("a 50 MB line refused in {:?}", t0.elapsed());

    // A bad timestamp of 300 characters, under the line limit: the message
    // shows its start and length.
    let long_ts = format!("{header}{},1,2,0.5,1.5,10\n", "7".repeat(300));
    let (_, report) = load_str(&long_ts, RepairPolicy::Drop).unwrap();
    let message = &report.issues[0].message;
    assert!(message.contains("... (300 bytes)") && message.len() < 150, "{message}");

    let opts = LoadOptions {
        max_file_bytes: 10,
        ..Default::default()
    };
    let e = load_bytes(header.as_bytes(), Path::new("big.csv"), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("data.max_file_mb"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    std::fs::write(&file, header).unwrap();
    let e = load_file(&file, &opts).unwrap_err().to_string();
    assert!(e.contains("data.max_file_mb"), "{e}");
    assert_eq!(
        load_file(&file, &LoadOptions::default()).unwrap().0.len(),
        1,
        "streamed from the file"
    );
}

#[test]
fn excerpts_keep_short_values_and_cut_long_ones_on_character_boundaries() {
    assert_eq!(excerpt(b"2020-01-01"), "2020-01-01");
    let long = "é".repeat(100);
    let cut = excerpt(long.as_bytes());
    assert!(
        cut.starts_with(&"é".repeat(40)) && cut.ends_with("(200 bytes)"),
        "{cut}"
    );
}

/// Issue 20: the OS error is said once (it was the message and, again, the
/// error's source, which an error chain prints after it).
#[test]
fn a_missing_file_is_named_with_its_os_error_once() {
    let e = load_file(Path::new("no/such/file.csv"), &LoadOptions::default()).unwrap_err();
    assert!(std::error::Error::source(&e).is_none());
    let text = e.to_string();
    assert_eq!(text.matches("No such file").count(), 1, "{text}");
    assert!(text.contains("no/such/file.csv"), "{text}");
}

/// Issue 20: yfinance's newer CSV layout (three header rows) loads, and its
/// `Adj Close` is reported when left out and used when asked for.
#[test]
fn yfinance_three_row_header_and_adjusted_close() {
    let text = "Price,Adj Close,Close,High,Low,Open,Volume\n\
                Ticker,AAPL,AAPL,AAPL,AAPL,AAPL,AAPL\n\
                Date,,,,,,\n\
                2024-01-02,92.5,185.0,188.0,183.0,187.0,82488700\n\
                2024-01-03 00:00:00+00:00,93.0,186.0,187.0,184.0,185.0,58414500\n";
    let (s, r) = load_str(text, RepairPolicy::Refuse).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!((s.open[0], s.close[0], s.volume[1]), (187.0, 185.0, 58414500.0));
    assert_eq!(format_datetime(s.ts[1]), "2024-01-03T00:00:00");
    let note = r.header_note.unwrap();
    assert!(note.contains("yfinance") && note.contains("Ticker AAPL"), "{note}");
    let adj = r.adjusted_close_note.unwrap();
    assert!(
        adj.contains("not used") && adj.contains("data.adjusted_close: true"),
        "{adj}"
    );
    assert_eq!(r.rows_read, 2, "header rows are not data");

    let opts = LoadOptions {
        adjusted_close: true,
        repair: RepairPolicy::Refuse,
        ..Default::default()
    };
    let (a, r) = load_bytes(text.as_bytes(), Path::new("aapl.csv"), &opts).unwrap();
    assert_eq!((a.close[0], a.open[0], a.high[0], a.low[0]), (92.5, 93.5, 94.0, 91.5));
    assert_eq!(a.volume[0], 82488700.0, "volume as traded");
    assert!(r.adjusted_close_note.unwrap().contains("adjusted by Adj Close"));

    // The older one-row layout and auto-adjusted files (no Adj Close).
    let old = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,187,188,183,185,92.5,10\n";
    let (a, _) = load_bytes(old.as_bytes(), Path::new("aapl.csv"), &opts).unwrap();
    assert_eq!(a.close[0], 92.5);
    let plain =
        "Price,Close,High,Low,Open,Volume\nTicker,AAPL,AAPL,AAPL,AAPL,AAPL\nDate,,,,,\n2024-01-02,185,188,183,187,10\n";
    let (p, r) = load_bytes(plain.as_bytes(), Path::new("aapl.csv"), &opts).unwrap();
    assert_eq!(p.close[0], 185.0);
    assert!(r.adjusted_close_note.unwrap().contains("no Adj Close column"));
    let e = load_str(
        "Price,Close,High,Low,Open,Volume\nTicker,AAPL,AAPL,AAPL,AAPL,AAPL\nDate,,,,,\n",
        RepairPolicy::Refuse,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no rows"), "{e}");
}

/// Issue 20: a data folder that is not where tradelab runs says which
/// folder it was looked for in and how to fix it.
#[test]
fn a_missing_relative_data_folder_names_the_working_directory() {
    let e = data_files(Path::new("no-such-data/raw")).unwrap_err().to_string();
    let cwd = std::env::current_dir().unwrap();
    assert!(e.contains("no-such-data/raw does not exist"), "{e}");
    assert!(
        e.contains(&cwd.display().to_string()) && e.contains("project folder"),
        "{e}"
    );
}

#[test]
fn a_bar_from_a_feed_is_held_to_the_loaders_rules_without_repairs() {
    let good = Bar {
        ts: 1_000,
        open: 10.0,
        high: 11.0,
        low: 9.5,
        close: 10.5,
        volume: 7.0,
    };
    assert_eq!(bar_problem(&good, None), None);
    assert_eq!(bar_problem(&good, Some(999)), None);
    let cases = [
        (
            Bar {
                close: f64::NAN,
                ..good
            },
            None,
            "finite and positive",
        ),
        (Bar { open: -1.0, ..good }, None, "finite and positive"),
        (Bar { volume: -3.0, ..good }, None, "volume"),
        (good, Some(1_000), "not after"),
        (Bar { high: 10.0, ..good }, None, "inconsistent OHLC"),
        (Bar { low: 10.6, ..good }, None, "inconsistent OHLC"),
    ];
    for (bar, previous, expect) in cases {
        let problem = bar_problem(&bar, previous).expect("refused");
        assert!(problem.contains(expect), "{problem}");
    }
}
