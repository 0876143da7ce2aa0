//! The training table: every file under `data/final/` in one columnar table,
//! each row tagged with its instrument and timeframe.

use std::ops::Range;
use std::path::Path;

use tradelab_core::{BarSeries, Timeframe};

use crate::load::timestamp::TimestampFormat;
use crate::prepare::{Manifest, MANIFEST};
use crate::DataError;

/// Every prepared file's rows, concatenated in manifest order, one column
/// per field. All row columns have the same length; each file's rows form
/// one contiguous [segment](Self::segments).
#[derive(Debug, Clone, Default)]
pub struct MarketTable {
    /// Distinct instrument names; `instrument_id` indexes into this.
    pub instruments: Vec<String>,
    /// Per row: index into `instruments`.
    pub instrument_id: Vec<u32>,
    /// Per row: the file's declared timeframe, else the inferred one, else
    /// one day.
    pub timeframe: Vec<Timeframe>,
    /// Per row: timestamp, UTC milliseconds.
    pub ts: Vec<i64>,
    /// Per row: opening price.
    pub open: Vec<f64>,
    /// Per row: high price.
    pub high: Vec<f64>,
    /// Per row: low price.
    pub low: Vec<f64>,
    /// Per row: closing price.
    pub close: Vec<f64>,
    /// Per row: traded volume.
    pub volume: Vec<f64>,
    /// Names of the `features` columns, shared by every file.
    pub feature_names: Vec<String>,
    /// One column per feature; NaN during warm-up.
    pub features: Vec<Vec<f64>>,
}

impl MarketTable {
    /// Total number of rows, over all files.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when the table holds no rows.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Contiguous row ranges, one per (instrument, timeframe) file.
    pub fn segments(&self) -> Vec<(u32, Timeframe, Range<usize>)> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=self.len() {
            if i == self.len()
                || self.instrument_id[i] != self.instrument_id[start]
                || self.timeframe[i] != self.timeframe[start]
            {
                out.push((self.instrument_id[start], self.timeframe[start], start..i));
                start = i;
            }
        }
        out
    }

    /// The bars of one instrument as a series.
    pub fn series(&self, instrument: &str) -> Option<BarSeries> {
        let id = self.instruments.iter().position(|n| n == instrument)? as u32;
        let (_, tf, r) = self.segments().into_iter().find(|(i, _, _)| *i == id)?;
        Some(self.segment_series(id, tf, r))
    }

    /// One segment (as [`segments`](Self::segments) lists them) as a series.
    pub fn segment_series(&self, id: u32, tf: Timeframe, r: Range<usize>) -> BarSeries {
        BarSeries {
            instrument: self.instruments[id as usize].clone(),
            timeframe: Some(tf),
            calendar: None,
            ts: self.ts[r.clone()].to_vec(),
            open: self.open[r.clone()].to_vec(),
            high: self.high[r.clone()].to_vec(),
            low: self.low[r.clone()].to_vec(),
            close: self.close[r.clone()].to_vec(),
            volume: self.volume[r].to_vec(),
        }
    }
}

/// Loads everything listed in `final_dir/manifest.json`.
pub fn load_final(final_dir: &Path) -> Result<MarketTable, DataError> {
    if final_dir.is_relative() && !final_dir.exists() {
        return Err(crate::load::missing_dir(final_dir));
    }
    let manifest_path = final_dir.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        DataError::format(
            &manifest_path,
            format!("cannot read the training data manifest ({e}); run `tradelab data prepare` first"),
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        DataError::format(
            &manifest_path,
            format!("corrupt manifest ({e}); run `tradelab data prepare` again"),
        )
    })?;
    if manifest.entries.is_empty() {
        return Err(DataError::format(
            &manifest_path,
            "no prepared files; put data in data/raw and run `tradelab data prepare`",
        ));
    }
    let mut table = MarketTable {
        feature_names: manifest.entries[0].features.clone(),
        ..Default::default()
    };
    table.features = vec![Vec::new(); table.feature_names.len()];
    for entry in &manifest.entries {
        if entry.features != table.feature_names {
            return Err(DataError::format(
                final_dir.join(&entry.file),
                "feature columns differ from the other files; run `tradelab data prepare` again",
            ));
        }
        let id = table.instruments.len() as u32;
        table.instruments.push(entry.instrument.clone());
        read_final_file(&final_dir.join(&entry.file), entry, id, &mut table)?;
    }
    Ok(table)
}

fn read_final_file(
    path: &Path,
    entry: &crate::prepare::ManifestEntry,
    id: u32,
    t: &mut MarketTable,
) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let expected = 6 + t.feature_names.len();
    let start = t.len();
    let mut rec = csv::ByteRecord::new();
    let bad = |line: u64, what: &str| {
        DataError::format(path, format!("line {line}: {what}; run `tradelab data prepare` again"))
    };
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| DataError::format(path, e.to_string()))?
    {
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() != expected {
            return Err(bad(line, &format!("{} fields, expected {expected}", rec.len())));
        }
        let num = |i: usize| -> Result<f64, DataError> {
            let f = std::str::from_utf8(&rec[i]).unwrap_or("");
            if f.is_empty() {
                return Ok(f64::NAN);
            }
            f.parse().map_err(|_| bad(line, &format!("cannot parse `{f}`")))
        };
        let ts = TimestampFormat::Iso
            .parse(&rec[0])
            .ok_or_else(|| bad(line, "cannot parse datetime"))?;
        t.ts.push(ts);
        t.open.push(num(1)?);
        t.high.push(num(2)?);
        t.low.push(num(3)?);
        t.close.push(num(4)?);
        t.volume.push(num(5)?);
        for (k, col) in t.features.iter_mut().enumerate() {
            col.push(num(6 + k)?);
        }
        t.instrument_id.push(id);
    }
    let tf = entry
        .timeframe
        .or_else(|| Timeframe::infer(&t.ts[start..]))
        .unwrap_or(Timeframe::DAY);
    t.timeframe.resize(t.len(), tf);
    if t.len() - start != entry.rows {
        return Err(DataError::format(
            path,
            format!(
                "holds {} rows but the manifest says {}; run `tradelab data prepare` again",
                t.len() - start,
                entry.rows
            ),
        ));
    }
    Ok(())
}
