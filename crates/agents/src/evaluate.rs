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
use tradelab_env::{ActionSpace, EnvAction, EnvConfig, Holding, MarketData, Split, TradingEnv, ACCOUNT_FEATURES};
use tradelab_sim::costs::CostModel;
use tradelab_sim::metrics::periods_per_year;
use tradelab_sim::order::Order;
use tradelab_sim::stats::moments::RunningMoments;
use tradelab_sim::strategy::{BarContext, Strategy};

use crate::agent::{Agent, AgentInput, Decision, MarketKey};
use crate::error::AgentError;

/// An agent acting on one instrument inside the engine: greedily (its most
/// likely action) unless [`sampled`](AgentStrategy::sampled).
///
/// The engine is given a slice of the series starting at bar `offset` of the
/// market data, so the agent sees the features (computed over the whole
/// series with training-split statistics) of the bar the engine is at.
pub struct AgentStrategy<'a, A: Agent + ?Sized> {
    agent: &'a mut A,
    /// The engine's instrument `i` is `markets[i]`.
    markets: Vec<TradedMarket<'a>>,
    acting: Acting,
    /// The first error the agent raised; it stops acting after one.
    pub error: Option<AgentError>,
    /// Decisions the agent made (bars it was asked on and answered).
    pub decisions: usize,
    name: String,
}

/// One market an [`AgentStrategy`] trades: its data (features over the
/// whole series, training-split statistics), the agent's key for it, and
/// the bar of `data` that is the engine's bar 0.
#[derive(Clone, Copy)]
pub struct TradedMarket<'a> {
    /// The market's features and normalisation.
    pub data: &'a MarketData,
    /// The agent's embedding key for it.
    pub key: MarketKey,
    /// The engine's bar 0 is bar `offset` of `data`.
    pub offset: usize,
}

/// How an agent's decision becomes an order: the account features'
/// reference cash, the entry budget, the costs that size it, the action
/// space, and whether to decide greedily.
#[derive(Debug, Clone, Copy)]
pub struct Acting {
    initial_cash: f64,
    risk_budget: f64,
    costs: CostModel,
    actions: ActionSpace,
    exposure_band: f64,
    greedy: bool,
}

impl Acting {
    /// Greedy acting under `env`'s risk budget, initial cash, costs and
    /// action space.
    pub fn greedy(env: &EnvConfig) -> Self {
        Acting {
            initial_cash: env.engine.initial_cash,
            risk_budget: env.risk_budget(),
            costs: env.engine.costs,
            actions: env.env.actions,
            exposure_band: env.env.exposure_band,
            greedy: true,
        }
    }
}

/// What an agent was asked at a bar, beside its window, and what it
/// answered: what the audit trail records of a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Asked {
    /// The agent's answer.
    pub decision: Decision,
    /// The account features it was given.
    pub account: [f32; 3],
    /// The actions it was allowed.
    pub mask: [bool; 5],
}

/// Asks `agent` about `ctx`'s bar, observed as `window` (the normalised
/// features of the bars up to it, the agent's market `key`), and submits
/// the order its decision means (sized from the risk budget at the signal
/// close). `None` when it was not asked: once halted or with no equity left.
pub fn act_on_bar<A: Agent + ?Sized>(
    agent: &mut A,
    window: &[f32],
    key: MarketKey,
    acting: &Acting,
    ctx: &mut BarContext<'_>,
) -> Result<Option<Asked>, AgentError> {
    if ctx.halted || ctx.equity <= 0.0 {
        return Ok(None);
    }
    let q = ctx.position;
    let close = ctx.bar.close;
    let input = AgentInput {
        window,
        account: [
            (ctx.equity / acting.initial_cash - 1.0) as f32,
            (q * close / ctx.equity) as f32,
            (ctx.unrealized_pnl / ctx.equity) as f32,
        ],
        mask: acting.actions.mask(q),
        market: key,
    };
    let decision = agent.select_action(&input, acting.greedy)?;
    let asked = Asked {
        decision,
        account: input.account,
        mask: input.mask,
    };
    submit_decision(&decision, acting, ctx);
    Ok(Some(asked))
}

