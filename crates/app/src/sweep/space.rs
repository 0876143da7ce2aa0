//! The sweep file: what to train, which settings to search and how, and
//! the trials drawn from it.
//!
//! ```yaml
//! agent: ppo-mlp
//! symbols: [nvda-1999-2014]
//! steps: 200000            # each trial's budget (the last rung's, when halving)
//! seed: 1                  # the sampler's seed and every trial's training seed
//! trials: 100
//! search: halving          # or random
//! halving: {min_steps: 25000, eta: 3}
//! settings: ["env.actions=target"]   # fixed for every trial
//! space:
//!   ppo.learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}
//!   ppo.entropy_coef: {uniform: [0.0, 0.05]}
//!   ppo.gamma: {choice: [0.9, 0.97, 0.99]}
//!   env.window: {int: [16, 64]}
//! ```
//!
//! Every trial trains with the same seed (common random numbers): two
//! trials differ by their settings only, so the ranking compares settings,
//! not luck of the initialisation.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jobs::spec::{JobSpec, TrainJob};
use crate::settings::SettingsSource;

/// How trials are chosen and stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// Every trial trains for the full budget.
    Random,
    /// Successive halving: every trial trains on a small budget, the best
    /// `1/eta` go on to `eta` times the budget, until the full budget.
    Halving,
}

/// Successive halving's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halving {
    /// The first rung's budget in environment steps.
    pub min_steps: u64,
    /// Each rung keeps the best `1/eta` of the one before and gives them
    /// `eta` times its budget.
    #[serde(default = "default_eta")]
    pub eta: u64,
}

fn default_eta() -> u64 {
    3
}

/// Where one setting's values are drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// One of these values, each as likely.
    Choice(Vec<Value>),
    /// A float uniform in `[low, high]`.
    Uniform([f64; 2]),
    /// A float whose logarithm is uniform in `[ln low, ln high]` (scales
    /// like learning rates).
    LogUniform([f64; 2]),
    /// An integer uniform in `[low, high]`, both included.
    Int([i64; 2]),
}

