//! Trained checkpoints from Python: opened from a folder or the registry,
//! deciding for an observation exactly as `evaluate` does (greedy by
//! default).

use std::path::PathBuf;
use std::sync::Mutex;

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tradelab_agents::agent::{AgentInput, MarketKey};
use tradelab_agents::load::load_agent;
use tradelab_agents::metadata::Vocabulary;
use tradelab_agents::Agent;
use tradelab_app::registry::checkpoint_folder;
use tradelab_app::settings::model_settings;
use tradelab_app::Settings;
use tradelab_env::{account_features, window_from_bars, ActionSpace, ACCOUNT_FEATURES};

use crate::bars::PyBars;

use crate::settings::PySettings;
use crate::{anyhow_err, to_py_err};

/// A trained agent of any kind (PPO, HRM, mixture, supervised baselines).
#[pyclass(module = "tradelab._native", name = "Model")]
pub struct PyModel {
    agent: Mutex<Box<dyn Agent + Send>>,
    folder: PathBuf,
    /// The settings it runs under: its own observation settings, the
    /// caller's costs and risk.
    settings: Settings,
    window: usize,
    features: usize,
}

impl PyModel {
    /// The market asked for, each part defaulting to the first the model knows.
    fn market<'a>(
        vocabulary: &'a Vocabulary,
        instrument: Option<&'a str>,
        timeframe: Option<&'a str>,
    ) -> PyResult<(&'a str, &'a str)> {
        let instrument = instrument.or(vocabulary.instruments.first().map(String::as_str));
        let timeframe = timeframe.or(vocabulary.timeframes.first().map(String::as_str));
        match (instrument, timeframe) {
            (Some(i), Some(t)) => Ok((i, t)),
            _ => Err(to_py_err("the model's metadata names no instrument or timeframe")),
        }
    }

    fn key(&self, instrument: Option<&str>, timeframe: Option<&str>) -> PyResult<MarketKey> {
        let agent = self
            .agent
            .lock()
            .map_err(|_| to_py_err("the model failed in another thread"))?;
        let vocabulary = &agent.provenance().vocabulary;
        let (i, t) = Self::market(vocabulary, instrument, timeframe)?;
        vocabulary.key(i, t).map_err(to_py_err)
    }
}

#[pymethods]
impl PyModel {
    /// Opens a checkpoint folder, or a registered model (`NAME`,
    /// `NAME@VERSION`, `NAME@production`) from the store `settings` names.
    #[new]
    fn new(py: Python<'_>, source: PathBuf, settings: &PySettings) -> PyResult<Self> {
        let folder = checkpoint_folder(&settings.inner, &source).map_err(anyhow_err)?;
        let agent = py
            .detach(|| load_agent(&folder))
            .map_err(|e| to_py_err(format!("opening {}: {e}", folder.display())))?;
        let saved = agent.provenance().settings.clone();
        let model_settings = model_settings(&saved, &settings.inner).map_err(anyhow_err)?;
        let features = agent.provenance().features.len();
        Ok(PyModel {
            window: model_settings.env.window,
            features,
            settings: model_settings,
            agent: Mutex::new(agent),
            folder,
        })
    }

