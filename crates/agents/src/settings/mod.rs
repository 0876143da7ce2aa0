//! The sections the agents read: `ppo:`, `hierarchical_reasoning_model:`
//! (in `hrm.rs`), `moe:` and `meta:`. Closed choices (the meta-learning
//! mode, the specialists' encoder) are enums, refused by name when unknown.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tradelab_core::settings::{default_section, deserialize_choice, Validator};
use tradelab_nn::policy::EncoderKind;

mod hrm;
pub use hrm::{hrm_preset, HrmSettings, WeightsDtype};

/// `ppo:`: proximal policy optimisation: network sizes, rollout shape,
/// update hyper-parameters and the training budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoSettings {
    /// Width of the encoder (LSTM hidden size, Transformer d_model, MLP
    /// width) and of the trunk.
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Transformer attention heads (must divide `hidden`).
    pub heads: usize,
    /// Environments stepped in lockstep.
    pub envs: usize,
    /// Steps each environment takes per rollout.
    pub rollout_steps: usize,
    /// Passes over each rollout.
    pub epochs: usize,
    /// Minibatches per pass, split by environment (divides `envs`).
    pub minibatches: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Anneal the step size linearly to 0 over the budget.
    pub anneal_lr: bool,
    /// Discount factor.
    pub gamma: f64,
    /// GAE's lambda.
    pub gae_lambda: f64,
    /// Clipping range of the probability ratio.
    pub clip: f64,
    /// Weight of the value loss.
    pub value_coef: f64,
    /// Weight of the entropy bonus.
    pub entropy_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Stop an update's epochs once approx-KL exceeds this (0: never).
    pub target_kl: f64,
    /// Divide rewards by the running std of the discounted return.
    pub normalize_rewards: bool,
    /// Training budget in environment steps.
    pub total_steps: usize,
    /// Greedy validation every this many updates (0: only at the end).
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement (0: never).
    pub patience: usize,
    /// Also save `last/` every this many updates between evaluations (0:
    /// at evaluations and the end only). Absent from older models: 0.
    #[serde(default)]
    pub checkpoint_every: usize,
    // The three below read, when a model saved before they existed lacks
    // them, as the behaviour it was trained with: return selection, one
    // window, no clipping.
    /// What the validation chooses checkpoints by.
    #[serde(default = "Selection::before_sharpe")]
    pub selection: Selection,
    /// Consecutive stretches of each validation split scored separately
    /// (their Sharpe ratios are averaged) under `selection: sharpe`.
    #[serde(default = "one")]
    pub selection_windows: usize,
    /// Normalised rewards are clipped to ±this (0: not clipped).
    #[serde(default)]
    pub reward_clip: f64,
    /// Share of updates in which each market trains under the "unknown
    /// instrument" embedding instead of its own (embedding dropout), so
    /// the model can trade an instrument it never saw; 0: no unknown
    /// embedding, unseen instruments are refused.
    #[serde(default)]
    pub instrument_dropout: f64,
}

fn one() -> usize {
    1
}

/// What the validation chooses checkpoints by (`ppo.selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The annualised Sharpe ratio after costs, averaged over windows and
    /// markets; a flat policy scores 0 and loses ties to one that trades.
    Sharpe,
    /// The total return of one greedy pass (the rule before Sharpe: a flat
    /// policy's 0% beats every losing one).
    Return,
}

impl Selection {
    /// The rule models were chosen by before `ppo.selection` existed.
    fn before_sharpe() -> Self {
        Selection::Return
    }
}

impl Default for PpoSettings {
    /// The compiled-in `config/settings.yaml`'s `ppo:`.
    fn default() -> Self {
        default_section("ppo")
    }
}

