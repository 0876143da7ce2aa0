//! The agents' unit-test kit: every settings section an agent's tests read,
//! at the compiled-in defaults and under their `settings.yaml` keys, so a
//! test changes a field (`s.ppo.hidden = 16`) and builds from the result as
//! the application does from the whole file.

use tradelab_core::Action;
use tradelab_env::{ActionSpace, EnvConfig, MarketData, Split, VecEnv, EXPOSURE_MASK};
use tradelab_testkit::EnvSections;

use crate::agent::{Agent, AgentInput, MarketKey};

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

/// Checks an agent under `env.actions: exposure`: one update on `data`
/// trains (finite figures, weights moved per `weights`), and then every
/// decision is the carrier BUY_LONG with probability 1, and the greedy
/// quantity is the distribution's mean (the average of many sampled
/// targets), not its mode.
pub(crate) fn learns_and_acts_on_an_exposure_target<A: Agent>(
    agent: &mut A,
    s: &TestSettings,
    data: &std::sync::Arc<MarketData>,
    weights: impl Fn(&A) -> Vec<u8>,
) {
    let mut s = s.clone();
    s.sections.env.actions = ActionSpace::Exposure;
    let key = MarketKey {
        instrument: 0,
        timeframe: 0,
    };
    let before = weights(agent);
    let mut envs = VecEnv::new(std::slice::from_ref(data), 4, Split::Train, &s.env_config(), 1).unwrap();
    let st = agent.learn(&mut envs, &[key]).unwrap();
    assert_ne!(weights(agent), before, "{}: weights moved", agent.kind());
    for v in [st.policy_loss, st.value_loss, st.entropy, st.approx_kl, st.grad_norm] {
        assert!(v.is_finite(), "{}: {st:?}", agent.kind());
    }
    let t = data.steps(Split::Train).start + 5;
    let input = AgentInput {
        window: data.window(t),
        account: [0.0, 0.1, 0.0],
        mask: EXPOSURE_MASK,
        market: key,
    };
    let greedy = agent.select_action(&input, true).unwrap();
    assert_eq!(greedy.action, Action::BuyLong, "{}", agent.kind());
    assert_eq!(greedy.probabilities, [1.0, 0.0, 0.0, 0.0, 0.0]);
    let draws = 3000;
    let mut sum = 0.0;
    for _ in 0..draws {
        let d = agent.select_action(&input, false).unwrap();
        assert_eq!(d.action, Action::BuyLong);
        assert!(d.quantity > 0.0 && d.quantity < 1.0);
        sum += d.quantity;
    }
    let mean = sum / draws as f64;
    // A Beta's standard deviation is at most 0.29, so the average of 3000
    // draws is within 0.02 of the mean at five standard errors.
    assert!(
        (greedy.quantity - mean).abs() < 0.02,
        "{}: greedy {} vs sampled mean {mean}",
        agent.kind(),
        greedy.quantity
    );
}
