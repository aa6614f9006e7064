//! A seconds-long smoke run of every load mode against a real Redis and an in-process
//! tollgate, so the load tools cannot rot. No thresholds on speed: only that each mode
//! runs, answers, and counts what it should.

use bytes::Bytes;
use clap::Parser;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::sync::oneshot;
use tollgate_loadgen::cli::{run, Cli};
use tollgate_loadgen::grpc_unary::{self, CallError, UnaryChannel};
use tollgate_loadgen::report::Report;
use tollgate_loadgen::target;
use tollgate_loadgen::workload;
use tollgate_proto::v1 as pb;
use tollgate_testkit::RedisServer;

const KEYS: usize = 200;

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Runs the load generator on the concatenation of `parts` (a subcommand with its target,
/// the common load flags, extra flags).
async fn loadgen(parts: &[&[&str]]) -> Vec<Report> {
    let args = parts.iter().flat_map(|p| p.iter());
    let cli = Cli::try_parse_from(["tollgate-loadgen"].iter().chain(args)).unwrap();
    run(cli).await.unwrap()
}

/// The generated config loads in tollgate, and tollgate resolves every key to exactly the
/// Redis keys and script arguments the ceiling uses.
#[test]
fn generated_config_matches_the_ceiling_catalog() {
    let yaml = workload::config_yaml(KEYS);
    let from_file = tollgate_server::config::parse("gen.yaml", &yaml, 1_700_000_000).unwrap();
    let in_process = workload::catalog(KEYS, 1_700_000_000).unwrap();
    let values = workload::key_values(KEYS);
    for k in [0, 1, KEYS / 2, KEYS - 1, KEYS] {
        let req = workload::request(k, &values);
        assert_eq!(
            from_file.resolve(&req, Some(90)),
            in_process.resolve(&req, Some(90)),
            "key {k}"
        );
    }
}

/// The generated Envoy rate-limit config loads in tollgate: every client has the ordinary
/// per-second rule, and the hot client its own tight one.
#[test]
fn generated_rls_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bench.yaml"),
        workload::rls_config_yaml(1000),
    )
    .unwrap();
    let (_, registry) = tollgate_server::rls_config::load(dir.path()).unwrap();
    let values = workload::key_values(KEYS);
    let rule = |k: usize| {
        let entries = workload::RlsDescriptor::Client.entries(k, &values);
        let entries: Vec<(&str, &str)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        registry
            .lookup(workload::RLS_DOMAIN, &entries)
            .unwrap_or_else(|| panic!("key {k} matches no rule"))
    };
    let (a, b, hot) = (rule(0), rule(KEYS - 1), rule(KEYS));
    assert_eq!(a.rule.requests_per_unit(), 1000);
    assert_ne!(a.state_name, b.state_name, "each client counts on its own");
    assert_eq!(hot.rule.requests_per_unit(), workload::RLS_HOT_PER_SECOND);
}

