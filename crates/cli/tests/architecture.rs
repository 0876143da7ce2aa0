//! Architecture invariants, checked as ordinary tests by reading the
//! manifests and the `use` lines (as rust-analyzer runs its tidy checks):
//! dependencies point down the layers only, one crate names the command-line
//! parser, one names the HTTP framework, the libraries know nothing of the
//! layers above them, and inside `agents` imports point from drivers to
//! algorithms to machinery to interface, never back.
//!
//! A failure names the file and the line that breaks the rule; the fix is to
//! move the code to the layer that may know what it names, not to edit the
//! tables below (unless the architecture itself changes: then change
//! ARCHITECTURE.md with them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each crate's layer: a crate may depend only on crates of a lower layer.
/// `cli -> server -> app -> libraries`.
const LAYERS: &[(&str, u8)] = &[
    ("core", 0),
    ("auth", 1),
    ("nn", 0),
    ("data", 1),
    ("store", 1),
    // Decision events and their transports (in-process, NATS JetStream).
    ("bus", 1),
    ("regime", 2),
    ("sim", 2),
    ("env", 3),
    ("agents", 4),
    ("trade", 5),
    ("app", 6),
    ("server", 7),
    // The Python package: a front end beside the server, over the
    // application layer (nothing depends on it).
    ("py", 7),
    ("cli", 8),
    // Test fixtures: a dev-dependency only, never a dependency.
    ("testkit", 4),
];

/// The crates below the application layer.
const LIBRARIES: &[&str] = &[
    "core", "auth", "nn", "data", "store", "bus", "regime", "sim", "env", "agents", "trade",
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `[dependencies]` (and target-specific dependencies) of a manifest:
/// package names, without dev-dependencies.
fn dependencies(krate: &str) -> Vec<String> {
    let text = std::fs::read_to_string(crates_dir().join(krate).join("Cargo.toml")).unwrap();
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]" || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
            continue;
        }
        if in_deps && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim().trim_end_matches(".workspace").trim();
                if !name.is_empty() {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

/// Every `.rs` file under a crate's `src/`, with its lines.
fn sources(krate: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(&path) {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&crates_dir().join(krate).join("src"), &mut out);
    out.sort();
    out
}

/// Unit-test files (`tests.rs`, `auth_tests.rs`): tests may reach anywhere.
fn is_test_file(path: &Path) -> bool {
    path.file_stem()
        .is_some_and(|s| s == "tests" || s.to_string_lossy().ends_with("_tests"))
}

/// Code lines (comments dropped) up to the file's inline unit-test module,
/// which may reach anywhere a test needs.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| !l.trim_start().starts_with("mod tests {"))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

fn layer(krate: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(c, _)| *c == krate)
        .unwrap_or_else(|| panic!("crate `{krate}` has no layer in tests/architecture.rs; give it one"))
        .1
}

