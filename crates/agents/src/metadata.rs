//! `metadata.json`: what a checkpoint is and where it came from.

use serde::{Deserialize, Serialize};

/// Which embedding rows a market uses: its instrument and timeframe ids in
/// the model's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarketKey {
    /// Row of the instrument embedding: index into [`Vocabulary::instruments`].
    pub instrument: u32,
    /// Row of the timeframe embedding: index into [`Vocabulary::timeframes`].
    pub timeframe: u32,
}

/// Bumped when the checkpoint layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// The model's vocabulary: instrument and timeframe names by embedding row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// Instrument names; position `i` is embedding row `i`.
    pub instruments: Vec<String>,
    /// Timeframe names (e.g. `1d`, `5m`); position `i` is embedding row `i`.
    pub timeframes: Vec<String>,
    /// The instrument embedding has one more row, after the named ones,
    /// learnt by embedding dropout for instruments the model never saw
    /// (`ppo.instrument_dropout`). Absent from older models: false.
    #[serde(default)]
    pub unknown_instrument: bool,
}

impl Vocabulary {
    /// Rows of the instrument embedding: one per named instrument, plus
    /// the unknown instrument's when the model has one.
    pub fn instrument_rows(&self) -> usize {
        self.instruments.len() + usize::from(self.unknown_instrument)
    }

    /// Whether the model was trained on `instrument`.
    pub fn knows(&self, instrument: &str) -> bool {
        self.instruments.iter().any(|x| x == instrument)
    }

    /// Ids of a market, or an error naming what the model knows. An
    /// instrument the model never saw gets the unknown-instrument row when
    /// it has one.
    pub fn key(&self, instrument: &str, timeframe: &str) -> Result<MarketKey, String> {
        let i = match self.instruments.iter().position(|x| x == instrument) {
            Some(i) => i,
            None if self.unknown_instrument => self.instruments.len(),
            None => {
                return Err(format!(
                    "instrument `{instrument}` is not in the model's vocabulary {:?}, and the model has no unknown-instrument embedding; evaluate on one of those, or train with ppo.instrument_dropout above 0 (or --holdout) so it can trade unseen instruments",
                    self.instruments
                ))
            }
        };
        let t = self.timeframes.iter().position(|x| x == timeframe).ok_or_else(|| {
            format!(
                "timeframe `{timeframe}` is not in the model's vocabulary {:?}",
                self.timeframes
            )
        })?;
        Ok(MarketKey {
            instrument: i as u32,
            timeframe: t as u32,
        })
    }
}

/// One series the model was trained on, identified by content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataHash {
    /// The series' instrument name.
    pub instrument: String,
    /// The series' timeframe name.
    pub timeframe: String,
    /// Bars in the series.
    pub bars: usize,
    /// Date of the first bar, `YYYY-MM-DD` (empty for an empty series).
    pub first: String,
    /// Date of the last bar, `YYYY-MM-DD` (empty for an empty series).
    pub last: String,
    /// sha256 of the bars (timestamps and OHLCV as little-endian bytes).
    pub sha256: String,
    /// The price file the series was read from, when it was one (not
    /// prepared data): `evaluate` finds it again without `--symbol`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceFile>,
}

/// A price file, by where it was and what it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// The path as resolved then: relative to the working directory when
    /// under it, else absolute.
    pub path: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// sha256 of the file's bytes, to recognise it after a move.
    pub sha256: String,
}

/// Greedy performance on the validation split. Fields after `at_update`
/// read as 0 from models saved before they existed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationMetrics {
    /// Mean over markets of the split's total return, in percent, after costs.
    pub return_pct: f64,
    /// Round-trip trades, summed over markets.
    pub trades: usize,
    /// The agent's update count when it was evaluated.
    pub at_update: usize,
    /// What checkpoints are chosen by (`ppo.selection`): the Sharpe below,
    /// or `return_pct`.
    #[serde(default)]
    pub score: f64,
    /// Mean over markets and validation windows of the annualised Sharpe
    /// ratio of per-bar equity returns after costs; a window without a
    /// position scores 0.
    #[serde(default)]
    pub sharpe: f64,
    /// Positions opened, summed over markets: 0 means the policy is flat.
    #[serde(default)]
    pub entries: usize,
    /// Share of validation bars spent holding a position, averaged over
    /// markets.
    #[serde(default)]
    pub exposure: f64,
}

impl ValidationMetrics {
    /// Whether the policy never opened a position.
    pub fn is_flat(&self) -> bool {
        self.entries == 0
    }