/// gRPC closed loop, open loop and hot key against tollgate on Redis, the same through
/// Envoy RLS with both descriptor workloads, then the ceiling and its pipelined figure,
/// each for a fraction of a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_runs() {
    let server = LoadServer::start().await;
    let addr = format!("http://{}", server.grpc);

    let keys = KEYS.to_string();
    let common = ["-k", &keys, "-c", "4", "-d", "400ms", "--warmup", "100ms"];
    let url = server.redis.url();

    let r = loadgen(&[&["grpc", "--addr", &addr, "--redis-stats", &url], &common]).await;
    let s = &r[0].stats;
    assert!(s.tally.allowed > 0, "{}", r[0].human());
    assert_eq!(s.tally.checks(), s.tally.allowed, "{}", r[0].human());
    assert!(r[0].latency_ms(0.99) > 0.0);

    let r = loadgen(&[&["grpc", "--addr", &addr], &common, &["--rate", "200"]]).await;
    assert_eq!(r[0].mode, "open");
    let checks = r[0].stats.tally.checks();
    assert!(
        (40..=120).contains(&checks),
        "200/s for 0.4 s sent {checks}"
    );

    let r = loadgen(&[
        &["grpc", "--addr", &addr],
        &common,
        &["--hot", "--hot-factor", "10"],
    ])
    .await;
    let s = &r[0].stats;
    assert!(s.hot_total > s.rest_total, "{}", r[0].human());
    assert!(
        s.tally.limited > 0,
        "the abusive key is refused: {}",
        r[0].human()
    );

    // Envoy RLS, API-key descriptors: the same plans as CheckQuota, one script call each.
    let r = loadgen(&[&["rls", "--addr", &addr, "--redis-stats", &url], &common]).await;
    let s = &r[0].stats;
    assert_eq!(r[0].target, "rls-api-key");
    assert!(s.tally.allowed > 0, "{}", r[0].human());
    assert_eq!(s.tally.checks(), s.tally.allowed, "{}", r[0].human());
    assert!(r[0].latency_ms(0.99) > 0.0);

    // Client descriptors against the generated rules, open loop, three per request.
    let r = loadgen(&[
        &[
            "rls",
            "--addr",
            &addr,
            "--descriptor",
            "client",
            "--descriptors",
            "3",
        ],
        &common,
        &["--rate", "200"],
    ])
    .await;
    let s = &r[0].stats;
    assert_eq!((r[0].target.as_str(), r[0].mode), ("rls-client-x3", "open"));
    assert!(
        (40..=120).contains(&s.tally.checks()),
        "200/s for 0.4 s sent {}",
        s.tally.checks()
    );
    assert_eq!(s.tally.checks(), s.tally.allowed, "{}", r[0].human());

    // A hot client: refused by its own rule, the others admitted, nothing failing.
    for descriptor in ["client", "api-key"] {
        let r = loadgen(&[
            &["rls", "--addr", &addr, "--descriptor", descriptor],
            &common,
            &["--hot", "--hot-factor", "10"],
        ])
        .await;
        let s = &r[0].stats;
        assert!(s.hot_total > s.rest_total, "{}", r[0].human());
        assert!(
            s.tally.limited > 0 && s.tally.allowed > 0,
            "the abusive key is refused, the others not: {}",
            r[0].human()
        );
        assert_eq!(s.tally.errors, 0, "{}", r[0].human());
    }

    let r = loadgen(&[
        &["ceiling", "--redis-url", &url, "--pipeline", "4"],
        &common,
    ])
    .await;
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].target.as_str(), r[1].target.as_str()),
        ("ceiling", "ceiling-pipelined")
    );
    for rep in &r {
        assert!(rep.stats.tally.allowed > 0, "{}", rep.human());
        assert_eq!(rep.stats.tally.errors, 0, "{}", rep.human());
    }

    // The lean gRPC caller itself: a good call decodes, and a gRPC error comes back as
    // that error, not as a reply.
    let channel = UnaryChannel::connect(&addr).await.unwrap();
    let values = workload::key_values(KEYS);
    let request = grpc_unary::frame(&target::check_quota_request(0, &values));
    let check = channel.method(target::CHECK_QUOTA_PATH).unwrap();
    let reply = channel.call(&check, request.clone()).await.unwrap();
    let reply = <pb::CheckQuotaResponse as prost::Message>::decode(reply).unwrap();
    assert_eq!(reply.verdict(), pb::Verdict::Ok);
    let missing = channel.method("/tollgate.v1.QuotaService/Nope").unwrap();
    match channel.call(&missing, request).await {
        Err(CallError::Status { code, .. }) => assert_eq!(code, "12", "UNIMPLEMENTED"),
        other => panic!("an unknown method answered {other:?}"),
    }
    match channel
        .call(&check, Bytes::from_static(b"\0\0\0\0\x02\xff\xff"))
        .await
    {
        Err(CallError::Status { code, .. }) => assert_ne!(code, "0"),
        other => panic!("a message that is not protobuf answered {other:?}"),
    }

    server.stop().await;
}