impl Distribution {
    fn check(&self, key: &str) -> Result<()> {
        match self {
            Distribution::Choice(v) if v.is_empty() => bail!("space.{key}: `choice` needs at least one value"),
            Distribution::Uniform([lo, hi]) if !(lo.is_finite() && hi.is_finite() && lo <= hi) => {
                bail!("space.{key}: `uniform` needs [low, high] with low <= high; got [{lo}, {hi}]")
            }
            Distribution::LogUniform([lo, hi]) if !(*lo > 0.0 && hi.is_finite() && lo <= hi) => {
                bail!("space.{key}: `log_uniform` needs [low, high] with 0 < low <= high; got [{lo}, {hi}]")
            }
            Distribution::Int([lo, hi]) if lo > hi => {
                bail!("space.{key}: `int` needs [low, high] with low <= high; got [{lo}, {hi}]")
            }
            _ => Ok(()),
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Value {
        match self {
            Distribution::Choice(v) => v[rng.random_range(0..v.len())].clone(),
            Distribution::Uniform([lo, hi]) => json_float(lo + (hi - lo) * rng.random::<f64>()),
            Distribution::LogUniform([lo, hi]) => {
                json_float((lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp())
            }
            Distribution::Int([lo, hi]) => Value::from(rng.random_range(*lo..=*hi)),
        }
    }
}

/// A float with 6 significant digits: enough for any setting, and short
/// enough to read in a table and a settings file.
fn json_float(x: f64) -> Value {
    let rounded: f64 = format!("{x:.5e}").parse().unwrap_or(x);
    serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}

/// A sweep file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The agent every trial trains (`tradelab train --agent`).
    pub agent: String,
    /// Instruments in the prepared data (names, as `train --symbol` and
    /// training jobs take them); default all.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Only series of this timeframe.
    #[serde(default)]
    pub timeframe: Option<String>,
    /// Each trial's budget in environment steps (the last rung's).
    pub steps: u64,
    /// The sampler's seed, and every trial's training seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Configurations to try.
    pub trials: usize,
    /// `random` or `halving`.
    #[serde(default = "default_search")]
    pub search: Search,
    /// The halving schedule (needed with `search: halving`).
    #[serde(default)]
    pub halving: Option<Halving>,
    /// Overrides every trial shares, as `--set` takes them.
    #[serde(default)]
    pub settings: Vec<String>,
    /// The settings searched: dotted key to distribution.
    pub space: BTreeMap<String, Distribution>,
}

fn default_seed() -> u64 {
    1
}

fn default_search() -> Search {
    Search::Random
}

/// One configuration to try: its number and drawn values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based, in the order drawn.
    pub id: usize,
    /// Dotted key to the value drawn for it.
    pub params: BTreeMap<String, Value>,
}

impl Trial {
    /// The trial's values as `--set` overrides.
    pub fn overrides(&self) -> Vec<String> {
        self.params.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// `key=value` pairs for a table row, keys shortened to their last part.
    pub fn short(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| {
                let key = k.rsplit('.').next().unwrap_or(k);
                match v {
                    Value::String(s) => format!("{key}={s}"),
                    other => format!("{key}={other}"),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The most trials one sweep runs.
pub const MAX_TRIALS: usize = 10_000;

impl SweepSpec {
    /// Reads and checks a sweep file.
    pub fn load(path: &Path) -> Result<SweepSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the sweep file {} (does it exist?)", path.display()))?;
        Self::parse(&text).with_context(|| format!("in the sweep file {}", path.display()))
    }

    /// Parses and checks sweep text.
    pub fn parse(text: &str) -> Result<SweepSpec> {
        let spec: SweepSpec = serde_saphyr::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{} (expected keys: agent, symbols, timeframe, steps, seed, trials, search, halving, settings, space)",
                e.to_string().lines().next().unwrap_or("not a sweep file")
            )
        })?;
        spec.check_shape()?;
        Ok(spec)
    }

    fn check_shape(&self) -> Result<()> {
        if self.trials == 0 || self.trials > MAX_TRIALS {
            bail!("trials must be between 1 and {MAX_TRIALS}; got {}", self.trials);
        }
        if self.steps == 0 {
            bail!("steps must be at least 1");
        }
        if self.space.is_empty() {
            bail!("space is empty: name at least one setting to search, e.g. `ppo.learning_rate: {{log_uniform: [1.0e-5, 1.0e-3]}}`");
        }
        for (key, d) in &self.space {
            if key == "seed" || key == "ppo.total_steps" {
                bail!("space.{key}: the sweep sets `{key}` itself (use the sweep's `seed` and `steps`)");
            }
            d.check(key)?;
        }
        match (self.search, self.halving) {
            (Search::Halving, None) => {
                bail!("search: halving needs `halving: {{min_steps: N, eta: 3}}`")
            }
            (Search::Halving, Some(h)) => {
                if h.eta < 2 {
                    bail!("halving.eta must be at least 2; got {}", h.eta);
                }
                if h.min_steps == 0 || h.min_steps > self.steps {
                    bail!(
                        "halving.min_steps must be between 1 and steps ({}); got {}",
                        self.steps,
                        h.min_steps
                    );
                }
            }
            (Search::Random, _) => {}
        }
        // The job checks: a known agent, plain names, no data/store/report keys.
        self.job(
            &Trial {
                id: 0,
                params: BTreeMap::new(),
            },
            self.steps,
            "sweep-check",
        )
        .check()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// The `trials` configurations, drawn in a fixed order from `seed`:
    /// the same file always gives the same trials.
    pub fn draw(&self) -> Vec<Trial> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5EE9_5EE9);
        (0..self.trials)
            .map(|id| Trial {
                id,
                params: self
                    .space
                    .iter()
                    .map(|(k, d)| (k.clone(), d.sample(&mut rng)))
                    .collect(),
            })
            .collect()
    }

