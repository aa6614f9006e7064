//! The command line as a user meets it: help text, bad flags and bad config files.

mod support;

use std::process::Command;

fn tollgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_REDIS_URL")
        .output()
        .expect("run tollgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tollgate serve --help` explains every flag and names its environment variable.
#[test]
fn help_explains_every_flag() {
    let (code, out, _) = tollgate(&["serve", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--redis-url",
        "--redis-mode",
        "--grpc-addr",
        "--http-addr",
        "--failure-mode",
        "--worker-threads",
        "TOLLGATE_WORKER_THREADS",
        "TOLLGATE_CONFIG",
        "TOLLGATE_REDIS_URL",
        "TOLLGATE_REDIS_MODE",
        "TOLLGATE_GRPC_ADDR",
        "TOLLGATE_HTTP_ADDR",
        "TOLLGATE_FAILURE_MODE",
        "0.0.0.0:8081",
        "0.0.0.0:8080",
    ] {
        assert!(out.contains(flag), "help lacks {flag}:\n{out}");
    }
}

/// A malformed or invalid config stops start-up with the file and field named, no panic.
#[test]
fn bad_config_is_a_clear_error() {
    let bad =
        support::temp_config("usagePlans:\n  - id: p\n    quota: {limit: 5, period: FORTNIGHT}\n");
    let (code, _, err) = tollgate(&["serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(bad.to_str().unwrap()) && err.contains("usagePlans[0].quota.period"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let (code, _, err) = tollgate(&["check-config", "--config", "/no/such/file.yaml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/no/such/file.yaml") && err.contains("cannot read"),
        "{err}"
    );
    let broken = support::temp_config("usagePlans: [ {id: x\n");
    let (code, _, err) = tollgate(&["check-config", "--config", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line"), "{err}");
}

/// `check-config` accepts the seed scenario and says what it holds.
#[test]
fn check_config_accepts_seed() {
    let seed = support::seed_config();
    let (code, out, err) = tollgate(&["check-config", "--config", seed.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2 usage plan(s)") && out.contains("2 API key(s)"),
        "{out}"
    );
}

/// Bad flag values are refused by the parser with a message, not a panic.
#[test]
fn bad_flags() {
    let (code, _, err) = tollgate(&["serve", "--redis-mode", "ring"]);
    assert_eq!(code, 2);
    assert!(err.contains("standalone"), "{err}");
    let (code, _, err) = tollgate(&["serve", "--grpc-addr", "not-an-addr"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tollgate(&["serve", "--worker-threads", "many"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--worker-threads"), "{err}");
    // On a one-thread runtime the start-up errors are the same.
    let (code, _, err) = tollgate(&[
        "serve",
        "--worker-threads",
        "1",
        "--redis-url",
        "http://nope",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not a Redis URL"), "{err}");
}

/// Logs written to a file (as under systemd, Docker or Kubernetes) carry no colour escape
/// codes; colour is for a terminal only.
#[test]
fn logs_to_a_file_are_plain_text() {
    let seed = support::seed_config();
    let t = support::Tollgate::start(&["--config", seed.to_str().unwrap()]);
    let log = t.log();
    assert!(log.contains("listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log:?}"
    );
}
