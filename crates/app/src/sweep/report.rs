//! What a finished sweep reports: the trials ranked, how much the search
//! itself explains (the deflated Sharpe ratio of the best, the probability
//! of backtest overfitting per rung), and the best settings as a file
//! `--config` reads. Everything here is on the validation splits: a sweep
//! never looks at a test split.

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use tradelab_sim::stats::moments::RunningMoments;
use tradelab_sim::stats::pbo::{probability_of_overfitting, Overfitting};
use tradelab_sim::stats::sharpe::{deflated_sharpe, ReturnMoments};

use super::state::{SweepState, TrialRun};

/// One trial in the ranking, at the last rung it reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// 1 for the best; failed trials are listed after the ranked ones with
    /// no rank.
    pub rank: Option<usize>,
    /// The trial's id.
    pub trial: usize,
    /// The last rung it reached (0-based) and that rung's budget.
    pub rung: usize,
    /// See [`rung`](Self::rung).
    pub steps: u64,
    /// The selection score on validation, when it finished.
    pub score: Option<f64>,
    /// Annualised validation Sharpe ratio after costs.
    pub sharpe: Option<f64>,
    /// Validation return in percent after costs.
    pub return_pct: Option<f64>,
    /// Positions opened on validation (0: flat).
    pub entries: Option<usize>,
    /// Share of validation bars holding a position.
    pub exposure: Option<f64>,
    /// `finished`, `failed` or `cancelled`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The registered model, `name@version`.
    pub model: Option<String>,
    /// The values it tried.
    pub params: std::collections::BTreeMap<String, Value>,
}

/// The probability of backtest overfitting over one rung's trials.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RungOverfitting {
    /// The rung (0-based).
    pub rung: usize,
    /// Its budget.
    pub steps: u64,
    /// CSCV's figures, or why they could not be computed.
    pub result: std::result::Result<Overfitting, String>,
}

/// How much of the best trial's validation Sharpe ratio the number of
/// trials explains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Deflation {
    /// Configurations tried.
    pub trials: usize,
    /// The best trial's per-bar validation Sharpe ratio.
    pub sharpe_per_bar: f64,
    /// The variance of the first rung's per-bar Sharpe ratios.
    pub trial_variance_per_bar: f64,
    /// The probability that the best's true Sharpe ratio beats what the
    /// best of that many unskilled trials would show.
    pub deflated_sharpe: f64,
    /// The standard deviation of the first rung's annualised validation
    /// Sharpe ratios: what `evaluate --trial-sharpe-std` takes.
    pub trial_sharpe_std_annualised: f64,
}

/// A finished sweep's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    /// The sweep's id.
    pub id: String,
    /// Ranked trials first, then the failed.
    pub rows: Vec<Row>,
    /// Jobs run in all (every rung).
    pub jobs: usize,
    /// Trial runs that failed or were cancelled.
    pub failed: usize,
    /// The best trial's deflation, when it has validation returns.
    pub deflation: Option<Deflation>,
    /// Per rung with at least two finished trials.
    pub overfitting: Vec<RungOverfitting>,
    /// The best settings as `--set` overrides (the sweep's fixed ones,
    /// the best trial's, its budget and seed), empty when nothing finished.
    pub best_overrides: Vec<String>,
}

/// CSCV's block count for `bars` bars: the paper's 16, fewer (even) for
/// short validation splits so every block keeps at least 4 bars.
fn blocks_for(bars: usize) -> usize {
    let by_length = (bars / 4) & !1;
    by_length.clamp(2, 16)
}

impl SweepReport {
    /// The report of `state` as it stands.
    pub fn of(state: &SweepState) -> SweepReport {
        let rungs = state.spec.rung_steps();
        let mut rows = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        // The trials that reached the highest rung first, each rung ranked.
        for rung in (0..rungs.len()).rev() {
            for r in state.ranked(rung) {
                if seen.insert(r.trial) {
                    rows.push(row(state, r, Some(rows.len() + 1)));
                }
            }
        }
        // Trials with no finished run, at the last rung they tried.
        let mut failed = 0;
        for r in &state.runs {
            let ended_badly = r.outcome.as_ref().is_some_and(|o| o.score().is_none());
            failed += usize::from(ended_badly);
            if ended_badly && seen.insert(r.trial) {
                rows.push(row(state, r, None));
            }
        }
        let overfitting = (0..rungs.len())
            .filter_map(|rung| {
                let ranked = state.ranked(rung);
                (ranked.len() >= 2).then(|| RungOverfitting {
                    rung,
                    steps: rungs[rung],
                    result: overfitting_of(&ranked),
                })
            })
            .collect();
        let best = rows.first().filter(|r| r.rank.is_some()).map(|r| r.trial);
        let deflation = best.and_then(|t| deflation(state, t));
        let best_overrides = best.map(|t| best_overrides(state, t)).unwrap_or_default();
        SweepReport {
            id: state.id.clone(),
            rows,
            jobs: state.runs.iter().filter(|r| r.job.is_some()).count(),
            failed,
            deflation,
            overfitting,
            best_overrides,
        }
    }

