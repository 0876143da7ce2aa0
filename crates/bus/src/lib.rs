//! Decision events and the bus that carries them off the decision path.
//!
//! Every decision, order, fill, risk verdict, breaker transition and model
//! version change of a trading session is an [`Event`] (schema in
//! `docs/events.md`): numbered per session and chained by hash to the one
//! before it, so a stored trail that was edited, reordered or cut shows it
//! ([`chain::verify`]).
//!
//! A session hands events to a [`Publisher`], which returns at once: its
//! own thread seals them (the hash chain) and sends them through a
//! [`Transport`]: the in-process bus ([`memory::MemoryBus`], nothing to
//! install) or NATS JetStream ([`jetstream::JetStream`], `bus.url`). When
//! the transport is slow or down they go to a bounded [`spool::Spool`] on
//! disk and are sent, in order, once it answers again. Consumers see each
//! event at least once and deduplicate by `(session, seq)`.

#![warn(missing_docs)]

pub mod chain;
pub mod event;
pub mod jetstream;
pub mod memory;
pub mod publisher;
pub mod settings;
pub mod spool;
pub mod transport;

pub use chain::{verify, ChainBreak, ChainHead};
pub use event::{
    BreakerEvent, DecisionEvent, DecisionInputs, Event, EventBody, FillEvent, ModelEvent, OrderEvent, RiskVerdict,
    SessionNote, SCHEMA_VERSION,
};
pub use publisher::{Publisher, PublisherOptions, PublisherStats};
pub use settings::BusSettings;
pub use spool::Spool;
pub use transport::{Transport, TransportError};
