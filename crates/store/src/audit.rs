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
    /// The registered model that decided.
    pub model_name: String,
    /// Its registry version.
    pub model_version: i64,
    /// Hex SHA-256 of the inputs the model saw, so a decision can be tied to
    /// its inputs without storing them.
    pub inputs_sha256: String,
    /// The action taken, by name (`BUY_LONG`, `HOLD`...).
    pub action: String,
    /// The quantity decided; must be finite.
    pub quantity: f64,
    /// The model's probability for each action, a JSON document.
    pub probabilities: Value,
    /// What the risk checks found and changed, a JSON document.
    pub risk_checks: Value,
    /// Who asked: `user via client`, or the client (None without auth).
    pub caller: Option<String>,
}

/// A decision as stored in the audit trail (see [`NewDecision`] for the
/// fields it was given).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// The decision's random hex id.
    pub id: String,
    /// The registered model that decided.
    pub model_name: String,
    /// Its registry version.
    pub model_version: i64,
    /// Hex SHA-256 of the inputs the model saw.
    pub inputs_sha256: String,
    /// The action taken, by name.
    pub action: String,
    /// The quantity decided.
    pub quantity: f64,
    /// The model's probability for each action.
    pub probabilities: Value,
    /// What the risk checks found and changed.
    pub risk_checks: Value,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Who asked: `user via client`, or the client (None without auth).
    pub caller: Option<String>,
}

/// A backtest's stored documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacktestPart {
    /// The summary and metrics.
    Report,
    /// The list of trades.
    Trades,
    /// The equity curve.
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

/// A stored backtest without its documents, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestSummary {
    /// The backtest's random hex id.
    pub id: String,
    /// The run it was recorded under, if any.
    pub run_id: Option<String>,
    /// The strategy or model it tested, as the caller named it.
    pub strategy: String,
    /// When it was stored, milliseconds since the Unix epoch.
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
        self.backtests_of(None, limit).await
    }

    /// The `limit` most recent backtests of `strategy` (exactly; all when
    /// `None`), newest first.
    pub async fn backtests_of(&self, strategy: Option<&str>, limit: i64) -> Result<Vec<BacktestSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, strategy, created_ms FROM backtests WHERE ($1 IS NULL OR strategy = $1) \
             ORDER BY created_ms DESC, id DESC LIMIT $2",
        )
        .bind(strategy)
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
