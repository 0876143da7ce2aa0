//! The hash chain: each event carries the hash of the one before it, so a
//! stored trail whose events were edited, removed, reordered or inserted
//! fails [`verify`] at the first place it was touched.

use crate::event::{Event, GENESIS_HASH};

/// Where a session's chain ends: its last event's number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The last event's sequence number (0: none yet).
    pub seq: u64,
    /// Its hash ([`GENESIS_HASH`] when there is none).
    pub hash: String,
}

impl ChainHead {
    /// The head of a session with no events.
    pub fn genesis() -> ChainHead {
        ChainHead {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        }
    }

    /// The head after `event`.
    pub fn of(event: &Event) -> ChainHead {
        ChainHead {
            seq: event.seq,
            hash: event.hash.clone(),
        }
    }
}

/// Where and how a trail fails verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session {session}, event {seq}: {problem}")]
pub struct ChainBreak {
    /// The session.
    pub session: String,
    /// The first event that does not verify.
    pub seq: u64,
    /// What is wrong with it.
    pub problem: String,
}

/// Checks one session's events, in sequence order, from `start` (the head
/// before the first of them: [`ChainHead::genesis`] for a whole trail):
/// numbers follow on, each links to its predecessor's hash, and each hash
/// is its content's. Returns the head after the last.
pub fn verify<'a>(start: ChainHead, events: impl IntoIterator<Item = &'a Event>) -> Result<ChainHead, ChainBreak> {
    let mut head = start;
    for e in events {
        let broken = |problem: String| ChainBreak {
            session: e.session.clone(),
            seq: e.seq,
            problem,
        };
        if e.seq != head.seq + 1 {
            return Err(broken(if e.seq <= head.seq {
                format!("out of order or repeated: it follows event {}", head.seq)
            } else {
                format!("events {} to {} are missing", head.seq + 1, e.seq - 1)
            }));
        }
        if e.prev_hash != head.hash {
            return Err(broken(format!(
                "its previous hash {} is not event {}'s hash {}: an event before it was changed or replaced",
                short(&e.prev_hash),
                head.seq,
                short(&head.hash)
            )));
        }
        let computed = e.computed_hash();
        if computed != e.hash {
            return Err(broken(format!(
                "its content hashes to {}, not the {} recorded: it was changed after it was written",
                short(&computed),
                short(&e.hash)
            )));
        }
        head = ChainHead::of(e);
    }
    Ok(head)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventBody, FillEvent};

    fn trail(n: u64) -> Vec<Event> {
        let mut head = ChainHead::genesis();
        (1..=n)
            .map(|seq| {
                let body = EventBody::Fill(FillEvent {
                    instrument: "X".into(),
                    action: "BUY_LONG".into(),
                    qty: seq as f64,
                    side: "buy".into(),
                    price: 100.0,
                    fee: 25.0,
                });
                let e = Event::seal("s", seq, seq as i64, None, body, &head.hash);
                head = ChainHead::of(&e);
                e
            })
            .collect()
    }

    #[test]
    fn an_untouched_trail_verifies_and_every_kind_of_tampering_is_found_where_it_happened() {
        let events = trail(6);
        assert_eq!(
            verify(ChainHead::genesis(), &events).unwrap(),
            ChainHead::of(&events[5])
        );
        // From the middle, given the head before it.
        assert!(verify(ChainHead::of(&events[2]), &events[3..]).is_ok());

        let mut edited = events.clone();
        if let EventBody::Fill(f) = &mut edited[3].event {
            f.price = 99.0;
        }
        let e = verify(ChainHead::genesis(), &edited).unwrap_err();
        assert_eq!(e.seq, 4);
        assert!(e.problem.contains("changed after it was written"), "{e}");

        // Edited and its hash recomputed: the next event's link breaks.
        edited[3].hash = edited[3].computed_hash();
        let e = verify(ChainHead::genesis(), &edited).unwrap_err();
        assert_eq!(e.seq, 5);
        assert!(e.problem.contains("previous hash"), "{e}");

        let mut removed = events.clone();
        removed.remove(2);
        let e = verify(ChainHead::genesis(), &removed).unwrap_err();
        assert_eq!((e.seq, e.problem.as_str()), (4, "events 3 to 3 are missing"));

        let mut swapped = events.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(ChainHead::genesis(), &swapped).unwrap_err().seq, 3);

        // The last event cut off is not detectable from the events alone:
        // the head kept elsewhere (the session's checkpoint) tells.
        assert_eq!(verify(ChainHead::genesis(), &events[..5]).unwrap().seq, 5);
    }
}
