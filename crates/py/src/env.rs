//! The trading environment from Python: one environment (Gymnasium's
//! semantics, wrapped by `tradelab.TradingEnv`) and many stepped in one
//! call into preallocated numpy arrays (`tradelab.VecEnv`).

use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadwriteArray1, PyReadwriteArray2};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tradelab_core::Action;
use tradelab_env::{ActionSpace, EnvAction, EnvConfig, MarketData, Split, TradingEnv, VecEnv};

use crate::bars::PyBars;
use crate::settings::PySettings;
use crate::to_py_err;

fn parse_split(split: &str) -> PyResult<Split> {
    Split::parse(split).ok_or_else(|| to_py_err(format!("unknown split `{split}`; use train, validation or test")))
}

fn action_at(index: i64) -> PyResult<Action> {
    usize::try_from(index).ok().and_then(Action::from_index).ok_or_else(|| {
        to_py_err(format!(
            "action {index} is not one of the five actions 0..4 (BUY_LONG, SELL_SHORT, CLOSE_LONG, CLOSE_SHORT, HOLD)"
        ))
    })
}

fn action_space_name(a: ActionSpace) -> &'static str {
    match a {
        ActionSpace::Trade => "trade",
        ActionSpace::Target => "target",
        ActionSpace::Exposure => "exposure",
    }
}

/// `bars` prepared as the environment reads them under `settings`.
fn market_data(bars: &PyBars, settings: &PySettings) -> PyResult<Arc<MarketData>> {
    settings
        .inner
        .market_data(bars.series.clone())
        .map(Arc::new)
        .map_err(to_py_err)
}

/// One environment over one split of one instrument's bars.
#[pyclass(module = "tradelab._native", name = "Env")]
pub struct PyEnv {
    env: TradingEnv,
    obs_len: usize,
    /// Set until the first reset and after an episode ends: stepping then
    /// would run past the episode's last bar.
    needs_reset: bool,
}

impl PyEnv {
    fn observation_array<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        let obs = self.env.observation();
        let array = PyArray1::<f32>::zeros(py, self.obs_len, false);
        // SAFETY: the array was created just above and nothing else holds
        // a reference to its buffer yet.
        let out = unsafe { array.as_slice_mut() }.expect("a new array is contiguous");
        obs.write_to(out);
        array
    }
}

#[pymethods]
impl PyEnv {
    #[new]
    #[pyo3(signature = (bars, settings, split="train", seed=0))]
    fn new(bars: &PyBars, settings: &PySettings, split: &str, seed: u64) -> PyResult<Self> {
        let split = parse_split(split)?;
        let data = market_data(bars, settings)?;
        let obs_len = data.observation_len();
        let env = TradingEnv::new(data, split, &settings.inner.env_config(), seed).map_err(to_py_err)?;
        Ok(PyEnv {
            env,
            obs_len,
            needs_reset: true,
        })
    }

    /// Length of the flat observation: window x features, then the three
    /// account values.
    #[getter]
    fn observation_size(&self) -> usize {
        self.obs_len
    }

    /// Bars in the observation window.
    #[getter]
    fn window(&self) -> usize {
        self.env.data().window_len()
    }

    /// The observation's feature columns, in order.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.env.data().feature_names.clone()
    }

    /// How actions are read (`env.actions`): `trade`, `target` or `exposure`.
    #[getter]
    fn action_space(&self) -> &'static str {
        action_space_name(self.env_config().env.actions)
    }

    /// Starts an episode; `seed` restarts the stream episode starts are
    /// drawn from. Returns the first observation.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(&mut self, py: Python<'py>, seed: Option<u64>) -> Bound<'py, PyArray1<f32>> {
        if let Some(seed) = seed {
            self.env.reseed(seed);
        }
        self.env.reset();
        self.needs_reset = false;
        self.observation_array(py)
    }

    /// Acts (action index 0..4, quantity in (0, 1]) at the current close
    /// and advances one bar: (observation, reward, terminated, truncated,
    /// info).
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: i64,
        quantity: f64,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, f64, bool, bool, Bound<'py, PyDict>)> {
        if self.needs_reset {
            return Err(to_py_err(
                "the episode has not started or has ended: call reset() before step()",
            ));
        }
        let action = action_at(action)?;
        if quantity.is_nan() {
            return Err(to_py_err("quantity is NaN; pass a number in (0, 1]"));
        }
        let r = self.env.step(EnvAction::new(action, quantity));
        self.needs_reset = r.terminated || r.truncated;
        // Interned keys: a step builds no key strings.
        let info = PyDict::new(py);
        info.set_item(intern!(py, "equity"), r.info.equity)?;
        info.set_item(intern!(py, "position"), r.info.position)?;
        info.set_item(intern!(py, "fees"), r.info.fees)?;
        info.set_item(intern!(py, "invalid_action"), r.info.invalid_action)?;
        info.set_item(intern!(py, "risk_intervened"), r.info.risk_intervened)?;
        info.set_item(intern!(py, "bar"), r.info.bar)?;
        info.set_item(intern!(py, "timestamp"), self.env.data().series.ts[r.info.bar])?;
        Ok((self.observation_array(py), r.reward, r.terminated, r.truncated, info))
    }

    /// Which of the five actions are valid now (by index).
    fn action_mask<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        PyArray1::from_slice(py, &self.env.action_mask())
    }

    /// The current observation.
    fn observation<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.observation_array(py)
    }

    /// The account now: equity, cash, position (units), the bar index and
    /// its timestamp.
    fn account<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let a = self.env.broker().account();
        let d = PyDict::new(py);
        d.set_item("equity", a.equity())?;
        d.set_item("cash", a.cash())?;
        d.set_item("position", a.position(0).qty)?;
        d.set_item("bar", self.env.bar_index())?;
        d.set_item("timestamp", self.env.data().series.ts[self.env.bar_index()])?;
        Ok(d)
    }
}

