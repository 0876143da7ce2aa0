//! An instrument's price file from the browser's side: its bars for charts,
//! downsampled on the server (a browser asked to draw a million bars gets
//! at most `max_points` candles, each keeping its bucket's high and low,
//! `tradelab_data::downsample`), and what validating the file found.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::{ApiResult, Json, Path, Problem, Query};
use super::state::AppState;
use tradelab_app::regimes::MarketRegimes;
use tradelab_core::BarSeries;
use tradelab_data::downsample::{bars_per_candle, candles, time_range};
use tradelab_data::load::{find_symbol, load_file, LoadOptions};
use tradelab_data::{DataError, LoadReport};

/// Candles answered when `max_points` is not given.
pub const DEFAULT_POINTS: usize = 2_000;
/// The most candles one request may ask for.
pub const MAX_POINTS: usize = 10_000;

/// Which bars, and how many candles at most.
#[derive(Deserialize, IntoParams)]
pub struct BarsQuery {
    /// At most this many candles (1 to 10000, default 2000).
    pub max_points: Option<usize>,
    /// Only bars at or after this time, milliseconds since the Unix epoch.
    pub from_ms: Option<i64>,
    /// Only bars at or before this time, milliseconds since the Unix epoch.
    pub to_ms: Option<i64>,
}

/// One candle: a bar, or the bars of a bucket merged.
#[derive(Serialize, ToSchema)]
pub struct Candle {
    /// The first bar's time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The first bar's open.
    pub open: f64,
    /// The highest high.
    pub high: f64,
    /// The lowest low.
    pub low: f64,
    /// The last bar's close.
    pub close: f64,
    /// The summed volume.
    pub volume: f64,
}

impl From<tradelab_data::downsample::Candle> for Candle {
    fn from(c: tradelab_data::downsample::Candle) -> Candle {
        Candle {
            time_ms: c.time_ms,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
        }
    }
}

impl BarsQuery {
    /// `max_points`, or the default; a bad request when out of range.
    pub fn points(&self) -> Result<usize, Problem> {
        match self.max_points {
            None => Ok(DEFAULT_POINTS),
            Some(n @ 1..=MAX_POINTS) => Ok(n),
            Some(n) => Err(Problem::bad_request(format!("max_points={n}; use 1 to {MAX_POINTS}"))),
        }
    }
}

/// An instrument's bars in the range asked for, as candles.
#[derive(Serialize, ToSchema)]
pub struct Bars {
    /// The instrument (the file's stem in `data/raw`).
    pub instrument: String,
    /// Bar spacing, such as `1d`; `null` if it could not be inferred.
    pub timeframe: Option<String>,
    /// Bars in the range before downsampling.
    pub total_bars: usize,
    /// Bars merged into each candle (1: every bar as it is).
    pub bars_per_point: usize,
    /// The candles, oldest first.
    pub bars: Vec<Candle>,
}

/// An instrument's price bars from the backtesting folder (`data/raw`),
/// downsampled to at most `max_points` OHLC candles.
#[utoipa::path(
    get,
    path = "/v1/datasets/{instrument}/bars",
    params(("instrument" = String, Path, description = "The instrument, as `data/raw` names it"), BarsQuery),
    responses((status = 200, body = Bars), (status = 400, body = Problem), (status = 404, body = Problem))
)]
pub async fn bars(
    State(s): State<Arc<AppState>>,
    Path(instrument): Path<String>,
    Query(q): Query<BarsQuery>,
) -> ApiResult<Json<Bars>> {
    let max_points = q.points()?;
    let loaded = load(&s, instrument).await?;
    let series = &loaded.series;
    let range = time_range(series, q.from_ms, q.to_ms);
    Ok(Json(Bars {
        timeframe: series.timeframe_or_inferred().map(|t| t.to_string()),
        total_bars: range.len(),
        bars_per_point: bars_per_candle(range.len(), max_points),
        bars: candles(series, range, max_points)
            .into_iter()
            .map(Candle::from)
            .collect(),
        instrument: series.instrument.clone(),
    }))
}

