//! The `env:` section: the observation window, the chronological splits,
//! the reward and how invalid actions and episodes are handled.

use serde::{Deserialize, Serialize};
use tradelab_core::settings::{default_section, Validator};

/// `env:`: the RL trading environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    /// Bars of features in each observation window.
    pub window: usize,
    /// Leading share of each series that trains (and fits normalisation).
    pub train_fraction: f64,
    /// The share after it that validates; the rest is the test split.
    pub validation_fraction: f64,
    /// What a step's reward measures.
    pub reward: RewardKind,
    /// Multiplier applied to the reward (100 turns fractions into percent).
    pub reward_scale: f64,
    /// Adaptation rate of the differential Sharpe ratio's moving moments.
    pub dsr_eta: f64,
    /// Subtracted per unit of new drawdown (fraction below peak) each step.
    pub drawdown_penalty: f64,
    /// Subtracted per unit of gross exposure (position value / equity) each step.
    pub risk_penalty: f64,
    /// What happens to an action invalid for the current position.
    pub invalid_actions: InvalidActions,
    /// Subtracted for an invalid action under `penalize`.
    pub invalid_penalty: f64,
    /// Episode length in bars; 0 runs to the end of the split.
    pub episode_bars: usize,
    /// Start episodes at random points of the split instead of its beginning.
    pub random_start: bool,
    /// Terminate when equity falls to this fraction of the episode's start.
    pub ruin_fraction: f64,
    /// How the policy's five outputs are read; models saved before the
    /// choice existed read as `trade`.
    #[serde(default)]
    pub actions: ActionSpace,
    /// Under `actions: exposure`, the no-trade band: no order while the
    /// target is within this many risk budgets of the position held.
    #[serde(default = "default_exposure_band")]
    pub exposure_band: f64,
}

/// The band models saved before `env.exposure_band` existed read with
/// (they never used it: only `exposure` models trade by it).
fn default_exposure_band() -> f64 {
    0.1
}

/// How the policy's five outputs are read (`env.actions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionSpace {
    /// The seed's actions as orders: flat may buy or sell short, a position
    /// may only be closed, HOLD keeps whatever is held. One HOLD serves
    /// both "stay flat" and "stay in", so a greedy policy that leans to
    /// HOLD either never enters or never leaves (measured: docs/notes).
    #[default]
    Trade,
    /// Targets: BUY_LONG means "be long", SELL_SHORT "be short" and HOLD
    /// "be flat", valid in every state (the two closes are never chosen);
    /// the environment turns a target into the seed's order for the
    /// current position, so its interface, audit trail and reports still
    /// speak the five seed actions.
    Target,
    /// A continuous target exposure: the quantity head (a Beta on (0, 1),
    /// read as `2q - 1`) is the position wanted, in [-1, 1] risk budgets
    /// (1: long the whole single-asset cap, -1: short it, 0: flat). The
    /// categorical carries nothing (only BUY_LONG is valid, with
    /// probability 1), so the quantity is the whole decision; greedy
    /// acting takes the Beta's mean. The environment turns the target
    /// into the seed's orders (entries, adds, partial and full closes),
    /// holding while it is within `env.exposure_band` of the position.
    Exposure,
}

/// What a step's reward measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// Change in equity net of costs, as a fraction of starting cash.
    PortfolioChange,
    /// Log return of equity.
    LogReturn,
    /// Log return of equity over buying and holding the capped position.
    ExcessLogReturn,
    /// Moody and Saffell's online Sharpe increment.
    DifferentialSharpe,
}

impl RewardKind {
    /// What one unit of this reward is, in words, for progress lines.
    pub fn unit(self) -> &'static str {
        match self {
            RewardKind::PortfolioChange => "change in equity as a fraction of the starting cash",
            RewardKind::LogReturn => "log return of equity",
            RewardKind::ExcessLogReturn => "log return over buying and holding the capped position",
            RewardKind::DifferentialSharpe => "differential Sharpe increments",
        }
    }
}

impl EnvSettings {
    /// The reward's units, as training progress reports episode returns:
    /// the per-bar reward summed over an episode, scaled, net of costs.
    pub fn reward_units(&self) -> String {
        let mut s = format!(
            "episode return = sum over bars of ({}) x {} (env.reward_scale), after costs",
            self.reward.unit(),
            self.reward_scale
        );
        if self.drawdown_penalty > 0.0 || self.risk_penalty > 0.0 {
            s.push_str(", less the drawdown and risk penalties");
        }
        s
    }
}

/// Actions invalid for the current position (CLOSE_LONG while flat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidActions {
    /// The agent receives a mask; an invalid action still arriving holds.
    Mask,
    /// Holds, and `invalid_penalty` is subtracted from the reward.
    Penalize,
}

impl Default for EnvSettings {
    /// The compiled-in `config/settings.yaml`'s `env:`.
    fn default() -> Self {
        default_section("env")
    }
}

