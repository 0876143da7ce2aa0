//! Reading the audit trail back: listings with filters and pages, one
//! event by id, each session's hash chain verified against what is stored,
//! and a session's trail exported as JSON Lines. Async over a [`Store`], so
//! the server calls them as the command line does.

use std::io::Write;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use tradelab_bus::{verify, ChainBreak, ChainHead, Event};
use tradelab_store::audit_events::{AuditCursor, AuditEventRow, AuditFilter};
use tradelab_store::Store;

/// Events read at a time when walking a whole session.
const PAGE: i64 = 5_000;

/// A page of a listing.
pub struct Listing {
    /// The events, newest first.
    pub events: Vec<AuditEventRow>,
    /// The cursor for the next page, when there may be one.
    pub next: Option<String>,
}

/// Events matching `filter`, newest first, `limit` to a page, after the
/// cursor `after` (a listing's `next`).
pub async fn list(store: &Store, filter: &AuditFilter, after: Option<&str>, limit: i64) -> Result<Listing> {
    let cursor = after.map(AuditCursor::decode).transpose()?;
    let limit = limit.clamp(1, 1_000);
    let events = store.audit_events(filter, cursor.as_ref(), limit).await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| AuditCursor::after(e).encode()))
        .flatten();
    Ok(Listing { events, next })
}

/// `SESSION:SEQ` split, or what is wrong with it.
pub fn parse_event_id(id: &str) -> Result<(String, i64)> {
    let Some((session, seq)) = id.rsplit_once(':') else {
        bail!("`{id}` is not an event id: use SESSION:SEQ, as `tradelab audit list` shows them");
    };
    let seq: i64 = seq
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("`{id}`: the part after `:` must be the event's number (1, 2, ...)"))?;
    if session.is_empty() {
        bail!("`{id}`: the session is missing before `:`");
    }
    Ok((session.to_string(), seq))
}

/// One event by id (`SESSION:SEQ`), as stored and as parsed.
pub async fn show(store: &Store, id: &str) -> Result<(AuditEventRow, Event)> {
    let (session, seq) = parse_event_id(id)?;
    let row = store.audit_event(&session, seq).await?;
    let event = Event::from_json(row.event.as_bytes()).map_err(|e| anyhow::anyhow!("event {id}: {e}"))?;
    Ok((row, event))
}

/// A decision's explanation, if a forensics worker has stored one; the
/// JSON document as stored (a newer schema than this build reads is
/// refused).
pub async fn explanation(store: &Store, session: &str, seq: i64) -> Result<Option<serde_json::Value>> {
    let Some(row) = store.explanation(session, seq).await? else {
        return Ok(None);
    };
    let doc: serde_json::Value = serde_json::from_str(&row.explanation).with_context(|| {
        format!("the explanation of {session}:{seq} is damaged; delete its row and run `tradelab forensics`")
    })?;
    let schema = doc["schema"].as_u64().unwrap_or(0);
    if schema > super::explain::EXPLANATION_SCHEMA as u64 {
        bail!("the explanation of {session}:{seq} has schema {schema}, newer than this build reads; upgrade tradelab");
    }
    let mut doc = doc;
    doc["weights_sha256"] = serde_json::Value::String(row.weights_sha256);
    doc["explained_ms"] = serde_json::Value::from(row.explained_ms);
    Ok(Some(doc))
}

/// What verifying one session's trail found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The session.
    pub session: String,
    /// Events checked (up to the first break).
    pub events: u64,
    /// Where the verified part ends.
    pub head: ChainHead,
    /// The first problem, if any.
    pub problem: Option<ChainBreak>,
}

/// Verifies session `session`'s stored trail: each event parses, its
/// columns agree with it, and the hash chain holds from the first event
/// (or, once retention archived a prefix, from the archived head) to the
/// last. `events` counts the stored events checked.
pub async fn verify_session(store: &Store, session: &str) -> Result<Verification> {
    let mut head = match store.audit_archived_head(session).await? {
        Some((seq, hash)) => ChainHead { seq: seq as u64, hash },
        None => ChainHead::genesis(),
    };
    let mut events = 0;
    loop {
        let rows = store.session_audit_events(session, head.seq as i64, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        let mut parsed = Vec::with_capacity(rows.len());
        for r in &rows {
            let broken = |problem: String| ChainBreak {
                session: session.to_string(),
                seq: r.seq as u64,
                problem,
            };
            let e = match Event::from_json(r.event.as_bytes()) {
                Ok(e) => e,
                Err(why) => return Ok(stopped(session, events, head, broken(format!("stored JSON: {why}")))),
            };
            if e.seq != r.seq as u64 || e.session != r.session_id || e.hash != r.hash || e.kind() != r.kind {
                return Ok(stopped(
                    session,
                    events,
                    head,
                    broken("the row's columns (session, number, kind, hash) disagree with its event".into()),
                ));
            }
            parsed.push(e);
        }
        match verify(head.clone(), &parsed) {
            Ok(h) => {
                events += parsed.len() as u64;
                head = h;
            }
            Err(b) => {
                let good = parsed.iter().take_while(|e| e.seq < b.seq).count() as u64;
                let last_good = parsed.iter().take_while(|e| e.seq < b.seq).last().map(ChainHead::of);
                return Ok(stopped(session, events + good, last_good.unwrap_or(head), b));
            }
        }
    }
    Ok(Verification {
        session: session.to_string(),
        events,
        head,
        problem: None,
    })
}

fn stopped(session: &str, events: u64, head: ChainHead, problem: ChainBreak) -> Verification {
    Verification {
        session: session.to_string(),
        events,
        head,
        problem: Some(problem),
    }
}

/// Every session's verification, most recently active first.
pub async fn verify_all(store: &Store) -> Result<Vec<Verification>> {
    let mut out = Vec::new();
    for (session, _, _) in store.audit_sessions(i64::MAX).await? {
        out.push(verify_session(store, &session).await?);
    }
    Ok(out)
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// Events written.
    pub events: u64,
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 (hex) of what was written.
    pub sha256: String,
}

/// Writes session `session`'s trail to `out` as JSON Lines, one event per
/// line as published, in order. Refuses a session with no events.
pub async fn export(store: &Store, session: &str, out: &mut dyn Write) -> Result<Exported> {
    let mut after = 0;
    let mut hasher = Sha256::new();
    let (mut events, mut bytes) = (0u64, 0u64);
    loop {
        let rows = store.session_audit_events(session, after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in &rows {
            let line = format!("{}\n", r.event);
            out.write_all(line.as_bytes()).context("writing the export")?;
            hasher.update(line.as_bytes());
            bytes += line.len() as u64;
            events += 1;
        }
    }
    if events == 0 {
        bail!("session {session} has no events in the audit trail (list them with `tradelab audit list`)");
    }
    out.flush().context("writing the export")?;
    Ok(Exported {
        events,
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Verifies an archive written by retention (zstd-compressed JSON Lines),
/// streamed: every line is an event and the chain holds from `start`.
pub fn verify_archive(path: &std::path::Path, start: ChainHead) -> Result<Verification> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(super::retention::open_archive(path)?);
    let mut head = start;
    let mut events = 0u64;
    let mut session = String::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("decompressing {}", path.display()))?;
        let e =
            Event::from_json(line.as_bytes()).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), n + 1))?;
        if session.is_empty() {
            session = e.session.clone();
        }
        match verify(head.clone(), std::iter::once(&e)) {
            Ok(h) => {
                head = h;
                events += 1;
            }
            Err(b) => return Ok(stopped(&session, events, head, b)),
        }
    }
    Ok(Verification {
        session,
        events,
        head,
        problem: None,
    })
}