    /// What a report should warn about this policy, if anything: flat, or
    /// holding without ever closing a trade.
    pub fn warning(&self) -> Option<&'static str> {
        if self.is_flat() {
            Some("the policy never opens a position on the validation split (flat)")
        } else if self.trades == 0 {
            Some("the policy opens positions but never closes a trade on the validation split (it buys and holds)")
        } else {
            None
        }
    }
}

/// Where the model came from and how well it did: filled in by the trainer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The instruments and timeframes the embeddings know.
    pub vocabulary: Vocabulary,
    /// Names of the feature columns, in the window's column order.
    pub features: Vec<String>,
    /// The full settings the model was trained with.
    pub settings: serde_json::Value,
    /// The series trained on, identified by content.
    pub data: Vec<DataHash>,
    /// The last update's statistics (without its episode returns).
    pub train: Option<crate::agent::LearnStats>,
    /// Mean return of the last 100 finished training episodes, when any
    /// finished.
    pub train_return_moving_average: Option<f64>,
    /// The latest validation.
    pub validation: Option<ValidationMetrics>,
    /// The best validation so far (the `best/` checkpoint's).
    pub best_validation: Option<ValidationMetrics>,
    /// Evaluations since the best one (early stopping's counter).
    pub evaluations_since_best: usize,
    /// Online updates since the first training (`tradelab adapt`), oldest first.
    #[serde(default)]
    pub adaptations: Vec<Adaptation>,
    /// Each market's z-scoring statistics, fitted on its training split:
    /// what turns raw bars into the observation the model was trained on
    /// (the decision endpoint's `bars` form, the trading loop). Absent from
    /// older models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub normalisation: Vec<Normalisation>,
}

/// One market's normalisation: per observation column (in
/// [`Provenance::features`] order), the training split's mean and
/// standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// The instrument's name.
    pub instrument: String,
    /// The timeframe's name.
    pub timeframe: String,
    /// Per-column mean.
    pub mean: Vec<f64>,
    /// Per-column standard deviation.
    pub std: Vec<f64>,
}

impl Provenance {
    /// The normalisation of `instrument` on `timeframe`, if recorded.
    pub fn normalisation_of(&self, instrument: &str, timeframe: &str) -> Option<&Normalisation> {
        self.normalisation
            .iter()
            .find(|n| n.instrument == instrument && n.timeframe == timeframe)
    }
}

/// One online update: the data window it learnt from and what it did to the
/// validation return that guarded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adaptation {
    /// The series the window came from.
    pub data: DataHash,
    /// Bars trained on: `(start, end)` indices into that series, end
    /// exclusive.
    pub train_bars: (usize, usize),
    /// Bars validated on, in the same form.
    pub validation_bars: (usize, usize),
    /// Environment steps of training the update ran.
    pub steps: usize,
    /// Greedy validation return (%) before the update.
    pub validation_before_pct: f64,
    /// Greedy validation return (%) of the best checkpoint the update
    /// produced.
    pub validation_after_pct: f64,
    /// Timestamps (UTC ms) of the first and last bar the update learnt from
    /// or was validated on, so that evaluations on other copies of the
    /// series can tell whether they overlap. Absent from older models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_span: Option<(i64, i64)>,
}

impl Adaptation {
    /// The bars of an evaluation over `bars` (indices into the series `data`
    /// with timestamps `ts`) that this update learnt from or was selected
    /// on, as their first and last timestamp; `None` when they do not
    /// overlap or concern another market.
    pub fn overlap(&self, data: &DataHash, ts: &[i64], bars: std::ops::Range<usize>) -> Option<(i64, i64)> {
        if self.data.instrument != data.instrument || self.data.timeframe != data.timeframe || bars.is_empty() {
            return None;
        }
        let span = (ts[bars.start], ts[bars.end - 1]);
        match self.seen_span {
            Some(seen) => {
                let (from, to) = (seen.0.max(span.0), seen.1.min(span.1));
                (from <= to).then_some((from, to))
            }
            // Older models recorded indices only: they compare on the same bars.
            None if self.data.sha256 == data.sha256 => {
                let lo = self.train_bars.0.min(self.validation_bars.0).max(bars.start);
                let hi = self.train_bars.1.max(self.validation_bars.1).min(bars.end);
                (lo < hi).then(|| (ts[lo], ts[hi - 1]))
            }
            None => None,
        }
    }
}

impl SourceFile {
    /// Describes the file at `path` (read in chunks, never whole), recorded
    /// under the name `shown`.
    pub fn read(path: &std::path::Path, shown: String) -> std::io::Result<SourceFile> {
        use sha2::{Digest, Sha256};
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let (mut h, mut buf, mut bytes) = (Sha256::new(), vec![0u8; 1 << 16], 0u64);
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            bytes += n as u64;
        }
        Ok(SourceFile {
            path: shown,
            bytes,
            sha256: hex::encode(h.finalize()),
        })
    }
}

