//! The forensics workers' explanations of decisions, one per decision in
//! the audit trail, and the decisions still waiting for one.

use sqlx::Row;

use crate::audit_events::{row, AuditEventRow, COLUMNS};
use crate::error::StoreError;
use crate::Store;

/// One decision's explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplanationRow {
    /// The decision's session.
    pub session_id: String,
    /// The decision's number in it.
    pub seq: i64,
    /// When the decision was made, UTC milliseconds (retention's clock).
    pub at_ms: i64,
    /// The model, as the session named it.
    pub model: String,
    /// SHA-256 of the weights that explained it.
    pub weights_sha256: String,
    /// The explanation document (JSON).
    pub explanation: String,
    /// Its plain-language paragraph.
    pub summary: String,
    /// When it was explained, UTC milliseconds.
    pub explained_ms: i64,
}

fn explanation_row(r: &sqlx::any::AnyRow) -> Result<ExplanationRow, StoreError> {
    Ok(ExplanationRow {
        session_id: r.try_get("session_id")?,
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at_ms")?,
        model: r.try_get("model")?,
        weights_sha256: r.try_get("weights_sha256")?,
        explanation: r.try_get("explanation")?,
        summary: r.try_get("summary")?,
        explained_ms: r.try_get("explained_ms")?,
    })
}

/// Where the walk over decisions waiting for an explanation has got to:
/// `(at_ms, session, seq)` of the last one handed out.
pub type DecisionCursor = (i64, String, i64);

impl Store {
    /// Stores `rows`, keeping any explanation already stored for the same
    /// decision; returns how many were new. One transaction.
    pub async fn record_explanations(&self, rows: &[ExplanationRow]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for r in rows {
            added += sqlx::query(
                "INSERT INTO decision_explanations (session_id, seq, at_ms, model, weights_sha256, explanation, summary, explained_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(&r.session_id)
            .bind(r.seq)
            .bind(r.at_ms)
            .bind(&r.model)
            .bind(&r.weights_sha256)
            .bind(&r.explanation)
            .bind(&r.summary)
            .bind(r.explained_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The explanation of decision `seq` of `session_id`, if one is stored.
    pub async fn explanation(&self, session_id: &str, seq: i64) -> Result<Option<ExplanationRow>, StoreError> {
        let r = sqlx::query(
            "SELECT session_id, seq, at_ms, model, weights_sha256, explanation, summary, explained_ms \
             FROM decision_explanations WHERE session_id = $1 AND seq = $2",
        )
        .bind(session_id)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(explanation_row).transpose()
    }

    /// Session `session_id`'s explanations of decisions numbered after
    /// `after_seq` up to `through_seq`, in order, at most `limit` (for
    /// retention's archive).
    pub async fn session_explanations(
        &self,
        session_id: &str,
        after_seq: i64,
        through_seq: i64,
        limit: i64,
    ) -> Result<Vec<ExplanationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, seq, at_ms, model, weights_sha256, explanation, summary, explained_ms \
             FROM decision_explanations WHERE session_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
        )
        .bind(session_id)
        .bind(after_seq)
        .bind(through_seq)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(explanation_row).collect()
    }

    /// Decisions with no explanation yet, oldest first, after `cursor`, at
    /// most `limit`.
    pub async fn unexplained_decisions(
        &self,
        cursor: Option<&DecisionCursor>,
        limit: i64,
    ) -> Result<Vec<AuditEventRow>, StoreError> {
        let after = cursor.map_or_else(
            || "1 = 1".to_string(),
            |_| "(e.at_ms > $2 OR (e.at_ms = $2 AND (e.session_id > $3 OR (e.session_id = $3 AND e.seq > $4))))".into(),
        );
        let columns = COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM audit_events e WHERE e.kind = 'decision' AND {after} \
             AND NOT EXISTS (SELECT 1 FROM decision_explanations x WHERE x.session_id = e.session_id AND x.seq = e.seq) \
             ORDER BY e.at_ms, e.session_id, e.seq LIMIT $1"
        );
        let mut q = sqlx::query(&sql).bind(limit.max(0));
        if let Some((at, session, seq)) = cursor {
            q = q.bind(*at).bind(session.clone()).bind(*seq);
        }
        q.fetch_all(&self.pool).await?.iter().map(row).collect()
    }
}
