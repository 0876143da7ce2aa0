//! Store timings for BENCHMARKS.md: time to open (connect, pragmas,
//! migrations check) and metric-write latency with 20 concurrent writers,
//! each with its own pool (as 20 processes would have), on SQLite and, when
//! TRADELAB_BENCH_POSTGRES_URL is set, PostgreSQL.
//!
//! cargo run --release -p tradelab-store --example store_bench
//! TRADELAB_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release -p tradelab-store --example store_bench

use std::time::Instant;

use serde_json::json;
use tradelab_store::Store;

const WRITERS: usize = 20;
const WRITES: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(name: &str, url: &str) {
    // Time to open an existing, migrated database.
    Store::open(url).await.expect("the database opens").close().await;
    let mut opens = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let s = Store::open(url).await.expect("the database opens");
        opens.push(start.elapsed().as_secs_f64() * 1e3);
        s.close().await;
    }
    opens.sort_by(f64::total_cmp);

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let s = Store::open(&url).await.expect("the database opens");
            let run = s
                .start_run("bench", &format!("writer{w}"), &json!({}), &json!({}))
                .await
                .unwrap();
            let mut lat = Vec::with_capacity(WRITES);
            for step in 0..WRITES {
                let start = Instant::now();
                s.log_metrics(&run, &[("loss", step as i64, 1.0 / (1.0 + step as f64))])
                    .await
                    .unwrap();
                lat.push(start.elapsed().as_secs_f64() * 1e3);
            }
            s.close().await;
            lat
        }));
    }
    let mut writes = Vec::new();
    for t in tasks {
        writes.extend(t.await.unwrap());
    }
    writes.sort_by(f64::total_cmp);
    println!(
        "{{\"bench\":\"store\",\"backend\":\"{name}\",\"open_ms_p50\":{:.2},\"open_ms_p95\":{:.2},\"writers\":{WRITERS},\"writes\":{},\"write_ms_p50\":{:.2},\"write_ms_p95\":{:.2},\"write_ms_max\":{:.2}}}",
        percentile(&opens, 0.5),
        percentile(&opens, 0.95),
        writes.len(),
        percentile(&writes, 0.5),
        percentile(&writes, 0.95),
        writes[writes.len() - 1],
    );
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("tradelab-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    measure("sqlite", &format!("sqlite://{}", dir.join("bench.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Ok(url) = std::env::var("TRADELAB_BENCH_POSTGRES_URL") {
        measure("postgres", &url).await;
    }
}
