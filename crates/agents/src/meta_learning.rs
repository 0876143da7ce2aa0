//! Meta-training a PPO agent (single policy or mixture) across markets
//! (algorithms.md §3), with the updates of [`crate::maml`] and the tasks of
//! [`crate::meta_tasks`].
//!
//! For each task (a market's support window, an embargo, its query window):
//! 1. a rollout on the support window with the meta-parameters θ is the
//!    inner loop's fixed batch; `inner_steps` gradient steps of its PPO
//!    loss give the fast weights θ' (θ itself is untouched);
//! 2. a rollout on the query window with θ' is the outer loop's batch; its
//!    PPO loss at θ' is the task's meta-loss;
//! 3. the meta-gradient is taken in the configured mode (second-order
//!    MAML differentiates through the inner steps with Hessian-vector
//!    products by finite differences of the support gradient).
//!
//! The outer update averages the tasks' meta-gradients, clips the norm at
//! `ppo.max_grad_norm` and steps by `outer_lr` (Reptile: moves
//! `reptile_step` of the way toward the mean adapted weights).
//!
//! Returns are greedy episodes over a task's query window, before (θ) and
//! after (θ') adaptation.

use std::cell::RefCell;
use std::sync::Arc;

use serde::Serialize;
use tradelab_env::{EnvConfig, MarketData, Split};

use crate::agent::MarketKey;
use crate::error::AgentError;
use crate::evaluate::greedy_episode;
use crate::maml::{adapt, meta_gradient, MetaMode};
use crate::ppo::PpoAgent;
use crate::settings::MetaSettings;

/// A task ready to run: the market with its splits set to the support
/// (train) and query (validation) windows.
#[derive(Clone)]
pub struct MetaTask {
    /// How progress lines and results name the task (market and windows).
    pub name: String,
    /// The market's data, its train split the support window and its
    /// validation split the query window.
    pub data: Arc<MarketData>,
    /// The market's ids in the agent's vocabulary.
    pub key: MarketKey,
}

/// One outer update, for the progress line and the run's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct MetaIteration {
    /// The iteration number the caller passed; it also varies the tasks'
    /// rollout seeds.
    pub iteration: usize,
    /// Mean over tasks of the query PPO loss at the adapted weights.
    pub meta_loss: f64,
    /// Mean greedy query-window return (%) before adaptation, at θ.
    pub pre_return_pct: f64,
    /// Mean greedy query-window return (%) after adaptation, at θ'.
    pub post_return_pct: f64,
    /// Norm of the averaged meta-gradient before clipping.
    pub grad_norm: f64,
}

/// What a meta-learning run reads from the settings.
#[derive(Debug, Clone)]
pub struct MetaSetup {
    /// The environment tasks are run in.
    pub env: EnvConfig,
    /// `meta:`.
    pub meta: MetaSettings,
    /// The run's seed; each task's rollouts derive theirs from it.
    pub seed: u64,
    /// The clip on the outer step's meta-gradient (`ppo.max_grad_norm`).
    pub max_grad_norm: f64,
}

/// The inner loop's settings.
#[derive(Debug, Clone, Copy)]
pub struct InnerLoop {
    /// Gradient steps on the support batch.
    pub steps: usize,
    /// Step size of each plain gradient step.
    pub lr: f64,
}

impl InnerLoop {
    /// `meta.inner_steps` and `meta.inner_lr`.
    pub fn from_settings(m: &MetaSettings) -> InnerLoop {
        InnerLoop {
            steps: m.inner_steps,
            lr: m.inner_lr,
        }
    }
}

/// Runs `f` with a shared agent from two closures at once (the inner and
/// outer gradients), keeping the first error.
struct Shared<'a> {
    agent: RefCell<&'a mut PpoAgent>,
    error: RefCell<Option<AgentError>>,
}

impl<'a> Shared<'a> {
    fn new(agent: &'a mut PpoAgent) -> Self {
        Shared {
            agent: RefCell::new(agent),
            error: RefCell::new(None),
        }
    }

    /// The inner loop from θ on the fixed support batch: every iterate.
    fn adapt(
        &self,
        theta: &[f64],
        inner: InnerLoop,
        support: &crate::ppo::TaskBatch,
    ) -> Result<Vec<Vec<f64>>, AgentError> {
        let iterates = adapt(theta, inner.lr, inner.steps, &mut |t| self.gradient(t, support));
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(iterates),
        }
    }

    fn gradient(&self, theta: &[f64], batch: &crate::ppo::TaskBatch) -> Vec<f64> {
        let run = || -> Result<Vec<f64>, AgentError> {
            let mut agent = self.agent.borrow_mut();
            agent.set_flat_params(theta)?;
            Ok(agent.batch_gradient(&batch.batch, batch.advantages.clone())?.0)
        };
        run().unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            vec![0.0; theta.len()]
        })
    }
}

