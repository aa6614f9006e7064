//! Envoy conformance of the real binary through a client that is not tonic: Python grpcio,
//! with stubs generated at test time by grpcio-tools from Envoy's own `.proto` files (the
//! ones the envoy-types crate ships and tollgate's types are generated from).
//!
//! Each test starts tollgate and runs one scenario of `tests/python/rls_conformance.py` or
//! `tests/python/ext_authz_conformance.py` against it. Python 3 with grpcio, grpcio-tools and
//! PyYAML is required (`pip install -r crates/tollgate-server/tests/python/requirements.txt`,
//! which `.ci/run` does): without them these tests fail, saying so.

mod support;

use std::path::Path;
use std::process::Command;
use support::python::{stubs, PYTHON_DIR};
use support::*;
use tollgate_testkit::RedisServer;

const RLS_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rls/conformance.yaml"
);

/// Runs `scenario` of `script` against `t`, failing with the script's output if it fails.
fn scenario(script: &str, name: &str, t: &Tollgate, config_dir: Option<&Path>) {
    let stubs = stubs();
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(PYTHON_DIR).join(script))
        .arg(name)
        .arg("--stubs")
        .arg(stubs)
        .args(["--grpc", &t.grpc_port.to_string()])
        .args(["--http", &t.http_port.to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(dir) = config_dir {
        cmd.arg("--config-dir").arg(dir);
    }
    let out = cmd.output().expect("run python3");
    assert!(
        out.status.success(),
        "{script} {name} failed:\n{}{}\n--- tollgate log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        t.log()
    );
}

/// A fresh RLS config directory holding the conformance domain.
fn rls_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(RLS_FIXTURE, dir.path().join("conformance.yaml")).expect("copy fixture");
    dir
}

/// Starts tollgate with the conformance domain and the seed plans, plus `extra` flags.
fn rls_tollgate(dir: &Path, extra: &[&str]) -> Tollgate {
    let seed = seed_config();
    let mut args = vec![
        "--rls-config",
        dir.to_str().expect("utf-8 path"),
        "--config",
        seed.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    Tollgate::start(&args)
}

fn rls(name: &str, extra: &[&str]) {
    let dir = rls_dir();
    let t = rls_tollgate(dir.path(), extra);
    scenario("rls_conformance.py", name, &t, Some(dir.path()));
}

/// Nested descriptors and depth: a limit applies where the request's last entry lands, and
/// a request shorter or longer than the config's path gets none.
#[test]
fn rls_nested_descriptors_and_depth() {
    rls("nested_and_depth", &[]);
}

/// Wildcards: exact beats `prefix*` beats key-only, and each value counts on its own.
#[test]
fn rls_wildcards() {
    rls("wildcards", &[]);
}

/// An unlimited rule is matched and never limits.
#[test]
fn rls_unlimited() {
    rls("unlimited", &[]);
}

/// `replaces`: a rule named by another matched rule is not applied, nor counted.
#[test]
fn rls_replaces() {
    rls("replaces", &[]);
}

/// A shadow-mode rule counts and reports but never answers OVER_LIMIT; its over-limit hits
/// are counted in the metrics.
#[test]
fn rls_shadow_mode() {
    rls("shadow_mode", &[]);
}

/// `--rls-shadow-mode`: nothing is ever OVER_LIMIT, and counting goes on.
#[test]
fn rls_global_shadow_mode() {
    rls("global_shadow_mode", &["--rls-shadow-mode"]);
}

/// `hits_addend`: request-level 0 means 1, the descriptor's wrapper overrides it, an
/// explicit 0 reads without consuming.
#[test]
fn rls_hits_addend() {
    rls("hits_addend", &[]);
}

/// A descriptor's own `limit` applies instead of the config's; malformed ones are refused.
#[test]
fn rls_limit_override() {
    rls("limit_override", &[]);
}

/// An unknown domain answers OK with one empty status per descriptor.
#[test]
fn rls_unknown_domain() {
    rls("unknown_domain", &[]);
}

/// A request over on one descriptor consumes nothing on the others (memory store).
#[test]
fn rls_all_or_nothing() {
    rls("all_or_nothing", &[]);
}

/// The same on Redis, where it is one script call over both counters' keys.
#[test]
fn rls_all_or_nothing_on_redis() {
    let redis = RedisServer::start().expect("start redis-server");
    rls("all_or_nothing", &["--redis-url", &redis.url()]);
}

/// Malformed requests get INVALID_ARGUMENT naming what is wrong, and the service goes on.
#[test]
fn rls_malformed_requests() {
    rls("malformed", &[]);
}

/// The seed scenario through RLS: a descriptor carrying testApikey gets its usage plan,
/// five calls pass and the sixth is OVER_LIMIT; refused keys are OVER_LIMIT.
#[test]
fn rls_api_key_seed_scenario() {
    rls("api_key", &[]);
}

/// The same on Redis.
#[test]
fn rls_api_key_seed_scenario_on_redis() {
    let redis = RedisServer::start().expect("start redis-server");
    rls("api_key", &["--redis-url", &redis.url()]);
}

/// `--rls-response-headers ratelimit`: IETF RateLimit-* and Retry-After.
#[test]
fn rls_ratelimit_headers() {
    rls(
        "ratelimit_headers",
        &["--rls-response-headers", "ratelimit"],
    );
}

/// `--rls-response-headers x-ratelimit`: Envoy's DRAFT_VERSION_03 x-ratelimit-* headers.
#[test]
fn rls_x_ratelimit_headers() {
    rls(
        "x_ratelimit_headers",
        &["--rls-response-headers", "x-ratelimit"],
    );
}

/// Hot reload: a changed file applies, a broken or invalid one keeps the previous config
/// and is counted in the metrics, a fixed one applies again, a removed one goes.
#[test]
fn rls_hot_reload() {
    rls("hot_reload", &["--rls-reload-interval-ms", "100"]);
}

/// A reload that raises a limit lifts the denials this instance cached under the old one.
#[test]
fn rls_reload_lifts_denials() {
    rls("reload_lifts_denials", &["--rls-reload-interval-ms", "100"]);
}

/// A broken config directory at start stops tollgate with a message naming the file.
#[test]
fn rls_broken_config_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--rls-config")
        .arg(dir.path())
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_REDIS_URL")
        .output()
        .expect("run tollgate");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("fortnight"),
        "stderr: {err}"
    );
}

