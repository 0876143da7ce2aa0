//! Where a publisher sends sealed events.

use crate::chain::ChainHead;
use crate::event::Event;

/// Why a transport could not take events; the publisher spools them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// A bus: takes events in order, and says where a session's chain ends.
pub trait Transport: Send {
    /// For messages: `in-process`, `NATS JetStream at ...`.
    fn describe(&self) -> String;

    /// Delivers `events`, in order; `Ok` once the bus holds all of them (a
    /// JetStream acknowledgement). On an error none may be assumed
    /// delivered: they are sent again later, and consumers drop the copies.
    fn send(&mut self, events: &[Event]) -> Result<(), TransportError>;

    /// The last event of `session` the bus holds, if it keeps them
    /// (JetStream does; the in-process bus forgets at exit).
    fn head(&mut self, session: &str) -> Result<Option<ChainHead>, TransportError>;

    /// Waits at most `within` for the transport to be able to send (a
    /// client reconnecting); true when it can. Used once, as the
    /// publisher closes with events still spooled.
    fn ready(&mut self, within: std::time::Duration) -> bool {
        let _ = within;
        true
    }
}