impl PpoSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let p = self;
        for (key, val, hi) in [
            ("ppo.hidden", p.hidden, 4096),
            ("ppo.layers", p.layers, 64),
            ("ppo.heads", p.heads, 64),
            ("ppo.envs", p.envs, 4096),
            ("ppo.rollout_steps", p.rollout_steps, 100_000),
            ("ppo.epochs", p.epochs, 100),
            ("ppo.minibatches", p.minibatches, 4096),
            ("ppo.total_steps", p.total_steps, usize::MAX),
        ] {
            v.int_range(key, val, 1, hi);
        }
        v.int_range("ppo.checkpoint_every", p.checkpoint_every, 0, 1_000_000);
        v.check(
            p.hidden.is_multiple_of(p.heads),
            "ppo.heads",
            p.heads,
            "does not divide ppo.hidden",
            &format!("a divisor of hidden ({})", p.hidden),
        );
        v.check(
            p.envs.is_multiple_of(p.minibatches),
            "ppo.minibatches",
            p.minibatches,
            "does not divide ppo.envs (minibatches are split by environment)",
            &format!("a divisor of envs ({})", p.envs),
        );
        v.check(
            p.learning_rate.is_finite() && p.learning_rate > 0.0 && p.learning_rate < 1.0,
            "ppo.learning_rate",
            p.learning_rate,
            "is out of range",
            "a number in (0, 1), like 0.0003",
        );
        v.range("ppo.gamma", p.gamma, 0.0, 1.0);
        v.range("ppo.gae_lambda", p.gae_lambda, 0.0, 1.0);
        v.check(
            p.clip > 0.0 && p.clip < 1.0,
            "ppo.clip",
            p.clip,
            "is out of range",
            "a number in (0, 1), like 0.2",
        );
        v.range("ppo.value_coef", p.value_coef, 0.0, 100.0);
        v.range("ppo.entropy_coef", p.entropy_coef, 0.0, 10.0);
        v.check(
            p.max_grad_norm.is_finite() && p.max_grad_norm > 0.0,
            "ppo.max_grad_norm",
            p.max_grad_norm,
            "must be positive",
            "a number > 0, like 0.5",
        );
        v.range("ppo.target_kl", p.target_kl, 0.0, 10.0);
        v.int_range("ppo.selection_windows", p.selection_windows, 1, 1000);
        v.range("ppo.reward_clip", p.reward_clip, 0.0, 1e6);
        v.range("ppo.instrument_dropout", p.instrument_dropout, 0.0, 0.9);
    }
}

/// Which meta-gradient to take (`meta.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaMode {
    /// `maml`: the chain rule through every inner step.
    SecondOrder,
    /// `fomaml`: the query gradient at the adapted weights.
    FirstOrder,
    /// `reptile`: a step toward the adapted weights.
    Reptile,
}

impl MetaMode {
    /// The name settings and run folders use.
    pub fn name(self) -> &'static str {
        match self {
            MetaMode::SecondOrder => "maml",
            MetaMode::FirstOrder => "fomaml",
            MetaMode::Reptile => "reptile",
        }
    }

    /// The mode a name denotes.
    pub fn parse(name: &str) -> Option<MetaMode> {
        match name {
            "maml" => Some(MetaMode::SecondOrder),
            "fomaml" => Some(MetaMode::FirstOrder),
            "reptile" => Some(MetaMode::Reptile),
            _ => None,
        }
    }
}

impl std::fmt::Display for MetaMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for MetaMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for MetaMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_choice(
            d,
            MetaMode::parse,
            "is not a meta-learning mode",
            "maml, fomaml or reptile",
        )
    }
}

/// `meta:`: meta-learning (MAML, first-order MAML, Reptile) over tasks of
/// (instrument, timeframe) markets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaSettings {
    /// Which meta-gradient the outer loop takes.
    pub mode: MetaMode,
    /// Meta-iterations (outer updates).
    pub iterations: usize,
    /// Tasks per outer update.
    pub tasks_per_batch: usize,
    /// Inner-loop gradient steps.
    pub inner_steps: usize,
    /// Inner-loop step size.
    pub inner_lr: f64,
    /// Outer step size for the MAML modes (on the clipped meta-gradient).
    pub outer_lr: f64,
    /// Reptile's interpolation toward the adapted weights (0..1].
    pub reptile_step: f64,
    /// Bars in a task's support window.
    pub support_bars: usize,
    /// Bars in a task's query window.
    pub query_bars: usize,
    /// Bars between them; 0 means the observation window.
    pub embargo: usize,
    /// Instruments kept for meta-test; empty holds out the last one by name.
    pub holdout: Vec<String>,
}

