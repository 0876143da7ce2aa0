//! Trading sessions as rows: who holds which account (a heartbeat lease),
//! the checkpoint a session resumes from, every order it meant to send
//! (written before sending, keyed by its client order id), and its events.
//!
//! The lease is what refuses a second session on the same account: a
//! session that stopped heartbeating for longer than the lease (killed,
//! machine lost) no longer holds it, and may be resumed.

use serde_json::Value;
use sqlx::Row;

use crate::error::StoreError;
use crate::{now_ms, Store};

/// A session's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Trading, or killed without a word (its heartbeat then goes stale).
    Running,
    /// Stopped on request (Ctrl-C, the API); resumable.
    Stopped,
    /// A circuit breaker with the `halt` policy ended it; resumable once a
    /// person has looked.
    Halted,
    /// An error ended it; resumable once fixed.
    Failed,
    /// The feed ended (a replay reached its last bar); nothing to resume.
    Finished,
}

impl SessionStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Stopped => "stopped",
            SessionStatus::Halted => "halted",
            SessionStatus::Failed => "failed",
            SessionStatus::Finished => "finished",
        }
    }

    /// The status named by [`as_str`](Self::as_str)'s text.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "running" => SessionStatus::Running,
            "stopped" => SessionStatus::Stopped,
            "halted" => SessionStatus::Halted,
            "failed" => SessionStatus::Failed,
            "finished" => SessionStatus::Finished,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown trading session status `{other}` in the database"
                )))
            }
        })
    }
}

/// A stored trading session.
#[derive(Debug, Clone, PartialEq)]
pub struct TradingSessionRecord {
    /// The session's id.
    pub id: String,
    /// The account it trades (`paper:<name>`, `alpaca:<key id>`).
    pub account: String,
    /// The model, as the user named it.
    pub model: String,
    /// What it was started with (symbols, feed, broker, settings): enough
    /// to start it again.
    pub spec: Value,
    /// Where it is in its lifecycle.
    pub status: SessionStatus,
    /// When it started, UTC milliseconds.
    pub started_ms: i64,
    /// Its last heartbeat.
    pub heartbeat_ms: i64,
    /// When it ended, if it did.
    pub ended_ms: Option<i64>,
    /// Why it ended.
    pub reason: Option<String>,
    /// The last state it saved.
    pub checkpoint: Option<Value>,
}

impl TradingSessionRecord {
    /// True while a process keeps it alive: running, with a heartbeat newer
    /// than `lease_ms`.
    pub fn is_alive(&self, lease_ms: i64, now: i64) -> bool {
        self.status == SessionStatus::Running && self.heartbeat_ms >= now - lease_ms
    }
}

/// What became of an order: `submitted`, `rejected`, `unconfirmed`, ...
#[derive(Debug, Clone, PartialEq)]
pub struct OrderStatusUpdate {
    /// The order's client id.
    pub client_order_id: String,
    /// Its new status.
    pub status: String,
    /// Why, when there is more to say (a rejection's reason).
    pub detail: Option<String>,
}

/// An order a session meant to send.
#[derive(Debug, Clone, PartialEq)]
pub struct TradingOrderRecord {
    /// The idempotency key the broker sees.
    pub client_order_id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// The instrument's symbol.
    pub instrument: String,
    /// The bar it was decided on.
    pub bar_ts: i64,
    /// `BUY_LONG`, `CLOSE_SHORT`, ...
    pub action: String,
    /// Units asked for; `None`: the whole position (exits) or sized by the
    /// broker.
    pub qty: Option<f64>,
    /// `intended` (written, maybe not sent), `submitted`, `rejected`,
    /// `filled`, `cancelled`.
    pub status: String,
    /// The broker's answer or the reason.
    pub detail: Option<String>,
}

/// One thing that happened in a session.
#[derive(Debug, Clone, PartialEq)]
pub struct TradingEventRecord {
    /// Its place in the session's order.
    pub seq: i64,
    /// When it was recorded.
    pub at_ms: i64,
    /// The bar it concerns, if any.
    pub bar_ts: Option<i64>,
    /// `fill`, `breaker`, `restart`, `reconcile`, ...
    pub kind: String,
    /// The details.
    pub detail: Value,
}

fn parse_json(t: &str) -> Result<Value, StoreError> {
    serde_json::from_str(t).map_err(|e| StoreError::Invalid(format!("stored JSON is damaged: {e}")))
}