/// Loads an instrument's file from `data.raw_dir` as backtests do (the
/// repair policy and declared timeframe from the settings), off the async
/// workers.
pub(crate) async fn load(s: &AppState, instrument: String) -> Result<Arc<Loaded>, Problem> {
    let data = s.settings.data.clone();
    tokio::task::spawn_blocking(move || {
        let path = find_symbol(&data.raw_dir, &instrument)?;
        let options = LoadOptions::for_file(&data, &path);
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
        let key = format!(
            "{}|{:?}|{}|{options:?}",
            path.display(),
            meta.modified().ok(),
            meta.len()
        );
        if let Some(hit) = cached(&key) {
            return Ok(hit);
        }
        let (series, report) = load_file(&path, &options)?;
        let loaded = Arc::new(Loaded {
            series,
            report,
            regimes: Mutex::new(Vec::new()),
        });
        remember(key, loaded.clone());
        Ok(loaded)
    })
    .await
    .map_err(|e| Problem::internal("loading the instrument", e))?
    .map_err(|e| match e {
        DataError::UnknownSymbol { .. } | DataError::MissingDir { .. } => Problem::not_found(e.to_string()),
        DataError::AmbiguousSymbol { .. } => Problem::bad_request(e.to_string()),
        // A file validation refuses whole is a finding about the data, not
        // a fault of the server.
        e @ (DataError::Format { .. } | DataError::InvalidRow { .. } | DataError::NoRows { .. }) => {
            Problem::unprocessable(e.to_string())
        }
        e => Problem::internal("loading the instrument", e),
    })
}

/// A file loaded, as the cache keeps it.
pub struct Loaded {
    /// Its bars.
    pub series: BarSeries,
    /// What validating it found.
    pub report: LoadReport,
    /// Regime models fitted on it, keyed by the settings they were fitted
    /// under (`regime_routes`): a fit takes seconds on a long file.
    pub regimes: Mutex<Vec<(String, Arc<MarketRegimes>)>>,
}

/// Files kept loaded: a chart's zooms and its validation panel read the
/// same file again and again (a million-bar file takes about a second to
/// parse), and each kept series costs 48 bytes a bar.
const CACHED_FILES: usize = 2;

/// The last files loaded, newest last, keyed by path, modification time,
/// size and load options: a file written since is read again.
static CACHE: Mutex<Vec<(String, Arc<Loaded>)>> = Mutex::new(Vec::new());

fn cached(key: &str) -> Option<Arc<Loaded>> {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let at = cache.iter().position(|(k, _)| k == key)?;
    let hit = cache.remove(at);
    let loaded = hit.1.clone();
    cache.push(hit);
    Some(loaded)
}

fn remember(key: String, loaded: Arc<Loaded>) {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|(k, _)| *k != key);
    cache.push((key, loaded));
    let excess = cache.len().saturating_sub(CACHED_FILES);
    cache.drain(..excess);
}

/// Findings listed at most; the counts cover them all.
pub const MAX_FINDINGS: usize = 500;

/// One row validation dropped or repaired.
#[derive(Serialize, ToSchema)]
pub struct Finding {
    /// 1-based line in the file.
    pub line: usize,
    /// `dropped` or `repaired`.
    pub action: String,
    /// What was wrong and, for a repair, what was changed.
    pub message: String,
}

/// What loading an instrument's file found, as `tradelab data validate`
/// prints it.
#[derive(Serialize, ToSchema)]
pub struct Validation {
    /// The instrument (the file's stem).
    pub instrument: String,
    /// The layout detected: columns and timestamp format.
    pub layout: String,
    /// Set when the header did not match the rows and was corrected.
    pub header_note: Option<String>,
    /// What was done with an `Adj Close` column.
    pub adjusted_close_note: Option<String>,
    /// The declared or inferred timeframe.
    pub timeframe: Option<String>,
    /// Data rows read.
    pub rows_read: usize,
    /// Bars kept.
    pub rows_loaded: usize,
    /// Rows dropped.
    pub dropped: usize,
    /// Rows repaired.
    pub repaired: usize,
    /// The first findings in file order (at most 500).
    pub findings: Vec<Finding>,
}

/// What validating an instrument's file in `data/raw` found: its layout,
/// and every row dropped or repaired under the settings' repair policy.
#[utoipa::path(
    get,
    path = "/v1/datasets/{instrument}/validation",
    params(("instrument" = String, Path, description = "The instrument, as `data/raw` names it")),
    responses((status = 200, body = Validation), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn validation(State(s): State<Arc<AppState>>, Path(instrument): Path<String>) -> ApiResult<Json<Validation>> {
    let loaded = load(&s, instrument).await?;
    let report = &loaded.report;
    Ok(Json(Validation {
        dropped: report.dropped(),
        repaired: report.repaired(),
        findings: report
            .issues
            .iter()
            .take(MAX_FINDINGS)
            .map(|i| Finding {
                line: i.line,
                action: i.action.name().to_string(),
                message: i.message.clone(),
            })
            .collect(),
        instrument: report.instrument.clone(),
        layout: report.layout.clone(),
        header_note: report.header_note.clone(),
        adjusted_close_note: report.adjusted_close_note.clone(),
        timeframe: report.timeframe.map(|t| t.to_string()),
        rows_read: report.rows_read,
        rows_loaded: report.rows_loaded,
    }))
}
