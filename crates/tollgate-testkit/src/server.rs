//! [`RedisServer`]: one `redis-server` child process on a free port of 127.0.0.1.
//!
//! Each server gets its own temporary directory (its `--dir`, its log, and for Cluster nodes
//! its `nodes.conf`), keeps nothing on disk (`--save "" --appendonly no`), and is killed and
//! waited for when the [`RedisServer`] is dropped, after which the directory is removed.
//!
//! A server may also listen for TLS on a second port ([`TlsFiles`]); the harness itself always
//! talks to the plain port.
//!
//! A server counts as started only when the process the harness spawned answers on the port:
//! it must answer `PING`, and `INFO server` must report the spawned process's own pid. That
//! tells a free-port race lost to another server apart from a start, and such a race is
//! retried on new ports.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::HarnessError;
use crate::ports::free_ports;
use crate::resp::{info_field, Conn, Reply};

const REDIS_SERVER: &str = "redis-server";
/// How long a server may take from spawn to answering `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect, read and write timeout of one readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many times a start may lose its port to another process before giving up.
const PORT_ATTEMPTS: usize = 5;
const LOG_FILE: &str = "redis.log";
const LOG_TAIL_LINES: usize = 30;

/// Kills the server (`$1`) and removes its directory (`$2`) once the watchdog's stdin reaches
/// end of file. That happens when the test process exits, whatever way it exits (even
/// `SIGKILL`): the kernel then closes the pipe's write end, which only the test process holds.
/// On a normal stop or drop the watchdog is killed first and never acts.
const WATCHDOG_SCRIPT: &str =
    r#"while read -r line; do :; done; kill -9 "$1" 2>/dev/null; rm -rf -- "$2""#;

