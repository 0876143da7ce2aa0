//! Property-based fuzzing of the price-file loader (issue 19): arbitrary
//! bytes, CSV-shaped rows of hostile fields, and real files with random
//! damage. No input may panic; what loads satisfies every validation rule;
//! errors stay short whatever the input held. Cases: `TRADELAB_FUZZ_CASES`
//! (default sized for CI).

use std::path::Path;

use proptest::prelude::*;
use tradelab_data::load::{load_bytes, LoadOptions};
use tradelab_data::settings::RepairPolicy;

/// A field a hostile or broken file might hold.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,12}(\\.[0-9]{1,8})?",
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-1e308".to_string()),
        Just("1e309".to_string()),
        Just(String::new()),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]( [0-2][0-9]:[0-5][0-9]:[0-5][0-9])?",
        "[0-3][0-9]\\.[01][0-9]\\.20[0-9]{2} [0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\.[0-9]{3}",
        "1[0-9]{9}",
        "\"[^\"]{0,20}\"",
        ".{0,30}",
    ]
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("date,open,high,low,close,volume".to_string()),
        Just("Date,Open,High,Low,Close,Volume,OpenInt".to_string()),
        Just("timestamp,open,high,low,close".to_string()),
        Just("date,time,open,high,low,close,volume".to_string()),
        Just("Gmt time,Open,High,Low,Close,Volume".to_string()),
        "[a-z,]{0,40}",
    ]
}

fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    (
        header(),
        prop::collection::vec(prop::collection::vec(field(), 0..9), 0..40),
        prop::sample::select(vec!["\n", "\r\n"]),
    )
        .prop_map(|(h, rows, eol)| {
            let mut text = h;
            for r in rows {
                text.push_str(eol);
                text.push_str(&r.join(","));
            }
            text.into_bytes()
        })
}

/// The start of a bundled file with bytes flipped, inserted and cut.
fn damaged_real_file() -> impl Strategy<Value = Vec<u8>> {
    let base: Vec<u8> = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/raw/nvda-1999-2014.txt"))
        .expect("the bundled file")
        .into_iter()
        .take(3000)
        .collect();
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..12).prop_map(move |edits| {
        let mut b = base.clone();
        for (at, byte, kind) in edits {
            if b.is_empty() {
                break;
            }
            let i = at.index(b.len());
            match kind {
                0 => b[i] = byte,
                1 => b.insert(i, byte),
                _ => b.truncate(i),
            }
        }
        b
    })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        csv_file(),
        damaged_real_file(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: tradelab_testkit::fuzz_cases(384),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzz_loader_never_panics_and_what_loads_is_valid(
        bytes in input(),
        policy in prop::sample::select(vec![RepairPolicy::Refuse, RepairPolicy::Drop, RepairPolicy::Repair]),
        max_line_bytes in prop::sample::select(vec![64usize, 4096]),
    ) {
        let opts = LoadOptions { repair: policy, max_line_bytes, ..LoadOptions::default() };
        match load_bytes(&bytes, Path::new("fuzz.csv"), &opts) {
            Ok((series, report)) => {
                prop_assert!(!series.is_empty());
                prop_assert_eq!(report.rows_loaded, series.len());
                for i in 0..series.len() {
                    let (o, h, l, c) = (series.open[i], series.high[i], series.low[i], series.close[i]);
                    prop_assert!([o, h, l, c].iter().all(|p| p.is_finite() && *p > 0.0), "bar {i}: {o} {h} {l} {c}");
                    prop_assert!(h >= l && h >= o.max(c) && l <= o.min(c), "bar {i}: {o} {h} {l} {c}");
                    prop_assert!(series.volume[i].is_finite() && series.volume[i] >= 0.0);
                    if i > 0 {
                        prop_assert!(series.ts[i] > series.ts[i - 1], "timestamps ascend at {i}");
                    }
                }
                for issue in &report.issues {
                    prop_assert!(issue.message.len() < 400, "{}", issue.message.len());
                }
            }
            Err(e) => prop_assert!(e.to_string().len() < 2000, "an error of {} bytes", e.to_string().len()),
        }
    }
}
