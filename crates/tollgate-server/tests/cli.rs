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

/// A quota limit above 2^52, which the Redis script could not count exactly, is refused by
/// `check-config` and by `serve --config`, naming the plan and the field.
#[test]
fn quota_above_exact_bound_is_refused() {
    let big = support::temp_config(
        "usagePlans:\n  - id: big\n    quota: {limit: 9223372036854775807, period: DAY}\n",
    );
    for cmd in ["check-config", "serve"] {
        let (code, _, err) = tollgate(&[cmd, "--config", big.to_str().unwrap()]);
        assert_eq!(code, 1, "{cmd}: {err}");
        assert!(
            err.contains("usagePlans[0] (`big`): quota.limit: must be at most 4503599627370496")
                && err.contains("got 9223372036854775807"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("panicked"), "{cmd}: {err}");
    }
}

/// A missing field is reported with its path once, not twice.
#[test]
fn missing_field_names_its_path_once() {
    let bad = support::temp_config("apiKeys:\n  - name: k\n");
    let (code, _, err) = tollgate(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(": apiKeys[0]: missing field `value` at line 2 column 5"),
        "{err}"
    );
    assert_eq!(err.matches("apiKeys[0]").count(), 1, "{err}");
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

/// `tollgate apply` of an empty plans file to `redis_url` with `--redis-tls-ca-file
/// ca_file`, which must stop at start without touching Redis: its stderr. (`apply` rather
/// than `serve`: both build the store the same way, and `apply` ends by itself either way.)
fn refused_tls_settings(redis_url: &str, ca_file: &str) -> String {
    let file = support::temp_config("usagePlans: []\n");
    let (code, _, err) = tollgate(&[
        "apply",
        "-f",
        file.to_str().unwrap(),
        "--redis-url",
        redis_url,
        "--redis-tls-ca-file",
        ca_file,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A Redis TLS file that cannot be read stops the command at start with a message naming
/// the file, instead of a store that is unavailable at every call.
#[test]
fn bad_redis_tls_file_stops_start() {
    let err = refused_tls_settings("rediss://127.0.0.1:1/", "/no/such/ca.pem");
    assert!(
        err.contains("cannot read the Redis TLS CA file `/no/such/ca.pem`"),
        "{err}"
    );
}

/// `rediss://...#insecure` (no certificate checked) with `--redis-tls-ca-file` (check them
/// against this CA) contradict each other: refused at start, naming both.
#[test]
fn insecure_url_with_a_ca_file_stops_start() {
    let err = refused_tls_settings("rediss://127.0.0.1:1/#insecure", "/etc/tollgate/ca.pem");
    assert!(
        err.contains("#insecure") && err.contains("`/etc/tollgate/ca.pem`"),
        "{err}"
    );
}

/// Runs `tollgate` with `args` for at most `limit`, killing it if it runs longer; its exit code
/// (`None` if it was still running) and stderr.
fn tollgate_within(args: &[&str], limit: std::time::Duration) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_REDIS_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tollgate");
    let deadline = std::time::Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
    }
    (code, err)
}

/// A Redis that refuses tollgate's credentials stops `serve` at start with a message saying
/// so, instead of a service that runs and fails every check: no wait mends a wrong password.
#[test]
fn refused_credentials_stop_serve_at_start() {
    let server = tollgate_testkit::RedisServer::start_with_password("s3cret-pw").unwrap();
    let url = format!("redis://:wrong@127.0.0.1:{}/", server.port());
    let (code, err) = tollgate_within(
        &[
            "serve",
            "--redis-url",
            &url,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        std::time::Duration::from_secs(20),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("Redis refused tollgate's credentials"),
        "{err}"
    );
    assert!(!err.contains("wrong@"), "the password is not shown: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The README's command-line table names every flag of `tollgate serve --help`, with the
/// same environment variable and default, so the two cannot drift apart.
#[test]
fn readme_lists_every_serve_flag() {
    let (code, help, _) = tollgate(&["serve", "--help"]);
    assert_eq!(code, 0);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Command line\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Command line section in README.md");
    // (flag, env, default) from the help text, one flag after another.
    let mut flags: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for line in help.lines().map(str::trim) {
        if let Some(flag) = line.strip_prefix("--") {
            let name = flag.split([' ', '<']).next().unwrap_or_default();
            flags.push((format!("--{name}"), None, None));
        } else if let Some(last) = flags.last_mut() {
            if let Some(env) = line.strip_prefix("[env: ") {
                last.1 = env.split(['=', ']']).next().map(str::to_string);
            } else if let Some(default) = line.strip_prefix("[default: ") {
                last.2 = default.strip_suffix(']').map(str::to_string);
            }
        }
    }
    let flags: Vec<_> = flags
        .into_iter()
        .filter(|(f, _, _)| f != "--help")
        .collect();
    assert!(
        flags.len() > 20,
        "too few flags read from the help: {flags:?}"
    );
    for (flag, env, default) in flags {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{flag}")))
            .unwrap_or_else(|| panic!("README's command-line table lacks {flag}"));
        if let Some(env) = env {
            assert!(
                row.contains(&format!("`{env}`")),
                "{flag}: {env} not in {row}"
            );
        }
        if let Some(default) = default {
            assert!(
                row.contains(&format!("`{default}`")),
                "{flag}: default {default} not in {row}"
            );
        }
    }
}
