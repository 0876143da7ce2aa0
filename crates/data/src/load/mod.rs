//! Reading OHLCV files: layout detection, parsing, validation and repair.
//!
//! Every row is checked: prices finite and positive, `high >= low`,
//! `high >= open, close`, `low <= open, close`, volume finite and not
//! negative, timestamps strictly ascending and unique. What happens to a row
//! that fails is the [`RepairPolicy`]'s choice, and every action is recorded
//! in the [`LoadReport`] with its line number.
//!
//! ```no_run
//! use tradelab_data::{load_symbol, LoadOptions};
//! let (series, report) = load_symbol("data/raw".as_ref(), "nvda", &LoadOptions::default()).unwrap();
//! println!("{} bars of {} ({})", series.len(), series.instrument, report.layout);
//! ```

mod layout;
pub mod timestamp;

use std::path::{Path, PathBuf};

use crate::settings::{DataSettings, RepairPolicy};
use tradelab_core::{Bar, BarSeries, Calendar, Timeframe};

use crate::DataError;
pub use layout::Layout;

/// How to load a file.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// What to do with a row that fails validation.
    pub repair: RepairPolicy,
    /// Instrument name; defaults to the file stem.
    pub instrument: Option<String>,
    /// Declared timeframe; inferred from the timestamps when absent.
    pub timeframe: Option<Timeframe>,
    /// Declared trading calendar; inferred from the timestamps when absent.
    pub calendar: Option<Calendar>,
    /// Scale open, high, low and close by `Adj Close / Close` where the
    /// file has that column (`data.adjusted_close`).
    pub adjusted_close: bool,
    /// Files larger than this are refused before reading (`data.max_file_mb`).
    pub max_file_bytes: u64,
    /// A line longer than this stops the load (`data.max_line_bytes`): no
    /// field of an OHLCV row comes near it, and a runaway one (a 2 GiB
    /// field) must not be buffered whole.
    pub max_line_bytes: usize,
}

impl LoadOptions {
    /// Options for `path` under `data:`: the repair policy, and the
    /// timeframe declared for its instrument in `data.instruments`, if any.
    pub fn for_file(data: &DataSettings, path: &Path) -> Self {
        let declared = data.instruments.get(&instrument_name(path));
        LoadOptions {
            repair: data.repair_policy,
            instrument: None,
            timeframe: declared.and_then(|i| i.timeframe),
            calendar: declared.and_then(|i| i.calendar),
            adjusted_close: data.adjusted_close,
            max_file_bytes: (data.max_file_mb as u64).saturating_mul(1 << 20),
            max_line_bytes: data.max_line_bytes,
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            repair: RepairPolicy::Repair,
            instrument: None,
            timeframe: None,
            calendar: None,
            adjusted_close: false,
            max_file_bytes: DataSettings::default().max_file_mb as u64 * (1 << 20),
            max_line_bytes: DataSettings::default().max_line_bytes,
        }
    }
}

/// What the loader did to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueAction {
    /// The row was skipped.
    Dropped,
    /// The row was fixed (or an exact duplicate removed) and the data kept.
    Repaired,
}

impl IssueAction {
    /// As the reports print it (`dropped`, `repaired`).
    pub fn name(self) -> &'static str {
        match self {
            IssueAction::Dropped => "dropped",
            IssueAction::Repaired => "repaired",
        }
    }
}

/// One validation finding, with its 1-based line in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RowIssue {
    /// 1-based line number in the file.
    pub line: usize,
    /// Whether the row was dropped or repaired.
    pub action: IssueAction,
    /// The problem found and, for repairs, what was changed.
    pub message: String,
}

/// What loading one file found and did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    /// The file loaded.
    pub path: PathBuf,
    /// The instrument name given to the series.
    pub instrument: String,
    /// The detected layout: column names and timestamp format.
    pub layout: String,
    /// Set when the header did not match the rows and was corrected.
    pub header_note: Option<String>,
    /// What was done with an `Adj Close` column, when the file has one (or
    /// when adjusting was asked for and it has none).
    pub adjusted_close_note: Option<String>,
    /// The declared or inferred timeframe, if any.
    pub timeframe: Option<Timeframe>,
    /// Data rows read, header excluded.
    pub rows_read: usize,
    /// Bars in the resulting series, after drops.
    pub rows_loaded: usize,
    /// Every row dropped or repaired, in file order.
    pub issues: Vec<RowIssue>,
}

