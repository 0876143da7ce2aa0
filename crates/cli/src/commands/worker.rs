//! `tradelab worker`: runs queued jobs until Ctrl-C or SIGTERM.

use anyhow::Result;
use tradelab_app::jobs::queue::open_platform;
use tradelab_app::jobs::worker::{self, WorkerContext};
use tradelab_app::runtime::{server_runtime, shutdown_signal};

use crate::cli::{GlobalArgs, WorkerArgs};

pub fn run(g: &GlobalArgs, a: &WorkerArgs) -> Result<()> {
    let source = g.settings_source();
    let settings = source.load(&[])?;
    let runtime = server_runtime()?;
    runtime.block_on(async {
        let (store, queue) = open_platform(&settings).await?;
        let ctx = WorkerContext::new(store.clone(), &settings, &source, None);
        println!(
            "worker {} running up to {} job(s) at once",
            ctx.name,
            a.concurrency.max(1)
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        worker::run(queue, ctx, a.concurrency, shutdown_signal()).await?;
        store.close().await;
        Ok(())
    })
}