/// Submits into `ctx` the order `decision` means for the position, close
/// and equity `ctx` holds (an entry sized from the risk budget at the
/// signal close): what [`act_on_bar`] does after asking, and what an audit
/// replay checks a recorded decision's orders against.
pub fn submit_decision(decision: &Decision, acting: &Acting, ctx: &mut BarContext<'_>) {
    let q = ctx.position;
    let close = ctx.bar.close;
    // Under targets the decision is a target; the order carries it out.
    let held = Holding::new(q, close, ctx.equity, acting.risk_budget);
    let order = acting
        .actions
        .carry_out(decision.action, decision.quantity, held, acting.exposure_band);
    match order.action {
        Action::Hold => {}
        Action::CloseLong | Action::CloseShort if order.quantity >= 1.0 => {
            ctx.submit(Order::market(ctx.instrument, order.action))
        }
        Action::CloseLong | Action::CloseShort => {
            let units = order.quantity * q.abs();
            if units > 0.0 {
                ctx.submit(Order::market(ctx.instrument, order.action).units(units));
            }
        }
        Action::BuyLong | Action::SellShort => {
            // Sized from the risk budget at the signal close (the fill
            // price is not known yet).
            let budget = order.quantity.clamp(0.0, 1.0) * acting.risk_budget * ctx.equity;
            let units = acting.costs.affordable_quantity(budget, close);
            if units > 0.0 {
                ctx.submit(Order::market(ctx.instrument, order.action).units(units));
            }
        }
    }
}

impl<'a, A: Agent + ?Sized> AgentStrategy<'a, A> {
    /// Trades `key`'s market for `agent`, the engine's bar 0 being bar
    /// `offset` of `data`; sizes entries from `env`'s risk budget, initial
    /// cash and costs. The strategy is named after the agent's kind.
    pub fn new(agent: &'a mut A, data: &'a MarketData, key: MarketKey, offset: usize, env: &EnvConfig) -> Self {
        Self::for_markets(agent, vec![TradedMarket { data, key, offset }], env)
    }

    /// Trades several markets in one account: the engine's instrument `i`
    /// is `markets[i]`.
    pub fn for_markets(agent: &'a mut A, markets: Vec<TradedMarket<'a>>, env: &EnvConfig) -> Self {
        let name = agent.kind().to_string();
        AgentStrategy {
            agent,
            markets,
            acting: Acting::greedy(env),
            error: None,
            decisions: 0,
            name,
        }
    }

    /// The agent, to seed its sampling before a sampled pass.
    pub fn agent_mut(&mut self) -> &mut A {
        self.agent
    }

    /// Samples each decision from the policy, as training did, instead of
    /// taking the most likely action; seed the agent's stream with
    /// [`Agent::seed_sampling`] for a reproducible path.
    pub fn sampled(mut self) -> Self {
        self.acting.greedy = false;
        self
    }
}

impl<A: Agent + ?Sized> Strategy for AgentStrategy<'_, A> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let Some(&TradedMarket { data, key, offset }) = self.markets.get(ctx.instrument) else {
            return;
        };
        if self.error.is_some() {
            return;
        }
        let t = offset + ctx.index;
        if t < data.steps(Split::Train).start {
            return;
        }
        match act_on_bar(self.agent, data.window(t), key, &self.acting, ctx) {
            Ok(asked) => self.decisions += usize::from(asked.is_some()),
            Err(e) => self.error = Some(e),
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
    /// Positions opened (flat to long or short).
    pub entries: usize,
    /// Share of steps that ended holding a position.
    pub exposure: f64,
    /// Mean over the pass's windows of the annualised Sharpe ratio of the
    /// per-bar equity returns; a window with no variation (flat) scores 0.
    pub sharpe: f64,
}