const SESSION_COLUMNS: &str =
    "SELECT id, account, model, spec, status, started_ms, heartbeat_ms, ended_ms, reason, checkpoint FROM trading_sessions";

fn session_record(r: &sqlx::any::AnyRow) -> Result<TradingSessionRecord, StoreError> {
    let checkpoint: Option<String> = r.try_get("checkpoint")?;
    Ok(TradingSessionRecord {
        id: r.try_get("id")?,
        account: r.try_get("account")?,
        model: r.try_get("model")?,
        spec: parse_json(&r.try_get::<String, _>("spec")?)?,
        status: SessionStatus::parse(&r.try_get::<String, _>("status")?)?,
        started_ms: r.try_get("started_ms")?,
        heartbeat_ms: r.try_get("heartbeat_ms")?,
        ended_ms: r.try_get("ended_ms")?,
        reason: r.try_get("reason")?,
        checkpoint: checkpoint.as_deref().map(parse_json).transpose()?,
    })
}

impl Store {
    /// Starts session `id` on `account`, unless a live session holds the
    /// account (its heartbeat within `lease_ms`): then
    /// [`StoreError::Invalid`] naming that session.
    pub async fn start_trading_session(
        &self,
        id: &str,
        account: &str,
        model: &str,
        spec: &Value,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO trading_sessions (id, account, model, spec, status, started_ms, heartbeat_ms) \
             SELECT $1, $2, $3, $4, $5, $6, $6 WHERE NOT EXISTS \
             (SELECT 1 FROM trading_sessions WHERE account = $2 AND status = $5 AND heartbeat_ms >= $7)",
        )
        .bind(id)
        .bind(account)
        .bind(model)
        .bind(spec.to_string())
        .bind(SessionStatus::Running.as_str())
        .bind(now)
        .bind(now - lease_ms)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(self.account_busy(account, lease_ms).await);
        }
        Ok(())
    }

    /// Takes session `id` back after it stopped, failed, halted or its
    /// process died (heartbeat older than `lease_ms`). Refused while it or
    /// another session on its account is alive, and once it finished.
    pub async fn resume_trading_session(&self, id: &str, lease_ms: i64) -> Result<TradingSessionRecord, StoreError> {
        let s = self.trading_session(id).await?;
        if s.status == SessionStatus::Finished {
            return Err(StoreError::Invalid(format!(
                "trading session {id} finished (its feed ended); start a new session instead"
            )));
        }
        let now = now_ms();
        let taken = sqlx::query(
            "UPDATE trading_sessions SET status = $1, heartbeat_ms = $2, ended_ms = NULL, reason = NULL \
             WHERE id = $3 AND (status <> $1 OR heartbeat_ms < $4) AND NOT EXISTS \
             (SELECT 1 FROM trading_sessions o WHERE o.account = $5 AND o.id <> $3 AND o.status = $1 AND o.heartbeat_ms >= $4)",
        )
        .bind(SessionStatus::Running.as_str())
        .bind(now)
        .bind(id)
        .bind(now - lease_ms)
        .bind(&s.account)
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() == 0 {
            return Err(self.account_busy(&s.account, lease_ms).await);
        }
        self.trading_session(id).await
    }

    async fn account_busy(&self, account: &str, lease_ms: i64) -> StoreError {
        let holder = self
            .trading_sessions(100)
            .await
            .ok()
            .and_then(|all| {
                all.into_iter()
                    .find(|s| s.account == account && s.is_alive(lease_ms, now_ms()))
            })
            .map_or_else(|| "another session".to_string(), |s| format!("session {}", s.id));
        StoreError::Invalid(format!(
            "account {account} is already traded by {holder}, which is alive; stop it first (one session per account, so two never send conflicting orders)"
        ))
    }

    /// The session with id `id`; [`StoreError::NotFound`] if none.
    pub async fn trading_session(&self, id: &str) -> Result<TradingSessionRecord, StoreError> {
        let row = sqlx::query(&format!("{SESSION_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no trading session `{id}`")))?;
        session_record(&row)
    }

    /// The `limit` most recent sessions, newest first.
    pub async fn trading_sessions(&self, limit: i64) -> Result<Vec<TradingSessionRecord>, StoreError> {
        let rows = sqlx::query(&format!("{SESSION_COLUMNS} ORDER BY started_ms DESC, id DESC LIMIT $1"))
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_record).collect()
    }

    /// Saves the session's state and renews its lease. Refused when the
    /// session is no longer this process's (another resumed it).
    pub async fn checkpoint_trading_session(&self, id: &str, checkpoint: &Value) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE trading_sessions SET checkpoint = $1, heartbeat_ms = $2 WHERE id = $3 AND status = $4")
                .bind(checkpoint.to_string())
                .bind(now_ms())
                .bind(id)
                .bind(SessionStatus::Running.as_str())
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "trading session {id} is no longer running here; it was stopped or taken over"
            )));
        }
        Ok(())
    }

    /// Renews the session's lease.
    pub async fn heartbeat_trading_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE trading_sessions SET heartbeat_ms = $1 WHERE id = $2 AND status = $3")
            .bind(now_ms())
            .bind(id)
            .bind(SessionStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the session with `status` and `reason`.
    pub async fn end_trading_session(&self, id: &str, status: SessionStatus, reason: &str) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE trading_sessions SET status = $1, reason = $2, ended_ms = $3, heartbeat_ms = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes an order before it is sent. False when its client order id is
    /// already recorded (it was written before a restart): nothing changes.
    pub async fn record_trading_order(&self, o: &TradingOrderRecord) -> Result<bool, StoreError> {
        if o.qty.is_some_and(|q| !q.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "order {}: quantity is not finite",
                o.client_order_id
            )));
        }
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO trading_orders (client_order_id, session_id, instrument, bar_ts, action, qty, status, detail, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (client_order_id) DO NOTHING",
        )
        .bind(&o.client_order_id)
        .bind(&o.session_id)
        .bind(&o.instrument)
        .bind(o.bar_ts)
        .bind(&o.action)
        .bind(o.qty)
        .bind(&o.status)
        .bind(o.detail.as_deref())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets an order's status and detail.
    pub async fn set_trading_order_status(
        &self,
        client_order_id: &str,
        status: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let update = OrderStatusUpdate {
            client_order_id: client_order_id.to_string(),
            status: status.to_string(),
            detail: detail.map(str::to_string),
        };
        self.set_trading_order_statuses(std::slice::from_ref(&update)).await
    }

    /// Several orders' statuses in one transaction (a journal writes them
    /// with its checkpoint, off the decision path).
    pub async fn set_trading_order_statuses(&self, updates: &[OrderStatusUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let at = now_ms();
        let mut tx = self.pool.begin().await?;
        for u in updates {
            sqlx::query(
                "UPDATE trading_orders SET status = $1, detail = $2, updated_ms = $3 WHERE client_order_id = $4",
            )
            .bind(&u.status)
            .bind(u.detail.as_deref())
            .bind(at)
            .bind(&u.client_order_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The session's orders, in the order they were decided.
    pub async fn trading_orders(&self, session_id: &str) -> Result<Vec<TradingOrderRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_order_id, session_id, instrument, bar_ts, action, qty, status, detail FROM trading_orders \
             WHERE session_id = $1 ORDER BY bar_ts, created_ms, client_order_id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TradingOrderRecord {
                    client_order_id: r.try_get("client_order_id")?,
                    session_id: r.try_get("session_id")?,
                    instrument: r.try_get("instrument")?,
                    bar_ts: r.try_get("bar_ts")?,
                    action: r.try_get("action")?,
                    qty: r.try_get("qty")?,
                    status: r.try_get("status")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Appends events (one transaction); their `seq` are the session's own.
    pub async fn record_trading_events(
        &self,
        session_id: &str,
        events: &[TradingEventRecord],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO trading_events (session_id, seq, at_ms, bar_ts, kind, detail) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (session_id, seq) DO NOTHING",
            )
            .bind(session_id)
            .bind(e.seq)
            .bind(e.at_ms)
            .bind(e.bar_ts)
            .bind(&e.kind)
            .bind(e.detail.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The session's events after `after_seq`, oldest first, at most `limit`.
    pub async fn trading_events(
        &self,
        session_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<TradingEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, bar_ts, kind, detail FROM trading_events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(session_id)
        .bind(after_seq)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TradingEventRecord {
                    seq: r.try_get("seq")?,
                    at_ms: r.try_get("at_ms")?,
                    bar_ts: r.try_get("bar_ts")?,
                    kind: r.try_get("kind")?,
                    detail: parse_json(&r.try_get::<String, _>("detail")?)?,
                })
            })
            .collect()
    }
}