/// An in-process tollgate on its own Redis with the load generator's `KEYS` keys and its
/// Envoy rate-limit rules, on free loopback ports.
struct LoadServer {
    redis: RedisServer,
    grpc: String,
    http: String,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl LoadServer {
    /// Starts it and waits until its gRPC port accepts connections.
    async fn start() -> LoadServer {
        let redis = RedisServer::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("load.yaml");
        std::fs::write(&cfg, workload::config_yaml(KEYS)).unwrap();
        let rls_dir = dir.path().join("rls");
        std::fs::create_dir(&rls_dir).unwrap();
        std::fs::write(rls_dir.join("bench.yaml"), workload::rls_config_yaml(1000)).unwrap();
        let (grpc, http) = (free_addr(), free_addr());
        let mut settings = tollgate_server::cli::ServeSettings::with_defaults();
        settings.config = Some(cfg);
        settings.rls_config = Some(rls_dir);
        settings.redis.redis_url = Some(redis.url());
        settings.grpc_addr = grpc.parse().unwrap();
        settings.http_addr = http.parse().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(tollgate_server::app::serve(settings, async {
            let _ = stopped.await;
        }));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&grpc).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        LoadServer {
            redis,
            grpc,
            http,
            stop,
            serving,
            _dir: dir,
        }
    }

    /// Shuts it down and checks that it stopped cleanly.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.serving.await.unwrap().unwrap();
    }
}

/// The repository's loadtest/ directory, where the scripts under test live.
fn loadtest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../loadtest")
}

/// Runs the tollgate-loadgen binary with `args` and waits for it.
fn loadgen_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate-loadgen"))
        .args(args)
        .output()
        .unwrap()
}

/// The binary starts, prints a config and the wake-up probe's figures, and the load scripts
/// are valid shell.
#[test]
fn binary_and_scripts() {
    let out = loadgen_cli(&["gen-config", "--keys", "3"]);
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("lg2") && yaml.contains(workload::HOT_KEY_ID));
    let out = loadgen_cli(&["--threads", "2", "gen-rls-config", "--per-second", "50"]);
    assert!(out.status.success(), "on a multi-thread runtime");
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("requests_per_unit: 50") && yaml.contains(workload::HOT_KEY_ID));
    let out = loadgen_cli(&["--threads", "0", "gen-config"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
    // common.sh prints the first line with the host report; scripts read the WAKE line.
    let out = loadgen_cli(&["wake-probe", "--round-trips", "500"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().starts_with("wake-up round trip"),
        "{text}"
    );
    let wake = lines.next().unwrap();
    let same: f64 = wake
        .strip_prefix("WAKE same_core_us=")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{wake}"));
    assert!(same > 0.0, "{wake}");
    assert!(wake.contains(" cross_core_us="), "{wake}");
    let out = loadgen_cli(&["wake-probe", "--round-trips", "0"]);
    assert!(!out.status.success(), "zero round trips measure nothing");
    let loadtest = loadtest_dir();
    for script in [
        "bench.sh",
        "callgrind.sh",
        "compare.sh",
        "soak.sh",
        "common.sh",
        "oha.sh",
        "sched_waits.sh",
        "k6/envoy_proto_dir.sh",
    ] {
        let status = Command::new("bash")
            .arg("-n")
            .arg(loadtest.join(script))
            .status()
            .unwrap();
        assert!(status.success(), "bash -n {script}");
    }
}

/// sched_waits.py reads a perf scheduler trace: one preemption that waits 3 ms behind Redis
/// while the other core idles half of it, and one wake-up that waits 50 us; for the 3 ms
/// wait it names what each core ran, the span before a core's first switch included.
#[test]
fn sched_waits_reads_a_trace() {
    let trace = "\
 tollgate 100/100 [000] 10.000000: sched:sched_switch: prev_comm=tollgate prev_pid=100 prev_prio=120 prev_state=R ==> next_comm=redis-server next_pid=200 next_prio=120
 other 300/300 [001] 10.000500: sched:sched_switch: prev_comm=other prev_pid=300 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
 swapper 0/0 [001] 10.002000: sched:sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=other next_pid=300 next_prio=120
 redis-server 200/200 [000] 10.003000: sched:sched_switch: prev_comm=redis-server prev_pid=200 prev_prio=120 prev_state=S ==> next_comm=tollgate next_pid=100 next_prio=120
 tollgate 100/100 [000] 10.004000: sched:sched_switch: prev_comm=tollgate prev_pid=100 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
 other 300/300 [001] 10.005000: sched:sched_waking: comm=tollgate pid=100 prio=120 target_cpu=000
 swapper 0/0 [000] 10.005050: sched:sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=tollgate next_pid=100 next_prio=120
";
    let script = loadtest_dir().join("sched_waits.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["1", "tollgate=100"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (the README's set-up installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(trace.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "preempted 1, slept 1; 2 waits for a core",
        "mean 1525 us, over 200 us 1, over 1 ms 1, longest 3.00 ms",
        "3.0 ms in waits over 1 ms (0.3 % of 1 s)",
        "in all its waits the other cores were idle 49 % of the time; \
         the core was handed back by redis-server 1x, swapper/0 1x",
        "in the waits over 1 ms the other cores were idle 50 % of the time; \
         the core was handed back by redis-server 1x",
        "during its longest wait (3.00 ms from 10.000000 s) CPU 0 ran redis-server 3.0 ms; \
         CPU 1 ran other 1.5 ms, swapper/1 1.5 ms",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

/// One environment variable for k6: name, value.
type Env<'a> = (&'a str, &'a str);

/// Runs `k6 run` on `script` (under loadtest/k6) with `env`, for one second with two
/// virtual users over the smoke run's keys; returns its exit code and its summary.
async fn k6(script: &str, env: &[Env<'_>]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new("k6")
        .args(["run", "--quiet", "--no-usage-report"])
        .arg(loadtest_dir().join("k6").join(script))
        .envs([
            ("KEYS", KEYS.to_string().as_str()),
            ("VUS", "2"),
            ("DURATION", "1s"),
        ])
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "k6 runs ({e}); the README's set-up installs it from \
                 crates/tollgate-server/tests/python/requirements.txt"
            )
        });
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr);
    (out.status.code(), format!("{summary}\n{log}"))
}

/// The count k6's summary gives for `metric` (`  tollgate_allowed   count=12 rate=...`).
fn k6_count(summary: &str, metric: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix(metric)?
                .trim_start()
                .strip_prefix("count=")
        })
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {metric} count in:\n{summary}"))
}

