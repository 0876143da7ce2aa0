//! The trading sessions' audit trail: the events the bus carried, stored
//! once each (by session and number) with the columns it is searched by.
//! The event itself is kept as published (JSON), so its hash can be
//! checked against it years later.

use sqlx::Row;

use crate::error::StoreError;
use crate::Store;

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

const COLUMNS: &str = "session_id, seq, kind, at_ms, bar_ts, instrument, model, action, event, hash";

fn row(r: &sqlx::any::AnyRow) -> Result<AuditEventRow, StoreError> {
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

impl Store {
    /// Stores `events`, skipping any already stored (a copy delivered
    /// again); returns how many were new. One transaction.
    pub async fn record_audit_events(&self, events: &[AuditEventRow]) -> Result<u64, StoreError> {
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
            sql.push_str(" ON CONFLICT (session_id, seq) DO NOTHING");
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

    /// Records that session `session_id`'s events 1 to `through_seq` are in
    /// `file` (its SHA-256 `sha256`), the last of them hashing to
    /// `head_hash`, and deletes them from the trail; one transaction.
    /// Returns the events deleted.
    pub async fn archive_audit_prefix(
        &self,
        session_id: &str,
        through_seq: i64,
        head_hash: &str,
        file: &str,
        sha256: &str,
        events: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO audit_archives (session_id, through_seq, head_hash, file, sha256, events, archived_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session_id)
        .bind(through_seq)
        .bind(head_hash)
        .bind(file)
        .bind(sha256)
        .bind(events)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM audit_events WHERE session_id = $1 AND seq <= $2")
            .bind(session_id)
            .bind(through_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
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
