//! Several trained models as one agent: each member sees the same input,
//! their action distributions are averaged, and the ensemble decides from
//! the average (its most likely action when greedy, a draw from it when
//! sampled). The quantity is the members' mean. Seeds of one setting make
//! the usual ensemble: the average smooths out what one seed learnt by
//! chance.
//!
//! An ensemble is evaluated, not trained or saved: its members are the
//! checkpoints, so `learn`, `save` and `load` refuse with what to do.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tradelab_core::Action;
use tradelab_env::VecEnv;

use crate::agent::{Agent, AgentInput, Decision, LearnStats, MarketKey};
use crate::error::AgentError;
use crate::metadata::Provenance;

/// The kind an ensemble reports.
pub const KIND: &str = "ensemble";

/// Members whose averaged distributions decide.
pub struct Ensemble {
    members: Vec<Box<dyn Agent + Send>>,
    rng: ChaCha8Rng,
}

/// The settings that shape what a model observes and how its actions are
/// read: members must agree on all of them to share one input.
const OBSERVATION_KEYS: [&str; 4] = ["env.window", "env.actions", "features", "regime"];

fn setting<'a>(p: &'a Provenance, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(&p.settings, |v, k| v.get(k))
}

impl Ensemble {
    /// An ensemble of `members` (at least two), refused unless they read
    /// the same features, vocabulary, window, regime model and action
    /// space.
    pub fn new(members: Vec<Box<dyn Agent + Send>>) -> Result<Ensemble, AgentError> {
        if members.len() < 2 {
            return Err(AgentError::Invalid(format!(
                "an ensemble needs at least 2 models; got {}",
                members.len()
            )));
        }
        let first = members[0].provenance();
        for (i, m) in members.iter().enumerate().skip(1) {
            let p = m.provenance();
            let differs = |what: &str| {
                AgentError::Mismatch(format!(
                    "ensemble member {} differs from member 1 in {what}; an ensemble's models must observe the same inputs (train them with the same settings and data, varying the seed)",
                    i + 1
                ))
            };
            if p.features != first.features {
                return Err(differs("its features"));
            }
            if p.vocabulary != first.vocabulary {
                return Err(differs("its markets (vocabulary)"));
            }
            for key in OBSERVATION_KEYS {
                if setting(p, key) != setting(first, key) {
                    return Err(differs(&format!("`{key}`")));
                }
            }
        }
        Ok(Ensemble {
            members,
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// How many models it averages.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never: an ensemble has at least two members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl Agent for Ensemble {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn select_action(&mut self, input: &AgentInput<'_>, greedy: bool) -> Result<Decision, AgentError> {
        let mut probabilities = [0.0f32; 5];
        let (mut quantity, mut value) = (0.0, 0.0);
        for m in &mut self.members {
            let d = m.select_action(input, greedy)?;
            for (sum, p) in probabilities.iter_mut().zip(d.probabilities) {
                *sum += p;
            }
            quantity += d.quantity;
            value += d.value;
        }
        let n = self.members.len() as f32;
        probabilities.iter_mut().for_each(|p| *p /= n);
        let valid = |i: usize| input.mask[i] && probabilities[i] > 0.0;
        let index = if greedy {
            // The first of equal maxima, as the members' own argmax does.
            (0..5)
                .filter(|&i| valid(i))
                .fold(None, |best: Option<usize>, i| match best {
                    Some(b) if probabilities[b] >= probabilities[i] => Some(b),
                    _ => Some(i),
                })
        } else {
            let total: f32 = (0..5).filter(|&i| valid(i)).map(|i| probabilities[i]).sum();
            let mut draw = self.rng.random::<f32>() * total;
            let mut chosen = None;
            for i in (0..5).filter(|&i| valid(i)) {
                chosen = Some(i);
                if draw < probabilities[i] {
                    break;
                }
                draw -= probabilities[i];
            }
            chosen
        };
        let index = index.ok_or_else(|| AgentError::Invalid("no valid action has any probability".into()))?;
        Ok(Decision {
            action: Action::from_index(index)
                .ok_or_else(|| AgentError::Invalid(format!("action index {index} out of range")))?,
            quantity: quantity / self.members.len() as f64,
            probabilities,
            value: value / n,
        })
    }

    fn seed_sampling(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed ^ 0xE75E_4B1E);
        for (i, m) in self.members.iter_mut().enumerate() {
            m.seed_sampling(seed.wrapping_add(i as u64 + 1));
        }
    }

    fn learn(&mut self, _: &mut VecEnv, _: &[MarketKey]) -> Result<LearnStats, AgentError> {
        Err(AgentError::Invalid(
            "an ensemble is not trained: train its members (tradelab train --seeds K), then evaluate them together"
                .into(),
        ))
    }

    fn save(&self, _: &Path) -> Result<(), AgentError> {
        Err(AgentError::Invalid(
            "an ensemble is not saved: its members' checkpoints are the model; pass each with --model".into(),
        ))
    }

    fn load(dir: &Path) -> Result<Self, AgentError> {
        Err(AgentError::Invalid(format!(
            "{} is one checkpoint; an ensemble is built from several (repeat --model)",
            dir.display()
        )))
    }

    /// The first member's: the members agree on everything that shapes
    /// their input.
    fn provenance(&self) -> &Provenance {
        self.members[0].provenance()
    }

    fn take_segment_counts(&mut self) -> Vec<u64> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A member that always answers with the same distribution.
    struct Fixed {
        probabilities: [f32; 5],
        quantity: f64,
        provenance: Provenance,
    }

    impl Agent for Fixed {
        fn kind(&self) -> &'static str {
            "fixed"
        }
        fn select_action(&mut self, input: &AgentInput<'_>, _: bool) -> Result<Decision, AgentError> {
            let mut p = self.probabilities;
            for (i, p) in p.iter_mut().enumerate() {
                if !input.mask[i] {
                    *p = 0.0;
                }
            }
            Ok(Decision {
                action: Action::Hold,
                quantity: self.quantity,
                probabilities: p,
                value: 1.0,
            })
        }
        fn seed_sampling(&mut self, _: u64) {}
        fn learn(&mut self, _: &mut VecEnv, _: &[MarketKey]) -> Result<LearnStats, AgentError> {
            unreachable!()
        }
        fn save(&self, _: &Path) -> Result<(), AgentError> {
            unreachable!()
        }
        fn load(_: &Path) -> Result<Self, AgentError> {
            unreachable!()
        }
        fn provenance(&self) -> &Provenance {
            &self.provenance
        }
    }

