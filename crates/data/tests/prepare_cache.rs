//! `data prepare`: writes data/final with a manifest, caches features by
//! content hash, and the training table loads it all back tagged by
//! instrument and timeframe.

use std::path::PathBuf;

use tradelab_core::Timeframe;
use tradelab_data::settings::{DataSettings, FeatureSettings, InstrumentSettings, RepairPolicy};
use tradelab_data::table::load_final;

fn raw_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/raw")
}

/// The two sections `prepare` reads.
#[derive(Clone, Default)]
struct Sections {
    data: DataSettings,
    features: FeatureSettings,
}

fn prepare(s: &Sections) -> Result<tradelab_data::prepare::PrepareReport, tradelab_data::DataError> {
    tradelab_data::prepare::prepare(&s.data, &s.features)
}

fn settings_in(dir: &std::path::Path, raw: PathBuf) -> Sections {
    let mut s = Sections::default();
    s.data.raw_dir = raw;
    s.data.final_dir = dir.join("final");
    s.data.cache_dir = dir.join("cache");
    s
}

#[test]
fn second_prepare_reads_features_from_the_cache_and_writes_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    for f in ["2006-day-001.txt", "2006-min-005.txt"] {
        std::fs::copy(raw_dir().join(f), raw.join(f)).unwrap();
    }
    let s = settings_in(dir.path(), raw.clone());
    let first = prepare(&s).unwrap();
    assert_eq!((first.cache_misses, first.cache_hits), (2, 0));
    let written = std::fs::read(s.data.final_dir.join("2006-min-005.csv")).unwrap();
    let second = prepare(&s).unwrap();
    assert_eq!((second.cache_misses, second.cache_hits), (0, 2), "nothing recomputed");
    assert_eq!(
        written,
        std::fs::read(s.data.final_dir.join("2006-min-005.csv")).unwrap()
    );

    // Changing the input or the feature settings invalidates the entry.
    let mut changed = s.clone();
    changed.features.rsi_period = 7;
    assert_eq!(prepare(&changed).unwrap().cache_misses, 2);
    let mut text = std::fs::read_to_string(raw.join("2006-day-001.txt")).unwrap();
    text = text.replacen("3604.33", "3604.34", 1);
    std::fs::write(raw.join("2006-day-001.txt"), text).unwrap();
    let after_edit = prepare(&s).unwrap();
    assert_eq!((after_edit.cache_misses, after_edit.cache_hits), (1, 1));
}

#[test]
fn training_table_spans_every_file_with_instrument_and_timeframe_tags() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings_in(dir.path(), raw_dir());
    let report = prepare(&s).unwrap();
    assert_eq!(report.prepared.len(), 6);
    assert!(report.failures.is_empty());
    let table = load_final(&s.data.final_dir).unwrap();
    assert_eq!(table.len(), 4012 + 5036 + 4713 + 255 + 2142 + 30889);
    assert_eq!(table.instruments.len(), 6);
    assert_eq!(table.feature_names.len(), table.features.len());
    assert!(table.features.iter().all(|c| c.len() == table.len()));
    let segs = table.segments();
    assert_eq!(segs.len(), 6);
    let tf_of = |name: &str| {
        let id = table.instruments.iter().position(|n| n == name).unwrap() as u32;
        segs.iter().find(|(i, _, _)| *i == id).unwrap().1
    };
    assert_eq!(tf_of("2006-01-02-volume-min-001"), Timeframe::MINUTE);
    assert_eq!(tf_of("2006-min-005"), "5m".parse().unwrap());
    assert_eq!(tf_of("nvda-1999-2014"), Timeframe::DAY);
    let nvda = table.series("nvda-1999-2014").unwrap();
    assert_eq!(nvda.len(), 4012);
    assert_eq!(nvda.close[0], 1.640625);
}

#[test]
fn a_corrupt_file_is_reported_and_the_others_are_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    std::fs::copy(raw_dir().join("2006-day-001.txt"), raw.join("good.txt")).unwrap();
    std::fs::write(raw.join("broken.csv"), "date,open,high,low,close\n2024-01-01,x,y,z,w\n").unwrap();
    let mut s = settings_in(dir.path(), raw);
    s.data.repair_policy = RepairPolicy::Refuse;
    let report = prepare(&s).unwrap();
    assert_eq!(report.prepared.len(), 1);
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].1.to_string().contains("broken.csv"));
    let table = load_final(&s.data.final_dir).unwrap();
    assert_eq!(table.instruments, vec!["good".to_string()]);
}

#[test]
fn missing_manifest_says_to_run_prepare() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_final(dir.path()).unwrap_err().to_string();
    assert!(e.contains("tradelab data prepare"), "{e}");
}

#[test]
fn a_declared_timeframe_wins_over_inference() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    std::fs::copy(raw_dir().join("2006-min-005.txt"), raw.join("2006-min-005.txt")).unwrap();
    let mut s = settings_in(dir.path(), raw);
    let declared = InstrumentSettings {
        lot_size: None,
        fractional: None,
        timeframe: Some("15m".parse().unwrap()),
        calendar: None,
    };
    s.data.instruments.insert("2006-min-005".into(), declared);
    let report = prepare(&s).unwrap();
    assert_eq!(report.prepared[0].timeframe, Some("15m".parse().unwrap()));
    s.data.instruments.clear();
    let report = prepare(&s).unwrap();
    assert_eq!(
        report.prepared[0].timeframe,
        Some("5m".parse().unwrap()),
        "inferred when not declared"
    );
}
