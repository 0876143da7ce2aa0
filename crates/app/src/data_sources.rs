//! Where a model's markets came from: the price files recorded in its
//! metadata, found again by path, or by content after a move, so that
//! `evaluate --model runs/x/best` needs no `--symbol`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tradelab_agents::metadata::{DataHash, SourceFile};

use crate::markets::{data_hash, SourcedSeries};
use crate::settings::Settings;

/// `path` as it is recorded: relative to the working directory when under
/// it, else absolute.
pub fn recorded_path(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let cwd = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .unwrap_or_default();
    absolute
        .strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or(absolute)
        .display()
        .to_string()
}

/// A series' provenance with the file it came from, if any.
pub fn sourced_hash(s: &SourcedSeries) -> Result<DataHash> {
    let mut h = data_hash(&s.series);
    if let Some(file) = &s.file {
        let source = SourceFile::read(file, recorded_path(file))
            .with_context(|| format!("reading {} again to record its content hash", file.display()))?;
        h.source = Some(source);
    }
    Ok(h)
}

/// What became of a recorded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Where it was recorded (its content may have changed since).
    InPlace(PathBuf),
    /// Gone from there; a file with the same content is here.
    Moved(PathBuf),
}

/// Finds a recorded file: at its path, else by size and content among the
/// price files of `search` (folders, not searched below their top level).
pub fn locate(source: &SourceFile, search: &[PathBuf]) -> Result<Located> {
    let recorded = PathBuf::from(&source.path);
    if recorded.is_file() {
        return Ok(Located::InPlace(recorded));
    }
    let mut looked = Vec::new();
    for dir in search {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        looked.push(dir.display().to_string());
        let mut candidates: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.metadata().is_ok_and(|m| m.is_file() && m.len() == source.bytes))
            .collect();
        candidates.sort();
        for c in candidates {
            if SourceFile::read(&c, String::new()).is_ok_and(|f| f.sha256 == source.sha256) {
                return Ok(Located::Moved(c));
            }
        }
    }
    bail!(
        "the model was trained on {}, which is no longer there, and no file with the same content is in {}; \
         pass its new path with --symbol",
        source.path,
        if looked.is_empty() {
            "the data folders".to_string()
        } else {
            looked.join(", ")
        }
    )
}

/// The `--symbol`s that load a model's markets again, and the instrument
/// names to give series read from renamed files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedSymbols {
    /// Recorded files, or instrument names in the data folders.
    pub symbols: Vec<String>,
    /// (name a moved file's stem gives, the instrument it was trained as).
    pub renamed: Vec<(String, String)>,
}

impl RecordedSymbols {
    /// Gives series read from renamed files their trained instrument names.
    pub fn rename(&self, series: &mut [tradelab_core::BarSeries]) {
        for s in series {
            if let Some((_, to)) = self.renamed.iter().find(|(from, _)| *from == s.instrument) {
                s.instrument = to.clone();
            }
        }
    }
}

/// The `--symbol`s that load a model's markets again: recorded files where
/// `data.symbol_paths` allows paths (not in jobs: a model's metadata is
/// outside input, issue 19 finding 12), instrument names otherwise. Notes
/// for moved files are printed.
pub fn recorded_symbols(data: &[DataHash], settings: &Settings, instruments: &[String]) -> Result<RecordedSymbols> {
    if !settings.data.symbol_paths || data.iter().all(|d| d.source.is_none()) {
        return Ok(RecordedSymbols {
            symbols: instruments.to_vec(),
            renamed: Vec::new(),
        });
    }
    let mut out = RecordedSymbols::default();
    for d in data {
        let symbol = match &d.source {
            None => d.instrument.clone(),
            Some(source) => {
                let recorded = PathBuf::from(&source.path);
                let mut search = vec![settings.data.raw_dir.clone(), PathBuf::from(".")];
                if let Some(parent) = recorded.parent().filter(|p| !p.as_os_str().is_empty()) {
                    search.insert(0, parent.to_path_buf());
                }
                match locate(source, &search)? {
                    Located::InPlace(p) => p.display().to_string(),
                    Located::Moved(p) => {
                        eprintln!(
                            "note: {} moved to {} (same content); reading it there",
                            source.path,
                            p.display()
                        );
                        let stem = tradelab_data::load::instrument_name(&p);
                        if stem != d.instrument {
                            out.renamed.push((stem, d.instrument.clone()));
                        }
                        p.display().to_string()
                    }
                }
            }
        };
        if !out.symbols.contains(&symbol) {
            out.symbols.push(symbol);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) -> SourceFile {
        std::fs::write(path, text).unwrap();
        SourceFile::read(path, path.display().to_string()).unwrap()
    }

    #[test]
    fn a_recorded_file_is_found_in_place_or_after_a_move_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("mine.csv");
        let source = write(&old, "date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n");
        assert_eq!(source.bytes, 48);
        assert_eq!(locate(&source, &[]).unwrap(), Located::InPlace(old.clone()));

        let elsewhere = dir.path().join("archive");
        std::fs::create_dir(&elsewhere).unwrap();
        // A decoy of the same size but other content is not taken for it.
        write(
            &elsewhere.join("a-decoy.csv"),
            "date,open,high,low,close\n2024-01-02,1,2,0.5,1.6\n",
        );
        std::fs::rename(&old, elsewhere.join("renamed.csv")).unwrap();
        let found = locate(&source, &[dir.path().to_path_buf(), elsewhere.clone()]).unwrap();
        assert_eq!(found, Located::Moved(elsewhere.join("renamed.csv")));

        std::fs::remove_file(elsewhere.join("renamed.csv")).unwrap();
        let e = locate(&source, std::slice::from_ref(&elsewhere))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no longer there") && e.contains("archive") && e.contains("--symbol"),
            "{e}"
        );
    }

    #[test]
    fn recorded_paths_are_relative_to_the_working_directory_when_under_it() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(recorded_path(&cwd.join("Cargo.toml")), "Cargo.toml");
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("x.csv");
        std::fs::write(&outside, "x").unwrap();
        assert!(Path::new(&recorded_path(&outside)).is_absolute());
    }
}