/// Runs the agent greedily through the environment over all of `split`
/// (from its first bar, to its end or a termination), as one window.
pub fn greedy_episode<A: Agent + ?Sized>(
    agent: &mut A,
    data: &Arc<MarketData>,
    key: MarketKey,
    split: Split,
    env: &EnvConfig,
) -> Result<EpisodeOutcome, AgentError> {
    greedy_episode_in_windows(agent, data, key, split, env, 1)
}

/// [`greedy_episode`], scoring the Sharpe ratio separately over `windows`
/// consecutive, equal stretches of the split and averaging them, so one
/// lucky stretch cannot carry the score. Bars after a termination count as
/// flat.
pub fn greedy_episode_in_windows<A: Agent + ?Sized>(
    agent: &mut A,
    data: &Arc<MarketData>,
    key: MarketKey,
    split: Split,
    env: &EnvConfig,
    windows: usize,
) -> Result<EpisodeOutcome, AgentError> {
    greedy_pass(agent, data, key, split, env, windows, |_| {})
}

/// The per-bar equity returns (after costs) of a greedy pass over `split`,
/// one per decision bar of the split (bars after a termination count as
/// flat): what a sweep compares its trials on.
pub fn greedy_returns<A: Agent + ?Sized>(
    agent: &mut A,
    data: &Arc<MarketData>,
    key: MarketKey,
    split: Split,
    env: &EnvConfig,
) -> Result<Vec<f64>, AgentError> {
    // A whole pass decides on every step of the split but the last (the
    // last step's bar only fills the decision before it).
    let bars = data.steps(split).len().saturating_sub(1);
    let mut returns = Vec::with_capacity(bars);
    greedy_pass(agent, data, key, split, env, 1, |r| returns.push(r))?;
    // A pass that ruin or the drawdown stop ended is flat for the rest, so
    // every model's series covers the same bars.
    returns.resize(bars.max(returns.len()), 0.0);
    Ok(returns)
}

fn greedy_pass<A: Agent + ?Sized>(
    agent: &mut A,
    data: &Arc<MarketData>,
    key: MarketKey,
    split: Split,
    env: &EnvConfig,
    windows: usize,
    mut on_return: impl FnMut(f64),
) -> Result<EpisodeOutcome, AgentError> {
    let mut env = TradingEnv::new(data.clone(), split, &whole_split(env), 0)?;
    env.reset();
    let start = env.broker().account().equity();
    let total = data.steps(split).len().max(1);
    let windows = windows.clamp(1, total);
    let mut moments = vec![RunningMoments::default(); windows];
    let (mut steps, mut entries, mut exposed) = (0, 0, 0);
    let mut equity = start;
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
        let was_flat = env.broker().account().position(0).qty == 0.0;
        let r = env.step(EnvAction::new(d.action, d.quantity));
        let holding = r.info.position != 0.0;
        entries += usize::from(was_flat && holding);
        exposed += usize::from(holding);
        let bar_return = if equity > 0.0 {
            r.info.equity / equity - 1.0
        } else {
            0.0
        };
        moments[(steps * windows / total).min(windows - 1)].push(bar_return);
        on_return(bar_return);
        equity = r.info.equity;
        steps += 1;
        if r.terminated || r.truncated {
            let a = env.broker().account();
            let series = &data.series;
            let per_year = periods_per_year(series);
            let sharpe = moments.iter().map(|m| window_sharpe(m, per_year)).sum::<f64>() / windows as f64;
            return Ok(EpisodeOutcome {
                return_pct: (r.info.equity / start - 1.0) * 100.0,
                trades: a.trades.len(),
                steps,
                terminated: r.terminated,
                entries,
                exposure: exposed as f64 / steps as f64,
                sharpe,
            });
        }
    }
}

