//! The end-to-end tests' kit: the repository root, a run's output, the
//! one-clear-line failure check, small model settings, and fresh
//! PostgreSQL databases. Each test binary uses part of it.
#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root (bundled data, scripts).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Small, fast model settings: a short window, few environments, a small net.
pub const SMALL_MODEL: [&str; 14] = [
    "--set",
    "env.window=8",
    "--set",
    "ppo.envs=4",
    "--set",
    "ppo.rollout_steps=64",
    "--set",
    "ppo.minibatches=2",
    "--set",
    "ppo.hidden=16",
    "--set",
    "ppo.eval_every=2",
    "--set",
    "ppo.heads=2",
];

/// Standard output then standard error, as a person would read them.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A failure as users must see it: non-zero exit, exactly one `error:`
/// line naming each of `needles`, no panic.
pub fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "error line lacks `{n}`: {}", lines[0]);
    }
}

/// A fresh PostgreSQL database `name` on the server at `base` (dropped
/// first if a failed run left it); dropped again with the guard. Made by the
/// store's test helper, on a runtime of its own (these tests are blocking).
pub struct TestDatabase {
    base: String,
    pub name: String,
    /// The new database's URL.
    pub url: String,
}

impl TestDatabase {
    pub fn create(base: &str, name: String) -> TestDatabase {
        let url = block_on(tradelab_store::test_databases::create_database(base, &name))
            .expect("the test PostgreSQL server creates a database");
        TestDatabase {
            base: base.to_string(),
            name,
            url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        block_on(tradelab_store::test_databases::drop_database(&self.base, &self.name));
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime starts")
        .block_on(f)
}
