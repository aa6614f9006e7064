//! Starts real `tollgate` processes (the built binary) for integration tests, on free
//! ports, and stops them when dropped.

#![allow(dead_code)]

pub mod http;

pub use http::HttpResponse;
pub mod python;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tollgate_proto::v1::quota_service_client::QuotaServiceClient;
use tollgate_proto::v1::{CheckQuotaRequest, CheckQuotaResponse};
use tonic::transport::Channel;

/// The seed scenario's file.
pub fn seed_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/calculator/tollgate.yaml")
}

/// The seed scenario's demo key value, as written in the file.
pub const TEST_KEY: &str = "demo-testApikey-0123456789abcdef";
/// The seed scenario's premium key value.
pub const PREMIUM_KEY: &str = "demo-premiumApikey-0123456789abcdef";

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One running tollgate process.
pub struct Tollgate {
    child: Child,
    /// gRPC port.
    pub grpc_port: u16,
    /// HTTP port.
    pub http_port: u16,
    log: PathBuf,
}

impl Tollgate {
    /// Starts `tollgate serve` with `args` and waits until `/healthz` answers (any status).
    pub fn start(args: &[&str]) -> Tollgate {
        Self::start_with_env(args, &[])
    }

    /// Starts tollgate on the seed scenario with its limits in the Redis at `redis_url`,
    /// plus `extra` flags.
    pub fn seeded_on_redis(redis_url: &str, extra: &[&str]) -> Tollgate {
        let cfg = seed_config();
        let mut args = vec![
            "--redis-url",
            redis_url,
            "--config",
            cfg.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// Like [`Tollgate::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Tollgate {
        let grpc_port = free_port();
        let http_port = free_port();
        let log = std::env::temp_dir().join(format!("tollgate-test-{grpc_port}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.arg("serve")
            .args(["--grpc-addr", &format!("127.0.0.1:{grpc_port}")])
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(args)
            .env_remove("TOLLGATE_REDIS_URL")
            .env_remove("TOLLGATE_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn tollgate");
        let mut t = Tollgate {
            child,
            grpc_port,
            http_port,
            log,
        };
        t.wait_ready();
        t
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tollgate exited with {status}:\n{}", self.log());
            }
            if self.http_get("/healthz").is_some()
                && TcpStream::connect(("127.0.0.1", self.grpc_port)).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tollgate did not start:\n{}", self.log());
    }

    /// Asks the process to stop, as a service manager does (SIGTERM).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A plain HTTP/1.0 GET; returns (status, body).
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.split_whitespace().nth(1)?.parse().ok()?;
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        Some((status, body))
    }

    /// A gRPC client for QuotaService.
    pub async fn client(&self) -> QuotaServiceClient<Channel> {
        QuotaServiceClient::connect(format!("http://127.0.0.1:{}", self.grpc_port))
            .await
            .expect("connect gRPC")
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A CheckQuota request on the seed scenario's API stage.
pub fn seed_request(key: &str) -> CheckQuotaRequest {
    CheckQuotaRequest {
        api_key: key.to_string(),
        api_id: "demo-API-usage-plan".into(),
        stage: "usage-plan-test".into(),
        resource: "/usageplanOffering".into(),
        method: "POST".into(),
        cost: None,
    }
}

/// Calls CheckQuota and unwraps the gRPC layer.
pub async fn check(
    client: &mut QuotaServiceClient<Channel>,
    req: CheckQuotaRequest,
) -> CheckQuotaResponse {
    client
        .check_quota(req)
        .await
        .expect("CheckQuota")
        .into_inner()
}

/// The value of header `name` in a response.
pub fn header<'a>(r: &'a CheckQuotaResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

/// Writes `text` to a fresh temporary YAML file and returns its path.
pub fn temp_config(text: &str) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write config");
    f.into_temp_path()
}

/// The management API bearer token the admin tests start tollgate with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

impl Tollgate {
    /// Starts tollgate with the admin bearer token set, plus `env`.
    pub fn start_admin(args: &[&str], env: &[(&str, &str)]) -> Tollgate {
        let mut all = vec![("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN)];
        all.extend_from_slice(env);
        Self::start_with_env(args, &all)
    }

    /// One HTTP request to this instance's HTTP port, read to its end.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpResponse {
        http::request(self.http_port, method, path, headers, body.as_bytes())
    }

    /// A management call with the admin bearer token and a JSON body.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> HttpResponse {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        self.http(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    }
}

/// A CheckQuota request for `key` on API `api`, stage `stage`.
pub fn stage_request(key: &str, api: &str, stage: &str) -> CheckQuotaRequest {
    CheckQuotaRequest {
        api_key: key.to_string(),
        api_id: api.into(),
        stage: stage.into(),
        resource: "/".into(),
        method: "GET".into(),
        cost: None,
    }
}