    /// Every trial's settings load under `source` (the file, then the
    /// sweep's fixed settings, then the trial's): a wrong key or value is
    /// refused before anything is queued, naming the trial.
    pub fn check_settings(&self, source: &SettingsSource, trials: &[Trial]) -> Result<()> {
        for t in trials {
            let mut o = self.settings.clone();
            o.extend(t.overrides());
            source
                .load(&o)
                .with_context(|| format!("trial {} ({}) has settings tradelab refuses", t.id, t.short()))?;
        }
        Ok(())
    }

    /// The training job of trial `t` at `steps`, registering its model
    /// under `model`.
    pub fn job(&self, t: &Trial, steps: u64, model: &str) -> JobSpec {
        let mut settings = self.settings.clone();
        settings.extend(t.overrides());
        JobSpec::Train(TrainJob {
            agent: self.agent.clone(),
            symbols: self.symbols.clone(),
            timeframe: self.timeframe.clone(),
            steps: Some(steps),
            seed: Some(self.seed),
            name: Some(model.to_string()),
            preset: None,
            settings,
        })
    }

    /// The budget of each rung, smallest first: one rung for random
    /// search; for halving, `min_steps` times powers of `eta`, up to
    /// `steps`.
    pub fn rung_steps(&self) -> Vec<u64> {
        match (self.search, self.halving) {
            (Search::Halving, Some(h)) => {
                let mut rungs = vec![h.min_steps];
                while *rungs.last().unwrap() < self.steps {
                    let next = rungs.last().unwrap().saturating_mul(h.eta).min(self.steps);
                    rungs.push(next);
                }
                rungs
            }
            _ => vec![self.steps],
        }
    }