impl PyEnv {
    fn env_config(&self) -> &EnvConfig {
        self.env.config()
    }
}

/// Many environments stepped in one call: environment `i` trades
/// `bars[i % len(bars)]`, seeded `seed + i`; ended episodes reset
/// themselves, and their last observation is written to `final_obs`.
#[pyclass(module = "tradelab._native", name = "VecEnvCore")]
pub struct PyVecEnv {
    venv: VecEnv,
    data: Vec<Arc<MarketData>>,
    cfg: EnvConfig,
    split: Split,
    n: usize,
    obs_len: usize,
    actions: Vec<EnvAction>,
}

/// Checks an output array's shape before anything is written.
fn check_len(name: &str, got: usize, want: usize) -> PyResult<()> {
    if got != want {
        return Err(to_py_err(format!("`{name}` has {got} values; expected {want}")));
    }
    Ok(())
}

impl PyVecEnv {
    fn write_all(&self, obs: &mut [f32], masks: &mut [bool]) {
        for i in 0..self.n {
            self.venv
                .observation(i)
                .write_to(&mut obs[i * self.obs_len..(i + 1) * self.obs_len]);
            masks[i * 5..(i + 1) * 5].copy_from_slice(&self.venv.masks[i]);
        }
    }
}

#[pymethods]
impl PyVecEnv {
    #[new]
    #[pyo3(signature = (bars, settings, n, split="train", seed=0))]
    fn new(bars: Vec<PyRef<'_, PyBars>>, settings: &PySettings, n: usize, split: &str, seed: u64) -> PyResult<Self> {
        if bars.is_empty() {
            return Err(to_py_err("no bars: pass at least one instrument's bars"));
        }
        if n == 0 {
            return Err(to_py_err("n must be at least 1"));
        }
        let split = parse_split(split)?;
        let data = bars
            .iter()
            .map(|b| market_data(b, settings))
            .collect::<PyResult<Vec<_>>>()?;
        let obs_len = data[0].observation_len();
        if let Some(d) = data.iter().find(|d| d.observation_len() != obs_len) {
            return Err(to_py_err(format!(
                "{} gives observations of {} values but {} gives {obs_len}; every instrument needs the same features",
                d.series.instrument,
                d.observation_len(),
                data[0].series.instrument
            )));
        }
        let cfg = settings.inner.env_config();
        let venv = VecEnv::new(&data, n, split, &cfg, seed).map_err(to_py_err)?;
        Ok(PyVecEnv {
            venv,
            data,
            cfg,
            split,
            n,
            obs_len,
            actions: vec![EnvAction::new(Action::Hold, 0.0); n],
        })
    }

