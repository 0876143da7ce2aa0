//! `tradelab data prepare`: validated bars plus features, from `data/raw/` to
//! `data/final/`, with features cached by content hash.
//!
//! Output: one `<instrument>.csv` per input (lower-case
//! `datetime,open,high,low,close,volume` followed by the feature columns;
//! warm-up values are empty) and `manifest.json`, which lists each file with
//! its timeframe and the SHA-256 of its source so training runs can record
//! exactly which data they saw.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::settings::{DataSettings, FeatureSettings};
use serde::{Deserialize, Serialize};
use tradelab_core::time::format_datetime;
use tradelab_core::{BarSeries, Timeframe};

use crate::cache::{content_hash, feature_key, write_atomic, FeatureCache};
use crate::load::{data_files, instrument_name, load_bytes, LoadOptions, LoadReport};
use crate::{DataError, FeatureEngine, FeatureMatrix};

/// File name of the manifest in `data/final/`.
pub const MANIFEST: &str = "manifest.json";

/// One prepared file, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Instrument name (the source file's stem).
    pub instrument: String,
    /// Declared or inferred bar spacing; `None` if it could not be inferred.
    pub timeframe: Option<Timeframe>,
    /// The prepared file's name inside `data/final/` (`<instrument>.csv`).
    pub file: String,
    /// The raw file it was prepared from.
    pub source: PathBuf,
    /// Hex SHA-256 of the raw file's bytes.
    pub source_sha256: String,
    /// Number of bars (data rows) in the prepared file.
    pub rows: usize,
    /// Feature column names, in the order they follow the OHLCV columns.
    pub features: Vec<String>,
}

/// `data/final/manifest.json`: every prepared file, in the order prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// One entry per prepared file.
    pub entries: Vec<ManifestEntry>,
}

/// What a prepare run did.
#[derive(Debug, Default)]
pub struct PrepareReport {
    /// The files prepared, as written to the manifest.
    pub prepared: Vec<ManifestEntry>,
    /// The validated bars of each prepared file, in manifest order.
    pub series: Vec<BarSeries>,
    /// The load report of each prepared file, in manifest order.
    pub loads: Vec<LoadReport>,
    /// The raw files that could not be prepared, with why.
    pub failures: Vec<(PathBuf, DataError)>,
    /// Files whose features came from the cache.
    pub cache_hits: usize,
    /// Files whose features were computed (and then cached).
    pub cache_misses: usize,
}

/// Prepares every file in `data.raw_dir`. A bad file is reported in
/// `failures` and the others are still prepared.
pub fn prepare(d: &DataSettings, features: &FeatureSettings) -> Result<PrepareReport, DataError> {
    let cache = FeatureCache::new(&d.cache_dir);
    let mut report = PrepareReport::default();
    let context = format!("{:?}", d.repair_policy);
    for path in data_files(&d.raw_dir)? {
        match prepare_one(&path, d, features, &cache, &context) {
            Ok((entry, series, load, hit)) => {
                if hit {
                    report.cache_hits += 1;
                } else {
                    report.cache_misses += 1;
                }
                report.prepared.push(entry);
                report.series.push(series);
                report.loads.push(load);
            }
            Err(e) => report.failures.push((path, e)),
        }
    }
    let manifest = Manifest {
        entries: report.prepared.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&d.final_dir.join(MANIFEST), &json)?;
    Ok(report)
}

fn prepare_one(
    path: &Path,
    data: &DataSettings,
    feature_settings: &FeatureSettings,
    cache: &FeatureCache,
    context: &str,
) -> Result<(ManifestEntry, BarSeries, LoadReport, bool), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let (series, load) = load_bytes(&bytes, path, &LoadOptions::for_file(data, path))?;
    let key = feature_key(&bytes, context, feature_settings);
    let (features, hit) = cache.get_or_compute(&key, || FeatureEngine::new(feature_settings).compute(&series))?;
    let file = format!("{}.csv", instrument_name(path));
    write_atomic(&data.final_dir.join(&file), final_csv(&series, &features).as_bytes())?;
    let entry = ManifestEntry {
        instrument: series.instrument.clone(),
        timeframe: series.timeframe,
        file,
        source: path.to_path_buf(),
        source_sha256: content_hash(&bytes),
        rows: series.len(),
        features: features.names.clone(),
    };
    Ok((entry, series, load, hit))
}

/// Renders bars and features as the `data/final/` CSV layout (warm-up
/// values left empty).
pub fn final_csv(series: &BarSeries, features: &FeatureMatrix) -> String {
    let names: Vec<&str> = features.names.iter().map(String::as_str).collect();
    bars_csv(series, &names, |col, row, out| {
        let v = features.columns[col][row];
        if v.is_finite() {
            let _ = write!(out, "{v}");
        }
    })
}

/// Lower-case `datetime,open,high,low,close,volume` CSV followed by the
/// `extra` columns, whose cells `cell(column, row, out)` writes.
pub fn bars_csv(series: &BarSeries, extra: &[&str], mut cell: impl FnMut(usize, usize, &mut String)) -> String {
    let mut out = String::with_capacity(series.len() * (64 + 20 * extra.len()));
    out.push_str("datetime,open,high,low,close,volume");
    for n in extra {
        out.push(',');
        out.push_str(n);
    }
    out.push('\n');
    for i in 0..series.len() {
        let b = series.bar(i);
        let _ = write!(
            out,
            "{},{},{},{},{},{}",
            format_datetime(b.ts),
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume
        );
        for col in 0..extra.len() {
            out.push(',');
            cell(col, i, &mut out);
        }
        out.push('\n');
    }
    out
}
