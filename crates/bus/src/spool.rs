//! The local spool: events the bus could not take, appended to a file (one
//! JSON line each) and sent, in order, when it answers again. Bounded: past
//! `max_bytes` it refuses more, and the publisher counts what it drops
//! rather than fill the disk. Written to the operating system at once, so a
//! killed process loses nothing it had spooled.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::chain::ChainHead;
use crate::event::Event;

/// Why the spool could not take or give events.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool holds `max_bytes` already.
    #[error("the event spool {path} is full ({bytes} bytes, bus.spool_max_mb): the bus has been unreachable too long")]
    Full {
        /// The spool file.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// The disk refused.
    #[error("the event spool {path}: {source}")]
    Io {
        /// The spool file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// One session's spool file.
pub struct Spool {
    path: PathBuf,
    max_bytes: u64,
    bytes: u64,
    events: usize,
    file: Option<File>,
}

impl Spool {
    /// The spool of `session` in `dir` (created if missing), with what an
    /// earlier process left in it.
    pub fn open(dir: &Path, session: &str, max_bytes: u64) -> Result<Spool, SpoolError> {
        let path = dir.join(format!("{session}.jsonl"));
        let io = |source| SpoolError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut spool = Spool {
            path: path.clone(),
            max_bytes,
            bytes: 0,
            events: 0,
            file: None,
        };
        if path.exists() {
            // A line cut short by a kill would swallow the next event
            // appended after it: cut the file back to its last full line.
            let text = std::fs::read(&path).map_err(io)?;
            let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if whole < text.len() {
                let f = OpenOptions::new().write(true).open(&path).map_err(io)?;
                f.set_len(whole as u64).map_err(io)?;
            }
            spool.bytes = std::fs::metadata(&path).map_err(io)?.len();
            spool.events = spool.read()?.len();
        }
        Ok(spool)
    }

    fn io(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.events
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Appends `events`; all or none.
    pub fn push(&mut self, events: &[Event]) -> Result<(), SpoolError> {
        let mut text = String::new();
        for e in events {
            text.push_str(&e.to_json());
            text.push('\n');
        }
        if self.bytes + text.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full {
                path: self.path.display().to_string(),
                bytes: self.bytes,
            });
        }
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| self.io(e))?;
            self.file = Some(file);
        }
        let written = self.file.as_mut().map(|f| f.write_all(text.as_bytes()));
        if let Some(Err(e)) = written {
            return Err(self.io(e));
        }
        self.bytes += text.len() as u64;
        self.events += events.len();
        Ok(())
    }

    /// The events waiting, oldest first. A last line cut short (the process
    /// was killed mid-write) is left out: its event was never acknowledged
    /// as spooled.
    pub fn read(&self) -> Result<Vec<Event>, SpoolError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mut events = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| self.io(e))?;
            if let Ok(e) = Event::from_json(line.as_bytes()) {
                events.push(e);
            }
        }
        Ok(events)
    }

    /// The last event of the spool, if any: where the session's chain ends
    /// when it is newer than what the bus holds.
    pub fn head(&self) -> Result<Option<ChainHead>, SpoolError> {
        Ok(self.read()?.last().map(ChainHead::of))
    }

    /// Empties the spool (its events were delivered).
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(e)),
        }
        self.bytes = 0;
        self.events = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventBody, SessionNote, GENESIS_HASH};

    fn event(seq: u64) -> Event {
        let body = EventBody::Session(SessionNote {
            note: "start".into(),
            detail: serde_json::json!({"n": seq}),
        });
        Event::seal("s", seq, 0, None, body, GENESIS_HASH)
    }

    #[test]
    fn spooled_events_survive_a_new_process_and_a_cut_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        spool.push(&[event(1), event(2)]).unwrap();
        drop(spool);
        // Killed mid-write: half a line at the end.
        let path = dir.path().join("s.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&event(3).to_json().as_bytes()[..40]).unwrap();
        drop(f);
        let spool = Spool::open(dir.path(), "s", 1 << 20).unwrap();
        let seqs: Vec<u64> = spool.read().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2]);
        // What is appended next is not merged into the cut line.
        let mut spool = spool;
        spool.push(&[event(3)]).unwrap();
        let seqs: Vec<u64> = spool.read().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(spool.len(), 3);
        assert_eq!(spool.head().unwrap().unwrap().seq, 3);
        spool.clear().unwrap();
        assert!(spool.is_empty() && spool.read().unwrap().is_empty());
    }

    #[test]
    fn a_full_spool_refuses_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let one = event(1).to_json().len() as u64 + 1;
        let mut spool = Spool::open(dir.path(), "s", one * 2).unwrap();
        spool.push(&[event(1), event(2)]).unwrap();
        let e = spool.push(&[event(3)]).unwrap_err();
        assert!(
            e.to_string().contains("full") && e.to_string().contains("bus.spool_max_mb"),
            "{e}"
        );
        assert_eq!(spool.len(), 2);
    }
}