    fn member(p: [f32; 5], quantity: f64) -> Box<dyn Agent + Send> {
        Box::new(Fixed {
            probabilities: p,
            quantity,
            provenance: Provenance {
                features: vec!["ret_1".into()],
                settings: json!({"env": {"window": 8, "actions": "target"}, "features": {}, "regime": {}}),
                ..Default::default()
            },
        })
    }

    fn input(mask: [bool; 5]) -> AgentInput<'static> {
        AgentInput {
            window: &[],
            account: [0.0; 3],
            mask,
            market: MarketKey {
                instrument: 0,
                timeframe: 0,
            },
        }
    }

    #[test]
    fn the_greedy_ensemble_takes_the_most_likely_action_of_the_averaged_distribution() {
        // Member 1 prefers BUY_LONG, member 2 HOLD a little less strongly
        // but spreads the rest on SELL_SHORT: the average favours HOLD.
        let mut e = Ensemble::new(vec![
            member([0.5, 0.1, 0.0, 0.0, 0.4], 0.2),
            member([0.0, 0.3, 0.0, 0.0, 0.7], 0.6),
        ])
        .unwrap();
        let all = [true; 5];
        let d = e.select_action(&input(all), true).unwrap();
        assert_eq!(d.action, Action::from_index(4).unwrap());
        assert_eq!(d.probabilities, [0.25, 0.2, 0.0, 0.0, 0.55]);
        assert!((d.quantity - 0.4).abs() < 1e-12);
        // Masking HOLD out leaves BUY_LONG the most likely valid action.
        let d = e.select_action(&input([true, true, true, true, false]), true).unwrap();
        assert_eq!(d.action, Action::from_index(0).unwrap());
    }

    #[test]
    fn the_sampled_ensemble_draws_from_the_average_reproducibly() {
        let mut e = Ensemble::new(vec![
            member([0.8, 0.0, 0.0, 0.0, 0.2], 0.5),
            member([0.2, 0.0, 0.0, 0.0, 0.8], 0.5),
        ])
        .unwrap();
        e.seed_sampling(7);
        let draws: Vec<usize> = (0..4000)
            .map(|_| e.select_action(&input([true; 5]), false).unwrap().action.index())
            .collect();
        let buys = draws.iter().filter(|&&i| i == 0).count() as f64 / 4000.0;
        assert!((buys - 0.5).abs() < 0.03, "{buys}");
        assert!(
            draws.iter().all(|&i| i == 0 || i == 4),
            "never a zero-probability action"
        );
        e.seed_sampling(7);
        let again: Vec<usize> = (0..4000)
            .map(|_| e.select_action(&input([true; 5]), false).unwrap().action.index())
            .collect();
        assert_eq!(draws, again, "the same seed, the same path");
    }

    #[test]
    fn members_that_observe_differently_are_refused() {
        let p = [0.2; 5];
        assert!(Ensemble::new(vec![member(p, 0.5)]).is_err(), "one is not an ensemble");
        let mut other = Fixed {
            probabilities: p,
            quantity: 0.5,
            provenance: Provenance {
                features: vec!["ret_1".into()],
                settings: json!({"env": {"window": 16, "actions": "target"}, "features": {}, "regime": {}}),
                ..Default::default()
            },
        };
        let e = Ensemble::new(vec![member(p, 0.5), Box::new(other)]).err().unwrap();
        assert!(e.to_string().contains("`env.window`"), "{e}");
        other = Fixed {
            probabilities: p,
            quantity: 0.5,
            provenance: Provenance {
                features: vec!["rsi".into()],
                ..Default::default()
            },
        };
        let e = Ensemble::new(vec![member(p, 0.5), Box::new(other)]).err().unwrap();
        assert!(e.to_string().contains("features"), "{e}");
        let ok = Ensemble::new(vec![member(p, 0.5), member(p, 0.5)]).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok.save(Path::new("x")).is_err());
    }
}