impl Default for MetaSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree;
    /// written out because models saved before the section existed are
    /// read with these).
    fn default() -> Self {
        MetaSettings {
            mode: MetaMode::SecondOrder,
            iterations: 30,
            tasks_per_batch: 4,
            inner_steps: 2,
            inner_lr: 0.01,
            outer_lr: 0.003,
            reptile_step: 0.5,
            support_bars: 500,
            query_bars: 250,
            embargo: 0,
            holdout: Vec::new(),
        }
    }
}

impl MetaSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let me = self;
        v.int_range("meta.iterations", me.iterations, 1, 1_000_000);
        v.int_range("meta.tasks_per_batch", me.tasks_per_batch, 1, 1024);
        v.int_range("meta.inner_steps", me.inner_steps, 1, 100);
        v.range("meta.inner_lr", me.inner_lr, 1e-9, 10.0);
        v.range("meta.outer_lr", me.outer_lr, 1e-9, 10.0);
        v.range("meta.reptile_step", me.reptile_step, 1e-6, 1.0);
        v.int_range("meta.support_bars", me.support_bars, 10, 10_000_000);
        v.int_range("meta.query_bars", me.query_bars, 10, 10_000_000);
        v.int_range("meta.embargo", me.embargo, 0, 10_000_000);
    }
}

/// `moe:`: the mixture of experts: four specialist policies and a gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoeSettings {
    /// The specialists' encoder.
    #[serde(serialize_with = "encoder_name", deserialize_with = "encoder_choice")]
    pub encoder: EncoderKind,
    /// Hidden units of the gating network.
    pub gate_hidden: usize,
    /// Weight of each specialist's own clipped objective and value loss on
    /// the samples of its regimes (regime-weighted data), beside the
    /// mixture's.
    pub specialist_coef: f64,
    /// Weight of the cross-entropy pulling the gate toward the specialist
    /// weights the regime probabilities imply; 0 leaves the gate to the
    /// policy gradient alone.
    pub gate_prior_coef: f64,
}

fn encoder_name<S: Serializer>(e: &EncoderKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.name())
}

fn encoder_choice<'de, D: Deserializer<'de>>(d: D) -> Result<EncoderKind, D::Error> {
    deserialize_choice(d, EncoderKind::parse, "is not an encoder", "lstm, transformer or mlp")
}

impl Default for MoeSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree;
    /// written out because models saved before the section existed are
    /// read with these).
    fn default() -> Self {
        MoeSettings {
            encoder: EncoderKind::Lstm,
            gate_hidden: 32,
            specialist_coef: 0.5,
            gate_prior_coef: 0.1,
        }
    }
}

impl MoeSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let moe = self;
        v.int_range("moe.gate_hidden", moe.gate_hidden, 1, 4096);
        v.range("moe.specialist_coef", moe.specialist_coef, 0.0, 10.0);
        v.range("moe.gate_prior_coef", moe.gate_prior_coef, 0.0, 10.0);
    }
}

/// `logreg:`: the supervised baseline (`tradelab train --agent logreg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogRegSettings {
    /// Window rows the regression reads, newest last.
    pub lags: usize,
    /// Inverse regularisation strengths tried (scikit-learn's `C`); the
    /// one with the best validation score is kept.
    pub c_grid: Vec<f64>,
    /// No trade while the predicted probability of a rise is within this
    /// distance of 0.5.
    pub band: f64,
}