/// The certificate files of a server's TLS port, as `redis-server` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate the server presents (for 127.0.0.1).
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file`.
    pub key_file: PathBuf,
    /// PEM CA that signed the certificates the server trusts from clients and, in a Cluster,
    /// from the other nodes.
    pub ca_file: PathBuf,
}

/// The TLS port of a server and its files.
#[derive(Debug, Clone)]
struct Tls {
    port: u16,
    files: TlsFiles,
}

/// A `redis-server` child process on `127.0.0.1:`[`port`](Self::port), in its own temporary
/// directory.
///
/// Dropping it kills the process, waits for it and removes the directory, also while a test
/// panics. [`stop`](Self::stop), [`restart`](Self::restart), [`pause`](Self::pause) and
/// [`resume`](Self::resume) simulate failures.
#[must_use = "the server is killed as soon as this value is dropped"]
pub struct RedisServer {
    /// `None` while stopped.
    process: Option<Process>,
    port: u16,
    /// The Cluster bus port, for Cluster nodes.
    cluster_port: Option<u16>,
    /// The TLS port, for servers started with TLS.
    tls: Option<Tls>,
    /// Arguments passed after the harness's own.
    args: Vec<String>,
    /// The `--requirepass` found in `args`, so the harness can probe the server.
    password: Option<String>,
    dir: TempDir,
}

/// What one spawn attempt came to.
enum Spawned {
    Ready,
    /// Another process holds the port; try again on another.
    PortTaken(String),
}

impl RedisServer {
    /// Starts `redis-server` on a free port, with no password.
    ///
    /// Returns once the server answers `PING`. Blocks the calling thread, so it works in a
    /// plain `#[test]` and inside `#[tokio::test]` alike.
    pub fn start() -> Result<RedisServer, HarnessError> {
        Self::start_with_args(&[])
    }

    /// Starts `redis-server` with `--requirepass password`: commands are refused with
    /// `NOAUTH` until the client authenticates. [`url_with_password`](Self::url_with_password)
    /// gives a URL that does.
    pub fn start_with_password(password: &str) -> Result<RedisServer, HarnessError> {
        Self::start_with_args(&["--requirepass", password])
    }

    /// Starts `redis-server` with extra arguments after the harness's own, e.g.
    /// `&["--maxmemory", "10mb"]`. Later arguments win in Redis, so these may override the
    /// defaults, but not `--port`, `--bind` or `--dir`, which the harness relies on.
    ///
    /// A `--requirepass` among them is noticed and used for the readiness probe.
    pub fn start_with_args(args: &[&str]) -> Result<RedisServer, HarnessError> {
        Self::launch(args.iter().map(|a| (*a).to_owned()).collect(), false, None)
    }

    /// Starts `redis-server` listening for TLS too, on [`tls_port`](Self::tls_port), with the
    /// certificate and key of `tls` and trusting its CA; clients need no certificate (pass
    /// `--tls-auth-clients yes` in `args` to ask for one). `args` are as for
    /// [`start_with_args`](Self::start_with_args).
    pub fn start_tls(tls: &TlsFiles, args: &[&str]) -> Result<RedisServer, HarnessError> {
        Self::launch(
            args.iter().map(|a| (*a).to_owned()).collect(),
            false,
            Some(tls.clone()),
        )
    }

    /// Starts a Cluster node: like [`start_with_args`](Self::start_with_args), plus a second
    /// free port for `--cluster-port`; with `tls`, a TLS port too, used between the nodes
    /// as well.
    pub(crate) fn start_cluster_node(
        args: Vec<String>,
        tls: Option<&TlsFiles>,
    ) -> Result<RedisServer, HarnessError> {
        Self::launch(args, true, tls.cloned())
    }

    fn launch(
        args: Vec<String>,
        cluster: bool,
        tls: Option<TlsFiles>,
    ) -> Result<RedisServer, HarnessError> {
        let password = password_in(&args);
        let (mut last_port, mut last_collision, mut last_log) = (0, String::new(), String::new());
        for _ in 0..PORT_ATTEMPTS {
            let wanted = 1 + usize::from(cluster) + usize::from(tls.is_some());
            let ports = free_ports(wanted).map_err(HarnessError::NoFreePort)?;
            // A fresh directory for every attempt: a Cluster node that lost its port may
            // already have written a nodes.conf naming that port.
            let dir = tempfile::Builder::new()
                .prefix("tollgate-redis-")
                .tempdir()
                .map_err(|e| HarnessError::io("could not create a temporary directory", e))?;
            let mut server = RedisServer {
                process: None,
                port: ports[0],
                cluster_port: cluster.then(|| ports[1]),
                tls: tls.clone().map(|files| Tls {
                    port: ports[wanted - 1],
                    files,
                }),
                args: args.clone(),
                password: password.clone(),
                dir,
            };
            match server.spawn()? {
                Spawned::Ready => return Ok(server),
                Spawned::PortTaken(why) => {
                    (last_port, last_collision, last_log) = (server.port, why, server.log_tail(0));
                }
            }
        }
        Err(HarnessError::StartFailed {
            port: last_port,
            reason: format!(
                "its port was taken by another process {PORT_ATTEMPTS} times in a row; \
                 the last time: {last_collision}"
            ),
            log: last_log,
        })
    }

    /// Spawns the server on `self.port` and waits until it answers.
    fn spawn(&mut self) -> Result<Spawned, HarnessError> {
        debug_assert!(self.process.is_none());
        let log_path = self.log_path();
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| HarnessError::io(format!("could not open {}", log_path.display()), e))
        };
        let (stdout, stderr) = (open_log()?, open_log()?);
        // Only what this attempt writes counts: an earlier attempt's "Address already in use"
        // must not be taken for this one's.
        let log_start = fs::metadata(&log_path).map_or(0, |m| m.len());

        let mut cmd = Command::new(REDIS_SERVER);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if let Some(cluster_port) = self.cluster_port {
            cmd.arg("--cluster-port").arg(cluster_port.to_string());
        }
        if let Some(tls) = &self.tls {
            cmd.arg("--tls-port")
                .arg(tls.port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.files.cert_file)
                .arg("--tls-key-file")
                .arg(&tls.files.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&tls.files.ca_file)
                .args(["--tls-auth-clients", "no"]);
            if self.cluster_port.is_some() {
                // The bus and (were there replicas) replication over TLS too, and the nodes'
                // TLS ports given to clients that ask over TLS (CLUSTER SLOTS, MOVED, ASK).
                cmd.args(["--tls-cluster", "yes", "--tls-replication", "yes"]);
            }
        }
        cmd.args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(|source| HarnessError::spawning(REDIS_SERVER, "redis-server", source))?;
        // From here on, any return drops `process`, which kills the child.
        let mut process = Process::new(child, self.dir.path());

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = process
                .child
                .try_wait()
                .map_err(|e| HarnessError::io("could not poll redis-server", e))?;
            if let Some(status) = exited {
                let log = self.log_tail(log_start);
                if log.contains("Address already in use") {
                    return Ok(Spawned::PortTaken(format!(
                        "redis-server could not bind 127.0.0.1:{}{}{}",
                        self.port,
                        self.cluster_port
                            .map(|p| format!(" or its cluster port {p}"))
                            .unwrap_or_default(),
                        self.tls_port()
                            .map(|p| format!(" or its TLS port {p}"))
                            .unwrap_or_default()
                    )));
                }
                return Err(HarnessError::StartFailed {
                    port: self.port,
                    reason: format!("redis-server exited ({status})"),
                    log,
                });
            }
            let ready = match probe(self.port, self.password.as_deref()) {
                Probe::NoAnswer => false,
                Probe::Answered { pid: Some(pid) } => {
                    if pid != process.child.id() {
                        return Ok(Spawned::PortTaken(format!(
                            "another redis-server (pid {pid}) answers on 127.0.0.1:{}",
                            self.port
                        )));
                    }
                    true
                }
                // It answers but will not say who it is (a password the harness does not
                // know): it is ours if ours says it is ready.
                Probe::Answered { pid: None } => self
                    .log_tail(log_start)
                    .contains("Ready to accept connections"),
                Probe::Foreign(why) => {
                    return Ok(Spawned::PortTaken(format!(
                        "another server answers on 127.0.0.1:{}: {why}",
                        self.port
                    )))
                }
            };
            if ready {
                self.process = Some(process);
                return Ok(Spawned::Ready);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::StartFailed {
                    port: self.port,
                    reason: format!("it did not answer PING within {START_TIMEOUT:?}"),
                    log: self.log_tail(log_start),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Cluster bus port, for a node of a [`RedisCluster`](crate::RedisCluster).
    pub fn cluster_port(&self) -> Option<u16> {
        self.cluster_port
    }

    /// The TLS port, for a server started with TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|t| t.port)
    }

    /// `rediss://127.0.0.1:tls-port/`, with no credentials, for a server started with TLS.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port()
            .map(|port| format!("rediss://127.0.0.1:{port}/"))
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:port/`, with no credentials.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis://:password@127.0.0.1:port/` (password percent-encoded) for a server started
    /// with a password; the same as [`url`](Self::url) otherwise.
    pub fn url_with_password(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{}@127.0.0.1:{}/", percent_encode(pw), self.port),
            None => self.url(),
        }
    }

    /// The password the server requires, if it was started with one.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.child.id())
    }

    /// Whether the server is running, i.e. started and not [`stop`](Self::stop)ped. (A server
    /// that crashed by itself still counts as running until stopped or dropped.)
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// The server's working directory (`--dir`), removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file the server logs to; every start appends to it. Handy when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// Kills the server at once (`SIGKILL`, as in a crash) and waits for it. Its data is lost,
    /// since nothing is saved; its port, arguments and directory are kept for
    /// [`restart`](Self::restart). Does nothing if it is already stopped.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Starts the server again on the same port, with the same arguments and directory (so a
    /// Cluster node comes back with its `nodes.conf`, i.e. its id and slots, but no keys).
    /// Stops it first if it is running. Fails if another process took the port meanwhile.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        match self.spawn()? {
            Spawned::Ready => Ok(()),
            Spawned::PortTaken(why) => Err(HarnessError::StartFailed {
                port: self.port,
                reason: format!("could not restart on the same port: {why}"),
                log: self.log_tail(0),
            }),
        }
    }

    /// How many client connections the server has open, the one asking included
    /// (`connected_clients` of `INFO clients`): to count the connections a client made.
    pub fn connected_clients(&self) -> Result<usize, HarnessError> {
        let failed = |reply: String| HarnessError::Command {
            node: format!("127.0.0.1:{}", self.port),
            command: "INFO clients".into(),
            reply,
        };
        let info = Conn::connect(self.port, START_TIMEOUT)
            .and_then(|mut c| c.call(&["INFO", "clients"]))
            .map_err(|e| failed(e.to_string()))?
            .text()
            .ok_or_else(|| failed("not text".into()))?;
        info_field(&info, "connected_clients")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| failed(format!("no connected_clients in {info:?}")))
    }

    /// Freezes the server (`SIGSTOP`): connections are still accepted by the kernel but no
    /// command is answered, as with a hung server or a network partition. Use it to test
    /// timeouts; [`resume`](Self::resume) undoes it. Drop kills a paused server as usual.
    pub fn pause(&self) -> Result<(), HarnessError> {
        self.signal("STOP")
    }

    /// Lets a [`pause`](Self::pause)d server run again (`SIGCONT`).
    pub fn resume(&self) -> Result<(), HarnessError> {
        self.signal("CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), HarnessError> {
        let pid = self.pid().ok_or_else(|| {
            HarnessError::io(
                format!(
                    "could not send SIG{signal} to redis-server on port {}",
                    self.port
                ),
                io::Error::other("it is stopped; restart() it first"),
            )
        })?;
        let what = || format!("could not send SIG{signal} to redis-server (pid {pid})");
        let status = Command::new("sh")
            .args(["-c", r#"kill -s "$1" "$2""#, "sh", signal, &pid.to_string()])
            .stdin(Stdio::null())
            .status()
            .map_err(|e| HarnessError::io(what(), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::io(
                what(),
                io::Error::other(status.to_string()),
            ))
        }
    }

    /// The last lines of the log written from byte `from` on.
    fn log_tail(&self, from: u64) -> String {
        let Ok(bytes) = fs::read(self.log_path()) else {
            return String::from("(no log)");
        };
        let start = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Kill the process before the temporary directory (a later field) is removed.
        self.stop();
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("cluster_port", &self.cluster_port)
            .field("tls_port", &self.tls_port())
            .field("pid", &self.pid())
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// A running `redis-server` and its watchdog. Dropping it kills both and waits for them.
struct Process {
    child: Child,
    /// `None` if `sh` could not be started; the server is then killed only on drop.
    watchdog: Option<Child>,
}

impl Process {
    fn new(child: Child, dir: &Path) -> Process {
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG_SCRIPT, "tollgate-testkit-watchdog"])
            .arg(child.id().to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Process { child, watchdog }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The watchdog goes first: once the server is reaped its pid may be reused, and no
        // watchdog may be left holding that pid.
        if let Some(watchdog) = &mut self.watchdog {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a readiness probe found on a port.
enum Probe {
    /// Nothing listens yet, or it is not ready to answer.
    NoAnswer,
    /// A server answered `PING` (or `NOAUTH`); `pid` is its `process_id` if it said.
    Answered { pid: Option<u32> },
    /// Something that is not our server answered.
    Foreign(String),
}

/// Asks the server on `port` whether it is up and who it is.
fn probe(port: u16, password: Option<&str>) -> Probe {
    let Ok(mut conn) = Conn::connect(port, PROBE_TIMEOUT) else {
        return Probe::NoAnswer;
    };
    if let Some(password) = password {
        match conn.call(&["AUTH", password]) {
            Ok(Reply::Simple(_)) => {}
            Ok(Reply::Error(e)) if e.starts_with("LOADING") => return Probe::NoAnswer,
            Ok(other) => return Probe::Foreign(format!("AUTH answered {other:?}")),
            Err(_) => return Probe::NoAnswer,
        }
    }
    match conn.call(&["PING"]) {
        Ok(Reply::Simple(s)) if s == "PONG" => {}
        Ok(Reply::Error(e)) if e.starts_with("NOAUTH") => return Probe::Answered { pid: None },
        _ => return Probe::NoAnswer,
    }
    let pid = conn
        .call(&["INFO", "server"])
        .ok()
        .and_then(|reply| reply.text())
        .and_then(|info| info_field(&info, "process_id")?.parse().ok());
    Probe::Answered { pid }
}

/// The value of the last `--requirepass` in `args` (the one Redis applies).
fn password_in(args: &[String]) -> Option<String> {
    args.windows(2)
        .filter(|pair| pair[0] == "--requirepass")
        .map(|pair| pair[1].clone())
        .next_back()
        .filter(|pw| !pw.is_empty())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{BufRead, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// Whether a process is alive (a zombie, killed but not yet reaped, counts as gone).
    pub(crate) fn alive(pid: u32) -> bool {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => false,
        }
    }

    /// Waits up to `timeout` for a process to be gone.
    pub(crate) fn gone_within(pid: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while alive(pid) {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    pub(crate) fn refuses_connections(addr: SocketAddr) -> bool {
        matches!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
        )
    }

    fn ping(port: u16) -> io::Result<Reply> {
        Conn::connect(port, Duration::from_millis(300))?.call(&["PING"])
    }

    /// A server started inside a tokio test answers PING, stores and returns a value through
    /// the redis crate, and after drop its process, port and directory are gone.
    #[tokio::test]
    async fn starts_serves_and_is_gone_after_drop() {
        let server = RedisServer::start().unwrap();
        assert_eq!(
            server.url(),
            format!("redis://127.0.0.1:{}/", server.port())
        );
        assert_eq!(ping(server.port()).unwrap(), Reply::Simple("PONG".into()));

        let client = redis::Client::open(server.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
        assert_eq!(pong, "PONG");
        let () = redis::cmd("SET")
            .arg("tollgate")
            .arg("ok")
            .query_async(&mut con)
            .await
            .unwrap();
        let value: String = redis::cmd("GET")
            .arg("tollgate")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(value, "ok");

        let (pid, addr, dir) = (
            server.pid().unwrap(),
            server.addr(),
            server.dir().to_owned(),
        );
        drop(server);
        assert!(!alive(pid), "redis-server {pid} survived the drop");
        assert!(
            refuses_connections(addr),
            "{addr} still accepts connections"
        );
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }

    /// The harness needs no async runtime: a plain #[test] can start a server.
    #[test]
    fn starts_without_a_runtime() {
        let server = RedisServer::start().unwrap();
        assert_eq!(ping(server.port()).unwrap(), Reply::Simple("PONG".into()));
    }

    /// A password server refuses unauthenticated commands with NOAUTH and serves a client
    /// that authenticates through url_with_password(); Debug does not show the password.
    #[tokio::test]
    async fn password_server_rejects_unauthenticated_commands() {
        let server = RedisServer::start_with_password("s3cret/pw").unwrap();
        assert_eq!(server.password(), Some("s3cret/pw"));
        assert_eq!(
            server.url_with_password(),
            format!("redis://:s3cret%2Fpw@127.0.0.1:{}/", server.port())
        );
        assert!(!format!("{server:?}").contains("s3cret"));

        let anonymous = redis::Client::open(server.url()).unwrap();
        let refused = match anonymous.get_multiplexed_async_connection().await {
            Ok(mut con) => redis::cmd("SET")
                .arg("k")
                .arg("v")
                .query_async::<()>(&mut con)
                .await
                .unwrap_err(),
            Err(err) => err,
        };
        assert_eq!(refused.code(), Some("NOAUTH"), "{refused}");

        let authed = redis::Client::open(server.url_with_password()).unwrap();
        let mut con = authed.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut con)
            .await
            .unwrap();
        let value: String = redis::cmd("GET")
            .arg("k")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(value, "v");
    }

    /// stop() kills the server so its port refuses connections; restart() brings it back on
    /// the same port, empty.
    #[tokio::test]
    async fn stop_and_restart_on_the_same_port() {
        let mut server = RedisServer::start().unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut con)
            .await
            .unwrap();

        let (port, old_pid) = (server.port(), server.pid().unwrap());
        server.stop();
        assert!(!server.is_running());
        assert!(!alive(old_pid));
        assert!(refuses_connections(server.addr()));

        server.restart().unwrap();
        assert!(server.is_running());
        assert_eq!(server.port(), port);
        assert_ne!(server.pid(), Some(old_pid));
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let value: Option<String> = redis::cmd("GET")
            .arg("k")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(value, None, "nothing is persisted across a restart");
    }

    /// A paused server accepts connections but answers nothing until resumed.
    #[test]
    fn pause_and_resume() {
        let server = RedisServer::start().unwrap();
        server.pause().unwrap();
        let err = ping(server.port()).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err}"
        );
        server.resume().unwrap();
        assert_eq!(ping(server.port()).unwrap(), Reply::Simple("PONG".into()));
    }

    /// A test that panics while it holds a server still kills it, as the panic unwinds.
    #[test]
    fn panicking_test_kills_its_server() {
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = thread::spawn(move || {
            let server = RedisServer::start().unwrap();
            tx.send(server.pid().unwrap()).unwrap();
            panic!("test failure while holding a server (expected by this test)");
        })
        .join();
        assert!(outcome.is_err());
        let pid = rx.recv().unwrap();
        assert!(!alive(pid), "redis-server {pid} survived the panic");
    }

    const KILLED_HELPER_ENV: &str = "TOLLGATE_TESTKIT_KILLED_HELPER";

    /// A test process killed outright (SIGKILL, as by a timeout), so that nothing unwinds,
    /// leaves no server and no directory behind: the watchdog removes both.
    #[test]
    fn killed_test_process_leaves_nothing_behind() {
        let mut helper = Command::new(std::env::current_exe().unwrap())
            .args([
                "server::tests::killed_helper",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(KILLED_HELPER_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = io::BufReader::new(helper.stdout.take().unwrap()).lines();
        let (pid, dir) = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let (pid, dir) = line.strip_prefix("REDIS=")?.split_once(' ')?;
                Some((pid.parse::<u32>().ok()?, PathBuf::from(dir)))
            })
            .expect("the helper printed no REDIS= line");
        assert!(alive(pid));
        helper.kill().unwrap();
        helper.wait().unwrap();

        assert!(
            gone_within(pid, Duration::from_secs(5)),
            "redis-server {pid} outlived its killed test process"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while dir.exists() {
            assert!(
                Instant::now() < deadline,
                "{} was left behind",
                dir.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Not a test: the child process of `killed_test_process_leaves_nothing_behind`.
    #[test]
    #[ignore = "run by killed_test_process_leaves_nothing_behind"]
    fn killed_helper() {
        if std::env::var_os(KILLED_HELPER_ENV).is_none() {
            return;
        }
        let server = RedisServer::start().unwrap();
        println!("REDIS={} {}", server.pid().unwrap(), server.dir().display());
        std::io::stdout().flush().unwrap();
        // Killed by the parent long before this ends.
        thread::sleep(Duration::from_secs(30));
    }

    /// Arguments redis-server rejects fail at once, with its complaint in the error.
    #[test]
    fn bad_arguments_fail_with_the_servers_complaint() {
        let err = RedisServer::start_with_args(&["--no-such-directive", "1"]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, HarnessError::StartFailed { .. }), "{msg}");
        assert!(msg.contains("exited"), "{msg}");
        assert!(msg.contains("no-such-directive"), "{msg}");
    }

    fn server_on(port: u16) -> RedisServer {
        RedisServer {
            process: None,
            port,
            cluster_port: None,
            tls: None,
            args: Vec::new(),
            password: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A port bound by another process between choosing and starting is seen as a lost race
    /// (to be retried on another port), not as a start.
    #[test]
    fn port_held_by_a_listener_is_a_collision() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut server = server_on(listener.local_addr().unwrap().port());
        assert!(matches!(server.spawn().unwrap(), Spawned::PortTaken(_)));
        assert!(!server.is_running());
    }

    /// Another redis-server answering PING on the chosen port is not taken for ours.
    #[test]
    fn port_held_by_another_redis_is_a_collision() {
        let other = RedisServer::start().unwrap();
        let mut server = server_on(other.port());
        match server.spawn().unwrap() {
            Spawned::PortTaken(why) => assert!(why.contains("redis"), "{why}"),
            Spawned::Ready => panic!("took another server for ours"),
        }
    }

    /// The password is read from the arguments as Redis would: the last --requirepass wins.
    #[test]
    fn password_is_the_last_requirepass() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(password_in(&args(&["--maxmemory", "1mb"])), None);
        assert_eq!(
            password_in(&args(&["--requirepass", "a", "--requirepass", "b"])),
            Some("b".into())
        );
        assert_eq!(password_in(&args(&["--requirepass"])), None);
    }
}
