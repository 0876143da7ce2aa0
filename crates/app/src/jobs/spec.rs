//! What a job does: a training run or a backtest, as the command line the
//! worker runs for it.

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

/// A job as queued and stored: its kind and its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// Runs `tradelab train`.
    Train(TrainJob),
    /// Runs `tradelab backtest`.
    Backtest(BacktestJob),
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