impl Default for LogRegSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        LogRegSettings {
            lags: 1,
            c_grid: vec![0.001, 0.01, 0.1, 1.0],
            band: 0.02,
        }
    }
}

impl LogRegSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        v.int_range("logreg.lags", self.lags, 1, 1024);
        v.check(
            !self.c_grid.is_empty() && self.c_grid.iter().all(|c| *c > 0.0 && c.is_finite()),
            "logreg.c_grid",
            format!("{:?}", self.c_grid),
            "must list at least one strength",
            "positive numbers, e.g. [0.01, 0.1, 1.0]",
        );
        v.range("logreg.band", self.band, 0.0, 0.5);
    }
}

/// `gbt:`: the boosted-trees baseline (`tradelab train --agent gbt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbtSettings {
    /// Window rows the trees read, newest last.
    pub lags: usize,
    /// Ensemble sizes tried (prefixes of one boosting run); the one with
    /// the best validation score is kept.
    pub trees: Vec<usize>,
    /// Levels of splits per tree.
    pub depth: usize,
    /// Shrinkage of each tree.
    pub learning_rate: f64,
    /// Quantile bins per input.
    pub bins: usize,
    /// Fewest rows in a leaf.
    pub min_leaf: usize,
    /// L2 penalty on leaf values.
    pub l2: f64,
    /// No trade while the predicted probability of a rise is within this
    /// distance of 0.5.
    pub band: f64,
}

impl Default for GbtSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree).
    fn default() -> Self {
        GbtSettings {
            lags: 1,
            trees: vec![25, 100, 300],
            depth: 3,
            learning_rate: 0.1,
            bins: 32,
            min_leaf: 20,
            l2: 1.0,
            band: 0.02,
        }
    }
}