#[test]
fn every_crate_has_a_layer_and_depends_only_on_lower_layers() {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(crates_dir()).unwrap().flatten() {
        if entry.path().join("Cargo.toml").is_file() {
            found.push(entry.file_name().to_string_lossy().to_string());
        }
    }
    found.sort();
    let mut violations = Vec::new();
    for krate in &found {
        let own = layer(krate);
        for dep in dependencies(krate) {
            if let Some(lower) = dep.strip_prefix("tradelab-") {
                if lower == "testkit" {
                    violations.push(format!("{krate} depends on the test kit; make it a dev-dependency"));
                } else if layer(lower) >= own {
                    violations.push(format!(
                        "{krate} (layer {own}) depends on {lower} (layer {})",
                        layer(lower)
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies must point down:\n{}",
        violations.join("\n")
    );
}

/// Crates that may name `what` (in the manifest and in code), and the
/// other crates that name it.
fn crates_naming(what: &str, allowed: &[&str], code_allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let mut violations = Vec::new();
    for (krate, _) in LAYERS {
        if allowed.contains(krate) {
            continue;
        }
        if dependencies(krate).iter().any(|d| d == what) {
            violations.push(format!("crates/{krate}/Cargo.toml depends on {what}"));
        }
        let needle = format!("{}::", what.replace('-', "_"));
        for (path, text) in sources(krate) {
            for (n, line) in code_lines(&text) {
                if line.contains(&needle) && !code_allowed(line) {
                    violations.push(format!("{}:{n}: {}", path.display(), line.trim()));
                }
            }
        }
    }
    violations
}

#[test]
fn only_the_binary_names_the_command_line_parser() {
    let v = crates_naming("clap", &["cli"], |_| false);
    assert!(v.is_empty(), "only crates/cli may name clap:\n{}", v.join("\n"));
}

#[test]
fn only_the_python_package_names_pyo3() {
    for binding in ["pyo3", "numpy"] {
        let v = crates_naming(binding, &["py"], |_| false);
        assert!(v.is_empty(), "only crates/py may name {binding}:\n{}", v.join("\n"));
    }
}

#[test]
fn only_the_server_names_the_http_framework_and_openapi() {
    let v = crates_naming("axum", &["server"], |_| false);
    assert!(v.is_empty(), "only crates/server may name axum:\n{}", v.join("\n"));
    // The application derives OpenAPI schemas for the types the API carries,
    // behind its `openapi` feature (which only the server turns on).
    let openapi_derive = |line: &str| line.contains("cfg_attr(feature = \"openapi\", derive(utoipa::ToSchema))");
    let mut v = crates_naming("utoipa", &["server", "app"], |_| false);
    v.extend(
        sources("app")
            .iter()
            .flat_map(|(path, text)| {
                code_lines(text)
                    .filter(|(_, l)| l.contains("utoipa") && !openapi_derive(l))
                    .map(|(n, l)| format!("{}:{n}: {}", path.display(), l.trim()))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>(),
    );
    let app_manifest = std::fs::read_to_string(crates_dir().join("app/Cargo.toml")).unwrap();
    assert!(
        app_manifest.contains("utoipa = { workspace = true, optional = true }"),
        "crates/app may name utoipa only as an optional dependency"
    );
    assert!(v.is_empty(), "only crates/server may name utoipa:\n{}", v.join("\n"));
}

#[test]
fn the_libraries_know_nothing_of_the_layers_above_them() {
    // No library may name the application, the server or the binary, nor
    // the async runtime, the job queue or the HTTP client they use.
    for forbidden in [
        "tokio",
        "apalis",
        "apalis-sql",
        "ureq",
        "tungstenite",
        "tradelab-app",
        "tradelab-server",
    ] {
        let mut allowed: Vec<&str> = LAYERS
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !LIBRARIES.contains(c))
            .collect();
        // A real broker's REST API is part of the trading library (the
        // intended design's `trade` crate), over the blocking HTTP and
        // websocket clients.
        if forbidden == "ureq" || forbidden == "tungstenite" {
            allowed.push("trade");
        }
        // The NATS client runs on tokio: the bus owns a runtime for it, so
        // its callers (the trading loop, the publisher) stay synchronous.
        if forbidden == "tokio" {
            allowed.push("bus");
        }
        let v = crates_naming(forbidden, &allowed, |_| false);
        assert!(v.is_empty(), "no library may name {forbidden}:\n{}", v.join("\n"));
    }
    // The database driver is the store's alone among the libraries; the
    // ML framework is nn's and agents'.
    let below_app: Vec<&str> = LIBRARIES.to_vec();
    let v = crates_naming(
        "sqlx",
        &LAYERS
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !below_app.contains(c) || *c == "store")
            .collect::<Vec<_>>(),
        |_| false,
    );
    assert!(
        v.is_empty(),
        "only the store names sqlx among the libraries:\n{}",
        v.join("\n")
    );
    for framework in ["candle-core", "candle-nn"] {
        let v = crates_naming(framework, &["nn", "agents", "app", "server", "cli"], |_| false);
        assert!(
            v.is_empty(),
            "core, data, sim, env, regime, store and auth know no ML framework:\n{}",
            v.join("\n")
        );
    }
}

/// The agents crate's modules by layer: interface (0), machinery (1),
/// algorithms (2), drivers (3).
const AGENT_MODULES: &[(&str, u8)] = &[
    ("lib", 3),
    ("agent", 0),
    ("explanation", 0),
    ("attribution", 1),
    ("kinds", 0),
    ("metadata", 0),
    ("inputs", 0),
    ("error", 0),
    ("settings", 0),
    ("testing", 1),
    ("trainable", 0),
    ("rollout", 1),
    ("sampling", 1),
    ("gae", 1),
    ("adam", 1),
    ("checkpoint", 1),
    ("reward_scale", 1),
    ("epochs", 1),
    ("hindsight", 1),
    ("maml", 1),
    ("ppo", 2),
    ("hrm", 2),
    ("logistic", 2),
    ("gbt", 2),
    ("trainer", 3),
    ("complexity", 3),
    ("ensemble", 3),
    ("evaluate", 3),
    ("load", 3),
    ("meta_learning", 3),
    ("meta_tasks", 3),
    ("supervised", 3),
    ("transitions", 3),
];

fn agent_layer(module: &str) -> Option<u8> {
    AGENT_MODULES.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

#[test]
fn agents_imports_point_from_drivers_to_algorithms_to_machinery_to_interface() {
    let src = crates_dir().join("agents/src");
    let mut violations = Vec::new();
    for (path, text) in sources("agents") {
        let rel = path.strip_prefix(&src).unwrap();
        // The top-level module a file belongs to: `ppo/update.rs` is in `ppo`.
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let own = agent_layer(&module)
            .unwrap_or_else(|| panic!("agents module `{module}` has no layer in tests/architecture.rs; give it one"));
        for (n, line) in code_lines(&text) {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let target: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(l) = agent_layer(&target) {
                    if l > own {
                        violations.push(format!(
                            "{}:{n}: {module} imports {target}: {}",
                            path.display(),
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "agents imports must point down:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_dependency_table_matches_the_manifests() {
    // Guards the reader above: it must see the dependencies a manifest has.
    let deps: BTreeMap<&str, Vec<String>> = ["cli", "server", "app"]
        .into_iter()
        .map(|c| (c, dependencies(c)))
        .collect();
    assert!(deps["cli"].iter().any(|d| d == "clap"));
    assert!(deps["server"].iter().any(|d| d == "axum"));
    assert!(deps["app"].iter().any(|d| d == "tradelab-agents"));
    assert!(
        !deps["app"].iter().any(|d| d == "tempfile"),
        "dev-dependencies are not dependencies"
    );
}
