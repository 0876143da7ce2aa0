//! Builds the web dashboard (`web/`, React and Vite) into the binary, so one
//! `tradelab serve` gives the API and the dashboard with nothing beside it.
//!
//! With Node.js and npm on the machine, this runs `npm ci` (when
//! `web/node_modules` is missing or older than the lock file) and `npm run
//! bundle`, and lists every file of the bundle for `include_bytes!`.
//! Without them, or with `TRADELAB_WEB=skip`, the server is built without
//! the dashboard and `/` says why and what to do (a cargo warning says it
//! at build time too). The bundle is never committed: it is build output.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("../../web");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // Only paths that exist: cargo reruns a script whose watched path is
    // missing every time.
    for watched in [
        "src",
        "index.html",
        "public",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        if web.join(watched).exists() {
            println!("cargo:rerun-if-changed={}", web.join(watched).display());
        }
    }
    println!("cargo:rerun-if-env-changed=TRADELAB_WEB");

    let bundle = out.join("web");
    let built = if std::env::var("TRADELAB_WEB").as_deref() == Ok("skip") {
        Err("it was skipped (TRADELAB_WEB=skip at build time)".to_string())
    } else {
        build(&web, &bundle)
    };
    let mut listing = String::new();
    match &built {
        Ok(()) => {
            listing.push_str("/// Why the dashboard is missing; `None`: it is built in.\npub const NOT_BUILT: Option<&str> = None;\n");
            listing.push_str("/// The bundle's files by URL path.\npub static ASSETS: &[(&str, &[u8])] = &[\n");
            let mut files = Vec::new();
            walk(&bundle, &mut files);
            files.sort();
            for f in files {
                let url = format!(
                    "/{}",
                    f.strip_prefix(&bundle).unwrap().to_string_lossy().replace('\\', "/")
                );
                listing.push_str(&format!(
                    "    ({url:?}, include_bytes!({:?})),\n",
                    f.display().to_string()
                ));
            }
            listing.push_str("];\n");
        }
        Err(why) => {
            println!("cargo:warning=the web dashboard is not built into tradelab serve: {why}");
            listing.push_str(&format!(
                "/// Why the dashboard is missing; `None`: it is built in.\npub const NOT_BUILT: Option<&str> = Some({why:?});\n/// The bundle's files by URL path.\npub static ASSETS: &[(&str, &[u8])] = &[];\n"
            ));
        }
    }
    std::fs::write(out.join("web_assets.rs"), listing).unwrap();
}

/// `npm ci` when needed, then the Vite build into `bundle`.
fn build(web: &Path, bundle: &Path) -> Result<(), String> {
    if !web.join("package.json").exists() {
        return Err(format!("{} has no package.json", web.display()));
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let version = Command::new(npm).arg("--version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(
            "npm was not found; install Node.js 20 or newer with npm, then build again (cargo build --release)".into(),
        );
    }
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    let stale = match (modified(&installed), modified(&lock)) {
        (Some(i), Some(l)) => i < l,
        _ => true,
    };
    if stale {
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(web),
            "npm ci",
        )?;
    }
    let _ = std::fs::remove_dir_all(bundle);
    run(
        Command::new(npm)
            .args(["run", "bundle"])
            .env("TRADELAB_WEB_OUT", bundle)
            .current_dir(web),
        "npm run bundle",
    )?;
    if !bundle.join("index.html").exists() {
        return Err(format!("npm run bundle left no index.html in {}", bundle.display()));
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what} could not start: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let tail: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| !l.trim().is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join(" | ");
    Err(format!("{what} failed in web/ ({}): {tail}", out.status))
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, files);
        } else {
            files.push(p);
        }
    }
}
