//! What a job does (a training run, a backtest, a parameter search or a
//! model's evaluation), as the command line the worker runs for it.

use serde::{Deserialize, Serialize};
use tradelab_agents::kinds::{self, AgentKind};

/// Why a job was refused before it was queued: what the client must change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct JobRejected {
    /// What was refused and why, as the client reads it.
    pub detail: String,
}

impl JobRejected {
    fn new(detail: impl Into<String>) -> JobRejected {
        JobRejected { detail: detail.into() }
    }
}

/// A training job: the same choices as `tradelab train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrainJob {
    /// ppo-lstm, ppo-transformer, ppo-mlp, hrm or moe.
    pub agent: String,
    /// Instruments in the prepared data (names, not paths); default all.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Only series of this timeframe (e.g. `1d`); default all.
    pub timeframe: Option<String>,
    /// Environment steps (overrides ppo.total_steps).
    pub steps: Option<u64>,
    /// The run's seed (overrides `seed`).
    pub seed: Option<u64>,
    /// Registry name of the best model (default: the agent's name).
    pub name: Option<String>,
    /// HRM size preset: small or paper.
    pub preset: Option<String>,
    /// Setting overrides, as `tradelab --set` takes them: `key.path=value`.
    #[serde(default)]
    pub settings: Vec<String>,
}

/// A backtest job: the same choices as `tradelab backtest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BacktestJob {
    /// buy_and_hold, sma_crossover, rsi_mean_reversion, momentum,
    /// buy_and_hold_vol_target or momentum_vol_target.
    pub strategy: String,
    /// Instruments in data.raw_dir (names, not paths); several share one account.
    pub symbols: Vec<String>,
    /// next_open or signal_close.
    pub fill: Option<String>,
    /// Setting overrides, as `tradelab --set` takes them: `key.path=value`.
    #[serde(default)]
    pub settings: Vec<String>,
}

/// An optimisation job: the same choices as `tradelab optimize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OptimizeJob {
    /// sma_crossover, rsi_mean_reversion, momentum, buy_and_hold_vol_target
    /// or momentum_vol_target.
    pub strategy: String,
    /// Instruments in data.raw_dir (names, not paths); several share one account.
    pub symbols: Vec<String>,
    /// `NAME=START:END[:STEP]` or `NAME=A,B,C`: a strategy parameter
    /// (`fast`) or a key under `backtest.`, `risk.` or `strategies.`.
    pub params: Vec<String>,
    /// Conditions every combination must meet, such as `fast < slow`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// grid (default) or random.
    pub method: Option<String>,
    /// Combinations a random search draws.
    pub trials: Option<usize>,
    /// The metric ranked by (default sharpe).
    pub metric: Option<String>,
    /// Folds of walk-forward optimisation.
    pub walk_forward: Option<usize>,
    /// The random draw's seed (overrides `seed`).
    pub seed: Option<u64>,
    /// Setting overrides, as `tradelab --set` takes them: `key.path=value`.
    #[serde(default)]
    pub settings: Vec<String>,
}

/// An evaluation job: a registered model out of sample, as
/// `tradelab evaluate` runs it; each of its runs is stored as a backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvaluateJob {
    /// A registered model: NAME (its latest version), NAME@VERSION or
    /// NAME@STAGE (e.g. `logreg@production`). Never a path.
    pub model: String,
    /// Instruments to evaluate on (names in the data folders); default the
    /// ones the model was trained on.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// test (default) or validation.
    pub split: Option<String>,
    /// Consecutive folds of the split, each from a fresh account (1 to 20).
    pub folds: Option<usize>,
    /// Models or settings tried to arrive at this one, for the deflated
    /// Sharpe ratio (default 1).
    pub trials: Option<usize>,
    /// Standard deviation of the annualised Sharpe ratios of those trials
    /// (needed when trials is above 1).
    pub trial_sharpe_std: Option<f64>,
    /// Setting overrides, as `tradelab --set` takes them: `key.path=value`
    /// (costs, fill policy, risk limits).
    #[serde(default)]
    pub settings: Vec<String>,
}

