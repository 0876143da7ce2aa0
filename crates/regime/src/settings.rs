//! The `regime:` section: the hidden Markov model's size and features, and
//! whether regime probabilities join the agents' observations.

use serde::{Deserialize, Serialize};
use tradelab_core::settings::Validator;

use crate::RegimeConfig;

/// `regime:`: regime detection (a Gaussian HMM over causal features).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegimeSettings {
    /// The fewest states BIC may choose.
    pub min_states: usize,
    /// The most states BIC may choose.
    pub max_states: usize,
    /// Bars in the realised-volatility window.
    pub vol_window: usize,
    /// Bars in the trend-strength window.
    pub trend_window: usize,
    /// The filter's probability floor, so it recovers after a switch.
    pub floor: f64,
    /// Append p(state k | bars up to t) for k < max_states to every
    /// market's observation features (`regime_p0`, ...; states ordered by
    /// volatility, missing states 0), from a model fitted on the training
    /// split: a policy can then condition on the regime.
    pub features: bool,
}

impl Default for RegimeSettings {
    /// The same values as `config/settings.yaml` (a test checks they agree;
    /// written out because models saved before the section existed are
    /// read with these).
    fn default() -> Self {
        RegimeSettings {
            min_states: 2,
            max_states: 4,
            vol_window: 10,
            trend_window: 20,
            floor: 1e-6,
            features: false,
        }
    }
}

impl RegimeSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        v.int_range("regime.min_states", self.min_states, 1, 8);
        v.int_range("regime.max_states", self.max_states, self.min_states.max(1), 8);
        v.int_range("regime.vol_window", self.vol_window, 2, 1000);
        v.int_range("regime.trend_window", self.trend_window, 2, 1000);
        v.range("regime.floor", self.floor, 0.0, 0.01);
    }

    /// The detector's configuration: these sizes, its own fitting defaults.
    pub fn detector_config(&self) -> RegimeConfig {
        RegimeConfig {
            min_states: self.min_states,
            max_states: self.max_states,
            vol_window: self.vol_window,
            trend_window: self.trend_window,
            floor: self.floor,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_settings_file() {
        assert_eq!(
            RegimeSettings::default(),
            tradelab_core::settings::default_section::<RegimeSettings>("regime")
        );
    }
}
