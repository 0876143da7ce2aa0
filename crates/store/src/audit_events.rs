//! The trading sessions' audit trail: the events the bus carried, stored
//! once each (by session and number) with the columns it is searched by.
//! The event itself is kept as published (JSON), so its hash can be
//! checked against it years later.

use sqlx::Row;
use tradelab_core::time::{civil_from_days, days_from_civil};

use crate::error::StoreError;
use crate::{Backend, Store};

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEventRow {
    /// Its session.
    pub session_id: String,
    /// Its number in the session.
    pub seq: i64,
    /// `decision`, `order`, `fill`, `risk_verdict`, `breaker`, `model`,
    /// `session`.
    pub kind: String,
    /// When it was made, UTC milliseconds.
    pub at_ms: i64,
    /// The bar it concerns.
    pub bar_ts: Option<i64>,
    /// The instrument it concerns.
    pub instrument: Option<String>,
    /// The model that decided (decisions and model changes).
    pub model: Option<String>,
    /// The action decided or ordered.
    pub action: Option<String>,
    /// The event's JSON, as published.
    pub event: String,
    /// Its hash.
    pub hash: String,
}

/// Which events to list; unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// One session.
    pub session_id: Option<String>,
    /// One kind.
    pub kind: Option<String>,
    /// One model.
    pub model: Option<String>,
    /// One instrument.
    pub instrument: Option<String>,
    /// One action.
    pub action: Option<String>,
    /// Made at or after, UTC milliseconds.
    pub from_ms: Option<i64>,
    /// Made before, UTC milliseconds.
    pub to_ms: Option<i64>,
}

/// Where a page of a listing starts: after this event, in the listing's
/// order (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    /// The last listed event's time.
    pub at_ms: i64,
    /// Its session.
    pub session_id: String,
    /// Its number.
    pub seq: i64,
}

impl AuditCursor {
    /// The cursor as text (`at_ms.session.seq`), for an API's `next`.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.at_ms, self.session_id, self.seq)
    }

    /// A cursor from [`encode`](Self::encode)'s text.
    pub fn decode(text: &str) -> Result<AuditCursor, StoreError> {
        let bad = || {
            StoreError::Invalid(format!(
                "`{text}` is not a page cursor: pass the `next` a listing returned"
            ))
        };
        let mut parts = text.splitn(3, '.');
        let at_ms = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let session_id = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?.to_string();
        let seq = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        Ok(AuditCursor { at_ms, session_id, seq })
    }

    /// The cursor after `row`.
    pub fn after(row: &AuditEventRow) -> AuditCursor {
        AuditCursor {
            at_ms: row.at_ms,
            session_id: row.session_id.clone(),
            seq: row.seq,
        }
    }
}

pub(crate) const COLUMNS: &str = "session_id, seq, kind, at_ms, bar_ts, instrument, model, action, event, hash";

pub(crate) fn row(r: &sqlx::any::AnyRow) -> Result<AuditEventRow, StoreError> {
    Ok(AuditEventRow {
        session_id: r.try_get("session_id")?,
        seq: r.try_get("seq")?,
        kind: r.try_get("kind")?,
        at_ms: r.try_get("at_ms")?,
        bar_ts: r.try_get("bar_ts")?,
        instrument: r.try_get("instrument")?,
        model: r.try_get("model")?,
        action: r.try_get("action")?,
        event: r.try_get("event")?,
        hash: r.try_get("hash")?,
    })
}

/// Rows per INSERT statement (10 parameters each, under SQLite's limit).
const CHUNK: usize = 500;

const DAY_MS: i64 = 86_400_000;

/// The first millisecond of the month holding `at_ms`, and of the next.
fn month_of(at_ms: i64) -> (i64, i64) {
    let (y, m, _) = civil_from_days(at_ms.div_euclid(DAY_MS));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(y, m, 1) * DAY_MS, days_from_civil(ny, nm, 1) * DAY_MS)
}

/// The PostgreSQL partition holding the month that starts at `start_ms`.
fn partition_name(start_ms: i64) -> String {
    let (y, m, _) = civil_from_days(start_ms.div_euclid(DAY_MS));
    format!("audit_events_m{y:04}{m:02}")
}

