//! An instrument's regimes for the dashboard: the regime model fitted on
//! the training split of its file in `data/raw` (`tradelab_app::regimes`,
//! as `tradelab regimes` fits it), and the filtered probabilities of its
//! bars averaged over the same buckets as the bars route's candles, so the
//! two charts line up.

use std::sync::Arc;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::price_routes::{load, BarsQuery, Loaded};
use super::problem::{ApiResult, Json, Path, Problem, Query};
use super::state::AppState;
use tradelab_app::regimes::{MarketRegimes, RegimeState, WAITED_FIT_BARS};
use tradelab_data::downsample::{bars_per_candle, bucket_means, buckets, time_range};

/// The regime probabilities of one bucket of bars.
#[derive(Serialize, ToSchema)]
pub struct RegimePoint {
    /// The bucket's first bar's time, milliseconds since the Unix epoch
    /// (the matching candle's time).
    pub time_ms: i64,
    /// The mean of p(state | bars so far) over the bucket, one per state,
    /// calmest first; they sum to 1.
    pub probabilities: Vec<f64>,
}

/// The BIC of one state count tried; the lowest was chosen.
#[derive(Serialize, ToSchema)]
pub struct BicScore {
    /// The number of states.
    pub states: usize,
    /// Its Bayesian information criterion on the training split.
    pub bic: f64,
}

/// An instrument's regime model and its probabilities in the range asked
/// for.
#[derive(Serialize, ToSchema)]
pub struct Regimes {
    /// The instrument (the file's stem in `data/raw`).
    pub instrument: String,
    /// The training split: this many leading bars (`env.train_fraction`).
    pub training_bars: usize,
    /// The model was fitted on the training split's bars from this one on:
    /// 0, or for a file whose split is longer than [`WAITED_FIT_BARS`], the
    /// start of its latest bars (the fit's time grows with its bars).
    pub fitted_from: usize,
    /// That bar's time, milliseconds since the Unix epoch.
    pub fitted_from_ms: Option<i64>,
    /// The time of the first bar after the training split, milliseconds;
    /// `null` when every bar is in it.
    pub training_end_ms: Option<i64>,
    /// Every state count tried, with its BIC.
    pub bic: Vec<BicScore>,
    /// The chosen model's states, calmest first.
    pub states: Vec<RegimeState>,
    /// Bars in the range before downsampling.
    pub total_bars: usize,
    /// Bars averaged into each point (1: every bar as it is).
    pub bars_per_point: usize,
    /// The probabilities, oldest first.
    pub points: Vec<RegimePoint>,
}

/// An instrument's market regimes: a Gaussian HMM (states chosen by BIC)
/// fitted on the training split of its file in `data/raw`, and the
/// filtered probabilities of its bars, which use no later bar, averaged
/// over at most `max_points` buckets that match the bars route's candles.
#[utoipa::path(
    get,
    path = "/v1/datasets/{instrument}/regimes",
    params(("instrument" = String, Path, description = "The instrument, as `data/raw` names it"), BarsQuery),
    responses((status = 200, body = Regimes), (status = 400, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn regimes(
    State(s): State<Arc<AppState>>,
    Path(instrument): Path<String>,
    Query(q): Query<BarsQuery>,
) -> ApiResult<Json<Regimes>> {
    let max_points = q.points()?;
    let loaded = load(&s, instrument).await?;
    let fitted = {
        let loaded = loaded.clone();
        let settings = s.settings.clone();
        tokio::task::spawn_blocking(move || fit(&loaded, &settings))
            .await
            .map_err(|e| Problem::internal("fitting the regime model", e))??
    };
    let series = &loaded.series;
    let range = time_range(series, q.from_ms, q.to_ms);
    let k = fitted.state_count();
    let means = bucket_means(&fitted.probabilities, k, range.clone(), max_points);
    Ok(Json(Regimes {
        instrument: series.instrument.clone(),
        training_bars: fitted.training_bars,
        fitted_from: fitted.fitted_from,
        fitted_from_ms: series.ts.get(fitted.fitted_from).copied(),
        training_end_ms: series.ts.get(fitted.training_bars).copied(),
        bic: fitted
            .detector
            .bic
            .iter()
            .map(|&(states, bic)| BicScore { states, bic })
            .collect(),
        states: fitted.states.clone(),
        total_bars: range.len(),
        bars_per_point: bars_per_candle(range.len(), max_points),
        points: buckets(range, max_points)
            .zip(means.chunks(k.max(1)))
            .map(|(b, p)| RegimePoint {
                time_ms: series.ts[b.start],
                probabilities: p.to_vec(),
            })
            .collect(),
    }))
}

/// The file's regime model under these settings, fitted once and kept
/// with the loaded file.
fn fit(loaded: &Loaded, settings: &tradelab_app::Settings) -> Result<Arc<MarketRegimes>, Problem> {
    let train_fraction = settings.env.train_fraction;
    let key = format!("{train_fraction}|{:?}", settings.regime);
    let mut kept = loaded.regimes.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, hit)) = kept.iter().find(|(k, _)| *k == key) {
        return Ok(hit.clone());
    }
    // Held while fitting: a second request for the same file waits for
    // this fit rather than starting its own.
    let fitted = MarketRegimes::fit_latest(&loaded.series.close, train_fraction, &settings.regime, WAITED_FIT_BARS)
        .map_err(|e| {
            Problem::unprocessable(format!(
                "the regime model of {} cannot be fitted: {e}",
                loaded.series.instrument
            ))
        })?;
    let fitted = Arc::new(fitted);
    kept.push((key, fitted.clone()));
    Ok(fitted)
}