impl GbtSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        v.int_range("gbt.lags", self.lags, 1, 1024);
        v.check(
            !self.trees.is_empty() && self.trees.iter().all(|t| (1..=10_000).contains(t)),
            "gbt.trees",
            format!("{:?}", self.trees),
            "must list at least one ensemble size",
            "sizes from 1 to 10000, e.g. [25, 100, 300]",
        );
        v.int_range("gbt.depth", self.depth, 1, 12);
        v.range("gbt.learning_rate", self.learning_rate, 1e-4, 1.0);
        v.int_range("gbt.bins", self.bins, 2, 256);
        v.int_range("gbt.min_leaf", self.min_leaf, 1, 1_000_000);
        v.range("gbt.l2", self.l2, 0.0, 1e6);
        v.range("gbt.band", self.band, 0.0, 0.5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::settings::{first_error, refused_key};

    #[test]
    fn written_out_defaults_match_the_settings_file() {
        assert_eq!(MetaSettings::default(), default_section::<MetaSettings>("meta"));
        assert_eq!(MoeSettings::default(), default_section::<MoeSettings>("moe"));
        assert_eq!(LogRegSettings::default(), default_section::<LogRegSettings>("logreg"));
        assert_eq!(GbtSettings::default(), default_section::<GbtSettings>("gbt"));
    }

    #[test]
    fn closed_choices_round_trip_by_name_and_refuse_unknown_names() {
        for mode in [MetaMode::SecondOrder, MetaMode::FirstOrder, MetaMode::Reptile] {
            let json = serde_json::to_value(mode).unwrap();
            assert_eq!(json, serde_json::json!(mode.name()));
            assert_eq!(serde_json::from_value::<MetaMode>(json).unwrap(), mode);
        }
        let e = serde_json::from_value::<MetaMode>(serde_json::json!("sgd"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not a meta-learning mode") && e.contains("reptile"),
            "{e}"
        );
        for (selection, name) in [(Selection::Sharpe, "sharpe"), (Selection::Return, "return")] {
            assert_eq!(serde_json::to_value(selection).unwrap(), serde_json::json!(name));
            assert_eq!(
                serde_json::from_value::<Selection>(serde_json::json!(name)).unwrap(),
                selection
            );
        }
        assert!(serde_json::from_value::<Selection>(serde_json::json!("sortino")).is_err());
        assert_eq!(
            PpoSettings::default().selection,
            Selection::Sharpe,
            "the file's default"
        );
        let moe = serde_json::to_value(MoeSettings::default()).unwrap();
        assert_eq!(moe["encoder"], "lstm");
        let mut bad = moe;
        bad["encoder"] = serde_json::json!("gru");
        let e = serde_json::from_value::<MoeSettings>(bad).unwrap_err().to_string();
        assert!(e.contains("is not an encoder"), "{e}");
    }

    #[test]
    fn the_files_sections_pass_their_own_checks() {
        assert_eq!(refused_key(|_| {}, PpoSettings::validate), None);
        assert_eq!(refused_key(|_| {}, MetaSettings::validate), None);
        assert_eq!(refused_key(|_| {}, MoeSettings::validate), None);
    }

    #[test]
    fn every_ppo_bound_is_refused_with_its_key() {
        type Edit = fn(&mut PpoSettings);
        let cases: [(Edit, &str); 15] = [
            (|p| p.hidden = 0, "ppo.hidden"),
            (|p| p.epochs = 101, "ppo.epochs"),
            (|p| p.total_steps = 0, "ppo.total_steps"),
            (|p| p.heads = 3, "ppo.heads"),
            (|p| p.minibatches = p.envs + 1, "ppo.minibatches"),
            (|p| p.learning_rate = 1.0, "ppo.learning_rate"),
            (|p| p.gamma = 1.5, "ppo.gamma"),
            (|p| p.gae_lambda = -0.1, "ppo.gae_lambda"),
            (|p| p.clip = 1.0, "ppo.clip"),
            (|p| p.entropy_coef = 11.0, "ppo.entropy_coef"),
            (|p| p.max_grad_norm = 0.0, "ppo.max_grad_norm"),
            (|p| p.target_kl = f64::NAN, "ppo.target_kl"),
            (|p| p.selection_windows = 0, "ppo.selection_windows"),
            (|p| p.reward_clip = -1.0, "ppo.reward_clip"),
            (|p| p.instrument_dropout = 1.0, "ppo.instrument_dropout"),
        ];
        for (edit, key) in cases {
            assert_eq!(refused_key(edit, PpoSettings::validate).as_deref(), Some(key));
        }
        let p = PpoSettings {
            hidden: 30,
            heads: 4,
            ..Default::default()
        };
        let e = first_error(|v| p.validate(v)).unwrap();
        assert!(e.contains("a divisor of hidden (30)"), "{e}");
    }

    #[test]
    fn every_meta_and_mixture_bound_is_refused_with_its_key() {
        type MetaEdit = fn(&mut MetaSettings);
        let meta: [(MetaEdit, &str); 6] = [
            (|m| m.iterations = 0, "meta.iterations"),
            (|m| m.tasks_per_batch = 2000, "meta.tasks_per_batch"),
            (|m| m.inner_steps = 0, "meta.inner_steps"),
            (|m| m.inner_lr = 0.0, "meta.inner_lr"),
            (|m| m.reptile_step = 2.0, "meta.reptile_step"),
            (|m| m.support_bars = 5, "meta.support_bars"),
        ];
        for (edit, key) in meta {
            assert_eq!(refused_key(edit, MetaSettings::validate).as_deref(), Some(key));
        }
        type MoeEdit = fn(&mut MoeSettings);
        let moe: [(MoeEdit, &str); 3] = [
            (|m| m.gate_hidden = 0, "moe.gate_hidden"),
            (|m| m.specialist_coef = -1.0, "moe.specialist_coef"),
            (|m| m.gate_prior_coef = 11.0, "moe.gate_prior_coef"),
        ];
        for (edit, key) in moe {
            assert_eq!(refused_key(edit, MoeSettings::validate).as_deref(), Some(key));
        }
        assert_eq!(MetaMode::FirstOrder.to_string(), "fomaml");
    }
}
