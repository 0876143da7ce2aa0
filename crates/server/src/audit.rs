//! The decision audit trail's writer: one task appends every decision,
//! batching those that arrive while a write is in flight into one
//! statement and one commit (a group commit). Each request still waits for
//! its own record to be durable before it is answered, and the trail keeps
//! the order decisions arrived in.

use tokio::sync::{mpsc, oneshot};
use tradelab_store::audit::NewDecision;
use tradelab_store::Store;

use super::problem::Problem;

/// Most decisions written in one statement.
const MAX_BATCH: usize = 256;

type Pending = (NewDecision, oneshot::Sender<Result<String, String>>);

/// A handle to the audit trail's writer task; clones share the one writer.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Pending>,
}

impl AuditLog {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Store) -> AuditLog {
        let (tx, mut rx) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let decisions: Vec<NewDecision> = batch.iter().map(|(d, _)| d.clone()).collect();
                match store.record_decisions(&decisions).await {
                    Ok(ids) => {
                        for ((_, reply), id) in batch.drain(..).zip(ids) {
                            let _ = reply.send(Ok(id));
                        }
                    }
                    // One bad record must not fail the others (issue 19
                    // finding 6): write them one by one, each answered alone.
                    Err(_) if batch.len() > 1 => {
                        for (d, reply) in batch.drain(..) {
                            let one = store.record_decisions(std::slice::from_ref(&d)).await;
                            let _ = reply.send(one.map(|mut ids| ids.remove(0)).map_err(|e| e.to_string()));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        AuditLog { tx }
    }

    /// Appends a decision; resolves once it is committed, with its id.
    pub async fn append(&self, decision: NewDecision) -> Result<String, Problem> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send((decision, reply))
            .await
            .map_err(|_| Problem::internal("the audit trail", "its writer has stopped"))?;
        done.await
            .map_err(|_| Problem::internal("the audit trail", "its writer has stopped"))?
            .map_err(|e| Problem::internal("writing the audit record", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(quantity: f64) -> NewDecision {
        NewDecision {
            model_name: "m".into(),
            model_version: 1,
            inputs_sha256: "00".into(),
            action: "HOLD".into(),
            quantity,
            probabilities: serde_json::json!({}),
            risk_checks: serde_json::json!({}),
            caller: None,
        }
    }

    /// Issue 19 finding 6: a record the store refuses fails alone; the
    /// others in its batch are written and answered.
    #[tokio::test]
    async fn one_bad_record_does_not_fail_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
            .await
            .unwrap();
        let log = AuditLog::spawn(store.clone());
        // On this single-threaded runtime the three are queued before the
        // writer runs, so they form one batch.
        let (a, bad, b) = tokio::join!(
            log.append(decision(1.0)),
            log.append(decision(f64::NAN)),
            log.append(decision(2.0))
        );
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        assert_eq!(bad.unwrap_err().status, 500);
        let kept: Vec<f64> = store.decisions("m").await.unwrap().iter().map(|d| d.quantity).collect();
        assert_eq!(kept, [1.0, 2.0], "in arrival order");
    }
}
