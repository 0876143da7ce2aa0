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
