//! The series a backtest runs on or an agent trains on, and their
//! embedding ids: loading by name or path, the training vocabulary, data
//! hashes for provenance, and market data ready for the environment.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tradelab_agents::metadata::{series_hash, DataHash, Normalisation, Vocabulary};
use tradelab_agents::trainer::TrainingMarket;
use tradelab_core::{time::format_date, BarSeries};

use crate::settings::Settings;
use tradelab_data::load::find_symbol;
use tradelab_data::table::load_final;
use tradelab_data::{load_file, LoadOptions};
use tradelab_sim::engine::{self, BacktestResult};
use tradelab_sim::metrics::{self, Metrics};
use tradelab_sim::report::BacktestReport;
use tradelab_sim::strategies::{baseline, BASELINES};
use tradelab_sim::strategy::Strategy;

/// Looks up a baseline or explains which names exist.
pub fn strategy_by_name(name: &str, settings: &Settings) -> Result<Box<dyn Strategy>> {
    match baseline(name, &settings.strategies) {
        Some(s) => Ok(s),
        None => bail!("unknown strategy `{name}`; choose one of: {}", BASELINES.join(", ")),
    }
}

/// Loads symbols from `data.raw_dir`, reporting what validation did.
pub fn load_symbols(settings: &Settings, symbols: &[String], verbose: bool) -> Result<Vec<BarSeries>> {
    Ok(load_symbol_files(settings, symbols, verbose)?
        .into_iter()
        .map(|s| s.series)
        .collect())
}

/// A series and the file it was read from (none for prepared data, which
/// is found by instrument name).
#[derive(Debug, Clone)]
pub struct SourcedSeries {
    /// The bars.
    pub series: BarSeries,
    /// The price file, as resolved from the working directory.
    pub file: Option<std::path::PathBuf>,
}

/// [`load_symbols`], keeping the file each series came from.
pub fn load_symbol_files(settings: &Settings, symbols: &[String], verbose: bool) -> Result<Vec<SourcedSeries>> {
    let mut out = Vec::new();
    for s in symbols {
        // A path to a file loads that file (where data.symbol_paths allows:
        // not in jobs, issue 19 finding 12); anything else names an
        // instrument in data.raw_dir.
        let path = std::path::Path::new(s);
        let looks_like_a_path =
            s.contains(['/', '\\']) || [".csv", ".txt"].iter().any(|ext| s.to_ascii_lowercase().ends_with(ext));
        let in_raw = settings.data.raw_dir.join(s);
        let path = if settings.data.symbol_paths && path.is_file() {
            path.to_path_buf()
        } else if settings.data.symbol_paths && !s.contains(['/', '\\']) && in_raw.is_file() {
            // A file name in data.raw_dir, extension and all.
            in_raw
        } else if settings.data.symbol_paths && looks_like_a_path {
            bail!(
                "file not found: {s}; check the path, or name an instrument in {} instead",
                settings.data.raw_dir.display()
            );
        } else {
            find_symbol(&settings.data.raw_dir, s).with_context(|| format!("loading `{s}`"))?
        };
        let loaded = load_file(&path, &LoadOptions::for_file(&settings.data, &path));
        let (series, report) = loaded.with_context(|| format!("loading `{s}`"))?;
        if !report.issues.is_empty() {
            eprintln!(
                "note: {}: {} rows repaired, {} dropped (run `tradelab data validate {}` for details)",
                report.path.display(),
                report.repaired(),
                report.dropped(),
                report.path.display()
            );
        }
        if let Some(n) = &report.adjusted_close_note {
            eprintln!("note: {}: {n}", report.path.display());
        }
        if verbose {
            if let Some(n) = &report.header_note {
                eprintln!("note: {}: {n}", report.path.display());
            }
        }
        out.push(SourcedSeries {
            series,
            file: Some(path),
        });
    }
    Ok(out)
}

/// Runs the baseline `strategy` over `feeds` with the settings' engine, costs and risk layer.
pub fn backtest<'a>(settings: &Settings, strategy: &str, feeds: &'a [BarSeries]) -> Result<BacktestResult<'a>> {
    let mut s = strategy_by_name(strategy, settings)?;
    let refs: Vec<&BarSeries> = feeds.iter().collect();
    Ok(engine::run(&refs, s.as_mut(), &settings.engine_config()))
}

/// Metrics and the JSON report of a result under `settings`.
pub fn build_report(result: &BacktestResult<'_>, settings: &Settings) -> (Metrics, BacktestReport) {
    let m = metrics::compute(result, settings.backtest.risk_free_rate);
    // Where reports go does not change what they say.
    let mut fingerprinted = settings.clone();
    fingerprinted.report.out_dir = Default::default();
    let fingerprint = serde_json::to_string(&fingerprinted).unwrap_or_default();
    let fill = serde_json::to_value(settings.backtest.fill)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let report = BacktestReport::new(result, &m, &settings.backtest.currency, &fill, &fingerprint);
    (m, report)
}

