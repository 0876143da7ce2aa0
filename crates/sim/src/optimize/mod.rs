//! Strategy optimisation (`tradelab optimize`, issue 25): a grid or a
//! random search over a baseline's parameters and any backtest or risk
//! setting, in one process on every core, with the statistics that keep
//! the winner honest.
//!
//! - [`space`]: `--param` and `--constraint` as written, resolved into
//!   typed values, enumerated as a grid or drawn at random;
//! - [`setup`]: the settings a backtest reads and how a combination
//!   changes them (the same serde forms and checks as the settings file);
//! - [`runner`]: the combinations through the engine in parallel, SMA, RSI
//!   and volatility windows computed once and shared, only metrics and
//!   block sums kept;
//! - [`results`]: the ranking, CSV, the deflated Sharpe ratio of the best
//!   and the probability of backtest overfitting (CSCV);
//! - [`heatmap`]: any two parameters as an SVG heatmap;
//! - [`render`]: the ranked table, the honesty figures and the HTML page;
//! - [`walk_forward`]: search on each window, trade the choice on the next,
//!   stitch the out-of-sample curve.
//!
//! ```
//! use std::sync::atomic::AtomicUsize;
//! use tradelab_data::synthetic::{generate, SyntheticConfig};
//! use tradelab_sim::optimize::{search, BacktestSetup, Objective, ParamSpec, RunOptions};
//!
//! let market = generate(&SyntheticConfig { bars: 600, ..Default::default() });
//! let base = BacktestSetup::new("sma_crossover", Default::default(), Default::default(), Default::default(), Default::default()).unwrap();
//! let params = ["fast=5:20:5", "slow=30:60:10"].map(|p| ParamSpec::parse(p).unwrap());
//! let found = search(&base, &params, &["fast < slow"], None, Objective::Sharpe, &[&market.series], &RunOptions::default(), &AtomicUsize::new(0)).unwrap();
//! assert_eq!(found.results.rows.len(), 16);
//! assert_eq!(found.results.best().rank, 1);
//! ```

pub mod heatmap;
pub mod render;
pub mod results;
pub mod runner;
pub mod setup;
pub mod space;
pub mod walk_forward;

use std::sync::atomic::AtomicUsize;

use serde_json::Value;
use tradelab_core::BarSeries;

pub use results::{Objective, Row, SearchResults, OBJECTIVES};
pub use runner::RunOptions;
pub use setup::BacktestSetup;
pub use space::{Constraint, Method, Param, ParamSpec, Space};

/// The optimiser's test kit: a setup for `strategy` on the compiled-in
/// default settings.
#[cfg(test)]
pub(crate) fn default_setup(strategy: &str) -> BacktestSetup {
    BacktestSetup::new(
        strategy,
        Default::default(),
        Default::default(),
        Default::default(),
        Default::default(),
    )
    .expect("a baseline's name")
}

/// Why a search cannot run, in words that say what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SearchError(String);

impl SearchError {
    /// An error with this explanation.
    pub fn new(why: impl Into<String>) -> SearchError {
        SearchError(why.into())
    }
}

/// The search, checked before anything runs: every combination and the
/// settings each one becomes.
pub struct Prepared {
    /// The resolved space.
    pub space: Space,
    /// The combinations in run order.
    pub combos: Vec<Vec<Value>>,
    /// The settings of each combination.
    pub setups: Vec<BacktestSetup>,
}

/// Resolves `params` and `constraints` against `base` and checks every
/// combination; `random` is `Some((trials, seed))` for a random search.
pub fn prepare(
    base: &BacktestSetup,
    params: &[ParamSpec],
    constraints: &[&str],
    random: Option<(usize, u64)>,
) -> Result<Prepared, SearchError> {
    if params.is_empty() {
        return Err(SearchError::new(
            "nothing to search: give at least one --param NAME=START:END[:STEP] or NAME=A,B,C",
        ));
    }
    if random.is_some_and(|(trials, _)| trials == 0) {
        return Err(SearchError::new("--trials must be at least 1"));
    }
    let resolved = base.resolve(params, random.is_some())?;
    let constraints = constraints
        .iter()
        .map(|c| Constraint::parse(c, &resolved))
        .collect::<Result<Vec<_>, _>>()?;
    let space = Space {
        params: resolved,
        constraints,
        method: match random {
            Some((trials, seed)) => Method::Random { trials, seed },
            None => Method::Grid,
        },
    };
    let combos = space.combinations()?;
    let setups = runner::setups(base, &space.params, &combos)?;
    Ok(Prepared { space, combos, setups })
}

/// A finished search: what ran and what it found.
pub struct Found {
    /// The checked search.
    pub prepared: Prepared,
    /// The ranked results over every bar.
    pub results: SearchResults,
}

/// Prepares and runs a search over `feeds` (one shared account), ranking
/// by `objective`. `done` counts finished backtests.
#[allow(clippy::too_many_arguments)]
pub fn search(
    base: &BacktestSetup,
    params: &[ParamSpec],
    constraints: &[&str],
    random: Option<(usize, u64)>,
    objective: Objective,
    feeds: &[&BarSeries],
    opts: &RunOptions,
    done: &AtomicUsize,
) -> Result<Found, SearchError> {
    let prepared = prepare(base, params, constraints, random)?;
    if feeds.is_empty() {
        return Err(SearchError::new("no data to search on: give at least one --symbol"));
    }
    let outcomes = runner::run_all(&prepared.setups, feeds, opts, done);
    let results = SearchResults::new(&prepared.space.params, &prepared.combos, outcomes, objective);
    Ok(Found { prepared, results })
}
