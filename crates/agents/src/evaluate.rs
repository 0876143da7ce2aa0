//! Running a trained agent honestly: greedily, out of sample, after costs.
//!
//! - [`AgentStrategy`] turns an agent into a backtesting
//!   [`Strategy`], so it trades through the
//!   same engine, fills, costs and risk layer as the rule baselines and gets
//!   the same report.
//! - [`greedy_episode`] runs it through the environment over a whole split
//!   (the trainer's validation score).

use std::sync::Arc;

use tradelab_core::Action;
use tradelab_env::{EnvAction, EnvConfig, MarketData, Split, TradingEnv, ACCOUNT_FEATURES};
use tradelab_sim::costs::CostModel;
use tradelab_sim::order::Order;
use tradelab_sim::strategy::{BarContext, Strategy};

use crate::agent::{Agent, AgentInput, MarketKey};
use crate::error::AgentError;

/// An agent acting greedily on one instrument inside the engine.
///
/// The engine is given a slice of the series starting at bar `offset` of the
/// market data, so the agent sees the features (computed over the whole
/// series with training-split statistics) of the bar the engine is at.
pub struct AgentStrategy<'a, A: Agent + ?Sized> {
    agent: &'a mut A,
    data: &'a MarketData,
    key: MarketKey,
    offset: usize,
    initial_cash: f64,
    risk_budget: f64,
    costs: CostModel,
    /// The first error the agent raised; it stops acting after one.
    pub error: Option<AgentError>,
    /// Decisions the agent made (bars it was asked on and answered).
    pub decisions: usize,
    name: String,
}

impl<'a, A: Agent + ?Sized> AgentStrategy<'a, A> {
    /// Trades `key`'s market for `agent`, the engine's bar 0 being bar
    /// `offset` of `data`; sizes entries from `env`'s risk budget, initial
    /// cash and costs. The strategy is named after the agent's kind.
    pub fn new(agent: &'a mut A, data: &'a MarketData, key: MarketKey, offset: usize, env: &EnvConfig) -> Self {
        let name = agent.kind().to_string();
        AgentStrategy {
            agent,
            data,
            key,
            offset,
            initial_cash: env.engine.initial_cash,
            risk_budget: env.risk_budget(),
            costs: env.engine.costs,
            error: None,
            decisions: 0,
            name,
        }
    }
}

impl<A: Agent + ?Sized> Strategy for AgentStrategy<'_, A> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let t = self.offset + ctx.index;
        let first = self.data.steps(Split::Train).start;
        if self.error.is_some() || ctx.halted || t < first || ctx.equity <= 0.0 {
            return;
        }
        let q = ctx.position;
        let close = ctx.bar.close;
        let input = AgentInput {
            window: self.data.window(t),
            account: [
                (ctx.equity / self.initial_cash - 1.0) as f32,
                (q * close / ctx.equity) as f32,
                (ctx.unrealized_pnl / ctx.equity) as f32,
            ],
            mask: [q == 0.0, q == 0.0, q > 0.0, q < 0.0, true],
            market: self.key,
        };
        let decision = match self.agent.select_action(&input, true) {
            Ok(d) => d,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        self.decisions += 1;
        match decision.action {
            Action::Hold => {}
            Action::CloseLong | Action::CloseShort => ctx.submit(Order::market(ctx.instrument, decision.action)),
            Action::BuyLong | Action::SellShort => {
                // Sized from the risk budget at the signal close (the fill
                // price is not known yet).
                let budget = decision.quantity.clamp(0.0, 1.0) * self.risk_budget * ctx.equity;
                let units = self.costs.affordable_quantity(budget, close);
                if units > 0.0 {
                    ctx.submit(Order::market(ctx.instrument, decision.action).units(units));
                }
            }
        }
    }
}

/// The outcome of one greedy pass over a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeOutcome {
    /// Final equity over starting equity, minus 1, in percent (after costs).
    pub return_pct: f64,
    /// Round-trip trades closed during the pass.
    pub trades: usize,
    /// Bars the agent decided on.
    pub steps: usize,
    /// True when ruin or the drawdown stop ended the pass before the
    /// split's end.
    pub terminated: bool,
}

/// Runs the agent greedily through the environment over all of `split`
/// (from its first bar, to its end or a termination).
pub fn greedy_episode<A: Agent + ?Sized>(
    agent: &mut A,
    data: &Arc<MarketData>,
    key: MarketKey,
    split: Split,
    env: &EnvConfig,
) -> Result<EpisodeOutcome, AgentError> {
    let mut env = TradingEnv::new(data.clone(), split, &whole_split(env), 0)?;
    env.reset();
    let start = env.broker().account().equity();
    let mut steps = 0;
    loop {
        let obs = env.observation();
        let account: [f32; ACCOUNT_FEATURES] = obs.account;
        let d = agent.select_action(
            &AgentInput {
                window: obs.window,
                account,
                mask: env.action_mask(),
                market: key,
            },
            true,
        )?;
        let r = env.step(EnvAction::new(d.action, d.quantity));
        steps += 1;
        if r.terminated || r.truncated {
            let a = env.broker().account();
            return Ok(EpisodeOutcome {
                return_pct: (r.info.equity / start - 1.0) * 100.0,
                trades: a.trades.len(),
                steps,
                terminated: r.terminated,
            });
        }
    }
}

/// `env` with one episode over the whole split from its first bar, as
/// evaluations walk it.
pub(crate) fn whole_split(env: &EnvConfig) -> EnvConfig {
    let mut whole = env.clone();
    whole.env.episode_bars = 0;
    whole.env.random_start = false;
    whole
}