/// Timeframe name of a series ("1d", "5m", or "unknown").
pub fn timeframe_name(s: &BarSeries) -> String {
    s.timeframe_or_inferred()
        .map(|t| t.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Series from `--symbol` (names in data/final, else data.raw_dir, or
/// paths), or every series in data/final; optionally one timeframe only.
pub fn load_series(
    settings: &Settings,
    symbols: &[String],
    timeframe: Option<&str>,
    verbose: bool,
) -> Result<Vec<BarSeries>> {
    let sourced = load_series_sourced(settings, symbols, timeframe, verbose)?;
    Ok(sourced.into_iter().map(|s| s.series).collect())
}

/// [`load_series`], keeping the file each series came from.
pub fn load_series_sourced(
    settings: &Settings,
    symbols: &[String],
    timeframe: Option<&str>,
    verbose: bool,
) -> Result<Vec<SourcedSeries>> {
    let final_dir = &settings.data.final_dir;
    let table = load_final(final_dir).ok();
    let mut out = Vec::new();
    if symbols.is_empty() {
        let Some(table) = table else {
            bail!(
                "no prepared data in {}; run `tradelab data prepare` (or `tradelab run`) first, or name files with --symbol",
                final_dir.display()
            );
        };
        for (id, tf, r) in table.segments() {
            out.push(SourcedSeries {
                series: table.segment_series(id, tf, r),
                file: None,
            });
        }
    } else {
        for s in symbols {
            let from_table = table.as_ref().and_then(|t| {
                let id = t.instruments.iter().position(|n| n == s)? as u32;
                Some(
                    t.segments()
                        .into_iter()
                        .filter(|(i, _, _)| *i == id)
                        .map(|(i, tf, r)| SourcedSeries {
                            series: t.segment_series(i, tf, r),
                            file: None,
                        })
                        .collect::<Vec<_>>(),
                )
            });
            match from_table {
                Some(found) => out.extend(found),
                None => out.extend(load_symbol_files(settings, std::slice::from_ref(s), verbose)?),
            }
        }
    }
    if let Some(tf) = timeframe {
        out.retain(|s| timeframe_name(&s.series) == tf);
        if out.is_empty() {
            bail!("no series with timeframe `{tf}`; omit --timeframe or choose another (e.g. 1d, 5m, 1m)");
        }
    }
    Ok(out)
}

/// The vocabulary of a set of series: instruments and timeframes in first-seen order.
pub fn vocabulary(series: &[BarSeries]) -> Vocabulary {
    let mut v = Vocabulary::default();
    for s in series {
        if !v.instruments.contains(&s.instrument) {
            v.instruments.push(s.instrument.clone());
        }
        let tf = timeframe_name(s);
        if !v.timeframes.contains(&tf) {
            v.timeframes.push(tf);
        }
    }
    v
}

/// A series' identity for provenance: instrument, timeframe, span and content hash.
pub fn data_hash(s: &BarSeries) -> DataHash {
    DataHash {
        source: None,
        instrument: s.instrument.clone(),
        timeframe: timeframe_name(s),
        bars: s.len(),
        first: s.ts.first().map(|t| format_date(*t)).unwrap_or_default(),
        last: s.ts.last().map(|t| format_date(*t)).unwrap_or_default(),
        sha256: series_hash(s),
    }
}

/// Each market's training-split normalisation, for the checkpoint: what
/// turns raw bars into the model's observation later.
pub fn normalisations(markets: &[TrainingMarket]) -> Vec<Normalisation> {
    markets
        .iter()
        .map(|m| Normalisation {
            instrument: m.data.series.instrument.clone(),
            timeframe: timeframe_name(&m.data.series),
            mean: m.data.mean.clone(),
            std: m.data.std.clone(),
        })
        .collect()
}

/// Market data (features, normalisation, splits) with embedding ids.
pub fn markets(series: Vec<BarSeries>, vocab: &Vocabulary, settings: &Settings) -> Result<Vec<TrainingMarket>> {
    let mut out = Vec::new();
    for s in series {
        let key = vocab
            .key(&s.instrument, &timeframe_name(&s))
            .map_err(anyhow::Error::msg)?;
        let name = format!("{} ({})", s.instrument, timeframe_name(&s));
        let data = settings
            .market_data(s)
            .with_context(|| format!("preparing {name} for the environment"))?;
        out.push(TrainingMarket {
            data: Arc::new(data),
            key,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// Default settings reading the repository's bundled price files, and
    /// a data/final folder that holds nothing.
    fn settings(empty_final: &Path) -> Settings {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut s = Settings::default();
        s.data.raw_dir = root.join("data/raw");
        s.data.final_dir = empty_final.to_path_buf();
        s
    }

    #[test]
    fn symbols_load_by_name_or_path_and_unknown_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let by_name = load_symbols(&s, &["nvda-1999-2014".into()], true).unwrap();
        let path: PathBuf = s.data.raw_dir.join("nvda-1999-2014.txt");
        let by_path = load_symbols(&s, &[path.display().to_string()], false).unwrap();
        assert_eq!(by_name, by_path);
        assert_eq!(by_name[0].len(), 4012, "every row of the bundled file");
        let e = format!("{:#}", load_symbols(&s, &["no-such-symbol".into()], false).unwrap_err());
        assert!(e.contains("loading `no-such-symbol`"), "{e}");
        // Issue 20: a missing path says so, once, not "no instrument matches".
        let e = format!("{:#}", load_symbols(&s, &["./nope.csv".into()], false).unwrap_err());
        assert!(
            e.contains("file not found: ./nope.csv") && !e.contains("no instrument"),
            "{e}"
        );
        assert_eq!(
            load_symbols(&s, &["nvda-1999-2014.txt".into()], false).unwrap(),
            by_name,
            "a file name in data.raw_dir"
        );

        // Issue 19 finding 12: where paths are off (jobs, names from a
        // model's metadata), a name that happens to be a file in the working
        // directory is looked up among the instruments, and the file is
        // never opened (its first line used to come back in the error).
        let mut names_only = s.clone();
        names_only.data.symbol_paths = false;
        let secret = dir.path().join("tradelab.db");
        std::fs::write(&secret, "SQLite format 3 secret header\n").unwrap();
        let e = format!(
            "{:#}",
            load_symbols(&names_only, &[secret.display().to_string()], false).unwrap_err()
        );
        assert!(e.contains("no instrument") || e.contains("unknown"), "{e}");
        assert!(!e.contains("secret header"), "{e}");
        let by_path_off = load_symbols(&names_only, &[path.display().to_string()], false);
        assert!(by_path_off.is_err(), "a path is no instrument name");
        assert_eq!(
            load_symbols(&names_only, &["nvda-1999-2014".into()], false).unwrap(),
            by_name
        );
    }

    #[test]
    fn series_come_from_the_named_files_when_nothing_is_prepared_and_filter_by_timeframe() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let e = load_series(&s, &[], None, false).unwrap_err().to_string();
        assert!(
            e.contains("no prepared data") && e.contains("tradelab data prepare"),
            "{e}"
        );
        let names = ["nvda-1999-2014".to_string(), "orcl-1995-2014".to_string()];
        let daily = load_series(&s, &names, Some("1d"), false).unwrap();
        assert_eq!(daily.len(), 2);
        let e = load_series(&s, &names, Some("5m"), false).unwrap_err().to_string();
        assert!(e.contains("no series with timeframe `5m`"), "{e}");
    }

    #[test]
    fn the_vocabulary_and_markets_give_each_series_its_embedding_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.env.window = 8;
        let names = ["orcl-1995-2014".to_string(), "nvda-1999-2014".to_string()];
        let series = load_series(&s, &names, None, false).unwrap();
        let vocab = vocabulary(&series);
        assert_eq!(vocab.instruments, ["orcl-1995-2014", "nvda-1999-2014"]);
        assert_eq!(vocab.timeframes, ["1d"]);
        let hash = data_hash(&series[1]);
        assert_eq!((hash.timeframe.as_str(), hash.first.as_str()), ("1d", "1999-01-22"));
        assert_eq!(hash.sha256, series_hash(&series[1]));
        let built = markets(series, &vocab, &s).unwrap();
        assert_eq!((built[0].key.instrument, built[1].key.instrument), (0, 1));
        assert_eq!(built[1].data.series.instrument, "nvda-1999-2014");
        // A series outside the vocabulary is refused with what the model knows.
        let other = load_series(&s, &["yhoo-1996-2014".to_string()], None, false).unwrap();
        let e = markets(other, &vocab, &s).err().unwrap().to_string();
        assert!(e.contains("`yhoo-1996-2014` is not in the model's vocabulary"), "{e}");
    }

    #[test]
    fn a_baseline_backtests_by_name_and_an_unknown_one_lists_the_choices() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let feeds = load_symbols(&s, &["orcl-1995-2014".into()], false).unwrap();
        let r = backtest(&s, "sma_crossover", &feeds).unwrap();
        assert_eq!(r.strategy, "sma_crossover(10,30)");
        assert!(!r.trades.is_empty() && r.final_equity > 0.0);
        let e = backtest(&s, "martingale", &feeds).err().unwrap().to_string();
        assert!(
            e.contains("unknown strategy `martingale`") && e.contains("momentum"),
            "{e}"
        );
        assert_eq!(timeframe_name(&BarSeries::new("empty")), "unknown");
    }
}