    /// The agent's type (`ppo-lstm`, `hrm`, ...).
    #[getter]
    fn kind(&self) -> PyResult<&'static str> {
        Ok(self
            .agent
            .lock()
            .map_err(|_| to_py_err("the model failed in another thread"))?
            .kind())
    }

    /// The checkpoint folder it was read from.
    #[getter]
    fn folder(&self) -> PathBuf {
        self.folder.clone()
    }

    /// Length of the observation it reads: window x features plus the
    /// account values.
    #[getter]
    fn observation_size(&self) -> usize {
        self.window * self.features + ACCOUNT_FEATURES
    }

    /// The settings it runs under (its features, window and environment;
    /// the caller's costs, risk and data folders): build a `TradingEnv`
    /// with them to give it the observations it was trained on.
    #[getter]
    fn settings(&self) -> PySettings {
        PySettings {
            inner: self.settings.clone(),
        }
    }

    /// The metadata.json provenance (vocabulary, features, settings, data
    /// hashes, validation) as JSON text.
    fn provenance_json(&self) -> PyResult<String> {
        let agent = self
            .agent
            .lock()
            .map_err(|_| to_py_err("the model failed in another thread"))?;
        serde_json::to_string(agent.provenance()).map_err(to_py_err)
    }

    /// Decides from raw bars (oldest first, ending with the latest) and an
    /// account, as the decision endpoint's `bars` form: the model's
    /// features, normalised with the statistics its checkpoint recorded
    /// for the market, and the account values the environment computes.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (bars, cash, position, avg_price, initial_equity, greedy=true, instrument=None, timeframe=None))]
    fn decide<'py>(
        &self,
        py: Python<'py>,
        bars: &PyBars,
        cash: f64,
        position: f64,
        avg_price: f64,
        initial_equity: f64,
        greedy: bool,
        instrument: Option<&str>,
        timeframe: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let series = &bars.series;
        let Some(price) = series.close.last().copied() else {
            return Err(to_py_err(
                "no bars: pass at least the window plus the indicators' warm-up",
            ));
        };
        for (name, v) in [("cash", cash), ("position", position), ("avg_price", avg_price)] {
            if !v.is_finite() {
                return Err(to_py_err(format!("{name} is not a finite number")));
            }
        }
        let equity = cash + position * price;
        if !(initial_equity.is_finite() && initial_equity > 0.0) || equity <= 0.0 {
            return Err(to_py_err(format!(
                "the account's equity ({equity:.2}) and initial_equity ({initial_equity}) must be positive"
            )));
        }
        let window = {
            let agent = self
                .agent
                .lock()
                .map_err(|_| to_py_err("the model failed in another thread"))?;
            let p = agent.provenance();
            let (instrument, timeframe) = Self::market(&p.vocabulary, instrument, timeframe)?;
            let norm = p.normalisation_of(instrument, timeframe).ok_or_else(|| {
                to_py_err(format!(
                    "this model records no normalisation for {instrument} {timeframe} (trained before checkpoints recorded it, or never on this market): use act() with the environment's observation instead"
                ))
            })?;
            window_from_bars(
                series,
                &self.settings.features,
                &p.features,
                &norm.mean,
                &norm.std,
                self.window,
            )
            .map_err(to_py_err)?
        };
        let account = account_features(equity, initial_equity, position * price, position * (price - avg_price));
        let mut observation = window;
        observation.extend_from_slice(&account);
        let mask = self.settings.env.actions.mask(position);
        self.decide_on(py, &observation, mask, greedy, instrument, timeframe)
    }

    /// Decides for one flat observation (as `TradingEnv` gives it). The
    /// valid actions default to those of the position the observation's
    /// exposure implies; the market defaults to the first the model knows.
    #[pyo3(signature = (observation, mask=None, greedy=true, instrument=None, timeframe=None))]
    fn act<'py>(
        &self,
        py: Python<'py>,
        observation: PyReadonlyArray1<'_, f32>,
        mask: Option<PyReadonlyArray1<'_, bool>>,
        greedy: bool,
        instrument: Option<&str>,
        timeframe: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let obs = observation.as_slice().map_err(to_py_err)?;
        let expected = self.observation_size();
        if obs.len() != expected {
            return Err(to_py_err(format!(
                "the observation has {} values; this model reads {expected} ({} bars x {} features + {ACCOUNT_FEATURES} account values). Build the environment with model.settings",
                obs.len(),
                self.window,
                self.features
            )));
        }
        if let Some(i) = obs.iter().position(|v| !v.is_finite()) {
            return Err(to_py_err(format!("observation value {i} is not a finite number")));
        }
        let exposure = obs[obs.len() - ACCOUNT_FEATURES + 1];
        let actions = self.settings.env.actions;
        let mask = match mask {
            Some(m) => {
                let m = m.as_slice().map_err(to_py_err)?;
                let m: [bool; 5] = m
                    .try_into()
                    .map_err(|_| to_py_err(format!("the mask has {} values; pass five booleans", m.len())))?;
                if !m.iter().any(|v| *v) {
                    return Err(to_py_err("the mask allows no action; HOLD at least is always valid"));
                }
                m
            }
            None => actions.mask(f64::from(exposure)),
        };
        self.decide_on(py, obs, mask, greedy, instrument, timeframe)
    }
}

impl PyModel {
    /// The agent's decision for a checked flat observation and mask.
    fn decide_on<'py>(
        &self,
        py: Python<'py>,
        obs: &[f32],
        mask: [bool; 5],
        greedy: bool,
        instrument: Option<&str>,
        timeframe: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (window, account) = obs.split_at(obs.len() - ACCOUNT_FEATURES);
        let account: [f32; ACCOUNT_FEATURES] = account.try_into().map_err(to_py_err)?;
        let actions = self.settings.env.actions;
        let input = AgentInput {
            window,
            account,
            mask,
            market: self.key(instrument, timeframe)?,
        };
        let decision = py.detach(|| {
            let mut agent = self
                .agent
                .lock()
                .map_err(|_| "the model failed in another thread".to_string())?;
            agent.select_action(&input, greedy).map_err(|e| e.to_string())
        });
        let decision = decision.map_err(to_py_err)?;
        let d = PyDict::new(py);
        d.set_item("action", decision.action.as_str())?;
        d.set_item("action_index", decision.action.index())?;
        d.set_item("quantity", decision.quantity)?;
        d.set_item("probabilities", decision.probabilities.to_vec())?;
        d.set_item("value", decision.value)?;
        if actions == ActionSpace::Exposure {
            d.set_item("target_exposure", 2.0 * decision.quantity - 1.0)?;
        }
        Ok(d)
    }
}
