//! Paper trading a trained agent on a replayed feed: its market's bars
//! arrive one at a time, at a chosen speed, and each goes through the
//! agent, the risk layer and the paper broker, which is the backtesting
//! engine stepped bar by bar ([`Stepper`]). The same model over the same
//! bars therefore trades exactly as `evaluate` reports it.
//!
//! What is not here yet (issue 21): live feeds and real brokers, the
//! session's state in the store and recovery after a kill, circuit
//! breakers beyond the risk layer's, several instruments in one session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};
use tradelab_agents::evaluate::AgentStrategy;
use tradelab_agents::trainer::TrainingMarket;
use tradelab_agents::Agent;
use tradelab_core::time::format_date;
use tradelab_env::{EnvConfig, Split};
use tradelab_sim::account::Fill;
use tradelab_sim::engine::{BacktestResult, Stepper};
use tradelab_sim::strategy::Strategy;

/// How to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay {
    /// The first bar to trade, UTC milliseconds (the first bar at or after
    /// it); `None`: the first bar of the test split, so the agent trades
    /// bars it was neither trained nor selected on.
    pub from: Option<i64>,
    /// Times faster than real time (a daily bar every second at 86,400);
    /// 0 replays as fast as the machine allows.
    pub speed: f64,
}

/// What the session reports as it goes.
#[derive(Debug)]
pub enum PaperEvent<'a> {
    /// An order filled.
    Fill(&'a Fill),
    /// A bar was processed: its index in the replay, timestamp and the
    /// marked equity after it.
    Bar {
        /// Bars processed so far, minus one.
        index: usize,
        /// The bar's timestamp.
        ts: i64,
        /// Equity after the bar.
        equity: f64,
    },
}

/// The end of a paper session.
#[derive(Debug)]
pub struct PaperOutcome {
    /// The session's fills, trades and curve, as a backtest reports them.
    pub result: BacktestResult<'static>,
    /// The market's bar index the replay started at.
    pub start: usize,
    /// True when an interrupt stopped it before the last bar.
    pub interrupted: bool,
    /// Decisions the agent made.
    pub decisions: usize,
    /// Bar in to orders out (the agent's decision, the risk layer and the
    /// paper broker) per bar, in microseconds: median and 99th percentile.
    pub latency_us: (f64, f64),
}

/// Replays `market` from `replay.from` to its last bar through `agent`.
/// `interrupt` (Ctrl-C) stops it after the bar in progress; the outcome
/// then covers the bars seen.
pub fn paper_replay(
    agent: &mut dyn Agent,
    market: &TrainingMarket,
    env: &EnvConfig,
    replay: Replay,
    interrupt: Option<&AtomicBool>,
    mut on_event: impl FnMut(PaperEvent<'_>),
) -> Result<PaperOutcome> {
    let data = &market.data;
    let series = &data.series;
    let start = match replay.from {
        Some(t) => series.ts.partition_point(|x| *x < t),
        None => data.bars(Split::Test).start,
    };
    if start >= series.len() {
        bail!(
            "nothing to replay: {} ends on {}, before the start",
            series.instrument,
            series.ts.last().map_or("-".into(), |t| format_date(*t))
        );
    }
    if !(replay.speed.is_finite() && replay.speed >= 0.0) {
        bail!(
            "--speed {} is not a speed: use 0 (as fast as possible) or a positive factor",
            replay.speed
        );
    }
    let feed = series.slice(start, series.len());
    let mut strategy = AgentStrategy::new(agent, data, market.key, start, env);
    let mut stepper = Stepper::new(env.engine.clone(), &[&feed], &mut strategy);
    let stop = || interrupt.is_some_and(|f| f.load(Ordering::SeqCst));
    let mut interrupted = false;
    let mut latency = Vec::with_capacity(feed.len());
    for k in 0..feed.len() {
        if k > 0 && replay.speed > 0.0 {
            let wait = (feed.ts[k] - feed.ts[k - 1]).max(0) as f64 / replay.speed;
            if pace(Duration::from_secs_f64(wait / 1000.0), &stop) {
                interrupted = true;
                break;
            }
        }
        if stop() {
            interrupted = true;
            break;
        }
        let before = stepper.broker().account().fills.len();
        let arrived = std::time::Instant::now();
        stepper.on_bar(&mut strategy, 0, feed.bar(k));
        stepper.end_timestamp(feed.ts[k]);
        latency.push(arrived.elapsed().as_secs_f64() * 1e6);
        if let Some(e) = strategy.error.take() {
            return Err(anyhow::Error::new(e).context(format!(
                "the model failed deciding on {} {}",
                feed.instrument,
                format_date(feed.ts[k])
            )));
        }
        for f in &stepper.broker().account().fills[before..] {
            on_event(PaperEvent::Fill(f));
        }
        let equity = stepper.curve().1.last().copied().unwrap_or(f64::NAN);
        on_event(PaperEvent::Bar {
            index: k,
            ts: feed.ts[k],
            equity,
        });
    }
    let decisions = strategy.decisions;
    let name = strategy.name();
    Ok(PaperOutcome {
        result: stepper.into_result(name, &[&feed]),
        start,
        interrupted,
        decisions,
        latency_us: (percentile(&mut latency, 0.5), percentile(&mut latency, 0.99)),
    })
}

/// The `q` quantile of `values` (nearest rank; NaN when empty).
fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Sleeps `wait` in short steps; true when `stop` says to stop meanwhile.
fn pace(wait: Duration, stop: &impl Fn() -> bool) -> bool {
    const STEP: Duration = Duration::from_millis(50);
    let mut left = wait;
    while left > Duration::ZERO {
        if stop() {
            return true;
        }
        let nap = left.min(STEP);
        std::thread::sleep(nap);
        left -= nap;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!((percentile(&mut v, 0.5), percentile(&mut v, 0.99)), (50.0, 99.0));
        assert_eq!(percentile(&mut [7.0], 0.99), 7.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn pacing_sleeps_in_steps_and_stops_when_asked() {
        let t = std::time::Instant::now();
        assert!(!pace(Duration::from_millis(120), &|| false));
        assert!(t.elapsed() >= Duration::from_millis(120));
        let t = std::time::Instant::now();
        assert!(pace(Duration::from_secs(60), &|| true));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
