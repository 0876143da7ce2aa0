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

/// Checks an agent's explanation of its greedy decision on `input`: the
/// explained output is the log of the probability the decision reported
/// (so the attributions explain the policy that decided), the attributions
/// are complete within the stated tolerance, and they are not all zero. Returns them and the decision.
pub(crate) fn explains_its_decision<A: Agent>(
    agent: &mut A,
    input: &AgentInput<'_>,
) -> (crate::explanation::Attribution, crate::agent::Decision) {
    use crate::explanation::DEFAULT_STEPS;
    let d = agent.select_action(input, true).unwrap();
    let at = agent
        .attribute(input, d.action, DEFAULT_STEPS)
        .unwrap()
        .unwrap_or_else(|| panic!("{} has gradients", agent.kind()));
    assert_eq!((at.action, at.steps), (d.action, DEFAULT_STEPS));
    let p = d.probabilities[d.action.index()];
    assert!(
        (at.output - p.ln()).abs() < 1e-3,
        "{}: explained log-probability {} vs the decision's ln {p}",
        agent.kind(),
        at.output
    );
    let change = at.output - at.baseline_output;
    assert!(
        at.is_complete(),
        "{}: gap {} for a change of {change}",
        agent.kind(),
        at.completeness_gap()
    );
    assert!(
        at.window.iter().any(|v| *v != 0.0),
        "{}: all-zero attributions",
        agent.kind()
    );
    assert_eq!(at.by_feature().len(), at.features);
    assert_eq!(at.by_bar().len(), at.bars);
    (at, d)
}

/// Scales every policy head (`head.policy.weight`, a mixture's experts'
/// too) by `head` and every trunk by `trunk`, so an untrained network's
/// policy is far from uniform and its inputs move it: attributions worth
/// checking.
pub(crate) fn sharpen(params: &tradelab_nn::params::Params, head: f64, trunk: f64) {
    let scaled = params
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let factor = if name.ends_with("head.policy.weight") {
                head
            } else if name.ends_with("trunk.weight") {
                trunk
            } else {
                1.0
            };
            (name, (t * factor).unwrap())
        })
        .collect();
    params.assign(&scaled).unwrap();
}