impl LoadReport {
    /// How many rows were dropped.
    pub fn dropped(&self) -> usize {
        self.issues.iter().filter(|i| i.action == IssueAction::Dropped).count()
    }
    /// How many rows were repaired.
    pub fn repaired(&self) -> usize {
        self.issues.iter().filter(|i| i.action == IssueAction::Repaired).count()
    }
}

/// Loads one file.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<(BarSeries, LoadReport), DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let size = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    check_size(path, size, opts)?;
    // Streamed: memory holds the bars and one row, not the file.
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    load_reader(reader, size as usize, path, opts)
}

/// Refuses a file above `opts.max_file_bytes`, naming the setting.
pub fn check_size(path: &Path, size: u64, opts: &LoadOptions) -> Result<(), DataError> {
    if size > opts.max_file_bytes {
        return Err(DataError::format(
            path,
            format!(
                "the file is {} MB, above the {} MB limit; raise data.max_file_mb if it really is price data",
                size >> 20,
                opts.max_file_bytes >> 20
            ),
        ));
    }
    Ok(())
}

/// At most `max` characters of a field, for messages: a runaway value is
/// shown by its start and length, never whole.
pub fn excerpt(field: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(&field[..field.len().min(4 * MAX)]);
    if field.len() <= MAX && text.chars().count() <= MAX {
        return text.into_owned();
    }
    let head: String = text.chars().take(MAX).collect();
    format!("{head}... ({} bytes)", field.len())
}

/// A reader that fails once a line runs past `max` bytes, so the CSV
/// parser never buffers a runaway field whole.
struct LineCap<R> {
    inner: R,
    max: usize,
    since_newline: usize,
    line: usize,
}

impl<R: std::io::Read> std::io::Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.since_newline = 0;
                self.line += 1;
            } else {
                self.since_newline += 1;
                if self.since_newline > self.max {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "line {} is longer than {} bytes, the data.max_line_bytes limit; OHLCV rows are far shorter, so the file is damaged or not price data",
                            self.line, self.max
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// The instrument name a file gets by default: its stem.
pub fn instrument_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Loads a file already in memory (so callers that hash the content read it once).
pub fn load_bytes(bytes: &[u8], path: &Path, opts: &LoadOptions) -> Result<(BarSeries, LoadReport), DataError> {
    check_size(path, bytes.len() as u64, opts)?;
    load_reader(bytes, bytes.len(), path, opts)
}

/// Loads rows from `input` (`size_hint`: its length in bytes, if known, to
/// reserve the bars up front).
fn load_reader(
    input: impl std::io::Read,
    size_hint: usize,
    path: &Path,
    opts: &LoadOptions,
) -> Result<(BarSeries, LoadReport), DataError> {
    let capped = LineCap {
        inner: input,
        max: opts.max_line_bytes.max(1),
        since_newline: 0,
        line: 1,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(capped);
    let mut header = csv::ByteRecord::new();
    let mut record = csv::ByteRecord::new();
    let corrupt = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            DataError::format(path, io.to_string())
        }
        _ => DataError::format(path, format!("not a readable CSV file: {e}")),
    };
    if !reader.read_byte_record(&mut header).map_err(corrupt)? {
        return Err(DataError::format(
            path,
            "the file is empty; expected a header and OHLCV rows",
        ));
    }
    if !reader.read_byte_record(&mut record).map_err(corrupt)? {
        return Err(DataError::format(path, "the file has a header but no rows"));
    }
    let yfinance_note = fold_yfinance_header(&mut reader, &mut header, &mut record)
        .map_err(|e| e.map_or_else(|| DataError::format(path, "the file has a header but no rows"), corrupt))?;
    let header_fields: Vec<&[u8]> = header.iter().collect();
    let first: Vec<&[u8]> = record.iter().collect();
    let mut layout = layout::detect(&header_fields, &first).map_err(|m| DataError::format(path, m))?;
    if let Some(note) = yfinance_note {
        layout.header_note = Some(match layout.header_note.take() {
            Some(other) => format!("{note}; {other}"),
            None => note,
        });
    }
    let adjusted_close_note = match (layout.adj_close, opts.adjusted_close) {
        (Some(_), false) => Some(
            "Adj Close not used: prices are traded as quoted (data.adjusted_close: true adjusts them for splits and dividends)"
                .to_string(),
        ),
        (Some(_), true) => Some("prices adjusted by Adj Close / Close (data.adjusted_close)".to_string()),
        (None, true) => Some(
            "data.adjusted_close is on but the file has no Adj Close column: prices are used as they are".to_string(),
        ),
        (None, false) => None,
    };
    let adjust = opts.adjusted_close && layout.adj_close.is_some();

    let instrument = opts.instrument.clone().unwrap_or_else(|| instrument_name(path));
    // Rows are ~40-60 bytes; reserving up front avoids regrowth on big files.
    let mut series = BarSeries::with_capacity(instrument.clone(), size_hint / 40 + 1);
    let mut validator = RowValidator::new(path, opts.repair);
    let mut rows_read = 0;
    loop {
        rows_read += 1;
        let line = record.position().map_or(rows_read + 1, |p| p.line() as usize);
        validator.accept(line, parse_row(&record, &layout, adjust), &mut series)?;
        if !reader.read_byte_record(&mut record).map_err(corrupt)? {
            break;
        }
    }
    if series.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
            dropped: validator.issues.len(),
        });
    }
    series.timeframe = opts.timeframe.or_else(|| Timeframe::infer(&series.ts));
    series.calendar = opts.calendar;
    let report = LoadReport {
        path: path.to_path_buf(),
        instrument,
        layout: layout.description.clone(),
        header_note: layout.header_note.clone(),
        adjusted_close_note,
        timeframe: series.timeframe,
        rows_read,
        rows_loaded: series.len(),
        issues: validator.issues,
    };
    Ok((series, report))
}