/// sha256 of a series' bars, so a model can tell whether it is being
/// evaluated on the data it was trained on.
pub fn series_hash(s: &tradelab_core::BarSeries) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for i in 0..s.len() {
        h.update(s.ts[i].to_le_bytes());
        for v in [s.open[i], s.high[i], s.low[i], s.close[i], s.volume[i]] {
            h.update(v.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// The current time as RFC 3339 UTC. `SOURCE_DATE_EPOCH` (seconds), the
/// reproducible-builds convention, replaces the clock so that two runs with
/// the same seed can produce byte-identical checkpoints.
pub fn timestamp_now() -> String {
    let ms = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|s| s * 1000)
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        });
    let secs = ms.div_euclid(1000);
    let (y, m, d) = tradelab_core::time::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adaptation_names_the_bars_of_an_evaluation_it_has_seen() {
        let data = DataHash {
            instrument: "x".into(),
            timeframe: "1d".into(),
            bars: 100,
            first: String::new(),
            last: String::new(),
            sha256: "abc".into(),
            source: None,
        };
        let ts: Vec<i64> = (0..100).map(|i| i * 10).collect();
        let mut a = Adaptation {
            data: data.clone(),
            train_bars: (70, 85),
            validation_bars: (85, 90),
            steps: 1,
            validation_before_pct: 0.0,
            validation_after_pct: 0.0,
            seen_span: None,
        };
        // Indices, for older models, on the same bars only.
        assert_eq!(a.overlap(&data, &ts, 80..100), Some((800, 890)));
        assert_eq!(a.overlap(&data, &ts, 90..100), None);
        let other = DataHash {
            sha256: "def".into(),
            ..data.clone()
        };
        assert_eq!(a.overlap(&other, &ts, 80..100), None);
        // Timestamps compare across copies of the series.
        a.seen_span = Some((700, 890));
        assert_eq!(a.overlap(&other, &ts, 80..100), Some((800, 890)));
        assert_eq!(a.overlap(&other, &ts, 90..100), None);
        let elsewhere = DataHash {
            instrument: "y".into(),
            ..data
        };
        assert_eq!(a.overlap(&elsewhere, &ts, 0..100), None);
    }

    #[test]
    fn a_vocabulary_gives_embedding_rows_and_names_what_it_knows_otherwise() {
        let v = Vocabulary {
            instruments: vec!["nifty".into(), "btc".into()],
            timeframes: vec!["1d".into(), "5m".into()],
            unknown_instrument: false,
        };
        assert_eq!(
            v.key("btc", "5m").unwrap(),
            MarketKey {
                instrument: 1,
                timeframe: 1
            }
        );
        let e = v.key("nvda", "1d").unwrap_err();
        assert!(e.contains("`nvda`") && e.contains("[\"nifty\", \"btc\"]"), "{e}");
        let e = v.key("nifty", "1h").unwrap_err();
        assert!(e.contains("`1h`") && e.contains("[\"1d\", \"5m\"]"), "{e}");
        assert_eq!(v.instrument_rows(), 2);
        // With the unknown row, an unseen instrument reads it; an unseen
        // timeframe is still refused.
        let u = Vocabulary {
            unknown_instrument: true,
            ..v
        };
        assert_eq!(u.instrument_rows(), 3);
        assert_eq!(
            u.key("nvda", "5m").unwrap(),
            MarketKey {
                instrument: 2,
                timeframe: 1
            }
        );
        assert_eq!(u.key("btc", "1d").unwrap().instrument, 1);
        assert!(u.knows("btc") && !u.knows("nvda"));
        assert!(u.key("nvda", "1h").is_err());
        let old: Vocabulary = serde_json::from_str(r#"{"instruments": ["a"], "timeframes": ["1d"]}"#).unwrap();
        assert!(!old.unknown_instrument, "models saved before it read as without");
    }

    #[test]
    fn the_series_hash_changes_with_any_bar_value_and_only_then() {
        let series = tradelab_testkit::synthetic_series(50, 7);
        let same = tradelab_testkit::synthetic_series(50, 7);
        assert_eq!(series_hash(&series), series_hash(&same));
        assert_eq!(series_hash(&series).len(), 64);
        let mut moved = same.clone();
        moved.volume[49] += 1.0;
        assert_ne!(series_hash(&series), series_hash(&moved));
        let mut renamed = same;
        renamed.instrument = "other".into();
        assert_eq!(series_hash(&series), series_hash(&renamed), "bars, not names");
    }
}
