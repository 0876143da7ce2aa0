//! The web dashboard in a real browser: `web/e2e/dashboard.mjs` drives
//! Debian's Chromium with Playwright against a `tradelab serve` on a fresh
//! database (one job worker, a synthetic instrument prepared): sign-in with
//! PKCE, the first password change, a backtest followed live and drawn, a
//! tiny model trained and promoted, sign-out, and a viewer kept from what
//! it may not do. Runs when `TRADELAB_TEST_BROWSER` is set (`.ci/run` sets
//! it once Chromium and the dashboard's npm packages are installed).

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::http::{add_user, server_command, Server};
use common::{root, text};

fn tradelab(dir: &Path) -> Command {
    let mut c = server_command(dir);
    c.args(common::SMALL_MODEL);
    c
}

fn ok(o: Output) {
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn the_dashboard_signs_in_runs_a_backtest_trains_promotes_and_keeps_a_viewer_out() {
    let Some(chromium) = std::env::var("TRADELAB_TEST_BROWSER").ok().filter(|p| !p.is_empty()) else {
        eprintln!(
            "skipped: set TRADELAB_TEST_BROWSER to Chromium's path (apt-get install chromium; npm ci in web/) to drive the dashboard in a browser"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("data/raw")).unwrap();
    ok(tradelab(d)
        .args(["data", "synth", "--bars", "1500", "--out", "data/raw/synth.csv"])
        .output()
        .unwrap());
    ok(tradelab(d).args(["data", "prepare"]).output().unwrap());
    add_user(tradelab(d), "vic", "viewer", "vic-password-123");
    let server = Server::start_with(tradelab(d), &["--workers", "1"]);
    let output = server.output();
    let one_time = output
        .split("one-time password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no one-time password printed: {output}"))
        .to_string();
    let shots = std::env::var("TRADELAB_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| d.join("screenshots"));
    let run = Command::new("node")
        .arg(root().join("web/e2e/dashboard.mjs"))
        .current_dir(root().join("web"))
        .env("TRADELAB_URL", &server.url)
        .env("TRADELAB_ADMIN_PASSWORD", &one_time)
        .env("TRADELAB_NEW_PASSWORD", "a-new-admin-password-1")
        .env("TRADELAB_VIEWER_USER", "vic")
        .env("TRADELAB_VIEWER_PASSWORD", "vic-password-123")
        .env("TRADELAB_SYMBOL", "synth")
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", &shots)
        .output()
        .expect("node runs (install Node.js 20 or newer)");
    assert!(
        run.status.success(),
        "the browser journey failed:\n{}\n--- server ---\n{}",
        text(&run),
        server.output()
    );
    // The journey's steps and the first-load figure, for `--nocapture`.
    eprintln!("{}", text(&run));
    for page in ["overview", "backtest-report", "evaluation-report", "models", "admin"] {
        let png = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{} is missing or blank ({size} bytes)", png.display());
    }
    // The one-time password was typed into the server's page, never logged.
    assert_eq!(server.output().matches(&one_time).count(), 1, "printed once at start");
}

/// The dashboard's typed client is generated from `web/openapi.json`
/// (`npm run gen:api`); both must be what this server's routes make, so a
/// route change breaks the dashboard's type check, not its users.
#[test]
fn the_committed_openapi_document_and_typed_client_match_the_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .args(["serve", "--print-openapi"])
        .output()
        .unwrap();
    ok(out.clone());
    let served = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(root().join("web/openapi.json")).unwrap();
    assert!(
        served == committed,
        "web/openapi.json is not what the server serves: regenerate it with `cargo run -- serve --print-openapi > web/openapi.json && (cd web && npm run gen:api)`"
    );
    let generator = root().join("web/node_modules/.bin/openapi-typescript");
    if !generator.exists() {
        eprintln!("note: web/node_modules is missing: src/api/schema.d.ts is not regenerated to compare");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("schema.d.ts");
    ok(Command::new(&generator)
        .arg("openapi.json")
        .arg("-o")
        .arg(&fresh)
        .current_dir(root().join("web"))
        .output()
        .unwrap());
    assert!(
        std::fs::read_to_string(&fresh).unwrap()
            == std::fs::read_to_string(root().join("web/src/api/schema.d.ts")).unwrap(),
        "web/src/api/schema.d.ts is not what openapi.json generates: run `npm run gen:api` in web/"
    );
}
