//! Runs the Python package's pytest suite (crates/py/pytests) against the
//! extension module this very test build produced, so `scripts/test`
//! covers the package without a second compile of the workspace.
//!
//! It needs a Python with the test requirements (crates/py/requirements-test.txt),
//! named by `TRADELAB_PYTHON_PACKAGE_ENV` (a venv folder; `.ci/run` makes it
//! with scripts/reference/venvs.sh). Without one it says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>`: this test executable lives in its `deps/` folder.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

#[test]
fn python_package_pytest_suite() {
    let Some(venv) = std::env::var_os("TRADELAB_PYTHON_PACKAGE_ENV") else {
        eprintln!(
            "skipped: set TRADELAB_PYTHON_PACKAGE_ENV to a venv with crates/py/requirements-test.txt \
             (eval \"$(scripts/reference/venvs.sh)\" makes one) to run the Python package's tests"
        );
        return;
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Built beside this test (the crate is also an rlib, so the test build
    // compiles the library and, with it, the cdylib), or uplifted by a
    // plain `cargo build`.
    let built = [
        profile_dir().join("deps/lib_native.so"),
        profile_dir().join("lib_native.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("the workspace's test build links crates/py's extension (lib_native.so)");
    // Where maturin develop would put it (ignored by git).
    let module = crate_dir.join("python/tradelab/_native.abi3.so");
    // Replace rather than overwrite: a running interpreter may map the old file.
    let _ = std::fs::remove_file(&module);
    std::fs::copy(&built, &module).expect("copy the extension next to the package");
    let python = Path::new(&venv).join("bin/python");
    let status = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "pytests"])
        .current_dir(crate_dir)
        .env("PYTHONPATH", crate_dir.join("python"))
        .env("TRADELAB_BIN", profile_dir().join("tradelab"))
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(status.success(), "the Python package's tests failed (output above)");
}