fn parse_f64(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

/// yfinance (0.2.51 and later) writes three header rows: `Price,Close,...`,
/// `Ticker,AAPL,...` and `Date,,,...`. When `header` and `record` are the
/// first two, folds them into one header (`Date,Close,...`) and reads the
/// first data row into `record`; returns a note saying so. `Err(None)`: no
/// data row follows.
fn fold_yfinance_header<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    header: &mut csv::ByteRecord,
    record: &mut csv::ByteRecord,
) -> Result<Option<String>, Option<csv::Error>> {
    let first_is = |r: &csv::ByteRecord, name: &str| {
        r.get(0)
            .is_some_and(|f| f.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    };
    if !(first_is(header, "price") && first_is(record, "ticker")) {
        return Ok(None);
    }
    let ticker = String::from_utf8_lossy(record.get(1).unwrap_or_default())
        .trim()
        .to_string();
    let mut names = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut names).map_err(Some)? {
        return Err(None);
    }
    // The third row names the index column and leaves the rest blank.
    let date = names.get(0).unwrap_or(b"Date").to_vec();
    let mut merged = csv::ByteRecord::new();
    merged.push_field(&date);
    for f in header.iter().skip(1) {
        merged.push_field(f);
    }
    *header = merged;
    if !reader.read_byte_record(record).map_err(Some)? {
        return Err(None);
    }
    Ok(Some(format!(
        "yfinance's three header rows (Price, Ticker {ticker}, {}) read as one",
        String::from_utf8_lossy(&date).trim()
    )))
}

/// Parses one row; `Err` carries a message for an unparseable row. With
/// `adjust`, the prices are scaled by `Adj Close / Close`.
fn parse_row(rec: &csv::ByteRecord, l: &Layout, adjust: bool) -> Result<Bar, String> {
    if rec.len() != l.fields {
        return Err(format!("row has {} fields, expected {}", rec.len(), l.fields));
    }
    let field = |i: usize| rec.get(i).unwrap_or_default();
    let mut ts = l
        .format
        .parse(field(l.date))
        .ok_or_else(|| format!("cannot parse timestamp `{}`", excerpt(field(l.date))))?;
    if let Some(t) = l.time {
        ts += timestamp::parse_time_of_day(field(t))
            .ok_or_else(|| format!("cannot parse time `{}`", excerpt(field(t))))?;
    }
    let price = |i: usize, name: &str| {
        parse_f64(field(i)).ok_or_else(|| format!("cannot parse {name} `{}`", excerpt(field(i))))
    };
    let volume = match l.volume {
        Some(v) if !field(v).iter().all(u8::is_ascii_whitespace) => price(v, "volume")?,
        _ => 0.0,
    };
    let close = price(l.close, "close")?;
    let factor = match l.adj_close {
        Some(a) if adjust => {
            let adjusted = price(a, "adj close")?;
            if !(adjusted > 0.0 && close > 0.0) {
                return Err(format!("cannot adjust by Adj Close {adjusted} over Close {close}"));
            }
            adjusted / close
        }
        _ => 1.0,
    };
    Ok(Bar {
        ts,
        open: price(l.open, "open")? * factor,
        high: price(l.high, "high")? * factor,
        low: price(l.low, "low")? * factor,
        close: close * factor,
        volume,
    })
}