/// The seed plans plus a disabled key.
fn authz_config() -> tempfile::TempPath {
    temp_config(&format!(
        "{}\n  - name: disabledKey\n    value: disabled-key-0123456789abcdef\n    enabled: false\n    usagePlanIds: [demo-usage-plan]\n",
        std::fs::read_to_string(seed_config()).expect("seed config").trim_end()
    ))
}

fn authz(name: &str, extra: &[&str]) {
    let cfg = authz_config();
    let mut args = vec!["--config", cfg.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let t = Tollgate::start(&args);
    scenario("ext_authz_conformance.py", name, &t, None);
}

/// Every ext_authz verdict with its exact gRPC code, HTTP status, body and headers: 403 for
/// missing, unknown, disabled and unsubscribed keys, the seed scenario's five 200s and 429
/// "Limit Exceeded", and the premium throttle's 429 "Too Many Requests".
#[test]
fn ext_authz_verdicts() {
    authz("verdicts", &[]);
}

/// The same on Redis.
#[test]
fn ext_authz_verdicts_on_redis() {
    let redis = RedisServer::start().expect("start redis-server");
    authz("verdicts", &["--redis-url", &redis.url()]);
}

/// Malformed checks get INVALID_ARGUMENT.
#[test]
fn ext_authz_malformed_requests() {
    authz("malformed", &[]);
}

/// `--ext-authz-api-key-header` names the header the key is read from.
#[test]
fn ext_authz_custom_key_header() {
    authz(
        "custom_header",
        &["--ext-authz-api-key-header", "X-Client-Key"],
    );
}

/// With Redis down and failing closed, 503 "Service Unavailable"; key refusals still 403.
#[test]
fn ext_authz_store_down_fails_closed() {
    let mut redis = RedisServer::start().expect("start redis-server");
    let cfg = authz_config();
    let t = Tollgate::start(&[
        "--config",
        cfg.to_str().expect("utf-8 path"),
        "--redis-url",
        &redis.url(),
        "--redis-timeout-ms",
        "200",
    ]);
    redis.stop();
    scenario("ext_authz_conformance.py", "unavailable", &t, None);
}

/// With Redis down and failing open, calls pass, still naming the key and plan.
#[test]
fn ext_authz_store_down_fails_open() {
    let mut redis = RedisServer::start().expect("start redis-server");
    let cfg = authz_config();
    let t = Tollgate::start(&[
        "--config",
        cfg.to_str().expect("utf-8 path"),
        "--redis-url",
        &redis.url(),
        "--failure-mode",
        "allow",
    ]);
    redis.stop();
    scenario("ext_authz_conformance.py", "fail_open", &t, None);
}
