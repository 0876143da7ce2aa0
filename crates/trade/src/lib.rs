//! Paper and live trading sessions.
//!
//! A [`session::Session`] takes each timestamp's bars from a
//! [`feed::Feed`], checks them by the loader's rules, passes them to the
//! [`broker::Broker`] (the [`paper::PaperBroker`] fills waiting orders on
//! them with the backtesting engine's models) and to the
//! [`decider::Decider`] (a trained agent or a rule strategy), and sends its
//! orders through the [`breakers`] to the broker, written first to the
//! [`journal`] under idempotent client order ids. Its state is checkpointed
//! (in the store, by the application's journal); a killed session resumes
//! from it and sends nothing twice.
//!
//! Feeds are a [`feed::ReplayFeed`] of recorded series or a live source,
//! Alpaca's bar stream ([`alpaca::AlpacaFeed`]); brokers the paper broker
//! or Alpaca's trading API ([`alpaca::AlpacaBroker`]).

#![warn(missing_docs)]

pub mod alpaca;
pub mod breakers;
pub mod broker;
pub mod correlation;
pub mod decider;
pub mod feed;
pub mod journal;
pub mod latency;
pub mod paper;
pub mod session;
pub mod settings;

pub use breakers::{BreakerKind, BreakerState, Breakers};
pub use broker::{AccountView, Broker, BrokerError, OrderState};
pub use decider::{AgentDecider, AgentMarket, Decider, StrategyDecider};
pub use feed::{Feed, FeedError, FeedStatus, RecordingFeed, ReplayFeed};
pub use journal::{Journal, JournalError, MemoryJournal};
pub use paper::PaperBroker;
pub use session::{Checkpoint, Session, SessionEnd, SessionError, SessionEvent, SessionOutcome, SessionSpec};
pub use settings::{BreakerPolicy, JournalDurability, TradeSettings};