impl EnvSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let e = self;
        v.int_range("env.window", e.window, 1, 10_000);
        v.check(
            e.train_fraction > 0.0 && e.train_fraction < 1.0,
            "env.train_fraction",
            e.train_fraction,
            "is out of range",
            "a fraction in (0, 1)",
        );
        v.check(
            e.validation_fraction >= 0.0 && e.train_fraction + e.validation_fraction < 1.0,
            "env.validation_fraction",
            e.validation_fraction,
            "leaves no test split",
            "a fraction >= 0 with train_fraction + validation_fraction < 1",
        );
        v.check(
            e.reward_scale.is_finite() && e.reward_scale > 0.0,
            "env.reward_scale",
            e.reward_scale,
            "must be positive",
            "a number > 0",
        );
        v.check(
            e.dsr_eta > 0.0 && e.dsr_eta < 1.0,
            "env.dsr_eta",
            e.dsr_eta,
            "is out of range",
            "a number in (0, 1)",
        );
        v.range("env.drawdown_penalty", e.drawdown_penalty, 0.0, 1e6);
        v.range("env.risk_penalty", e.risk_penalty, 0.0, 1e6);
        v.range("env.invalid_penalty", e.invalid_penalty, 0.0, 1e6);
        v.range("env.ruin_fraction", e.ruin_fraction, 0.0, 0.999);
        v.range("env.exposure_band", e.exposure_band, 0.0, 0.999);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::settings::{first_error, refused_key};

    #[test]
    fn reward_units_name_the_kind_and_the_scale() {
        let mut e = EnvSettings {
            reward: RewardKind::LogReturn,
            reward_scale: 100.0,
            drawdown_penalty: 0.0,
            risk_penalty: 0.0,
            ..Default::default()
        };
        assert_eq!(
            e.reward_units(),
            "episode return = sum over bars of (log return of equity) x 100 (env.reward_scale), after costs"
        );
        e.drawdown_penalty = 0.5;
        assert!(e.reward_units().ends_with("less the drawdown and risk penalties"));
    }

    #[test]
    fn the_files_section_passes_its_own_checks() {
        assert_eq!(refused_key(|_| {}, EnvSettings::validate), None);
    }

    #[test]
    fn every_bound_is_refused_with_its_key() {
        type Edit = fn(&mut EnvSettings);
        let cases: [(Edit, &str); 10] = [
            (|e| e.window = 0, "env.window"),
            (|e| e.train_fraction = 1.0, "env.train_fraction"),
            (
                |e| e.validation_fraction = 1.0 - e.train_fraction,
                "env.validation_fraction",
            ),
            (|e| e.validation_fraction = -0.1, "env.validation_fraction"),
            (|e| e.reward_scale = 0.0, "env.reward_scale"),
            (|e| e.dsr_eta = 1.0, "env.dsr_eta"),
            (|e| e.drawdown_penalty = -1.0, "env.drawdown_penalty"),
            (|e| e.invalid_penalty = f64::NAN, "env.invalid_penalty"),
            (|e| e.ruin_fraction = 1.0, "env.ruin_fraction"),
            (|e| e.exposure_band = 1.0, "env.exposure_band"),
        ];
        for (edit, key) in cases {
            assert_eq!(refused_key(edit, EnvSettings::validate).as_deref(), Some(key));
        }
    }

    #[test]
    fn a_split_leaving_no_test_data_says_so() {
        let env = EnvSettings {
            train_fraction: 0.8,
            validation_fraction: 0.3,
            ..Default::default()
        };
        let e = first_error(|v| env.validate(v)).unwrap();
        assert!(e.contains("leaves no test split"), "{e}");
    }

    #[test]
    fn closed_choices_read_as_the_file_writes_them_and_older_models_read_as_trade() {
        for (space, name) in [
            (ActionSpace::Trade, "trade"),
            (ActionSpace::Target, "target"),
            (ActionSpace::Exposure, "exposure"),
        ] {
            assert_eq!(serde_json::to_value(space).unwrap(), serde_json::json!(name));
        }
        for (kind, name) in [
            (RewardKind::PortfolioChange, "portfolio_change"),
            (RewardKind::ExcessLogReturn, "excess_log_return"),
            (RewardKind::DifferentialSharpe, "differential_sharpe"),
        ] {
            assert_eq!(
                serde_json::from_value::<RewardKind>(serde_json::json!(name)).unwrap(),
                kind
            );
        }
        let mut saved = serde_json::to_value(EnvSettings::default()).unwrap();
        saved.as_object_mut().unwrap().remove("actions");
        saved.as_object_mut().unwrap().remove("exposure_band");
        let old: EnvSettings = serde_json::from_value(saved).unwrap();
        assert_eq!(old.actions, ActionSpace::Trade);
        assert_eq!(old.exposure_band, 0.1);
    }
}