/// Applies the validation rules and the repair policy row by row.
struct RowValidator<'a> {
    path: &'a Path,
    policy: RepairPolicy,
    issues: Vec<RowIssue>,
}

impl<'a> RowValidator<'a> {
    fn new(path: &'a Path, policy: RepairPolicy) -> Self {
        RowValidator {
            path,
            policy,
            issues: Vec::new(),
        }
    }

    fn reject(&mut self, line: usize, problem: String) -> Result<(), DataError> {
        if self.policy == RepairPolicy::Refuse {
            return Err(DataError::InvalidRow {
                path: self.path.to_path_buf(),
                line,
                problem,
            });
        }
        self.issues.push(RowIssue {
            line,
            action: IssueAction::Dropped,
            message: problem,
        });
        Ok(())
    }

    fn accept(&mut self, line: usize, parsed: Result<Bar, String>, out: &mut BarSeries) -> Result<(), DataError> {
        let mut bar = match parsed {
            Ok(b) => b,
            Err(problem) => return self.reject(line, problem),
        };
        if let Some(problem) = value_problem(&bar) {
            return self.reject(line, problem);
        }
        if let Some(&prev) = out.ts.last() {
            if bar.ts <= prev {
                let what = if bar.ts == prev {
                    "duplicates"
                } else {
                    "is earlier than"
                };
                let problem = format!(
                    "timestamp {} {what} the previous row's {}",
                    tradelab_core::time::format_datetime(bar.ts),
                    tradelab_core::time::format_datetime(prev)
                );
                // An exact copy of the previous row is unambiguous to repair.
                let last = out.bar(out.len() - 1);
                if bar == last && self.policy == RepairPolicy::Repair {
                    self.issues.push(RowIssue {
                        line,
                        action: IssueAction::Repaired,
                        message: format!("{problem}; exact duplicate row removed"),
                    });
                    return Ok(());
                }
                return self.reject(line, problem);
            }
        }
        if let Some(problem) = range_problem(&bar) {
            if self.policy != RepairPolicy::Repair {
                return self.reject(line, problem);
            }
            // Repairs assume open and close are right (they are the prices a
            // feed most often gets right): swap reversed high/low, then widen
            // the range to contain open and close.
            let mut fix = Vec::new();
            if bar.high < bar.low {
                std::mem::swap(&mut bar.high, &mut bar.low);
                fix.push("swapped high and low");
            }
            if bar.high < bar.open.max(bar.close) {
                bar.high = bar.open.max(bar.close);
                fix.push("raised high to max(open, close)");
            }
            if bar.low > bar.open.min(bar.close) {
                bar.low = bar.open.min(bar.close);
                fix.push("lowered low to min(open, close)");
            }
            self.issues.push(RowIssue {
                line,
                action: IssueAction::Repaired,
                message: format!("{problem}; {}", fix.join(", ")),
            });
        }
        out.push(bar);
        Ok(())
    }
}

/// Why a bar's prices or volume are unusable: prices must be finite and
/// positive, volume finite and not negative.
fn value_problem(bar: &Bar) -> Option<String> {
    let prices = [bar.open, bar.high, bar.low, bar.close];
    if prices.iter().any(|p| !p.is_finite() || *p <= 0.0) {
        return Some(format!(
            "prices must be finite and positive, got o={} h={} l={} c={}",
            bar.open, bar.high, bar.low, bar.close
        ));
    }
    if !bar.volume.is_finite() || bar.volume < 0.0 {
        return Some(format!("volume must be finite and not negative, got {}", bar.volume));
    }
    None
}