    /// The best settings as a YAML file for `--config`, with a header
    /// saying where they came from; `None` when no trial finished.
    pub fn best_yaml(&self, state: &SweepState) -> Result<Option<String>> {
        let Some(best) = self.rows.first().filter(|r| r.rank.is_some()) else {
            return Ok(None);
        };
        let tree = tradelab_core::settings::overrides_tree(&self.best_overrides)?;
        let mut out = format!(
            "# The best settings of sweep {} (trial {} of {}, {} search), chosen on validation only.\n\
             # Validation score {:.4}, Sharpe {:.3}, return {:+.2}% after costs, {} entries.\n\
             # Train with: tradelab --config THIS_FILE train --agent {}{}\n",
            state.id,
            best.trial,
            state.spec.trials,
            match state.spec.search {
                super::space::Search::Random => "random",
                super::space::Search::Halving => "successive-halving",
            },
            best.score.unwrap_or(f64::NAN),
            best.sharpe.unwrap_or(f64::NAN),
            best.return_pct.unwrap_or(f64::NAN),
            best.entries.unwrap_or(0),
            state.spec.agent,
            state
                .spec
                .symbols
                .iter()
                .map(|s| format!(" --symbol {s}"))
                .collect::<String>(),
        );
        if best.entries == Some(0) {
            out.push_str("# Warning: this trial's model never opened a position on validation (flat).\n");
        }
        if let Some(d) = &self.deflation {
            out.push_str(&format!(
                "# Evaluate on the test split with: --trials {} --trial-sharpe-std {:.4}\n",
                d.trials, d.trial_sharpe_std_annualised
            ));
        }
        write_yaml(&tree, 0, &mut out);
        Ok(Some(out))
    }
}

fn row(state: &SweepState, r: &TrialRun, rank: Option<usize>) -> Row {
    let o = r.outcome.as_ref();
    let v = o.and_then(|o| o.validation.as_ref());
    Row {
        rank,
        trial: r.trial,
        rung: r.rung,
        steps: r.steps,
        score: o.and_then(|o| o.score()),
        sharpe: v.map(|v| v.sharpe),
        return_pct: v.map(|v| v.return_pct),
        entries: v.map(|v| v.entries),
        exposure: v.map(|v| v.exposure),
        status: o.map_or_else(|| "running".into(), |o| o.status.clone()),
        error: o.and_then(|o| o.error.clone()),
        model: o.and_then(|o| o.model.clone()),
        params: state.trials[r.trial].params.clone(),
    }
}

fn overfitting_of(ranked: &[&TrialRun]) -> std::result::Result<Overfitting, String> {
    let returns: Vec<Vec<f64>> = ranked
        .iter()
        .filter_map(|r| r.outcome.as_ref().and_then(|o| o.returns.clone()))
        .collect();
    if returns.len() < ranked.len() {
        return Err(format!(
            "{} of {} trials have no validation returns (over 20,000 validation bars, or an older tradelab ran them)",
            ranked.len() - returns.len(),
            ranked.len()
        ));
    }
    let bars = returns.iter().map(Vec::len).min().unwrap_or(0);
    probability_of_overfitting(&returns, blocks_for(bars)).map_err(|e| e.to_string())
}

fn deflation(state: &SweepState, best: usize) -> Option<Deflation> {
    let top = state
        .runs
        .iter()
        .filter(|r| r.trial == best)
        .max_by_key(|r| r.rung)?
        .outcome
        .as_ref()?;
    let returns = top.returns.as_ref()?;
    let m = ReturnMoments::of(returns);
    let (mut per_bar, mut annual) = (RunningMoments::default(), RunningMoments::default());
    for r in state.ranked(0) {
        let o = r.outcome.as_ref()?;
        if let Some(ret) = &o.returns {
            per_bar.push(ReturnMoments::of(ret).sharpe());
        }
        if let Some(v) = &o.validation {
            annual.push(v.sharpe);
        }
    }
    let trials = state.spec.trials;
    Some(Deflation {
        trials,
        sharpe_per_bar: m.sharpe(),
        trial_variance_per_bar: per_bar.variance(),
        deflated_sharpe: deflated_sharpe(m.sharpe(), m.n, m.skew, m.kurtosis, trials, per_bar.variance()),
        trial_sharpe_std_annualised: annual.std(),
    })
}

fn best_overrides(state: &SweepState, best: usize) -> Vec<String> {
    let mut o = state.spec.settings.clone();
    o.extend(state.trials[best].overrides());
    o.push(format!("ppo.total_steps={}", state.spec.steps));
    o.push(format!("seed={}", state.spec.seed));
    o
}

