//! `tradelab runs`: recorded training runs and their metric series.

use anyhow::Result;
use tradelab_core::time::format_datetime;

use crate::cli::{GlobalArgs, RunsCommand};
use crate::context::load_settings;
use tradelab_app::record::open_store;
use tradelab_app::run_liveness::mark_dead_runs;
use tradelab_app::runtime::runtime;

pub fn run(g: &GlobalArgs, c: RunsCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    rt.block_on(async {
        match c {
            RunsCommand::List { limit } => {
                let mut runs = store.recent_runs(limit as i64).await?;
                mark_dead_runs(&store, &mut runs).await?;
                if runs.is_empty() {
                    println!("no runs recorded; `tradelab train` records one");
                }
                for r in runs {
                    let secs = r.ended_ms.map(|e| (e - r.started_ms) as f64 / 1000.0);
                    println!(
                        "{}  {:<16} {:<28} {:<9} {}  {}",
                        r.id,
                        r.experiment,
                        r.name,
                        r.status.as_str(),
                        format_datetime(r.started_ms),
                        secs.map_or("".into(), |s| format!("{s:.1}s"))
                    );
                }
            }
            RunsCommand::Show { id } => {
                let mut found = [store.run(&id).await?];
                mark_dead_runs(&store, &mut found).await?;
                let [r] = found;
                println!(
                    "run {} ({}) in experiment {}: {}",
                    r.id,
                    r.name,
                    r.experiment,
                    r.status.as_str()
                );
                println!("  started: {}", format_datetime(r.started_ms));
                if let Some(e) = r.ended_ms {
                    println!("  ended:   {}", format_datetime(e));
                }
                println!("  tags:    {}", r.tags);
                let mut params = r.params.clone();
                // The full settings are long: stored, not printed.
                if let Some(o) = params.as_object_mut() {
                    o.remove("settings");
                }
                println!("  params:  {params}");
                println!("  metrics (points, first -> last):");
                for key in store.metric_keys(&r.id).await? {
                    let series = store.metric_history(&r.id, &key).await?;
                    if let (Some(first), Some(last)) = (series.first(), series.last()) {
                        println!(
                            "    {key:<24} {:>5}  {:+.4} -> {:+.4} (step {})",
                            series.len(),
                            first.value,
                            last.value,
                            last.step
                        );
                    }
                }
            }
        }
        Ok(())
    })
}