    /// How many trials go on from a rung of `n`: the best `1/eta`, at
    /// least one.
    pub fn promoted(&self, n: usize) -> usize {
        let eta = self.halving.map_or(1, |h| h.eta.max(1)) as usize;
        (n / eta).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "
agent: ppo-mlp
symbols: [nvda-1999-2014]
steps: 90000
seed: 4
trials: 12
search: halving
halving: {min_steps: 10000, eta: 3}
settings: [\"env.actions=target\"]
space:
  ppo.learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}
  ppo.entropy_coef: {uniform: [0.0, 0.05]}
  env.reward: {choice: [log_return, differential_sharpe]}
  env.window: {int: [16, 64]}
";

    #[test]
    fn a_sweep_file_draws_the_same_trials_every_time_inside_their_ranges() {
        let spec = SweepSpec::parse(FILE).unwrap();
        let (a, b) = (spec.draw(), spec.draw());
        assert_eq!(a, b, "the same file, the same trials");
        assert_eq!(a.len(), 12);
        for t in &a {
            let lr = t.params["ppo.learning_rate"].as_f64().unwrap();
            assert!((1e-5..=1e-3).contains(&lr), "{lr}");
            let ent = t.params["ppo.entropy_coef"].as_f64().unwrap();
            assert!((0.0..=0.05).contains(&ent), "{ent}");
            let w = t.params["env.window"].as_i64().unwrap();
            assert!((16..=64).contains(&w), "{w}");
            let r = t.params["env.reward"].as_str().unwrap();
            assert!(r == "log_return" || r == "differential_sharpe");
        }
        // Log-uniform spreads over the decades: some below 1e-4.
        assert!(a.iter().any(|t| t.params["ppo.learning_rate"].as_f64().unwrap() < 1e-4));
        assert!(a.iter().any(|t| t.params["ppo.learning_rate"].as_f64().unwrap() > 1e-4));
        let mut other = spec.clone();
        other.seed = 5;
        assert_ne!(other.draw(), a, "another seed, other trials");
    }

    #[test]
    fn trials_become_training_jobs_with_the_fixed_settings_first() {
        let spec = SweepSpec::parse(FILE).unwrap();
        let t = &spec.draw()[0];
        let JobSpec::Train(job) = spec.job(t, 10000, "sweep-x") else {
            panic!("a training job")
        };
        assert_eq!(job.steps, Some(10000));
        assert_eq!(job.seed, Some(4));
        assert_eq!(job.name.as_deref(), Some("sweep-x"));
        assert_eq!(job.settings[0], "env.actions=target");
        assert_eq!(job.settings.len(), 5);
        assert!(
            job.settings.iter().any(|s| s.starts_with("env.reward=\"")),
            "{:?}",
            job.settings
        );
        // The overrides load as settings: strings stay strings.
        let s = crate::Settings::defaults_with(&job.settings).unwrap();
        assert_eq!(s.env.window as i64, t.params["env.window"].as_i64().unwrap());
    }

    #[test]
    fn halving_rungs_grow_by_eta_to_the_budget_and_keep_a_third() {
        let spec = SweepSpec::parse(FILE).unwrap();
        assert_eq!(spec.rung_steps(), vec![10000, 30000, 90000]);
        assert_eq!((spec.promoted(12), spec.promoted(4), spec.promoted(2)), (4, 1, 1));
        let mut odd = spec.clone();
        odd.steps = 50000;
        assert_eq!(
            odd.rung_steps(),
            vec![10000, 30000, 50000],
            "the last rung is the budget"
        );
        let mut random = spec;
        random.search = Search::Random;
        assert_eq!(random.rung_steps(), vec![90000]);
    }

    #[test]
    fn bad_sweep_files_name_the_key_and_the_fix() {
        let space = "space:\n";
        for (from, to, needle) in [
            ("trials: 12", "trials: 0", "trials must be between 1"),
            (
                space,
                "space:\n  ppo.gamma: {choice: []}\n",
                "space.ppo.gamma: `choice` needs",
            ),
            (space, "space:\n  ppo.gamma: {uniform: [0.9, 0.1]}\n", "low <= high"),
            (space, "space:\n  ppo.gamma: {log_uniform: [0.0, 0.1]}\n", "0 < low"),
            (space, "space:\n  ppo.gamma: {normal: [0.0, 0.1]}\n", "expected keys"),
            (space, "space:\n  seed: {int: [1, 9]}\n", "the sweep sets `seed`"),
            ("eta: 3}", "eta: 1}", "eta must be at least 2"),
            (
                "min_steps: 10000",
                "min_steps: 100000",
                "min_steps must be between 1 and steps",
            ),
            ("agent: ppo-mlp", "agent: dqn", "unknown agent `dqn`"),
            ("[nvda-1999-2014]", "[../etc/passwd]", "plain name"),
            (
                "[\"env.actions=target\"]",
                "[\"data.raw_dir=/\"]",
                "fixed by the server",
            ),
            (
                "search: halving\nhalving: {min_steps: 10000, eta: 3}\n",
                "search: halving\n",
                "needs `halving:",
            ),
        ] {
            assert!(FILE.contains(from), "{from}");
            let e = format!("{:#}", SweepSpec::parse(&FILE.replace(from, to)).unwrap_err());
            assert!(e.contains(needle), "{to}: {e}");
        }
    }

    #[test]
    fn the_example_sweeps_in_config_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sweeps");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let spec = SweepSpec::load(&path).unwrap();
            let source = SettingsSource {
                config: Some(dir.join("../settings.yaml")),
                ..Default::default()
            };
            spec.check_settings(&source, &spec.draw())
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            n += 1;
        }
        assert!(n >= 1);
    }

    #[test]
    fn trial_settings_tradelab_refuses_are_named_before_anything_runs() {
        let mut spec = SweepSpec::parse(FILE).unwrap();
        spec.space.insert("ppo.gamma".into(), Distribution::Uniform([1.5, 2.0]));
        let trials = spec.draw();
        let e = format!(
            "{:#}",
            spec.check_settings(&SettingsSource::default(), &trials).unwrap_err()
        );
        assert!(e.contains("trial 0") && e.contains("ppo.gamma"), "{e}");
        spec.space.insert("ppo.no_such_key".into(), Distribution::Int([1, 2]));
        spec.space.remove("ppo.gamma");
        let e = format!(
            "{:#}",
            spec.check_settings(&SettingsSource::default(), &spec.draw())
                .unwrap_err()
        );
        assert!(e.contains("no_such_key"), "{e}");
    }
}
