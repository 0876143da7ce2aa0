//! The in-process bus: events go to this process's subscribers (the audit
//! writer, forensics) through channels. Nothing to install; nothing kept
//! across a restart (the audit store is the record).

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::chain::ChainHead;
use crate::event::Event;
use crate::transport::{Transport, TransportError};

/// A bus within one process; clones share the subscribers.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    subscribers: Vec<Sender<Arc<Event>>>,
    heads: HashMap<String, ChainHead>,
}

impl MemoryBus {
    /// A bus with no subscribers.
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    /// A receiver of every event sent from now on.
    pub fn subscribe(&self) -> Receiver<Arc<Event>> {
        let (tx, rx) = channel();
        self.lock().subscribers.push(tx);
        rx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A subscriber panicking elsewhere does not make the list invalid.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Transport for MemoryBus {
    fn describe(&self) -> String {
        "the in-process bus".into()
    }

    fn send(&mut self, events: &[Event]) -> Result<(), TransportError> {
        let mut inner = self.lock();
        for e in events {
            let e = Arc::new(e.clone());
            // A subscriber that hung up is dropped; the others still get it.
            inner.subscribers.retain(|s| s.send(Arc::clone(&e)).is_ok());
            inner.heads.insert(e.session.clone(), ChainHead::of(&e));
        }
        Ok(())
    }

    fn head(&mut self, session: &str) -> Result<Option<ChainHead>, TransportError> {
        Ok(self.lock().heads.get(session).cloned())
    }
}
