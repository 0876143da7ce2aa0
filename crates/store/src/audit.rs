//! The audit trail: backtests (report, trades, equity) and every decision
//! a model made (inputs' hash, action, quantity, probabilities, risk
//! checks, model version, time).

use serde_json::Value;
use sqlx::Row;

use crate::error::StoreError;
use crate::{new_id, now_ms, Store};

/// A decision to append to the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    pub model_name: String,
    pub model_version: i64,
    pub inputs_sha256: String,
    pub action: String,
    pub quantity: f64,
    pub probabilities: Value,
    pub risk_checks: Value,
    /// Who asked: `user via client`, or the client (None without auth).
    pub caller: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub id: String,
    pub model_name: String,
    pub model_version: i64,
    pub inputs_sha256: String,
    pub action: String,
    pub quantity: f64,
    pub probabilities: Value,
    pub risk_checks: Value,
    pub time_ms: i64,
    pub caller: Option<String>,
}

/// A backtest's stored documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacktestPart {
    Report,
    Trades,
    Equity,
}

impl BacktestPart {
    fn column(self) -> &'static str {
        match self {
            BacktestPart::Report => "report",
            BacktestPart::Trades => "trades",
            BacktestPart::Equity => "equity",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BacktestSummary {
    pub id: String,
    pub run_id: Option<String>,
    pub strategy: String,
    pub created_ms: i64,
}

impl Store {
    /// Stores a backtest's report, trades and equity (JSON documents).
    pub async fn record_backtest(
        &self,
        run_id: Option<&str>,
        strategy: &str,
        report: &Value,
        trades: &Value,
        equity: &Value,
    ) -> Result<String, StoreError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO backtests (id, run_id, strategy, report, trades, equity, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(run_id)
        .bind(strategy)
        .bind(report.to_string())
        .bind(trades.to_string())
        .bind(equity.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// A stored backtest's report.
    pub async fn backtest_report(&self, id: &str) -> Result<Value, StoreError> {
        self.backtest_part(id, BacktestPart::Report).await
    }

    /// One of a stored backtest's documents.
    pub async fn backtest_part(&self, id: &str, part: BacktestPart) -> Result<Value, StoreError> {
        // The column name comes from the enum, never from user input.
        let sql = format!("SELECT {} FROM backtests WHERE id = $1", part.column());
        let text: Option<String> = sqlx::query_scalar(&sql).bind(id).fetch_optional(&self.pool).await?;
        let text = text.ok_or_else(|| StoreError::NotFound(format!("no backtest `{id}`")))?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Invalid(format!("stored backtest {} is damaged: {e}", part.column())))
    }

    /// The `limit` most recent backtests, newest first.
    pub async fn recent_backtests(&self, limit: i64) -> Result<Vec<BacktestSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, strategy, created_ms FROM backtests ORDER BY created_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BacktestSummary {
                    id: r.try_get("id")?,
                    run_id: r.try_get("run_id")?,
                    strategy: r.try_get("strategy")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    /// Appends a decision to the audit trail; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_decision(
        &self,
        model_name: &str,
        model_version: i64,
        inputs_sha256: &str,
        action: &str,
        quantity: f64,
        probabilities: &Value,
        risk_checks: &Value,
    ) -> Result<String, StoreError> {
        let d = NewDecision {
            model_name: model_name.into(),
            model_version,
            inputs_sha256: inputs_sha256.into(),
            action: action.into(),
            quantity,
            probabilities: probabilities.clone(),
            risk_checks: risk_checks.clone(),
            caller: None,
        };
        Ok(self.record_decisions(std::slice::from_ref(&d)).await?.remove(0))
    }

    /// Appends decisions in the given order with one statement and one
    /// commit (a group commit: a server batching concurrent requests pays
    /// one durable write for all of them). Returns their ids, in order.
    pub async fn record_decisions(&self, decisions: &[NewDecision]) -> Result<Vec<String>, StoreError> {
        if decisions.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(d) = decisions.iter().find(|d| !d.quantity.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "decision quantity {} is not a finite number",
                d.quantity
            )));
        }
        let now = now_ms();
        let ids: Vec<String> = decisions.iter().map(|_| new_id()).collect();
        let mut sql = String::from(
            "INSERT INTO decisions (id, model_name, model_version, inputs_sha256, action, quantity, probabilities, risk_checks, time_ms, caller) VALUES ",
        );
        for i in 0..decisions.len() {
            let b = 10 * i;
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for k in 1..=10 {
                sql.push_str(&format!("${}{}", b + k, if k < 10 { ", " } else { ")" }));
            }
        }
        let mut q = sqlx::query(&sql);
        for (d, id) in decisions.iter().zip(&ids) {
            q = q
                .bind(id)
                .bind(&d.model_name)
                .bind(d.model_version)
                .bind(&d.inputs_sha256)
                .bind(&d.action)
                .bind(d.quantity)
                .bind(d.probabilities.to_string())
                .bind(d.risk_checks.to_string())
                .bind(now)
                .bind(&d.caller);
        }
        q.execute(&self.pool).await?;
        Ok(ids)
    }

    /// A model's decisions in the order they were recorded.
    pub async fn decisions(&self, model_name: &str) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, model_name, model_version, inputs_sha256, action, quantity, probabilities, risk_checks, time_ms, caller \
             FROM decisions WHERE model_name = $1 ORDER BY seq",
        )
        .bind(model_name)
        .fetch_all(&self.pool)
        .await?;
        let parse = |t: String| {
            serde_json::from_str(&t).map_err(|e| StoreError::Invalid(format!("stored JSON is damaged: {e}")))
        };
        rows.iter()
            .map(|r| {
                Ok(DecisionRecord {
                    id: r.try_get("id")?,
                    model_name: r.try_get("model_name")?,
                    model_version: r.try_get("model_version")?,
                    inputs_sha256: r.try_get("inputs_sha256")?,
                    action: r.try_get("action")?,
                    quantity: r.try_get("quantity")?,
                    probabilities: parse(r.try_get("probabilities")?)?,
                    risk_checks: parse(r.try_get("risk_checks")?)?,
                    time_ms: r.try_get("time_ms")?,
                    caller: r.try_get("caller")?,
                })
            })
            .collect()
    }
}
