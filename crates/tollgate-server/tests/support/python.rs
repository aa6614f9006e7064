//! Python for the Envoy tests: a check that Python 3 and its modules are there (failing
//! with the command to install them), and Envoy stubs generated once per test binary by
//! `tests/python/envoy_stubs.py` from the `.proto` files the envoy-types crate ships.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
const INSTALL: &str = "pip install -r crates/tollgate-server/tests/python/requirements.txt";

/// Checks (once per set of modules and test binary) that `python3` can import `modules`;
/// fails the test with the command that installs them if not. Every test that drives
/// tollgate from Python calls this, so a missing module is a failure, never a skip.
pub fn require_python_modules(modules: &[&str]) {
    static CHECKED: Mutex<BTreeMap<String, Result<(), String>>> = Mutex::new(BTreeMap::new());
    let imports = modules.join(", ");
    let result = CHECKED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(imports.clone())
        .or_insert_with(|| probe(&imports))
        .clone();
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn probe(imports: &str) -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", &format!("import {imports}")])
        .output()
        .map_err(|e| format!("cannot run python3 ({e}); install Python 3, then {INSTALL}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 lacks a module these tests need ({imports}): {}\nInstall them with: {INSTALL}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The modules the Envoy tests need.
pub fn require_python() {
    require_python_modules(&["grpc", "grpc_tools", "yaml"]);
}

/// envoy-types' `proto/` directory, found through `cargo metadata`.
pub fn envoy_proto_root() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let run = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(&manifest);
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
    };
    let out = match run(true) {
        Ok(o) if o.status.success() => o,
        _ => run(false).expect("run cargo metadata"),
    };
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let manifest_path = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "envoy-types"))
        .and_then(|p| p["manifest_path"].as_str())
        .expect("envoy-types in cargo metadata");
    let root = Path::new(manifest_path)
        .parent()
        .expect("crate dir")
        .join("proto");
    assert!(root.is_dir(), "{} is not a directory", root.display());
    root
}

/// The generated stubs, made once per test run.
pub fn stubs() -> &'static Path {
    static STUBS: OnceLock<tempfile::TempDir> = OnceLock::new();
    STUBS
        .get_or_init(|| {
            require_python();
            let dir = tempfile::tempdir().expect("temp dir");
            let out = Command::new("python3")
                .arg(Path::new(PYTHON_DIR).join("envoy_stubs.py"))
                .arg(envoy_proto_root())
                .arg(dir.path())
                .output()
                .expect("run envoy_stubs.py");
            assert!(
                out.status.success(),
                "generating the Envoy stubs failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .path()
}
