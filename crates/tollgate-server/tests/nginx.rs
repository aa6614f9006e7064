//! Real nginx (Debian's package) in front of a demo backend, asking a real tollgate through
//! `auth_request`, with the committed `deploy/nginx/nginx.conf` — only its four marked
//! addresses are swapped for free ports.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::http::{request, DemoBackend, HttpResponse};
use support::*;

/// The committed config.
fn deploy_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/nginx.conf")
}

/// nginx's binary: on PATH, else where Debian puts it (`/usr/sbin` is not on every PATH).
fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
        .expect("nginx not found: install it (apt-get install nginx; .ci/run does)")
}

/// Replaces `from` with `to`, insisting that `from` occurs exactly once, so a change of the
/// committed config that this test no longer understands fails loudly.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` must occur once in deploy/nginx/nginx.conf"
    );
    text.replacen(from, to, 1)
}

/// nginx running the deploy config in a temporary prefix; killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn start(tollgate_http: u16, backend: u16) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = std::fs::read_to_string(deploy_config()).unwrap();
        let text = swap(&text, "listen 8000;", &format!("listen 127.0.0.1:{port};"));
        let text = swap(
            &text,
            "server 127.0.0.1:8080;",
            &format!("server 127.0.0.1:{tollgate_http};"),
        );
        let text = swap(
            &text,
            "server 127.0.0.1:9000;",
            &format!("server 127.0.0.1:{backend};"),
        );
        let text = swap(
            &text,
            "listen 127.0.0.1:9000;",
            &format!("listen 127.0.0.1:{};", free_port()),
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(dir.path().join("nginx.log")).unwrap();
        // One process (no master/workers), so killing the child stops all of nginx.
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr", "-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        let mut n = Nginx { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", n.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not start:\n{}",
                n.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nginx.log")).unwrap_or_default()
    }

    fn get(&self, path: &str, key: Option<&str>) -> HttpResponse {
        let headers: Vec<(&str, &str)> = key.map(|k| ("X-API-Key", k)).into_iter().collect();
        request(self.port, "GET", path, &headers, b"")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Without a key 403 Forbidden; with the seed key five 200s from the backend, with the
/// limit headers counting down, then 429 "Limit Exceeded" with Retry-After — and refused
/// calls never reach the backend, which sees the key id but never the key.
#[test]
fn nginx_seed_scenario() {
    let cfg = seed_config();
    let t = Tollgate::start(&["--config", cfg.to_str().unwrap()]);
    let backend = DemoBackend::start();
    let nginx = Nginx::start(t.http_port, backend.port);
    let ctx = |r: &HttpResponse| format!("{r:?}\n--- nginx log ---\n{}", nginx.log());

    let r = nginx.get("/usageplanOffering", None);
    assert_eq!(r.status, 403, "{}", ctx(&r));
    assert_eq!(r.json()["message"], "Forbidden");
    let r = nginx.get("/usageplanOffering", Some("no-such-key-0123456789abcdef"));
    assert_eq!(r.status, 403, "{}", ctx(&r));
    assert_eq!(backend.hits(), 0);

    for i in 0..5u32 {
        let r = nginx.get("/usageplanOffering?a=1", Some(TEST_KEY));
        assert_eq!(r.status, 200, "call {i}: {}", ctx(&r));
        assert_eq!(r.json()["result"], 42);
        assert_eq!(r.header("RateLimit-Limit"), Some("5"), "{}", ctx(&r));
        let remaining = (4 - i).to_string();
        assert_eq!(r.header("RateLimit-Remaining"), Some(remaining.as_str()));
        assert!(r.header("RateLimit-Reset").is_some());
        assert!(r.header("Retry-After").is_none());
    }
    let r = nginx.get("/usageplanOffering", Some(TEST_KEY));
    assert_eq!(r.status, 429, "{}", ctx(&r));
    assert_eq!(r.json()["message"], "Limit Exceeded");
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{}",
        ctx(&r)
    );
    let retry: u64 = r
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 86_400, "{retry}");
    assert_eq!(r.header("RateLimit-Remaining"), Some("0"));

    assert_eq!(backend.hits(), 5, "only admitted calls reach the backend");
    for seen in backend.seen() {
        assert_eq!(seen.header("x-tollgate-key-id"), Some("testApikey"));
        assert_eq!(seen.header("x-tollgate-plan-id"), Some("demo-usage-plan"));
        assert_eq!(seen.header("x-api-key"), None, "the key value stays out");
        assert_eq!(seen.line, "GET /usageplanOffering?a=1 HTTP/1.0");
    }
}

/// The premium key's burst of 20 passes, then the throttle answers 429 "Too Many Requests"
/// with Retry-After: 1.
#[test]
fn nginx_throttle() {
    let cfg = seed_config();
    let t = Tollgate::start(&["--config", cfg.to_str().unwrap()]);
    let backend = DemoBackend::start();
    let nginx = Nginx::start(t.http_port, backend.port);
    let mut refused = None;
    for _ in 0..30 {
        let r = nginx.get("/usageplanOffering", Some(PREMIUM_KEY));
        if r.status != 200 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the throttle refused within 30 calls");
    assert_eq!(r.status, 429, "{r:?}\n{}", nginx.log());
    assert_eq!(r.json()["message"], "Too Many Requests");
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(backend.hits() >= 20, "the burst of 20 passed");
}

/// With Redis down and the default fail-closed policy, the client gets 503.
#[test]
fn nginx_store_down_is_503() {
    let mut redis = tollgate_testkit::RedisServer::start().unwrap();
    let cfg = seed_config();
    let t = Tollgate::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--redis-url",
        &redis.url(),
    ]);
    let backend = DemoBackend::start();
    let nginx = Nginx::start(t.http_port, backend.port);
    assert_eq!(nginx.get("/x", Some(TEST_KEY)).status, 200);
    redis.stop();
    let r = nginx.get("/x", Some(TEST_KEY));
    assert_eq!(r.status, 503, "{r:?}\n{}", nginx.log());
    assert_eq!(r.json()["message"], "Service Unavailable");
    assert_eq!(backend.hits(), 1);
}