/// Writes a tree of sections as block YAML; scalars and lists as JSON,
/// which YAML reads as the same values.
fn write_yaml(v: &Value, indent: usize, out: &mut String) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            out.push_str(&" ".repeat(indent));
            out.push_str(k);
            out.push(':');
            if child.is_object() {
                out.push('\n');
                write_yaml(child, indent + 2, out);
            } else {
                out.push(' ');
                out.push_str(&child.to_string());
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::space::SweepSpec;
    use crate::sweep::state::Outcome;
    use tradelab_agents::metadata::ValidationMetrics;

    fn spec() -> SweepSpec {
        SweepSpec::parse(
            "agent: ppo-mlp\nsymbols: [nvda-1999-2014]\nsteps: 900\nseed: 3\ntrials: 6\nsearch: halving\n\
             halving: {min_steps: 100, eta: 3}\nsettings: [\"env.actions=target\"]\n\
             space:\n  ppo.learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}\n  env.reward: {choice: [log_return, differential_sharpe]}\n",
        )
        .unwrap()
    }

    /// A finished run whose validation returns carry `edge` a bar.
    fn finished(trial: usize, rung: usize, edge: f64) -> TrialRun {
        let returns: Vec<f64> = (0..64)
            .map(|i| edge + 0.01 * (((i * 7 + trial * 3) % 11) as f64 - 5.0) / 5.0)
            .collect();
        let m = ReturnMoments::of(&returns);
        TrialRun {
            trial,
            rung,
            steps: [100, 300, 900][rung],
            job: Some(format!("j{trial}-{rung}")),
            outcome: Some(Outcome {
                status: "finished".into(),
                error: None,
                validation: Some(ValidationMetrics {
                    score: m.sharpe() * 252f64.sqrt(),
                    sharpe: m.sharpe() * 252f64.sqrt(),
                    entries: 3,
                    exposure: 0.5,
                    ..Default::default()
                }),
                model: Some(format!("sweep-x@{}", trial + 1)),
                returns: Some(returns),
            }),
        }
    }

    #[test]
    fn the_report_ranks_by_rung_reached_then_score_and_writes_the_best_as_a_settings_file() {
        let mut state = SweepState::new(spec());
        for t in 0..6 {
            state.runs.push(finished(t, 0, 0.001 * t as f64));
        }
        // Trials 4 and 5 went on; at the next rung trial 4 did better.
        state.runs.push(finished(5, 1, 0.0005));
        state.runs.push(finished(4, 1, 0.002));
        state.runs.push(finished(4, 2, 0.003));
        let mut failed = finished(3, 0, 0.0);
        failed.trial = 3;
        state.runs.retain(|r| !(r.trial == 3 && r.rung == 0));
        failed.outcome = Some(Outcome {
            status: "failed".into(),
            error: Some("boom".into()),
            validation: None,
            model: None,
            returns: None,
        });
        state.runs.push(failed);

        let report = SweepReport::of(&state);
        let order: Vec<(usize, Option<usize>)> = report.rows.iter().map(|r| (r.trial, r.rank)).collect();
        assert_eq!(
            order,
            vec![
                (4, Some(1)),
                (5, Some(2)),
                (2, Some(3)),
                (1, Some(4)),
                (0, Some(5)),
                (3, None)
            ]
        );
        assert_eq!((report.jobs, report.failed), (9, 1));
        assert_eq!(report.rows[5].error.as_deref(), Some("boom"));
        assert_eq!(
            report.overfitting.len(),
            2,
            "rungs 0 and 1 have two or more finished trials"
        );
        assert!(
            report.overfitting.iter().all(|o| o.result.is_ok()),
            "{:?}",
            report.overfitting
        );
        let d = report.deflation.unwrap();
        assert_eq!(d.trials, 6);
        assert!(d.deflated_sharpe > 0.0 && d.deflated_sharpe < 1.0, "{d:?}");

        let yaml = report.best_yaml(&state).unwrap().unwrap();
        assert!(yaml.contains("trial 4 of 6") && yaml.contains("--trials 6"), "{yaml}");
        // It is a settings file tradelab reads back to the best trial's values.
        let s = crate::Settings::from_yaml_str(&yaml, &[]).unwrap();
        let best = &state.trials[4].params;
        assert_eq!(s.ppo.learning_rate, best["ppo.learning_rate"].as_f64().unwrap());
        assert_eq!(s.ppo.total_steps, 900);
        assert_eq!(s.seed, 3);
        assert_eq!(
            serde_json::to_value(s.env.reward).unwrap(),
            best["env.reward"],
            "{yaml}"
        );
        assert_eq!(serde_json::to_value(s.env.actions).unwrap(), "target");
    }

    #[test]
    fn a_sweep_where_nothing_finished_has_no_best() {
        let mut state = SweepState::new(spec());
        let mut r = finished(0, 0, 0.0);
        r.outcome.as_mut().unwrap().validation = None;
        state.runs.push(r);
        let report = SweepReport::of(&state);
        assert!(report.best_overrides.is_empty());
        assert!(report.deflation.is_none());
        assert_eq!(report.best_yaml(&state).unwrap(), None);
    }

    #[test]
    fn short_validation_splits_get_fewer_blocks() {
        assert_eq!(
            (blocks_for(1000), blocks_for(64), blocks_for(30), blocks_for(5)),
            (16, 16, 6, 2)
        );
    }
}