    /// Number of environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.n
    }

    /// Length of one flat observation.
    #[getter]
    fn observation_size(&self) -> usize {
        self.obs_len
    }

    /// How actions are read (`env.actions`).
    #[getter]
    fn action_space(&self) -> &'static str {
        action_space_name(self.cfg.env.actions)
    }

    /// The Rust-only baseline for the Python figures: `steps` lockstep
    /// steps with random valid actions and quantities drawn in Rust, each
    /// observation copied out as `step` copies it to numpy, without
    /// crossing into Python. Returns the seconds taken (the GIL released).
    fn run_random(&mut self, py: Python<'_>, steps: usize, seed: u64) -> f64 {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (n, len) = (self.n, self.obs_len);
        let this = &mut *self;
        py.detach(|| {
            let mut obs = vec![0.0f32; n * len];
            let start = std::time::Instant::now();
            for _ in 0..steps {
                for (i, slot) in this.actions.iter_mut().enumerate() {
                    let mask = this.venv.masks[i];
                    let valid = mask.iter().filter(|v| **v).count();
                    let pick = rng.random_range(0..valid);
                    let index = mask
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| **v)
                        .nth(pick)
                        .map_or(4, |(k, _)| k);
                    let action = Action::from_index(index).unwrap_or(Action::Hold);
                    *slot = EnvAction::new(action, rng.random_range(0.05..=1.0));
                }
                this.venv.step(&this.actions);
                for i in 0..n {
                    this.venv.observation(i).write_to(&mut obs[i * len..(i + 1) * len]);
                }
            }
            std::hint::black_box(&obs);
            start.elapsed().as_secs_f64()
        })
    }

    /// Restarts every environment (seeded `seed + i`) and writes the first
    /// observations and masks.
    fn reset(
        &mut self,
        seed: u64,
        mut obs: PyReadwriteArray2<'_, f32>,
        mut masks: PyReadwriteArray2<'_, bool>,
    ) -> PyResult<()> {
        let obs = obs.as_slice_mut().map_err(to_py_err)?;
        let masks = masks.as_slice_mut().map_err(to_py_err)?;
        check_len("obs", obs.len(), self.n * self.obs_len)?;
        check_len("masks", masks.len(), self.n * 5)?;
        self.venv = VecEnv::new(&self.data, self.n, self.split, &self.cfg, seed).map_err(to_py_err)?;
        self.write_all(obs, masks);
        Ok(())
    }

    /// Steps every environment with its action and quantity, writing the
    /// next observations, rewards, flags and masks in place (the GIL is
    /// released meanwhile). `ended[i]` is set where an episode ended; its
    /// last observation is then in `final_obs[i]` and `obs[i]` is the next
    /// episode's first.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        py: Python<'_>,
        actions: PyReadonlyArray1<'_, i64>,
        quantities: PyReadonlyArray1<'_, f64>,
        mut obs: PyReadwriteArray2<'_, f32>,
        mut rewards: PyReadwriteArray1<'_, f64>,
        mut terminated: PyReadwriteArray1<'_, bool>,
        mut truncated: PyReadwriteArray1<'_, bool>,
        mut masks: PyReadwriteArray2<'_, bool>,
        mut final_obs: PyReadwriteArray2<'_, f32>,
    ) -> PyResult<()> {
        let n = self.n;
        let actions = actions.as_slice().map_err(to_py_err)?;
        let quantities = quantities.as_slice().map_err(to_py_err)?;
        check_len("actions", actions.len(), n)?;
        check_len("quantities", quantities.len(), n)?;
        for (slot, (&a, &q)) in self.actions.iter_mut().zip(actions.iter().zip(quantities)) {
            if q.is_nan() {
                return Err(to_py_err("a quantity is NaN; pass numbers in (0, 1]"));
            }
            *slot = EnvAction::new(action_at(a)?, q);
        }
        let obs = obs.as_slice_mut().map_err(to_py_err)?;
        let rewards = rewards.as_slice_mut().map_err(to_py_err)?;
        let terminated = terminated.as_slice_mut().map_err(to_py_err)?;
        let truncated = truncated.as_slice_mut().map_err(to_py_err)?;
        let masks = masks.as_slice_mut().map_err(to_py_err)?;
        let final_obs = final_obs.as_slice_mut().map_err(to_py_err)?;
        check_len("obs", obs.len(), n * self.obs_len)?;
        check_len("rewards", rewards.len(), n)?;
        check_len("terminated", terminated.len(), n)?;
        check_len("truncated", truncated.len(), n)?;
        check_len("masks", masks.len(), n * 5)?;
        check_len("final_obs", final_obs.len(), n * self.obs_len)?;
        let this = &mut *self;
        py.detach(|| {
            this.venv.step(&this.actions);
            let len = this.obs_len;
            for i in 0..n {
                rewards[i] = this.venv.rewards[i];
                terminated[i] = this.venv.terminated[i];
                truncated[i] = this.venv.truncated[i];
                if let Some(f) = this.venv.finals[i] {
                    let out = &mut final_obs[i * len..(i + 1) * len];
                    let window = this.data[f.market].window(f.bar);
                    out[..window.len()].copy_from_slice(window);
                    out[window.len()..].copy_from_slice(&f.account);
                }
            }
            this.write_all(obs, masks);
        });
        Ok(())
    }
}
