//! What a search found: every combination's metrics, the ranking by the
//! chosen metric, and the statistics that say how much of the winner is
//! luck (the deflated Sharpe ratio given the combinations tried, and the
//! probability of backtest overfitting by CSCV).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::runner::Outcome;
use super::space::Param;
use super::SearchError;
use crate::metrics::Metrics;
use crate::stats::moments::RunningMoments;
use crate::stats::pbo::{probability_of_overfitting_from_blocks, Overfitting};
use crate::stats::sharpe::deflated_sharpe;

/// The metric combinations are ranked by (higher is better; drawdown is
/// the negative fraction a report shows, so the shallowest ranks first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Annualised Sharpe ratio.
    Sharpe,
    /// Annualised Sortino ratio.
    Sortino,
    /// CAGR over maximum drawdown.
    Calmar,
    /// Total return, as a fraction.
    TotalReturn,
    /// Compound annual growth rate.
    Cagr,
    /// Maximum drawdown (a negative fraction).
    MaxDrawdown,
    /// Gross profit over gross loss.
    ProfitFactor,
    /// Share of winning trades.
    WinRate,
    /// Final equity minus starting cash.
    TotalPnl,
}

/// Names `--metric` accepts.
pub const OBJECTIVES: [&str; 9] = [
    "sharpe",
    "sortino",
    "calmar",
    "total_return",
    "cagr",
    "max_drawdown",
    "profit_factor",
    "win_rate",
    "total_pnl",
];

impl Objective {
    /// Parses a `--metric` name.
    pub fn parse(name: &str) -> Result<Objective, SearchError> {
        Ok(match name.replace('-', "_").as_str() {
            "sharpe" => Objective::Sharpe,
            "sortino" => Objective::Sortino,
            "calmar" => Objective::Calmar,
            "total_return" => Objective::TotalReturn,
            "cagr" => Objective::Cagr,
            "max_drawdown" => Objective::MaxDrawdown,
            "profit_factor" => Objective::ProfitFactor,
            "win_rate" => Objective::WinRate,
            "total_pnl" => Objective::TotalPnl,
            _ => {
                return Err(SearchError::new(format!(
                    "unknown metric `{name}`; choose one of: {}",
                    OBJECTIVES.join(", ")
                )))
            }
        })
    }

    /// The metric's value for a run; `None` where the run does not define
    /// it (no trades for a win rate), which ranks last.
    pub fn score(self, m: &Metrics) -> Option<f64> {
        let v = match self {
            Objective::Sharpe => m.curve.sharpe,
            Objective::Sortino => m.curve.sortino,
            Objective::Calmar => m.curve.calmar,
            Objective::TotalReturn => Some(m.curve.total_return),
            Objective::Cagr => m.curve.cagr,
            Objective::MaxDrawdown => Some(m.curve.max_drawdown),
            Objective::ProfitFactor => m.trades.profit_factor,
            Objective::WinRate => m.trades.win_rate,
            Objective::TotalPnl => Some(m.total_pnl),
        };
        v.filter(|x| !x.is_nan())
    }
}

/// One combination's line of the results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Position in the search's combination order.
    pub index: usize,
    /// Rank by the objective, from 1.
    pub rank: usize,
    /// The parameter values, by name.
    pub params: serde_json::Map<String, Value>,
    /// The strategy's label.
    pub strategy: String,
    /// The objective's value (`null` where undefined).
    pub score: Option<f64>,
    /// Equity at the end.
    pub final_equity: f64,
    /// Every metric of a single backtest.
    pub metrics: Metrics,
}

/// The deflated Sharpe ratio of the best combination.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Deflation {
    /// Combinations tried.
    pub trials: usize,
    /// The best's Sharpe ratio per bar.
    pub sharpe_per_bar: f64,
    /// The variance of the per-bar Sharpe ratio across combinations.
    pub trial_variance_per_bar: f64,
    /// The probability that the best's true Sharpe ratio beats the best of
    /// that many unskilled trials (Bailey and López de Prado, 2014).
    pub deflated_sharpe: f64,
}

/// Everything a search produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    /// The metric ranked by.
    pub objective: Objective,
    /// The parameters searched, by name and settings key.
    pub params: Vec<ParamSummary>,
    /// Every combination, best first.
    pub rows: Vec<Row>,
    /// The deflated Sharpe ratio of the best (absent for one combination).
    pub deflation: Option<Deflation>,
    /// The probability of backtest overfitting by CSCV over the
    /// combinations' per-bar Sharpe ratios.
    pub overfitting: Option<Overfitting>,
    /// Why `overfitting` could not be computed, where it could not.
    pub overfitting_unavailable: Option<String>,
}

/// A searched parameter as the results describe it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSummary {
    /// The name as written.
    pub name: String,
    /// The settings key it sets.
    pub key: String,
    /// How many values it took.
    pub values: usize,
}

