//! What the training driver needs of an agent beyond [`Agent`]: progress
//! counters, provenance and the budget. The algorithms implement it; the
//! drivers call it.

use crate::agent::Agent;
use crate::metadata::Provenance;

/// What an agent needs beyond [`Agent`] to be trained by the
/// [`trainer`](crate::trainer).
pub trait Trainable: Agent {
    /// The provenance, for the trainer to record validation metrics and
    /// training statistics before a save.
    fn provenance_mut(&mut self) -> &mut Provenance;
    /// Environment steps done so far, across resumes.
    fn env_steps_done(&self) -> usize;
    /// Updates (calls to `learn`) done so far, across resumes.
    fn updates_done(&self) -> usize;
    /// Environments stepped in lockstep per `learn` call.
    fn lockstep_envs(&self) -> usize;
    /// Number of trainable scalars.
    fn parameter_count(&self) -> usize;
    /// Extends (or shortens) the budget, which the learning-rate schedule follows.
    fn set_total_steps(&mut self, steps: usize);
}

/// Implements [`Trainable`] for an agent that keeps its counters in
/// `env_steps` and `updates`, its provenance in `provenance`, its
/// parameters in `params` and its PPO settings in `config.ppo`, as the PPO
/// and HRM agents do.
macro_rules! trainable_agent {
    ($agent:ty) => {
        impl $crate::trainable::Trainable for $agent {
            fn provenance_mut(&mut self) -> &mut $crate::metadata::Provenance {
                &mut self.provenance
            }

            fn env_steps_done(&self) -> usize {
                self.env_steps
            }

            fn updates_done(&self) -> usize {
                self.updates
            }

            fn lockstep_envs(&self) -> usize {
                self.config.ppo.envs
            }

            fn parameter_count(&self) -> usize {
                self.params.count()
            }

            fn set_total_steps(&mut self, steps: usize) {
                self.config.ppo.total_steps = steps;
            }
        }
    };
}
pub(crate) use trainable_agent;