/// Each k6 script passes its thresholds against tollgate, with every check admitted and none
/// failed, and fails them (k6's exit code 99) when nothing listens at the address it is
/// given: a run that reached no server must not read as a pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_scripts_pass_against_tollgate_and_fail_without_it() {
    let server = LoadServer::start().await;
    let http = format!("http://{}", server.http);
    let proto_dir = Command::new("bash")
        .arg(loadtest_dir().join("k6/envoy_proto_dir.sh"))
        .output()
        .unwrap();
    assert!(proto_dir.status.success(), "envoy_proto_dir.sh");
    let proto_dir = String::from_utf8(proto_dir.stdout).unwrap();
    let proto_dir = proto_dir.trim();
    let nobody = free_addr();
    let nobody_http = format!("http://{nobody}");
    let scripts: [(&str, &[Env], &[Env]); 4] = [
        (
            "check_quota_grpc.js",
            &[("TOLLGATE_GRPC", &server.grpc)],
            &[("TOLLGATE_GRPC", &nobody)],
        ),
        (
            "http_check.js",
            &[("TOLLGATE_HTTP", &http)],
            &[("TOLLGATE_HTTP", &nobody_http)],
        ),
        // host:port without a scheme, the form the gRPC scripts take, works as well.
        (
            "http_check.js",
            &[("TOLLGATE_HTTP", &server.http), ("RATE", "50")],
            &[("TOLLGATE_HTTP", &nobody), ("RATE", "50")],
        ),
        (
            "rls_should_rate_limit.js",
            &[("TOLLGATE_GRPC", &server.grpc), ("ENVOY_PROTO", proto_dir)],
            &[("TOLLGATE_GRPC", &nobody), ("ENVOY_PROTO", proto_dir)],
        ),
    ];
    for (script, good, bad) in scripts {
        let (code, summary) = k6(script, good).await;
        assert_eq!(code, Some(0), "{script} against tollgate:\n{summary}");
        assert!(
            k6_count(&summary, "tollgate_allowed") > 0,
            "{script}:\n{summary}"
        );
        assert_eq!(
            k6_count(&summary, "tollgate_refused"),
            0,
            "{script}:\n{summary}"
        );
        let (code, summary) = k6(script, bad).await;
        assert_eq!(code, Some(99), "{script} with no server:\n{summary}");
        assert_eq!(
            k6_count(&summary, "tollgate_allowed"),
            0,
            "{script}:\n{summary}"
        );
    }
    server.stop().await;
}