impl SearchResults {
    /// Ranks `outcomes` (one per combination, in order) by `objective`:
    /// defined scores first, highest first; ties keep combination order.
    pub fn new(params: &[Param], combos: &[Vec<Value>], outcomes: Vec<Outcome>, objective: Objective) -> SearchResults {
        let trials = outcomes.len();
        let mut per_bar = RunningMoments::default();
        for o in &outcomes {
            per_bar.push(o.moments.sharpe());
        }
        let blocks: Option<Vec<_>> = outcomes.iter().map(|o| o.blocks.clone()).collect();
        let overfitting = match blocks {
            Some(b) => probability_of_overfitting_from_blocks(&b).map_err(|e| e.to_string()),
            None => {
                Err("the runs are too short to cut into the CSCV blocks; lower --pbo-blocks or use more bars".into())
            }
        };
        let mut order: Vec<usize> = (0..trials).collect();
        let scores: Vec<Option<f64>> = outcomes.iter().map(|o| objective.score(&o.metrics)).collect();
        order.sort_by(|&a, &b| match (scores[a], scores[b]) {
            (Some(x), Some(y)) => y.total_cmp(&x).then(a.cmp(&b)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(&b),
        });
        let deflation = order.first().filter(|_| trials > 1).map(|&best| {
            let m = outcomes[best].moments;
            Deflation {
                trials,
                sharpe_per_bar: m.sharpe(),
                trial_variance_per_bar: per_bar.variance(),
                deflated_sharpe: deflated_sharpe(m.sharpe(), m.n, m.skew, m.kurtosis, trials, per_bar.variance()),
            }
        });
        let mut outcomes: Vec<Option<Outcome>> = outcomes.into_iter().map(Some).collect();
        let rows = order
            .iter()
            .enumerate()
            .map(|(r, &i)| {
                let o = outcomes[i].take().expect("each combination ranks once");
                Row {
                    index: i,
                    rank: r + 1,
                    params: params
                        .iter()
                        .zip(&combos[i])
                        .map(|(p, v)| (p.name.clone(), v.clone()))
                        .collect(),
                    strategy: o.strategy,
                    score: scores[i],
                    final_equity: o.final_equity,
                    metrics: o.metrics,
                }
            })
            .collect();
        SearchResults {
            objective,
            params: params
                .iter()
                .map(|p| ParamSummary {
                    name: p.name.clone(),
                    key: p.key.clone(),
                    values: p.values.len(),
                })
                .collect(),
            rows,
            deflation,
            overfitting_unavailable: overfitting.as_ref().err().cloned(),
            overfitting: overfitting.ok(),
        }
    }

    /// The best combination.
    pub fn best(&self) -> &Row {
        &self.rows[0]
    }

    /// Every row as CSV: rank, index, the parameters, the score and every
    /// metric (empty where undefined).
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        let _ = writeln!(
            out,
            "rank,index,{},score,final_equity,{}",
            names.join(","),
            METRIC_COLUMNS.map(|(n, _)| n).join(",")
        );
        for r in &self.rows {
            let params: Vec<String> = names.iter().map(|n| csv_value(&r.params[*n])).collect();
            let metrics: Vec<String> = METRIC_COLUMNS.iter().map(|(_, f)| opt(f(&r.metrics))).collect();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                r.rank,
                r.index,
                params.join(","),
                opt(r.score),
                r.final_equity,
                metrics.join(",")
            );
        }
        out
    }
}

type MetricColumn = (&'static str, fn(&Metrics) -> Option<f64>);

/// The metrics a table or CSV shows, in order.
pub const METRIC_COLUMNS: [MetricColumn; 14] = [
    ("total_return", |m| Some(m.curve.total_return)),
    ("cagr", |m| m.curve.cagr),
    ("annual_volatility", |m| m.curve.annual_volatility),
    ("sharpe", |m| m.curve.sharpe),
    ("sortino", |m| m.curve.sortino),
    ("calmar", |m| m.curve.calmar),
    ("max_drawdown", |m| Some(m.curve.max_drawdown)),
    ("total_trades", |m| Some(m.trades.total_trades as f64)),
    ("win_rate", |m| m.trades.win_rate),
    ("profit_factor", |m| m.trades.profit_factor),
    ("exposure", |m| Some(m.exposure)),
    ("turnover", |m| Some(m.turnover)),
    ("fees_paid", |m| Some(m.fees_paid)),
    ("total_pnl", |m| Some(m.total_pnl)),
];

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_parse_and_unknown_ones_are_listed() {
        for n in OBJECTIVES {
            assert!(Objective::parse(n).is_ok(), "{n}");
        }
        assert_eq!(Objective::parse("total-return").unwrap(), Objective::TotalReturn);
        let e = Objective::parse("alpha").unwrap_err().to_string();
        assert!(e.contains("unknown metric `alpha`; choose one of: sharpe"), "{e}");
    }
}
