//! Circuit breakers: one per kind of fault, each closed (trading), open
//! (tripped: its policy applies, no orders go out) or half-open (on
//! probation: orders go out again).
//!
//! The rules, counted in timestamps the session processed:
//! - a fault trips a closed breaker: it opens for `cooldown_bars`;
//! - an open breaker whose cooldown passed goes half-open (a fault that is
//!   still present, such as a stalled feed, keeps re-tripping it instead);
//! - a fault while half-open reopens it with the cooldown doubled (up to 64
//!   times the setting), so a flapping fault is held off longer each time;
//! - `probation_bars` clean timestamps half-open close it and reset the
//!   cooldown.

use serde::{Deserialize, Serialize};

use crate::settings::{BreakerPolicy, TradeSettings};

/// What a breaker guards against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerKind {
    /// No bar for too long, or the feed failed.
    StaleFeed,
    /// An instrument skipped bars.
    DataGap,
    /// A bar broke the loader's rules.
    BadBar,
    /// The model kept failing.
    ModelErrors,
    /// Decisions kept exceeding the latency budget.
    Latency,
    /// The risk layer's drawdown limit.
    Drawdown,
    /// The broker kept rejecting orders or the connection failed.
    Broker,
}

impl BreakerKind {
    /// Every kind, in the order states are kept.
    pub const ALL: [BreakerKind; 7] = [
        BreakerKind::StaleFeed,
        BreakerKind::DataGap,
        BreakerKind::BadBar,
        BreakerKind::ModelErrors,
        BreakerKind::Latency,
        BreakerKind::Drawdown,
        BreakerKind::Broker,
    ];

    /// As events and the terminal name it.
    pub fn name(self) -> &'static str {
        match self {
            BreakerKind::StaleFeed => "stale_feed",
            BreakerKind::DataGap => "data_gap",
            BreakerKind::BadBar => "bad_bar",
            BreakerKind::ModelErrors => "model_errors",
            BreakerKind::Latency => "latency",
            BreakerKind::Drawdown => "drawdown",
            BreakerKind::Broker => "broker",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Its policy under `settings`.
    pub fn policy(self, settings: &TradeSettings) -> BreakerPolicy {
        let p = &settings.policies;
        match self {
            BreakerKind::StaleFeed => p.stale_feed,
            BreakerKind::DataGap => p.data_gap,
            BreakerKind::BadBar => p.bad_bar,
            BreakerKind::ModelErrors => p.model_errors,
            BreakerKind::Latency => p.latency,
            BreakerKind::Drawdown => p.drawdown,
            BreakerKind::Broker => p.broker,
        }
    }
}

/// Where one breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Trading.
    Closed,
    /// Tripped at timestamp `since`; half-open after `cooldown` more.
    Open {
        /// The session timestamp count when it opened.
        since: u64,
        /// Timestamps it stays open.
        cooldown: u64,
    },
    /// On probation since `since`; closes after the probation, reopens
    /// with `cooldown` doubled on a fault.
    HalfOpen {
        /// When probation started.
        since: u64,
        /// The cooldown it opened with last.
        cooldown: u64,
    },
}

impl BreakerState {
    /// As the terminal and the API show it.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }
}

/// A breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Which breaker.
    pub kind: BreakerKind,
    /// Before.
    pub from: BreakerState,
    /// After.
    pub to: BreakerState,
}

/// Every breaker of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakers {
    states: [BreakerState; 7],
    cooldown: u64,
    probation: u64,
}

impl Breakers {
    /// All closed, with `settings`' cooldown and probation.
    pub fn new(settings: &TradeSettings) -> Self {
        Breakers {
            states: [BreakerState::Closed; 7],
            cooldown: settings.cooldown_bars as u64,
            probation: settings.probation_bars as u64,
        }
    }

    /// `kind`'s state.
    pub fn state(&self, kind: BreakerKind) -> BreakerState {
        self.states[kind.index()]
    }

    /// True when no breaker is open: orders may go out.
    pub fn allow_orders(&self) -> bool {
        !self.states.iter().any(|s| matches!(s, BreakerState::Open { .. }))
    }

