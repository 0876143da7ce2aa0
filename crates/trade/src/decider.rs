//! What decides at each bar: a trained agent, or any rule strategy.

use std::path::PathBuf;
use std::sync::Arc;

use tradelab_agents::evaluate::{act_on_bar, Acting};
use tradelab_agents::load::load_agent;
use tradelab_agents::{Agent, Decision, MarketKey};
use tradelab_bus::DecisionInputs;
use tradelab_core::BarSeries;
use tradelab_data::settings::FeatureSettings;
use tradelab_env::{EnvConfig, MarketData, StreamingWindow};
use tradelab_sim::strategy::{BarContext, Strategy};

/// Decides on each instrument's bar by submitting orders into the context.
pub trait Decider {
    /// For reports.
    fn name(&self) -> String;

    /// Called once before the first bar with every instrument.
    fn start(&mut self, feeds: &[&BarSeries]) {
        let _ = feeds;
    }

    /// Decides on `ctx`'s bar; an error is the model failing (the session
    /// counts them and restarts it).
    fn decide(&mut self, ctx: &mut BarContext<'_>) -> Result<(), String>;

    /// Starts the decision maker afresh (reloads a model from its file).
    fn restart(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Bars it decided on.
    fn decisions(&self) -> u64;

    /// What the last call to [`decide`](Self::decide) asked a model and
    /// its answer, when it asked one (rule strategies do not).
    fn last_decision(&self) -> Option<&DecisionTrace> {
        None
    }

    /// The model deciding: its kind and the SHA-256 of its weights, when
    /// it is a trained model.
    fn model_identity(&self) -> Option<(String, String)> {
        None
    }
}

/// A model's decision with everything it was given: the audit trail's
/// record of it (the inputs' window buffer is reused bar after bar).
#[derive(Debug, Clone, Default)]
pub struct DecisionTrace {
    /// The answer (action, quantity, probabilities, value).
    pub decision: Option<Decision>,
    /// What the model was given, as the decision event records it.
    pub inputs: DecisionInputs,
}

/// A rule strategy as a decider; it never fails.
pub struct StrategyDecider<S> {
    strategy: S,
    decisions: u64,
}

impl<S: Strategy> StrategyDecider<S> {
    /// Wraps `strategy`.
    pub fn new(strategy: S) -> Self {
        StrategyDecider { strategy, decisions: 0 }
    }
}

impl<S: Strategy> Decider for StrategyDecider<S> {
    fn name(&self) -> String {
        self.strategy.name()
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        self.strategy.start(feeds);
    }

    fn decide(&mut self, ctx: &mut BarContext<'_>) -> Result<(), String> {
        self.decisions += 1;
        self.strategy.on_bar(ctx);
        Ok(())
    }

    fn decisions(&self) -> u64 {
        self.decisions
    }
}

/// One market an agent trades: the agent's key for it and where its
/// observation comes from.
pub struct AgentMarket {
    /// The agent's key for it.
    pub key: MarketKey,
    observation: Observation,
    /// Bars before this one are before the training split's first step:
    /// the agent is not asked about them.
    first_step: usize,
}

/// Where a market's observation comes from.
enum Observation {
    /// Built bar by bar from the bars that arrive, primed with history.
    Streamed(Box<StreamingWindow>),
    /// Read from the recorded observation by time (a model with regime
    /// features, which are fitted on the whole series).
    Recorded(Arc<MarketData>),
}

impl AgentMarket {
    /// `data`'s market for the agent's `key`, its stream primed with the
    /// recorded bars before `start_ts` (the indicators' history).
    pub fn primed(data: Arc<MarketData>, key: MarketKey, features: &FeatureSettings, start_ts: i64) -> Self {
        let first_step = data.steps(tradelab_env::Split::Train).start;
        let observation =
            match StreamingWindow::new(features, &data.feature_names, &data.mean, &data.std, data.window_len()) {
                Ok(mut s) => {
                    let history = data.series.ts.partition_point(|t| *t < start_ts);
                    for k in 0..history {
                        s.push(&data.series.bar(k));
                    }
                    Observation::Streamed(Box::new(s))
                }
                Err(_) => Observation::Recorded(data),
            };
        AgentMarket {
            key,
            observation,
            first_step,
        }
    }

    /// A live market: `stream` (the model's features and normalisation)
    /// already primed with history, so the agent is asked from the first
    /// bar that arrives.
    pub fn streamed(key: MarketKey, stream: StreamingWindow) -> Self {
        AgentMarket {
            key,
            observation: Observation::Streamed(Box::new(stream)),
            first_step: 0,
        }
    }

    /// True when its observation is streamed from the arriving bars.
    pub fn is_streamed(&self) -> bool {
        matches!(self.observation, Observation::Streamed(_))
    }
}

/// A trained agent deciding for several markets, reloaded from its folder
/// when it has to restart.
pub struct AgentDecider {
    agent: Box<dyn Agent + Send>,
    folder: PathBuf,
    markets: Vec<AgentMarket>,
    acting: Acting,
    decisions: u64,
    /// The last decision's record; its window buffer is reused.
    trace: DecisionTrace,
    traced: bool,
    weights_sha256: String,
}

/// SHA-256 (hex) of the model's weights file in `folder`; empty if it
/// cannot be read (the model loaded, so this is only for the record).
fn weights_sha256(folder: &std::path::Path) -> String {
    std::fs::read(folder.join(tradelab_agents::checkpoint::WEIGHTS_FILE))
        .map(|b| tradelab_agents::checkpoint::sha256_hex(&b))
        .unwrap_or_default()
}

impl AgentDecider {
    /// `agent`, loaded from `folder`, trading `markets` (instrument `i` is
    /// `markets[i]`) under `env`'s sizing.
    pub fn new(agent: Box<dyn Agent + Send>, folder: PathBuf, markets: Vec<AgentMarket>, env: &EnvConfig) -> Self {
        AgentDecider {
            agent,
            weights_sha256: weights_sha256(&folder),
            folder,
            markets,
            acting: Acting::greedy(env),
            decisions: 0,
            trace: DecisionTrace::default(),
            traced: false,
        }
    }

    /// The markets it trades.
    pub fn markets(&self) -> &[AgentMarket] {
        &self.markets
    }
}

impl Decider for AgentDecider {
    fn name(&self) -> String {
        self.agent.kind().to_string()
    }

    fn decide(&mut self, ctx: &mut BarContext<'_>) -> Result<(), String> {
        self.traced = false;
        let Some(m) = self.markets.get_mut(ctx.instrument) else {
            return Err(format!("no market for instrument {}", ctx.instrument));
        };
        let window = match &mut m.observation {
            Observation::Streamed(stream) => {
                stream.push(&ctx.bar);
                if stream.bars() <= m.first_step {
                    return Ok(());
                }
                match stream.window() {
                    Some(w) => w,
                    None => return Ok(()),
                }
            }
            Observation::Recorded(data) => {
                let ts = &data.series.ts;
                let t = ts.partition_point(|x| *x < ctx.bar.ts);
                if ts.get(t) != Some(&ctx.bar.ts) {
                    return Err(format!(
                        "{} has no bar at {} in the data the model's features were computed on",
                        data.series.instrument,
                        tradelab_core::time::format_datetime(ctx.bar.ts)
                    ));
                }
                if t < m.first_step {
                    return Ok(());
                }
                data.window(t)
            }
        };
        let (position, equity, cash) = (ctx.position, ctx.equity, ctx.cash);
        let asked = act_on_bar(self.agent.as_mut(), window, m.key, &self.acting, ctx).map_err(|e| e.to_string())?;
        if let Some(asked) = asked {
            self.decisions += 1;
            let features = self.agent.provenance().features.len().max(1);
            self.trace.decision = Some(asked.decision);
            let t = &mut self.trace.inputs;
            t.window.0.clear();
            t.window.0.extend_from_slice(window);
            t.bars = (window.len() / features) as u32;
            t.features = features as u32;
            t.account = asked.account;
            t.mask = asked.mask;
            t.market = [m.key.instrument, m.key.timeframe];
            t.close = ctx.bar.close;
            (t.position, t.equity, t.cash) = (position, equity, cash);
            self.traced = true;
        }
        Ok(())
    }

    fn restart(&mut self) -> Result<(), String> {
        let agent = load_agent(&self.folder).map_err(|e| format!("reloading {}: {e}", self.folder.display()))?;
        self.agent = agent;
        self.weights_sha256 = weights_sha256(&self.folder);
        Ok(())
    }

    fn decisions(&self) -> u64 {
        self.decisions
    }

    fn last_decision(&self) -> Option<&DecisionTrace> {
        self.traced.then_some(&self.trace)
    }

    fn model_identity(&self) -> Option<(String, String)> {
        Some((self.agent.kind().to_string(), self.weights_sha256.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_agents::ppo::{PpoAgent, PpoConfig};

    /// A small untrained policy saved to `dir`.
    fn saved_agent(dir: &std::path::Path) -> Box<dyn Agent + Send> {
        let agent = PpoAgent::new(PpoConfig {
            encoder: "mlp".into(),
            features: 3,
            window: 4,
            instruments: 1,
            timeframes: 1,
            seed: 1,
            ppo: tradelab_agents::settings::PpoSettings::default(),
            mixture: None,
        })
        .unwrap();
        agent.save(dir).unwrap();
        load_agent(dir).unwrap()
    }

    #[test]
    fn a_restart_reloads_the_model_file_and_a_corrupt_one_is_refused_until_it_is_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        let agent = saved_agent(&dir);
        let mut decider = AgentDecider::new(agent, dir.clone(), Vec::new(), &EnvConfig::default());
        decider.restart().unwrap();
        // The weights file replaced by garbage: the restart fails, naming it.
        let weights = dir.join("model.safetensors");
        let good = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, b"not a safetensors file").unwrap();
        let e = decider.restart().unwrap_err();
        assert!(e.contains("reloading") && e.contains("model"), "{e}");
        // The agent it had is kept meanwhile; the fixed file loads again.
        assert_eq!(decider.name(), "ppo-mlp");
        std::fs::write(&weights, good).unwrap();
        decider.restart().unwrap();
    }
}
