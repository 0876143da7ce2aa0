//! The agents' unit-test kit: every settings section an agent's tests read,
//! at the compiled-in defaults and under their `settings.yaml` keys, so a
//! test changes a field (`s.ppo.hidden = 16`) and builds from the result as
//! the application does from the whole file.

use tradelab_env::EnvConfig;
use tradelab_testkit::EnvSections;

use crate::hindsight::LabelCosts;
use crate::settings::{HrmSettings, PpoSettings};

/// The environment's sections, `ppo:` and `hierarchical_reasoning_model:`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestSettings {
    pub sections: EnvSections,
    pub ppo: PpoSettings,
    pub hierarchical_reasoning_model: HrmSettings,
}

impl TestSettings {
    pub fn env_config(&self) -> EnvConfig {
        self.sections.env_config()
    }

    pub fn label_costs(&self) -> LabelCosts {
        LabelCosts::new(&self.sections.backtest, &self.sections.risk)
    }
}