/// The month a partition's name holds: its first millisecond and the next
/// month's.
fn partition_month(name: &str) -> Option<(i64, i64)> {
    let digits = name.strip_prefix("audit_events_m")?;
    let y: i64 = digits.get(..4)?.parse().ok()?;
    let m: u32 = digits.get(4..6)?.parse().ok()?;
    (1..=12)
        .contains(&m)
        .then(|| month_of(days_from_civil(y, m, 1) * DAY_MS))
}

/// A session's archived prefix, recorded when retention deletes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditArchive {
    /// The session.
    pub session_id: String,
    /// Its events 1 (or after the previous archive) to this one.
    pub through_seq: i64,
    /// The last archived event's hash.
    pub head_hash: String,
    /// The archive file, relative to `audit.archive_dir`.
    pub file: String,
    /// The file's SHA-256.
    pub sha256: String,
    /// Events in it.
    pub events: i64,
}

impl Store {
    /// Stores `events`, skipping any already stored (a copy delivered
    /// again); returns how many were new. One transaction.
    pub async fn record_audit_events(&self, events: &[AuditEventRow]) -> Result<u64, StoreError> {
        if self.backend() == Backend::Postgres {
            let mut months: Vec<(i64, i64)> = events.iter().map(|e| month_of(e.at_ms)).collect();
            months.sort_unstable();
            months.dedup();
            for (start, end) in months {
                self.ensure_audit_partition(start, end).await?;
            }
        }
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in events.chunks(CHUNK) {
            let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let b = 10 * i;
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10
                ));
            }
            // The key: (session, seq), and on PostgreSQL the time as well,
            // which a copy delivered again shares.
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.session_id)
                    .bind(e.seq)
                    .bind(&e.kind)
                    .bind(e.at_ms)
                    .bind(e.bar_ts)
                    .bind(&e.instrument)
                    .bind(&e.model)
                    .bind(&e.action)
                    .bind(&e.event)
                    .bind(&e.hash);
            }
            added += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Events matching `filter`, newest first, at most `limit`, after
    /// `cursor` (the previous page's last).
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        cursor: Option<&AuditCursor>,
        limit: i64,
    ) -> Result<Vec<AuditEventRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        // Conditions in a fixed order; their values are bound in the same
        // order below. No user text is ever part of the SQL.
        let text_filters = [
            ("session_id", &filter.session_id),
            ("kind", &filter.kind),
            ("model", &filter.model),
            ("instrument", &filter.instrument),
            ("action", &filter.action),
        ];
        for (column, value) in &text_filters {
            if value.is_some() {
                sql.push_str(&format!(" AND {column} = ${}", next()));
            }
        }
        if filter.from_ms.is_some() {
            sql.push_str(&format!(" AND at_ms >= ${}", next()));
        }
        if filter.to_ms.is_some() {
            sql.push_str(&format!(" AND at_ms < ${}", next()));
        }
        if cursor.is_some() {
            let (a, b, c, d, e, f) = (next(), next(), next(), next(), next(), next());
            sql.push_str(&format!(
                " AND (at_ms < ${a} OR (at_ms = ${b} AND session_id < ${c}) OR (at_ms = ${d} AND session_id = ${e} AND seq < ${f}))"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY at_ms DESC, session_id DESC, seq DESC LIMIT ${}",
            next()
        ));
        let mut q = sqlx::query(&sql);
        for (_, value) in text_filters {
            if let Some(v) = value {
                q = q.bind(v.clone());
            }
        }
        if let Some(v) = filter.from_ms {
            q = q.bind(v);
        }
        if let Some(v) = filter.to_ms {
            q = q.bind(v);
        }
        if let Some(c) = cursor {
            q = q
                .bind(c.at_ms)
                .bind(c.at_ms)
                .bind(c.session_id.clone())
                .bind(c.at_ms)
                .bind(c.session_id.clone())
                .bind(c.seq);
        }
        let rows = q.bind(limit.clamp(0, 10_000)).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// One event.
    pub async fn audit_event(&self, session_id: &str, seq: i64) -> Result<AuditEventRow, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE session_id = $1 AND seq = $2"
        ))
        .bind(session_id)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no event {seq} in session {session_id}'s audit trail")))?;
        row(&r)
    }

    /// Session `session_id`'s events numbered after `after_seq`, in order,
    /// at most `limit` (for verifying, exporting and replaying a trail).
    pub async fn session_audit_events(
        &self,
        session_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEventRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(session_id)
        .bind(after_seq)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// The last stored event of a session: `(seq, hash)`.
    pub async fn audit_head(&self, session_id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let r = sqlx::query("SELECT seq, hash FROM audit_events WHERE session_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?))).transpose()
    }

    /// Each session with events made before `cutoff_ms`, with the number
    /// of its last such event: what retention archives.
    pub async fn audit_sessions_before(&self, cutoff_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, MAX(seq) AS through FROM audit_events WHERE at_ms < $1 GROUP BY session_id ORDER BY session_id",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("session_id")?, r.try_get("through")?)))
            .collect()
    }

    /// PostgreSQL's partition for the month `[start_ms, end_ms)`, made if
    /// missing (by another writer at the same moment too).
    async fn ensure_audit_partition(&self, start_ms: i64, end_ms: i64) -> Result<(), StoreError> {
        let name = partition_name(start_ms);
        // Bounds and name come from the clock arithmetic above, never from
        // user text.
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF audit_events FOR VALUES FROM ({start_ms}) TO ({end_ms})"
        );
        if let Err(e) = sqlx::query(&sql).execute(&self.pool).await {
            let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(&name)
                .fetch_one(&self.pool)
                .await?;
            if exists.is_none() {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Ends a retention pass, in one transaction: records each session's
    /// archive, then removes every event made before `cutoff_ms` (a month
    /// start; all of them are in the archives) and any archived event made
    /// after it (a clock that stepped back). On PostgreSQL the months
    /// before the cutoff go as whole partitions, dropped, not deleted row
    /// by row. Returns the events removed.
    pub async fn finish_audit_retention(&self, archives: &[AuditArchive], cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for a in archives {
            sqlx::query(
                "INSERT INTO audit_archives (session_id, through_seq, head_hash, file, sha256, events, archived_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&a.session_id)
            .bind(a.through_seq)
            .bind(&a.head_hash)
            .bind(&a.file)
            .bind(&a.sha256)
            .bind(a.events)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
            removed += sqlx::query("DELETE FROM audit_events WHERE session_id = $1 AND seq <= $2 AND at_ms >= $3")
                .bind(&a.session_id)
                .bind(a.through_seq)
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // Explanations are derived from the events: they go with them.
        for a in archives {
            sqlx::query("DELETE FROM decision_explanations WHERE session_id = $1 AND seq <= $2")
                .bind(&a.session_id)
                .bind(a.through_seq)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM decision_explanations WHERE at_ms < $1")
            .bind(cutoff_ms)
            .execute(&mut *tx)
            .await?;
        match self.backend() {
            Backend::Sqlite => {
                removed += sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
                    .bind(cutoff_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            Backend::Postgres => {
                let partitions: Vec<String> = sqlx::query_scalar(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass",
                )
                .fetch_all(&mut *tx)
                .await?;
                for name in partitions {
                    let Some((_, end)) = partition_month(&name) else {
                        continue;
                    };
                    if end > cutoff_ms {
                        continue;
                    }
                    let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {name}"))
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(&format!("DROP TABLE {name}")).execute(&mut *tx).await?;
                    removed += rows as u64;
                }
            }
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Where session `session_id`'s archived prefix ends: `(through_seq,
    /// head_hash)` of its latest archive.
    pub async fn audit_archived_head(&self, session_id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let r = sqlx::query(
            "SELECT through_seq, head_hash FROM audit_archives WHERE session_id = $1 ORDER BY through_seq DESC LIMIT 1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| Ok((r.try_get("through_seq")?, r.try_get("head_hash")?)))
            .transpose()
    }

    /// The sessions with events in the trail, with their event counts,
    /// most recent activity first.
    pub async fn audit_sessions(&self, limit: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, COUNT(*) AS events, MAX(at_ms) AS last_ms FROM audit_events GROUP BY session_id ORDER BY last_ms DESC LIMIT $1",
        )
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("session_id")?, r.try_get("events")?, r.try_get("last_ms")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_partition_names_agree() {
        let day = |y, m, d| days_from_civil(y, m, d) * DAY_MS;
        assert_eq!(month_of(day(2026, 12, 7) + 5), (day(2026, 12, 1), day(2027, 1, 1)));
        assert_eq!(partition_name(day(2026, 12, 1)), "audit_events_m202612");
        assert_eq!(
            partition_month("audit_events_m202612"),
            Some((day(2026, 12, 1), day(2027, 1, 1)))
        );
        assert_eq!(partition_month("audit_events_m202613"), None);
        assert_eq!(partition_month("other"), None);
    }
}
