//! Store timings for BENCHMARKS.md: time to open (connect, pragmas,
//! migration check) and metric-write latency with 20 writer processes at
//! once (this binary starts itself 20 times), on SQLite and, when
//! TRADELAB_BENCH_POSTGRES_URL is set, PostgreSQL.
//!
//! cargo build --release -p tradelab-store --example store_bench
//! TRADELAB_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test ./target/release/examples/store_bench
//! (and TRADELAB_BENCH_POSTGRES_TLS_URL=postgres://postgres@localhost:5432/test?sslmode=verify-full&sslrootcert=CA.pem
//! for the open time over verified TLS)

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tradelab_store::Store;

const WRITERS: usize = 20;
const WRITES: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn epoch_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// One writer process: opens the store, waits for the common start time,
/// logs WRITES metric points one transaction each, prints the latencies.
async fn writer(url: &str, id: usize, start_at: u128) {
    let s = Store::open(url).await.expect("the database opens");
    let run = s
        .start_run("bench", &format!("writer{id}"), &json!({}), &json!({}))
        .await
        .unwrap();
    let wait = start_at.saturating_sub(epoch_ms());
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    let mut lat = Vec::with_capacity(WRITES);
    for step in 0..WRITES {
        let start = Instant::now();
        s.log_metrics(&run, &[("loss", step as i64, 1.0 / (1.0 + step as f64))])
            .await
            .unwrap();
        lat.push(start.elapsed().as_secs_f64() * 1e3);
    }
    s.close().await;
    println!("{}", serde_json::to_string(&lat).unwrap());
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

    let me = std::env::current_exe().unwrap();
    // Every process has opened its pool by then; they write together.
    let start_at = epoch_ms() + 3000;
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            Command::new(&me)
                .args(["--writer", url, &w.to_string(), &start_at.to_string()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("a writer process starts")
        })
        .collect();
    let mut writes: Vec<f64> = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a writer failed");
        writes.extend(serde_json::from_slice::<Vec<f64>>(&out.stdout).unwrap());
    }
    writes.sort_by(f64::total_cmp);
    println!(
        "{{\"bench\":\"store\",\"backend\":\"{name}\",\"open_ms_p50\":{:.2},\"open_ms_p95\":{:.2},\"writer_processes\":{WRITERS},\"writes\":{},\"write_ms_p50\":{:.2},\"write_ms_p95\":{:.2},\"write_ms_p99\":{:.2},\"write_ms_max\":{:.2}}}",
        percentile(&opens, 0.5),
        percentile(&opens, 0.95),
        writes.len(),
        percentile(&writes, 0.5),
        percentile(&writes, 0.95),
        percentile(&writes, 0.99),
        writes[writes.len() - 1],
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--writer" {
        writer(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap()).await;
        return;
    }
    let dir = std::env::temp_dir().join(format!("tradelab-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    measure("sqlite", &format!("sqlite://{}", dir.join("bench.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Ok(url) = std::env::var("TRADELAB_BENCH_POSTGRES_URL") {
        measure("postgres", &url).await;
    }
    // Connection time with TLS and certificate verification (a
    // sslmode=verify-full URL): what Neon costs before the network does.
    if let Ok(url) = std::env::var("TRADELAB_BENCH_POSTGRES_TLS_URL") {
        Store::open(&url).await.expect("the database opens").close().await;
        let mut opens = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            let s = Store::open(&url).await.expect("the database opens");
            opens.push(start.elapsed().as_secs_f64() * 1e3);
            s.close().await;
        }
        opens.sort_by(f64::total_cmp);
        println!(
            "{{\"bench\":\"store\",\"backend\":\"postgres-verify-full\",\"open_ms_p50\":{:.2},\"open_ms_p95\":{:.2}}}",
            percentile(&opens, 0.5),
            percentile(&opens, 0.95)
        );
    }
}