    /// The open breakers.
    pub fn open(&self) -> impl Iterator<Item = BreakerKind> + '_ {
        BreakerKind::ALL
            .into_iter()
            .filter(|k| matches!(self.state(*k), BreakerState::Open { .. }))
    }

    /// A fault of `kind` at timestamp `now`; the transition when it
    /// opened (from closed or half-open), `None` when it was open already
    /// (its cooldown restarts: the fault is still there).
    pub fn trip(&mut self, kind: BreakerKind, now: u64) -> Option<Transition> {
        let from = self.states[kind.index()];
        let to = match from {
            BreakerState::Closed => BreakerState::Open {
                since: now,
                cooldown: self.cooldown,
            },
            BreakerState::HalfOpen { cooldown, .. } => BreakerState::Open {
                since: now,
                cooldown: (cooldown * 2).min(self.cooldown * 64),
            },
            BreakerState::Open { cooldown, .. } => {
                self.states[kind.index()] = BreakerState::Open { since: now, cooldown };
                return None;
            }
        };
        self.states[kind.index()] = to;
        Some(Transition { kind, from, to })
    }

    /// Time passes to timestamp `now`: cooldowns and probations that ended
    /// move their breakers on; each change goes to `out`.
    pub fn advance(&mut self, now: u64, out: &mut Vec<Transition>) {
        for kind in BreakerKind::ALL {
            let from = self.states[kind.index()];
            let to = match from {
                BreakerState::Open { since, cooldown } if now >= since + cooldown => {
                    BreakerState::HalfOpen { since: now, cooldown }
                }
                BreakerState::HalfOpen { since, .. } if now >= since + self.probation => BreakerState::Closed,
                _ => continue,
            };
            self.states[kind.index()] = to;
            out.push(Transition { kind, from, to });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers() -> Breakers {
        Breakers::new(&TradeSettings {
            cooldown_bars: 3,
            probation_bars: 2,
            ..TradeSettings::default()
        })
    }

    #[test]
    fn a_fault_opens_then_probation_then_closes() {
        let mut b = breakers();
        let mut out = Vec::new();
        let t = b.trip(BreakerKind::BadBar, 10).unwrap();
        assert_eq!((t.from, t.to.name()), (BreakerState::Closed, "open"));
        assert!(!b.allow_orders());
        assert_eq!(b.open().collect::<Vec<_>>(), vec![BreakerKind::BadBar]);
        b.advance(12, &mut out);
        assert!(out.is_empty(), "still cooling down");
        b.advance(13, &mut out);
        assert_eq!(out.pop().unwrap().to.name(), "half_open");
        assert!(b.allow_orders(), "probation lets orders through");
        b.advance(14, &mut out);
        assert!(out.is_empty());
        b.advance(15, &mut out);
        assert_eq!(out.pop().unwrap().to, BreakerState::Closed);
    }

    #[test]
    fn a_fault_on_probation_reopens_for_twice_as_long_and_a_lasting_one_restarts_the_cooldown() {
        let mut b = breakers();
        let mut out = Vec::new();
        b.trip(BreakerKind::Broker, 0);
        b.advance(3, &mut out);
        let t = b.trip(BreakerKind::Broker, 4).unwrap();
        assert_eq!(t.to, BreakerState::Open { since: 4, cooldown: 6 });
        // Still faulty while open: no transition, the cooldown restarts.
        assert_eq!(b.trip(BreakerKind::Broker, 8), None);
        out.clear();
        b.advance(13, &mut out);
        assert!(out.is_empty());
        b.advance(14, &mut out);
        assert_eq!(out[0].to.name(), "half_open");
        // Other breakers are independent.
        assert_eq!(b.state(BreakerKind::Latency), BreakerState::Closed);
    }

    #[test]
    fn cooldowns_stop_doubling_at_64_times() {
        let mut b = breakers();
        let mut out = Vec::new();
        let mut now = 0;
        b.trip(BreakerKind::Latency, now);
        for _ in 0..10 {
            let BreakerState::Open { since, cooldown } = b.state(BreakerKind::Latency) else {
                panic!("open")
            };
            now = since + cooldown;
            b.advance(now, &mut out);
            b.trip(BreakerKind::Latency, now);
        }
        assert!(matches!(
            b.state(BreakerKind::Latency),
            BreakerState::Open { cooldown: 192, .. }
        ));
    }
}
