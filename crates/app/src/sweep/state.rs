//! A sweep's state on disk (`DIR/state.json`): its trials, which jobs ran
//! them at which budget, and what each found. Rewritten whole (to a
//! temporary file, then renamed) after every change, so a killed sweep
//! leaves either the old state or the new one, never half of either; the
//! next run of the same command reads it and goes on where it stopped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tradelab_agents::metadata::ValidationMetrics;

use super::space::{SweepSpec, Trial};

/// The state file's layout version.
const VERSION: u32 = 1;

/// What one trial's job produced at one rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The job's terminal status: finished, failed or cancelled.
    pub status: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The selected checkpoint's validation (finished jobs).
    #[serde(default)]
    pub validation: Option<ValidationMetrics>,
    /// The registered model, `name@version`.
    #[serde(default)]
    pub model: Option<String>,
    /// The selected checkpoint's per-bar validation returns after costs.
    #[serde(default)]
    pub returns: Option<Vec<f64>>,
}

impl Outcome {
    /// The selection score, for a finished job that validated.
    pub fn score(&self) -> Option<f64> {
        self.validation.as_ref().map(|v| v.score).filter(|s| s.is_finite())
    }
}

/// One trial trained at one rung's budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRun {
    /// The trial's id.
    pub trial: usize,
    /// 0 for the first rung.
    pub rung: usize,
    /// Its budget in environment steps.
    pub steps: u64,
    /// The job that runs it; `None` between deciding to run it and the
    /// queue accepting it.
    pub job: Option<String>,
    /// Set once the job ended.
    pub outcome: Option<Outcome>,
}

/// Everything a sweep has decided and learnt so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepState {
    /// The layout version.
    pub version: u32,
    /// Random, chosen when the sweep starts; its models register as
    /// `sweep-<id>`, which also tells its jobs from any other's.
    pub id: String,
    /// The sweep file as started: resuming under another is refused.
    pub spec: SweepSpec,
    /// The configurations drawn.
    pub trials: Vec<Trial>,
    /// Every trial run decided on, in order.
    pub runs: Vec<TrialRun>,
}

impl SweepState {
    /// A new sweep of `spec`.
    pub fn new(spec: SweepSpec) -> SweepState {
        SweepState {
            version: VERSION,
            id: hex_id(),
            trials: spec.draw(),
            spec,
            runs: Vec::new(),
        }
    }

    /// The registry name of the sweep's models.
    pub fn model_name(&self) -> String {
        format!("sweep-{}", self.id)
    }

    /// The state file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// The sweep saved in `dir`, if one is; refused when it was started
    /// from another sweep file.
    pub fn resume(dir: &Path, spec: &SweepSpec) -> Result<Option<SweepState>> {
        let path = Self::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state: SweepState = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; delete it to start the sweep again (its finished jobs stay in the store)",
                path.display()
            )
        })?;
        if state.version != VERSION {
            bail!(
                "{} was written by another version of tradelab (layout {}, this one reads {VERSION}); use another --out",
                path.display(),
                state.version
            );
        }
        if &state.spec != spec {
            bail!(
                "{} holds a sweep of a different sweep file; pass another --out, or delete the folder to start over",
                dir.display()
            );
        }
        Ok(Some(state))
    }

    /// Writes the state to `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let tmp = dir.join("state.json.tmp");
        let text = serde_json::to_string(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    /// The run of `trial` at `rung`, if decided.
    pub fn run(&self, trial: usize, rung: usize) -> Option<&TrialRun> {
        self.runs.iter().find(|r| r.trial == trial && r.rung == rung)
    }

    /// The finished runs of `rung`, best first: score descending, a policy
    /// that trades before a flat one on equal scores, then trial order.
    pub fn ranked(&self, rung: usize) -> Vec<&TrialRun> {
        let mut done: Vec<&TrialRun> = self
            .runs
            .iter()
            .filter(|r| r.rung == rung && r.outcome.as_ref().and_then(Outcome::score).is_some())
            .collect();
        done.sort_by(|a, b| {
            rank_key(b)
                .partial_cmp(&rank_key(a))
                .unwrap()
                .then(a.trial.cmp(&b.trial))
        });
        done
    }
}

fn rank_key(r: &TrialRun) -> (f64, bool) {
    let o = r.outcome.as_ref().expect("ranked runs have outcomes");
    let flat = o.validation.as_ref().is_none_or(ValidationMetrics::is_flat);
    (o.score().unwrap_or(f64::NEG_INFINITY), !flat)
}

fn hex_id() -> String {
    let bytes: [u8; 4] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> SweepSpec {
        SweepSpec::parse("agent: ppo-mlp\nsteps: 1000\ntrials: 4\nspace:\n  ppo.gamma: {uniform: [0.9, 0.99]}\n")
            .unwrap()
    }

    fn finished(trial: usize, score: f64, entries: usize) -> TrialRun {
        TrialRun {
            trial,
            rung: 0,
            steps: 1000,
            job: Some(format!("job{trial}")),
            outcome: Some(Outcome {
                status: "finished".into(),
                error: None,
                validation: Some(ValidationMetrics {
                    score,
                    entries,
                    ..Default::default()
                }),
                model: None,
                returns: None,
            }),
        }
    }

    #[test]
    fn a_saved_sweep_resumes_only_under_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SweepState::resume(dir.path(), &spec()).unwrap(), None);
        let mut s = SweepState::new(spec());
        s.runs.push(finished(2, 0.5, 3));
        s.save(dir.path()).unwrap();
        assert_eq!(SweepState::resume(dir.path(), &spec()).unwrap(), Some(s.clone()));
        assert!(!dir.path().join("state.json.tmp").exists());
        let mut other = spec();
        other.trials = 5;
        let e = SweepState::resume(dir.path(), &other).unwrap_err().to_string();
        assert!(e.contains("different sweep file"), "{e}");
        std::fs::write(SweepState::path(dir.path()), "{").unwrap();
        let e = format!("{:#}", SweepState::resume(dir.path(), &spec()).unwrap_err());
        assert!(e.contains("damaged") && e.contains("delete it"), "{e}");
    }

    #[test]
    fn ranking_puts_the_best_score_first_and_a_flat_policy_after_a_trading_one_on_a_tie() {
        let mut s = SweepState::new(spec());
        s.runs = vec![
            finished(0, 0.0, 0),
            finished(1, 0.8, 2),
            finished(2, 0.0, 5),
            finished(3, 0.8, 2),
        ];
        let mut failed = finished(4, 9.0, 1);
        failed.outcome.as_mut().unwrap().validation = None;
        failed.outcome.as_mut().unwrap().status = "failed".into();
        s.runs.push(failed);
        let order: Vec<usize> = s.ranked(0).iter().map(|r| r.trial).collect();
        assert_eq!(order, vec![1, 3, 2, 0], "failed runs are not ranked");
        assert!(s.ranked(1).is_empty());
    }
}