/// Adapts the agent to `task` in place: `inner.steps` gradient steps on a
/// support rollout taken with its current weights. Returns every iterate.
pub fn adapt_to_task(
    agent: &mut PpoAgent,
    task: &MetaTask,
    env: &EnvConfig,
    inner: InnerLoop,
    seed: u64,
) -> Result<Vec<Vec<f64>>, AgentError> {
    let theta = agent.flat_params()?;
    let support = agent.task_batch(&task.data, task.key, Split::Train, env, seed)?;
    let shared = Shared::new(agent);
    let iterates = shared.adapt(&theta, inner, &support)?;
    let agent = shared.agent.into_inner();
    agent.set_flat_params(iterates.last().expect("adapt returns θ at least"))?;
    Ok(iterates)
}

/// Greedy return (%) over the task's query window with the current weights.
pub fn query_return(agent: &mut PpoAgent, task: &MetaTask, env: &EnvConfig) -> Result<f64, AgentError> {
    Ok(greedy_episode(agent, &task.data, task.key, Split::Validation, env)?.return_pct)
}

/// One outer update over `tasks`.
pub fn meta_iteration(
    agent: &mut PpoAgent,
    tasks: &[MetaTask],
    setup: &MetaSetup,
    mode: MetaMode,
    iteration: usize,
) -> Result<MetaIteration, AgentError> {
    let (m, env) = (&setup.meta, &setup.env);
    let inner = InnerLoop::from_settings(m);
    let theta = agent.flat_params()?;
    let mut sum = vec![0.0; theta.len()];
    let (mut loss, mut pre, mut post) = (0.0, 0.0, 0.0);
    for (i, task) in tasks.iter().enumerate() {
        let seed = setup.seed ^ ((iteration as u64) << 20) ^ ((i as u64) << 8);
        agent.set_flat_params(&theta)?;
        pre += query_return(agent, task, env)?;
        let support = agent.task_batch(&task.data, task.key, Split::Train, env, seed)?;
        let shared = Shared::new(&mut *agent);
        let iterates = shared.adapt(&theta, inner, &support)?;
        let adapted = iterates.last().expect("adapt returns θ at least").clone();
        let query = {
            let mut a = shared.agent.borrow_mut();
            a.set_flat_params(&adapted)?;
            post += query_return(&mut a, task, env)?;
            let q = a.task_batch(&task.data, task.key, Split::Validation, env, seed ^ 1)?;
            loss += a.batch_gradient(&q.batch, q.advantages.clone())?.1;
            q
        };
        let g = meta_gradient(
            mode,
            &iterates,
            inner.lr,
            &mut |t| shared.gradient(t, &support),
            &mut |t| shared.gradient(t, &query),
        );
        if let Some(e) = shared.error.take() {
            return Err(e);
        }
        for (s, x) in sum.iter_mut().zip(&g) {
            *s += x;
        }
    }
    let n = tasks.len().max(1) as f64;
    let g: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let grad_norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let step = match mode {
        // θ − ε (θ − mean θ'): part of the way to the adapted weights.
        MetaMode::Reptile => m.reptile_step,
        _ => {
            let max = setup.max_grad_norm;
            let scale = if max > 0.0 && grad_norm > max {
                max / grad_norm
            } else {
                1.0
            };
            m.outer_lr * scale
        }
    };
    let next: Vec<f64> = theta.iter().zip(&g).map(|(t, g)| t - step * g).collect();
    agent.set_flat_params(&next)?;
    Ok(MetaIteration {
        iteration,
        meta_loss: loss / n,
        pre_return_pct: pre / n,
        post_return_pct: post / n,
        grad_norm,
    })
}

/// Held-out evaluation of one task: the query return with no adaptation,
/// after `inner.steps` from the meta-trained weights, and after the same
/// steps from a fresh initialisation.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOutResult {
    /// The task's name.
    pub task: String,
    /// Greedy query return (%) of the meta-trained weights as they are.
    pub no_adaptation_pct: f64,
    /// Greedy query return (%) after adapting the meta-trained weights.
    pub meta_adapted_pct: f64,
    /// Greedy query return (%) after adapting the fresh initialisation.
    pub scratch_adapted_pct: f64,
}

/// Evaluates a held-out task (see [`HeldOutResult`]) with `meta` the
/// meta-trained agent and `scratch` a fresh one; both get their weights
/// back afterwards. `seed` fixes the support rollouts.
pub fn evaluate_held_out(
    meta: &mut PpoAgent,
    scratch: &mut PpoAgent,
    task: &MetaTask,
    setup: &MetaSetup,
    seed: u64,
) -> Result<HeldOutResult, AgentError> {
    let (inner, env) = (InnerLoop::from_settings(&setup.meta), &setup.env);
    let theta = meta.flat_params()?;
    let no_adaptation_pct = query_return(meta, task, env)?;
    adapt_to_task(meta, task, env, inner, seed)?;
    let meta_adapted_pct = query_return(meta, task, env)?;
    meta.set_flat_params(&theta)?;
    let fresh = scratch.flat_params()?;
    adapt_to_task(scratch, task, env, inner, seed)?;
    let scratch_adapted_pct = query_return(scratch, task, env)?;
    scratch.set_flat_params(&fresh)?;
    Ok(HeldOutResult {
        task: task.name.clone(),
        no_adaptation_pct,
        meta_adapted_pct,
        scratch_adapted_pct,
    })
}