/// Why a bar's high and low do not contain its open and close.
fn range_problem(bar: &Bar) -> Option<String> {
    let consistent = bar.high >= bar.low && bar.high >= bar.open.max(bar.close) && bar.low <= bar.open.min(bar.close);
    (!consistent).then(|| {
        format!(
            "inconsistent OHLC: o={} h={} l={} c={} (need low <= open, close <= high)",
            bar.open, bar.high, bar.low, bar.close
        )
    })
}

/// Why a bar arriving from a feed breaks the loader's rules, or `None`
/// when it is good: the file rules without repairs (a bar that arrives is
/// used as it is or refused). `previous` is the instrument's last accepted
/// timestamp; a bar must come after it.
pub fn bar_problem(bar: &Bar, previous: Option<i64>) -> Option<String> {
    if let Some(problem) = value_problem(bar) {
        return Some(problem);
    }
    if let Some(prev) = previous.filter(|p| bar.ts <= *p) {
        return Some(format!(
            "timestamp {} is not after the previous bar's {}",
            tradelab_core::time::format_datetime(bar.ts),
            tradelab_core::time::format_datetime(prev)
        ));
    }
    range_problem(bar)
}

/// The outcome of loading every file in a folder: what loaded, and what did
/// not (a corrupt file never stops the others from loading).
#[derive(Debug, Default)]
pub struct DirLoad {
    /// The series of every file that loaded, in file-name order.
    pub series: Vec<BarSeries>,
    /// One report per loaded series, in the same order.
    pub reports: Vec<LoadReport>,
    /// The files that failed to load, with why.
    pub failures: Vec<(PathBuf, DataError)>,
}

/// The data files in a folder: `*.csv` and `*.txt`, except README files,
/// sorted by name so results are deterministic.
pub fn data_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if dir.is_relative() && !dir.exists() {
        return Err(missing_dir(dir));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            p.is_file()
                && !name.starts_with('.')
                && !name.starts_with("readme")
                && (name.ends_with(".csv") || name.ends_with(".txt"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::EmptyDir { dir: dir.to_path_buf() });
    }
    Ok(files)
}

/// The error for a relative data folder that is not where tradelab runs.
pub fn missing_dir(dir: &Path) -> DataError {
    DataError::MissingDir {
        dir: dir.to_path_buf(),
        cwd: std::env::current_dir().unwrap_or_default(),
    }
}

/// Loads every data file in `dir`. Fails only when the folder itself cannot
/// be read or holds no data files; bad files are listed in `failures`.
pub fn load_dir(dir: &Path, policy: RepairPolicy) -> Result<DirLoad, DataError> {
    let mut out = DirLoad::default();
    for path in data_files(dir)? {
        let opts = LoadOptions {
            repair: policy,
            ..Default::default()
        };
        match load_file(&path, &opts) {
            Ok((s, r)) => {
                out.series.push(s);
                out.reports.push(r);
            }
            Err(e) => out.failures.push((path, e)),
        }
    }
    Ok(out)
}

/// Finds the file for `symbol` in `dir`: an exact file stem, or a unique
/// case-insensitive prefix of one (`nvda` finds `nvda-1999-2014.txt`).
pub fn find_symbol(dir: &Path, symbol: &str) -> Result<PathBuf, DataError> {
    let files = data_files(dir)?;
    let want = symbol.to_ascii_lowercase();
    let stem = |p: &PathBuf| instrument_name(p).to_ascii_lowercase();
    if let Some(exact) = files.iter().find(|p| stem(p) == want) {
        return Ok(exact.clone());
    }
    let matches: Vec<&PathBuf> = files.iter().filter(|p| stem(p).starts_with(&want)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(DataError::UnknownSymbol {
            symbol: symbol.into(),
            dir: dir.into(),
            available: files.iter().map(|p| instrument_name(p)).collect::<Vec<_>>().join(", "),
        }),
        many => Err(DataError::AmbiguousSymbol {
            symbol: symbol.into(),
            dir: dir.into(),
            matches: many.iter().map(|p| instrument_name(p)).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Loads one symbol from the backtesting folder (`data/raw/`).
pub fn load_symbol(dir: &Path, symbol: &str, opts: &LoadOptions) -> Result<(BarSeries, LoadReport), DataError> {
    let path = find_symbol(dir, symbol)?;
    load_file(&path, opts)
}

#[cfg(test)]
mod tests;