/// A job as queued and stored: its kind and its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// Runs `tradelab train`.
    Train(TrainJob),
    /// Runs `tradelab backtest`.
    Backtest(BacktestJob),
    /// Runs `tradelab optimize`.
    Optimize(OptimizeJob),
    /// Runs `tradelab evaluate`.
    Evaluate(EvaluateJob),
}

/// A search expression a client may pass on: a plain key path, then `=`
/// or a comparison, then plain values (no flags, no shell or path syntax).
fn plain_expression(field: &str, value: &str) -> Result<(), JobRejected> {
    let ok = !value.is_empty()
        && value.len() <= 200
        && !value.trim_start().starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:,=<>! -+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(JobRejected::new(format!(
            "{field} `{value}` is not a plain expression (names, numbers, : , = < > !; e.g. fast=5:50 or fast < slow)"
        )))
    }
}

/// A name a client may pass on: no paths, no flags, nothing a shell or
/// the file system would read as more than a name.
fn plain_name(field: &str, value: &str) -> Result<(), JobRejected> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('-')
        && !value.starts_with('.')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(JobRejected::new(format!(
            "{field} `{value}` is not a plain name (letters, digits, - _ . @; no paths)"
        )))
    }
}

/// The settings sections a job may override: what a model learns and how
/// it trades. Everything else (where data is read and results go, the
/// store, the authorization server) is the operator's.
const OVERRIDABLE_SECTIONS: [&str; 15] = [
    "seed",
    "features",
    "backtest",
    "risk",
    "strategies",
    "env",
    "ppo",
    "hierarchical_reasoning_model",
    "walk_forward",
    "monte_carlo",
    "regime",
    "moe",
    "meta",
    "logreg",
    "gbt",
];

/// An override a job may carry: a key path inside an allowed section (read
/// as the settings loader reads it, part by part, never a whole section),
/// set to a plain value or a list of plain values.
fn check_override(o: &str) -> Result<(), JobRejected> {
    let Some((key, raw)) = o.split_once('=') else {
        return Err(JobRejected::new(format!("setting `{o}` is not key.path=value")));
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    let plain = |p: &&str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if !parts.iter().all(plain) {
        return Err(JobRejected::new(format!(
            "setting `{key}` is not a key path (lower-case names joined by dots)"
        )));
    }
    if !OVERRIDABLE_SECTIONS.contains(&parts[0]) {
        return Err(JobRejected::new(format!(
            "setting `{key}` is fixed by the server (data, store, report and auth settings are the operator's); a job may change: {}",
            OVERRIDABLE_SECTIONS.join(", ")
        )));
    }
    if parts[0] != "seed" && parts.len() < 2 {
        return Err(JobRejected::new(format!(
            "setting `{key}` replaces a whole section; set the keys inside it one by one (e.g. {key}.KEY=VALUE)"
        )));
    }
    let value: serde_json::Value =
        serde_saphyr::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()));
    let scalar = |v: &serde_json::Value| !(v.is_object() || v.is_array());
    let ok = match &value {
        serde_json::Value::Object(_) => false,
        serde_json::Value::Array(items) => items.iter().all(scalar),
        _ => true,
    };
    if !ok {
        return Err(JobRejected::new(format!(
            "setting `{key}` must be a plain value or a list of plain values, not a mapping"
        )));
    }
    Ok(())
}

/// Every job resolves symbols inside the data folders only: a client's
/// `tradelab.db` names no file in the server's working directory (issue 19
/// finding 12).
const NAMES_ONLY: [&str; 2] = ["--set", "data.symbol_paths=false"];

