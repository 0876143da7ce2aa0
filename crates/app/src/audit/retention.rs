//! Retention of the audit trail (`audit.retention_years`, 7 by default):
//! each session's events made before the cutoff (whole months) are written,
//! in order, to a zstd-compressed JSON Lines file under
//! `audit.archive_dir/<session>/`, read back, and listed in
//! `manifest.json` with the file's SHA-256 and the chain head at its end.
//! The decisions' explanations go to a file beside it, listed with it.
//! Only once every session's files are written are the events (and their
//! explanations) removed from the store, in one transaction with the archives' records (on PostgreSQL
//! whole months at a time: the table is partitioned by month). The
//! remaining trail verifies from the archived head; an archive verifies on
//! its own (`tradelab audit verify --archive FILE`). A prefix whose chain
//! does not verify stops the pass before anything is removed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tradelab_bus::{verify, ChainHead, Event};
use tradelab_core::time::{civil_from_days, days_from_civil, format_date};
use tradelab_store::audit_events::AuditArchive;
use tradelab_store::{AuditSettings, Store};

/// Events read at a time.
const PAGE: i64 = 5_000;

/// One archive, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    /// The session.
    pub session: String,
    /// Its first and last event in the file.
    pub first_seq: u64,
    /// The last event in the file.
    pub last_seq: u64,
    /// The hash the first event chains to.
    pub start_hash: String,
    /// The last event's hash (where the stored remainder starts).
    pub head_hash: String,
    /// Events in the file.
    pub events: u64,
    /// The file, relative to the archive folder.
    pub file: String,
    /// SHA-256 of the compressed file.
    pub sha256: String,
    /// SHA-256 of the uncompressed JSON Lines.
    pub content_sha256: String,
    /// The cutoff it was archived under, UTC milliseconds.
    pub cutoff_ms: i64,
    /// The archived decisions' explanations, when any were stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanations: Option<ExplanationsArchive>,
}

/// The explanations of an archive's decisions, in a file beside it: one
/// JSON line per decision (`session`, `seq`, `at_ms`, `model`,
/// `weights_sha256`, `explained_ms`, `explanation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplanationsArchive {
    /// The file, relative to the archive folder.
    pub file: String,
    /// Explanations in it.
    pub count: u64,
    /// SHA-256 of the compressed file.
    pub sha256: String,
    /// SHA-256 of the uncompressed JSON Lines.
    pub content_sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every archive, oldest first.
    pub archives: Vec<ArchiveEntry>,
}

/// What a retention pass did (or, dry, would do).
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionReport {
    /// Events made before this are archived: the first day of a month.
    pub cutoff_ms: i64,
    /// The archives written.
    pub archived: Vec<ArchiveEntry>,
    /// Events removed from the store.
    pub removed: u64,
}

/// The first millisecond of the month `years` (in whole months) before
/// the month of `now_ms`: events made before it have been kept at least
/// that long.
pub fn cutoff(now_ms: i64, years: f64) -> i64 {
    let (y, m, _) = civil_from_days(now_ms.div_euclid(86_400_000));
    let months = y * 12 + i64::from(m) - 1 - (years * 12.0).round() as i64;
    days_from_civil(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1) * 86_400_000
}