/// Annualised Sharpe ratio of one window's bar returns; 0 for fewer than
/// two returns or none that differ (a flat window).
fn window_sharpe(m: &RunningMoments, per_year: f64) -> f64 {
    let std = m.std();
    if std > 1e-12 {
        m.mean() / std * per_year.sqrt()
    } else {
        0.0
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tradelab_env::VecEnv;
    use tradelab_testkit::synthetic_market;

    use super::*;
    use crate::agent::{Decision, LearnStats};
    use crate::metadata::Provenance;
    use crate::testing::TestSettings;

    /// An agent that follows a fixed rule of the bar count and the mask.
    struct Scripted {
        rule: fn(usize, [bool; 5]) -> Action,
        calls: usize,
        provenance: Provenance,
    }

    impl Scripted {
        fn new(rule: fn(usize, [bool; 5]) -> Action) -> Self {
            Scripted {
                rule,
                calls: 0,
                provenance: Provenance::default(),
            }
        }
    }

    impl Agent for Scripted {
        fn kind(&self) -> &'static str {
            "scripted"
        }
        fn seed_sampling(&mut self, _: u64) {}
        fn select_action(&mut self, input: &AgentInput<'_>, _greedy: bool) -> Result<Decision, AgentError> {
            let action = (self.rule)(self.calls, input.mask);
            self.calls += 1;
            Ok(Decision {
                action,
                quantity: 1.0,
                probabilities: [0.2; 5],
                value: 0.0,
            })
        }
        fn learn(&mut self, _: &mut VecEnv, _: &[MarketKey]) -> Result<LearnStats, AgentError> {
            Err(AgentError::Invalid("a scripted agent does not learn".into()))
        }
        fn save(&self, _: &Path) -> Result<(), AgentError> {
            Ok(())
        }
        fn load(_: &Path) -> Result<Self, AgentError> {
            Err(AgentError::Invalid("a scripted agent is not saved".into()))
        }
        fn provenance(&self) -> &Provenance {
            &self.provenance
        }
    }

    const KEY: MarketKey = MarketKey {
        instrument: 0,
        timeframe: 0,
    };

    fn hold(_: usize, _: [bool; 5]) -> Action {
        Action::Hold
    }

    fn buy_and_hold(_: usize, mask: [bool; 5]) -> Action {
        if mask[Action::BuyLong.index()] {
            Action::BuyLong
        } else {
            Action::Hold
        }
    }

    fn in_and_out(_: usize, mask: [bool; 5]) -> Action {
        if mask[Action::BuyLong.index()] {
            Action::BuyLong
        } else {
            Action::CloseLong
        }
    }

    #[test]
    fn a_policy_that_never_trades_scores_zero_with_no_entries_and_no_exposure() {
        let s = TestSettings::default();
        let data = synthetic_market(2000, 3, &s.sections);
        let o = greedy_episode_in_windows(
            &mut Scripted::new(hold),
            &data,
            KEY,
            Split::Validation,
            &s.env_config(),
            4,
        )
        .unwrap();
        assert_eq!(
            (o.entries, o.trades, o.exposure, o.sharpe, o.return_pct),
            (0, 0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn one_window_scores_the_annualised_sharpe_of_the_equity_path_and_windows_average_their_own() {
        let s = TestSettings::default();
        let data = synthetic_market(3000, 5, &s.sections);
        let env = s.env_config();
        // The equity path, stepped by hand through the same environment.
        let mut e = TradingEnv::new(data.clone(), Split::Validation, &whole_split(&env), 0).unwrap();
        e.reset();
        let mut equity = vec![e.broker().account().equity()];
        loop {
            let r = e.step(EnvAction::new(buy_and_hold(0, e.action_mask()), 1.0));
            equity.push(r.info.equity);
            if r.terminated || r.truncated {
                break;
            }
        }
        let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        let sharpe = |r: &[f64]| {
            let m = r.iter().sum::<f64>() / r.len() as f64;
            let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64).sqrt();
            m / sd * periods_per_year(&data.series).sqrt()
        };
        let one = greedy_episode_in_windows(&mut Scripted::new(buy_and_hold), &data, KEY, Split::Validation, &env, 1)
            .unwrap();
        assert!(
            (one.sharpe - sharpe(&returns)).abs() < 1e-9,
            "{} vs {}",
            one.sharpe,
            sharpe(&returns)
        );
        assert_eq!((one.entries, one.trades, one.steps), (1, 0, returns.len()));
        assert!(one.exposure > 0.99, "{}", one.exposure);

        let total = data.steps(Split::Validation).len();
        let mut windows = vec![Vec::new(); 4];
        for (i, r) in returns.iter().enumerate() {
            windows[(i * 4 / total).min(3)].push(*r);
        }
        let expected = windows.iter().map(|w| sharpe(w)).sum::<f64>() / 4.0;
        let four = greedy_episode_in_windows(&mut Scripted::new(buy_and_hold), &data, KEY, Split::Validation, &env, 4)
            .unwrap();
        assert!((four.sharpe - expected).abs() < 1e-9, "{} vs {expected}", four.sharpe);
        let series = greedy_returns(&mut Scripted::new(buy_and_hold), &data, KEY, Split::Validation, &env).unwrap();
        assert_eq!(series, returns, "the per-bar returns a sweep compares trials on");
        assert_eq!(series.len(), total - 1);
        assert_eq!(
            four.return_pct, one.return_pct,
            "windows change the score, not the pass"
        );
    }

    #[test]
    fn trading_in_and_out_every_bar_counts_every_entry_and_pays_for_it() {
        let mut s = TestSettings::default();
        let data = synthetic_market(2000, 7, &s.sections);
        let run = |s: &TestSettings| {
            greedy_episode_in_windows(
                &mut Scripted::new(in_and_out),
                &data,
                KEY,
                Split::Validation,
                &s.env_config(),
                2,
            )
            .unwrap()
        };
        let paid = run(&s);
        assert!(
            paid.entries >= paid.steps / 2 - 1 && paid.trades + 1 >= paid.entries,
            "{paid:?}"
        );
        assert!((paid.exposure - 0.5).abs() < 0.02, "{paid:?}");
        // The same trades without the fixed fees: 25 + 35 INR a round trip
        // on 100,000 is 0.06 points of return each.
        s.sections.backtest.costs.entry_fixed = 0.0;
        s.sections.backtest.costs.exit_fixed = 0.0;
        let free = run(&s);
        assert_eq!(free.trades, paid.trades);
        let fees = free.return_pct - paid.return_pct;
        let expected = paid.trades as f64 * 0.06;
        assert!(
            (fees / expected - 1.0).abs() < 0.15,
            "fees cost {fees} points, about {expected} expected"
        );
        assert!(free.sharpe > paid.sharpe, "{} vs {}", free.sharpe, paid.sharpe);
    }

    #[test]
    fn in_the_engine_a_target_policy_holds_its_target_and_flat_closes() {
        let mut s = TestSettings::default();
        s.sections.env.actions = ActionSpace::Target;
        let data = synthetic_market(2000, 9, &s.sections);
        let test = data.bars(Split::Test);
        let slice = data.series.slice(test.start, test.end);
        let run = |rule: fn(usize, [bool; 5]) -> Action| {
            let mut agent = Scripted::new(rule);
            let mut strategy = AgentStrategy::new(&mut agent, &data, KEY, test.start, &s.env_config());
            let r = tradelab_sim::engine::run(&[&slice], &mut strategy, &s.sections.engine_config());
            assert!(strategy.decisions > 0 && strategy.error.is_none());
            r
        };
        fn always_long(_: usize, mask: [bool; 5]) -> Action {
            assert_eq!(mask, [true, true, false, false, true], "targets are always valid");
            Action::BuyLong
        }
        let long = run(always_long);
        assert_eq!((long.fills.len(), long.trades.len()), (1, 0), "one entry, then held");
        fn five_in_five_out(bar: usize, _: [bool; 5]) -> Action {
            if (bar / 5).is_multiple_of(2) {
                Action::BuyLong
            } else {
                Action::Hold
            }
        }
        let swing = run(five_in_five_out);
        assert!(
            swing.trades.len() >= slice.len() / 10 - 2,
            "{} round trips",
            swing.trades.len()
        );
        assert!(swing
            .fills
            .iter()
            .all(|f| matches!(f.action, Action::BuyLong | Action::CloseLong)));
    }
}