impl JobSpec {
    /// The job's kind as the store and the API name it.
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Train(_) => "train",
            JobSpec::Backtest(_) => "backtest",
            JobSpec::Optimize(_) => "optimize",
            JobSpec::Evaluate(_) => "evaluate",
        }
    }

    /// Refuses what a client must not ask for, before it is queued.
    pub fn check(&self) -> Result<(), JobRejected> {
        match self {
            JobSpec::Train(t) => {
                if AgentKind::parse(&t.agent).is_none() {
                    return Err(JobRejected::new(format!(
                        "unknown agent `{}`; choose one of: {}",
                        t.agent,
                        kinds::names(|_| true)
                    )));
                }
                for s in &t.symbols {
                    plain_name("symbol", s)?;
                }
                for (field, v) in [("timeframe", &t.timeframe), ("name", &t.name), ("preset", &t.preset)] {
                    if let Some(v) = v {
                        plain_name(field, v)?;
                    }
                }
                if t.steps == Some(0) {
                    return Err(JobRejected::new("steps must be at least 1"));
                }
                t.settings.iter().try_for_each(|o| check_override(o))
            }
            JobSpec::Backtest(b) => {
                if !tradelab_sim::strategies::BASELINES.contains(&b.strategy.as_str()) {
                    return Err(JobRejected::new(format!(
                        "unknown strategy `{}`; choose one of: {}",
                        b.strategy,
                        tradelab_sim::strategies::BASELINES.join(", ")
                    )));
                }
                if b.symbols.is_empty() {
                    return Err(JobRejected::new("a backtest needs at least one symbol"));
                }
                for s in &b.symbols {
                    plain_name("symbol", s)?;
                }
                if let Some(f) = &b.fill {
                    plain_name("fill", f)?;
                }
                b.settings.iter().try_for_each(|o| check_override(o))
            }
            JobSpec::Optimize(o) => {
                tradelab_sim::optimize::BacktestSetup::new(
                    &o.strategy,
                    Default::default(),
                    Default::default(),
                    Default::default(),
                    Default::default(),
                )
                .map_err(|e| JobRejected::new(e.to_string()))?;
                if o.symbols.is_empty() {
                    return Err(JobRejected::new("an optimisation needs at least one symbol"));
                }
                for s in &o.symbols {
                    plain_name("symbol", s)?;
                }
                if o.params.is_empty() {
                    return Err(JobRejected::new(
                        "an optimisation needs at least one parameter, like fast=5:50",
                    ));
                }
                for p in &o.params {
                    plain_expression("param", p)?;
                    tradelab_sim::optimize::ParamSpec::parse(p).map_err(|e| JobRejected::new(e.to_string()))?;
                }
                for c in &o.constraints {
                    plain_expression("constraint", c)?;
                }
                match (o.method.as_deref(), o.trials) {
                    (None | Some("grid"), None) => {}
                    (None | Some("grid"), Some(_)) => {
                        return Err(JobRejected::new(
                            "trials is for method random; a grid runs every combination",
                        ))
                    }
                    (Some("random"), Some(n)) if (1..=1_000_000).contains(&n) => {}
                    (Some("random"), _) => {
                        return Err(JobRejected::new("method random needs trials between 1 and 1000000"))
                    }
                    (Some(other), _) => {
                        return Err(JobRejected::new(format!(
                            "unknown method `{other}`; choose grid or random"
                        )))
                    }
                }
                if let Some(m) = &o.metric {
                    tradelab_sim::optimize::Objective::parse(m).map_err(|e| JobRejected::new(e.to_string()))?;
                }
                if o.walk_forward.is_some_and(|k| !(1..=100).contains(&k)) {
                    return Err(JobRejected::new("walk_forward must be between 1 and 100 folds"));
                }
                o.settings.iter().try_for_each(|s| check_override(s))
            }
            JobSpec::Evaluate(e) => {
                plain_name("model", &e.model)?;
                for s in &e.symbols {
                    plain_name("symbol", s)?;
                }
                if let Some(split) = &e.split {
                    if split != "test" && split != "validation" {
                        return Err(JobRejected::new(format!(
                            "unknown split `{split}`; use test or validation (the train split is what the model learnt from)"
                        )));
                    }
                }
                if e.folds.is_some_and(|k| !(1..=20).contains(&k)) {
                    return Err(JobRejected::new("folds must be between 1 and 20"));
                }
                match (e.trials, e.trial_sharpe_std) {
                    (Some(0), _) => return Err(JobRejected::new("trials must be at least 1")),
                    (Some(t), s) if t > 1 && !s.is_some_and(|s| s > 0.0 && s.is_finite()) => {
                        return Err(JobRejected::new(format!(
                            "trials {t} needs trial_sharpe_std: the spread (above 0) of the annualised Sharpe ratios those trials reached"
                        )))
                    }
                    (_, Some(s)) if !s.is_finite() || s < 0.0 => {
                        return Err(JobRejected::new("trial_sharpe_std must be a number of at least 0"))
                    }
                    _ => {}
                }
                e.settings.iter().try_for_each(|s| check_override(s))
            }
        }
    }

    /// The `tradelab` arguments that run the job (after the global ones).
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let opt = |a: &mut Vec<String>, flag: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v);
            }
        };
        match self {
            JobSpec::Train(t) => {
                for o in &t.settings {
                    a.extend(["--set".into(), o.clone()]);
                }
                a.extend(NAMES_ONLY.map(String::from));
                a.extend(["train".into(), "--agent".into(), t.agent.clone()]);
                for s in &t.symbols {
                    a.extend(["--symbol".into(), s.clone()]);
                }
                opt(&mut a, "--timeframe", t.timeframe.clone());
                opt(&mut a, "--steps", t.steps.map(|s| s.to_string()));
                opt(&mut a, "--seed", t.seed.map(|s| s.to_string()));
                opt(&mut a, "--name", t.name.clone());
                opt(&mut a, "--preset", t.preset.clone());
            }
            JobSpec::Backtest(b) => {
                for o in &b.settings {
                    a.extend(["--set".into(), o.clone()]);
                }
                a.extend(NAMES_ONLY.map(String::from));
                a.extend(["backtest".into(), "--strategy".into(), b.strategy.clone()]);
                for s in &b.symbols {
                    a.extend(["--symbol".into(), s.clone()]);
                }
                opt(&mut a, "--fill", b.fill.clone());
            }
            JobSpec::Optimize(o) => {
                for s in &o.settings {
                    a.extend(["--set".into(), s.clone()]);
                }
                opt(&mut a, "--seed", o.seed.map(|s| s.to_string()));
                a.extend(NAMES_ONLY.map(String::from));
                a.extend(["optimize".into(), "--strategy".into(), o.strategy.clone()]);
                for s in &o.symbols {
                    a.extend(["--symbol".into(), s.clone()]);
                }
                // `--flag=value`, so a value is never read as a flag.
                a.extend(o.params.iter().map(|p| format!("--param={p}")));
                a.extend(o.constraints.iter().map(|c| format!("--constraint={c}")));
                opt(&mut a, "--method", o.method.clone());
                opt(&mut a, "--trials", o.trials.map(|t| t.to_string()));
                opt(&mut a, "--metric", o.metric.clone());
                opt(&mut a, "--walk-forward", o.walk_forward.map(|k| k.to_string()));
            }
            JobSpec::Evaluate(e) => {
                for s in &e.settings {
                    a.extend(["--set".into(), s.clone()]);
                }
                a.extend(NAMES_ONLY.map(String::from));
                a.extend(["evaluate".into(), "--registered".into(), format!("--model={}", e.model)]);
                for s in &e.symbols {
                    a.extend(["--symbol".into(), s.clone()]);
                }
                opt(&mut a, "--split", e.split.clone());
                opt(&mut a, "--folds", e.folds.map(|k| k.to_string()));
                opt(&mut a, "--trials", e.trials.map(|k| k.to_string()));
                opt(&mut a, "--trial-sharpe-std", e.trial_sharpe_std.map(|s| s.to_string()));
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train() -> TrainJob {
        TrainJob {
            agent: "ppo-mlp".into(),
            symbols: vec!["nvda-1999-2014".into()],
            timeframe: None,
            steps: Some(512),
            seed: Some(3),
            name: None,
            preset: None,
            settings: vec!["ppo.hidden=16".into()],
        }
    }

    #[test]
    fn optimisation_jobs_become_command_lines_and_bad_ones_are_refused() {
        let job = OptimizeJob {
            strategy: "sma_crossover".into(),
            symbols: vec!["orcl".into()],
            params: vec!["fast=5:50".into(), "slow=20:200:4".into()],
            constraints: vec!["fast < slow".into()],
            method: None,
            trials: None,
            metric: Some("total_return".into()),
            walk_forward: Some(3),
            seed: None,
            settings: vec!["backtest.fill=signal_close".into()],
        };
        let spec = JobSpec::Optimize(job.clone());
        assert_eq!(spec.check(), Ok(()));
        assert_eq!(spec.kind(), "optimize");
        assert_eq!(
            spec.args().join(" "),
            "--set backtest.fill=signal_close --set data.symbol_paths=false optimize --strategy sma_crossover --symbol orcl --param=fast=5:50 --param=slow=20:200:4 --constraint=fast < slow --metric total_return --walk-forward 3"
        );
        let refused = |edit: &dyn Fn(&mut OptimizeJob)| {
            let mut j = job.clone();
            edit(&mut j);
            JobSpec::Optimize(j).check().unwrap_err().detail
        };
        assert!(refused(&|j| j.strategy = "martingale".into()).contains("unknown strategy"));
        assert!(refused(&|j| j.params.clear()).contains("at least one parameter"));
        assert!(refused(&|j| j.params = vec!["fast".into()]).contains("NAME=START:END"));
        assert!(refused(&|j| j.params = vec!["--config=/etc/x".into()]).contains("not a plain expression"));
        assert!(refused(&|j| j.constraints = vec!["fast < $(rm)".into()]).contains("not a plain expression"));
        assert!(refused(&|j| j.trials = Some(5)).contains("trials is for method random"));
        assert!(refused(&|j| j.method = Some("random".into())).contains("needs trials"));
        assert!(refused(&|j| j.metric = Some("alpha".into())).contains("unknown metric"));
        assert!(refused(&|j| j.walk_forward = Some(0)).contains("walk_forward"));
        assert!(refused(&|j| j.symbols = vec!["../x".into()]).contains("plain name"));
        assert!(refused(&|j| j.settings = vec!["store.url=x".into()]).contains("fixed by the server"));
    }

    #[test]
    fn evaluation_jobs_name_a_registered_model_and_bad_ones_are_refused() {
        let job = EvaluateJob {
            model: "logreg@production".into(),
            symbols: vec!["orcl".into()],
            split: Some("validation".into()),
            folds: Some(2),
            trials: Some(12),
            trial_sharpe_std: Some(0.4),
            settings: vec!["backtest.costs.entry_fixed=25".into()],
        };
        let spec = JobSpec::Evaluate(job.clone());
        assert_eq!(spec.check(), Ok(()));
        assert_eq!(spec.kind(), "evaluate");
        assert_eq!(
            spec.args().join(" "),
            "--set backtest.costs.entry_fixed=25 --set data.symbol_paths=false evaluate --registered --model=logreg@production --symbol orcl --split validation --folds 2 --trials 12 --trial-sharpe-std 0.4"
        );
        let bare = JobSpec::Evaluate(EvaluateJob {
            model: "logreg".into(),
            symbols: vec![],
            split: None,
            folds: None,
            trials: None,
            trial_sharpe_std: None,
            settings: vec![],
        });
        assert_eq!(
            bare.args().join(" "),
            "--set data.symbol_paths=false evaluate --registered --model=logreg"
        );
        let refused = |edit: &dyn Fn(&mut EvaluateJob)| {
            let mut j = job.clone();
            edit(&mut j);
            JobSpec::Evaluate(j).check().unwrap_err().detail
        };
        assert!(refused(&|j| j.model = "../models/x".into()).contains("plain name"));
        assert!(refused(&|j| j.model = "--config=/etc/x".into()).contains("plain name"));
        assert!(refused(&|j| j.model = String::new()).contains("plain name"));
        assert!(refused(&|j| j.split = Some("train".into())).contains("unknown split"));
        assert!(refused(&|j| j.folds = Some(0)).contains("folds"));
        assert!(refused(&|j| j.folds = Some(21)).contains("folds"));
        assert!(refused(&|j| j.trials = Some(0)).contains("at least 1"));
        assert!(refused(&|j| j.trial_sharpe_std = None).contains("needs trial_sharpe_std"));
        assert!(refused(&|j| j.trial_sharpe_std = Some(f64::NAN)).contains("needs trial_sharpe_std"));
        assert!(refused(&|j| {
            j.trials = None;
            j.trial_sharpe_std = Some(-1.0)
        })
        .contains("at least 0"));
        assert!(refused(&|j| j.symbols = vec!["/tmp/x.csv".into()]).contains("plain name"));
        assert!(refused(&|j| j.settings = vec!["store.model_dir=/tmp".into()]).contains("fixed by the server"));
    }

    #[test]
    fn jobs_become_command_lines() {
        let args = JobSpec::Train(train()).args();
        assert_eq!(
            args.join(" "),
            "--set ppo.hidden=16 --set data.symbol_paths=false train --agent ppo-mlp --symbol nvda-1999-2014 --steps 512 --seed 3"
        );
        let b = JobSpec::Backtest(BacktestJob {
            strategy: "momentum".into(),
            symbols: vec!["a".into(), "b".into()],
            fill: Some("signal_close".into()),
            settings: vec![],
        });
        assert_eq!(
            b.args().join(" "),
            "--set data.symbol_paths=false backtest --strategy momentum --symbol a --symbol b --fill signal_close"
        );
        assert!(b.check().is_ok());
    }

    #[test]
    fn paths_flags_and_server_settings_are_refused() {
        for (symbol, needle) in [
            ("../etc/passwd", "plain name"),
            ("--config", "plain name"),
            ("/tmp/x.csv", "plain name"),
        ] {
            let mut t = train();
            t.symbols = vec![symbol.into()];
            let e = JobSpec::Train(t).check().unwrap_err();
            assert!(e.detail.contains(needle), "{symbol}: {}", e.detail);
        }
        let mut t = train();
        t.settings = vec!["data.raw_dir=/".into()];
        assert!(JobSpec::Train(t)
            .check()
            .unwrap_err()
            .detail
            .contains("fixed by the server"));
        // Whole sections, mappings, other sections and odd spellings are
        // refused on the parsed path, not on a string prefix.
        for (o, needle) in [
            ("data={raw_dir: /}", "fixed by the server"),
            ("store={url: \"sqlite:///tmp/x.db\"}", "fixed by the server"),
            ("report.out_dir=/tmp", "fixed by the server"),
            ("auth.issuer=http://evil", "fixed by the server"),
            ("ppo={hidden: 8}", "replaces a whole section"),
            ("ppo.hidden={a: 1}", "not a mapping"),
            ("gbt.trees=[1, {a: 2}]", "not a mapping"),
            (" data .raw_dir=/", "not a key path"),
            ("Data.raw_dir=/", "not a key path"),
            ("env..window=8", "not a key path"),
        ] {
            let mut t = train();
            t.settings = vec![o.into()];
            let e = JobSpec::Train(t).check().unwrap_err();
            assert!(e.detail.contains(needle), "{o}: {}", e.detail);
        }
        for o in [
            "seed=3",
            "env.window=8",
            "gbt.trees=[25, 100]",
            "strategies.volatility_target.target=0.1",
        ] {
            let mut t = train();
            t.settings = vec![o.into()];
            assert!(JobSpec::Train(t).check().is_ok(), "{o}");
        }
        let mut t = train();
        t.agent = "dqn".into();
        assert!(JobSpec::Train(t).check().unwrap_err().detail.contains("ppo-lstm"));
        let mut t = train();
        t.steps = Some(0);
        assert!(JobSpec::Train(t).check().is_err());
    }
}