/// Archives every session's events made before the cutoff for `now_ms`;
/// `dry_run` only says what would go.
pub async fn retain(store: &Store, settings: &AuditSettings, now_ms: i64, dry_run: bool) -> Result<RetentionReport> {
    let cutoff_ms = cutoff(now_ms, settings.retention_years);
    let dir = &settings.archive_dir;
    let mut report = RetentionReport {
        cutoff_ms,
        archived: Vec::new(),
        removed: 0,
    };
    // First every file, read back; nothing is removed unless all are.
    for (session, through) in store.audit_sessions_before(cutoff_ms).await? {
        let start = match store.audit_archived_head(&session).await? {
            Some((seq, hash)) => ChainHead { seq: seq as u64, hash },
            None => ChainHead::genesis(),
        };
        let entry = archive_session(store, dir, &session, start, through, cutoff_ms, dry_run).await?;
        report.archived.push(entry);
    }
    if dry_run || report.archived.is_empty() {
        return Ok(report);
    }
    let mut manifest = read_manifest(dir)?;
    for entry in &report.archived {
        // A pass that failed after writing its files wrote the same names.
        manifest.archives.retain(|a| a.file != entry.file);
        manifest.archives.push(entry.clone());
    }
    write_durably(
        &dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    let records: Vec<AuditArchive> = report
        .archived
        .iter()
        .map(|a| AuditArchive {
            session_id: a.session.clone(),
            through_seq: a.last_seq as i64,
            head_hash: a.head_hash.clone(),
            file: a.file.clone(),
            sha256: a.sha256.clone(),
            events: a.events as i64,
        })
        .collect();
    report.removed = store.finish_audit_retention(&records, cutoff_ms).await?;
    Ok(report)
}

async fn archive_session(
    store: &Store,
    dir: &Path,
    session: &str,
    start: ChainHead,
    through: i64,
    cutoff_ms: i64,
    dry_run: bool,
) -> Result<ArchiveEntry> {
    let name = format!("{session}/{:08}-{:08}.jsonl.zst", start.seq + 1, through);
    let path = dir.join(&name);
    // The prefix, in order, its chain checked from where the last archive
    // ended, streamed to a plain file (a session's years need not fit in
    // memory), then compressed file to file.
    let plain = path.with_extension("jsonl.partial");
    let mut out: Option<std::io::BufWriter<std::fs::File>> = None;
    if !dry_run {
        let parent = plain.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {} (audit.archive_dir)", parent.display()))?;
        let f = std::fs::File::create(&plain).with_context(|| format!("creating {}", plain.display()))?;
        out = Some(std::io::BufWriter::new(f));
    }
    let mut content = Sha256::new();
    let mut head = start.clone();
    let mut after = start.seq as i64;
    let mut events = 0u64;
    while after < through {
        let rows = store
            .session_audit_events(session, after, PAGE.min(through - after))
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let parsed: Vec<Event> = rows
            .iter()
            .map(|r| {
                Event::from_json(r.event.as_bytes()).map_err(|e| anyhow::anyhow!("event {session}:{}: {e}", r.seq))
            })
            .collect::<Result<_>>()?;
        head = verify(head, &parsed).with_context(|| {
            format!("session {session}'s trail does not verify, so nothing is archived; `tradelab audit verify --session {session}` names the event")
        })?;
        for r in &rows {
            content.update(r.event.as_bytes());
            content.update(b"\n");
            if let Some(w) = out.as_mut() {
                w.write_all(r.event.as_bytes())
                    .and_then(|_| w.write_all(b"\n"))
                    .with_context(|| format!("writing {}", plain.display()))?;
            }
        }
        events += rows.len() as u64;
    }
    if head.seq as i64 != through {
        bail!(
            "session {session}: events up to {through} were expected, the trail ends at {}",
            head.seq
        );
    }
    let mut entry = ArchiveEntry {
        session: session.to_string(),
        first_seq: start.seq + 1,
        last_seq: head.seq,
        start_hash: start.hash,
        head_hash: head.hash.clone(),
        events,
        file: name,
        sha256: String::new(),
        content_sha256: hex::encode(content.finalize()),
        cutoff_ms,
        explanations: None,
    };
    let base = format!("{session}/{:08}-{:08}", start.seq + 1, through);
    entry.explanations = archive_explanations(store, dir, &base, session, start.seq as i64, through, dry_run).await?;
    let Some(w) = out else {
        return Ok(entry);
    };
    entry.sha256 = seal(w, &plain, &path, &entry.content_sha256)?;
    Ok(entry)
}

/// Writes the explanations of session `session`'s decisions `after + 1 ..=
/// through` to `<base>.explanations.jsonl.zst`, read back like the events;
/// `None` when none was stored.
async fn archive_explanations(
    store: &Store,
    dir: &Path,
    base: &str,
    session: &str,
    after: i64,
    through: i64,
    dry_run: bool,
) -> Result<Option<ExplanationsArchive>> {
    let name = format!("{base}.explanations.jsonl.zst");
    let path = dir.join(&name);
    let plain = path.with_extension("jsonl.partial");
    let mut out: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut content = Sha256::new();
    let (mut next, mut count) = (after, 0u64);
    loop {
        let rows = store.session_explanations(session, next, through, PAGE).await?;
        let Some(last) = rows.last() else { break };
        next = last.seq;
        if out.is_none() && !dry_run {
            let f = std::fs::File::create(&plain).with_context(|| format!("creating {}", plain.display()))?;
            out = Some(std::io::BufWriter::new(f));
        }
        for r in &rows {
            let explanation: serde_json::Value =
                serde_json::from_str(&r.explanation).unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({
                "session": r.session_id, "seq": r.seq, "at_ms": r.at_ms, "model": r.model,
                "weights_sha256": r.weights_sha256, "explained_ms": r.explained_ms, "explanation": explanation,
            })
            .to_string();
            content.update(line.as_bytes());
            content.update(b"\n");
            if let Some(w) = out.as_mut() {
                w.write_all(line.as_bytes())
                    .and_then(|_| w.write_all(b"\n"))
                    .with_context(|| format!("writing {}", plain.display()))?;
            }
        }
        count += rows.len() as u64;
    }
    if count == 0 {
        return Ok(None);
    }
    let content_sha256 = hex::encode(content.finalize());
    let sha256 = match out {
        Some(w) => seal(w, &plain, &path, &content_sha256)?,
        None => String::new(),
    };
    Ok(Some(ExplanationsArchive {
        file: name,
        count,
        sha256,
        content_sha256,
    }))
}

/// Finishes an archive: the plain file `plain` (written through `w`) synced,
/// compressed to `path` file to file, read back against `content_sha256`,
/// and renamed into place. Returns the compressed file's SHA-256.
fn seal(w: std::io::BufWriter<std::fs::File>, plain: &Path, path: &Path, content_sha256: &str) -> Result<String> {
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {}", plain.display(), e.error()))?
        .sync_all()
        .with_context(|| format!("writing {}", plain.display()))?;
    let packed = path.with_extension("zst.partial");
    {
        let source = std::io::BufReader::new(std::fs::File::open(plain)?);
        let target = std::fs::File::create(&packed).with_context(|| format!("creating {}", packed.display()))?;
        let mut target = std::io::BufWriter::new(target);
        ruzstd::encoding::compress(source, &mut target, ruzstd::encoding::CompressionLevel::Fastest);
        let file = target
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing {}: {}", packed.display(), e.error()))?;
        file.sync_all()
            .with_context(|| format!("writing {}", packed.display()))?;
    }
    // The file must read back as what was archived before anything goes.
    if archive_content_sha256(&packed)? != content_sha256 {
        bail!(
            "{} does not read back as written; nothing was removed",
            packed.display()
        );
    }
    let sha256 = file_sha256(&packed)?;
    std::fs::rename(&packed, path).with_context(|| format!("writing {}", path.display()))?;
    let _ = std::fs::remove_file(plain);
    if let Some(d) = path.parent().and_then(|p| std::fs::File::open(p).ok()) {
        let _ = d.sync_all();
    }
    Ok(sha256)
}

/// SHA-256 (hex) of a file, read in blocks.
fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// SHA-256 (hex) of an archive's decompressed content.
fn archive_content_sha256(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut open_archive(path)?, &mut h).with_context(|| format!("decompressing {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// An archive's decompressed content, as a stream.
pub fn open_archive(path: &Path) -> Result<impl Read> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ruzstd::decoding::StreamingDecoder::new(std::io::BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("{} is not a zstd file: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file, synced, then renamed.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {} (audit.archive_dir)", parent.display()))?;
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The manifest in `dir` (empty when there is none yet).
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The cutoff as a date, for messages.
pub fn cutoff_date(cutoff_ms: i64) -> String {
    format_date(cutoff_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_a_month_start_whole_months_back() {
        let day = |y, m, d| days_from_civil(y, m, d) * 86_400_000;
        assert_eq!(cutoff(day(2040, 1, 1), 7.0), day(2033, 1, 1));
        assert_eq!(cutoff(day(2040, 3, 31) + 5_000, 7.0), day(2033, 3, 1));
        assert_eq!(cutoff(day(2026, 12, 7), 0.5), day(2026, 6, 1));
        assert_eq!(cutoff(day(2026, 1, 15), 1.0 / 12.0), day(2025, 12, 1));
    }
}
