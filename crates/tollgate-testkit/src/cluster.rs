//! [`RedisCluster`]: N Redis Cluster masters on free ports, their slots assigned by
//! `redis-cli --cluster create`.
//!
//! Each node is a [`RedisServer`] started with `--cluster-enabled yes` and a second free port
//! as its `--cluster-port` (the default, port + 10000, would overflow for ports chosen from
//! the kernel's ephemeral range). The cluster counts as started when every node reports
//! `cluster_state:ok`, all 16384 slots assigned and all N nodes known.

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::HarnessError;
use crate::resp::{info_field, Conn, Reply};
use crate::server::{RedisServer, TlsFiles};

const REDIS_CLI: &str = "redis-cli";
/// `--cluster-node-timeout`, in milliseconds: short, so failure tests see a stopped master
/// marked as failed within a few seconds.
const NODE_TIMEOUT_MS: &str = "2000";
/// Connect, read and write timeout of one admin command.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `redis-cli --cluster create` may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes may take to agree, once created.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const SLOTS: &str = "16384";

/// A Redis Cluster of masters without replicas, each a [`RedisServer`] of its own.
///
/// Dropping it kills every node and removes their directories, also while a test panics.
#[must_use = "the cluster is killed as soon as this value is dropped"]
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3), joins them into one cluster with the slots spread
    /// evenly, and returns once every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> Result<RedisCluster, HarnessError> {
        Self::launch(masters, None)
    }

    /// [`start`](Self::start), with every node listening for TLS too (see
    /// [`RedisServer::start_tls`]) and speaking TLS to the other nodes. Clients reach it through
    /// [`tls_urls`](Self::tls_urls); the harness still uses the plain ports.
    pub fn start_tls(masters: usize, tls: &TlsFiles) -> Result<RedisCluster, HarnessError> {
        Self::launch(masters, Some(tls))
    }

    fn launch(masters: usize, tls: Option<&TlsFiles>) -> Result<RedisCluster, HarnessError> {
        if masters < 3 {
            return Err(HarnessError::TooFewMasters(masters));
        }
        let args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            NODE_TIMEOUT_MS,
        ]
        .map(String::from)
        .into();
        // On an error, the nodes started so far are dropped, and so killed.
        let nodes = (0..masters)
            .map(|_| RedisServer::start_cluster_node(args.clone(), tls))
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = RedisCluster { nodes };
        cluster.create()?;
        cluster.wait_until_ok(READY_TIMEOUT)?;
        Ok(cluster)
    }

    /// The nodes' URLs, `redis://127.0.0.1:port/`, to seed a cluster client with.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes' TLS URLs, `rediss://127.0.0.1:tls-port/`, for a cluster started with TLS
    /// (empty otherwise).
    pub fn tls_urls(&self) -> Vec<String> {
        self.nodes.iter().filter_map(RedisServer::tls_url).collect()
    }

    /// The nodes, all masters, in the order their ports were given to `redis-cli`.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, to [`stop`](RedisServer::stop), [`restart`](RedisServer::restart) or
    /// [`pause`](RedisServer::pause) one of them in a failure test.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Sends one command to node `node` (an index into [`nodes`](Self::nodes)); an error
    /// reply is an error.
    pub(crate) fn admin(&self, node: usize, args: &[&str]) -> Result<Reply, HarnessError> {
        let port = self.nodes[node].port();
        let failed = |reply: String| HarnessError::Command {
            node: format!("127.0.0.1:{port}"),
            command: args.join(" "),
            reply,
        };
        let reply = Conn::connect(port, ADMIN_TIMEOUT)
            .and_then(|mut c| c.call(args))
            .map_err(|e| failed(e.to_string()))?;
        match reply {
            Reply::Error(e) => Err(failed(e)),
            ok => Ok(ok),
        }
    }

    /// The text of `INFO <section>` of node `node`, e.g. `errorstats` to count the `MOVED`
    /// and `ASK` redirections it answered.
    pub fn info(&self, node: usize, section: &str) -> Result<String, HarnessError> {
        self.admin(node, &["INFO", section])?
            .text()
            .ok_or_else(|| HarnessError::Command {
                node: format!("127.0.0.1:{}", self.nodes[node].port()),
                command: format!("INFO {section}"),
                reply: "not text".into(),
            })
    }

    /// How many client connections node `node` has open; see
    /// [`RedisServer::connected_clients`].
    pub fn connected_clients(&self, node: usize) -> Result<usize, HarnessError> {
        self.nodes[node].connected_clients()
    }

    /// Waits until every node reports `cluster_state:ok`, all slots assigned and all nodes
    /// known, e.g. after restarting a node. Fails with the first node that is not ready.
    pub fn wait_until_ok(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(detail) = self.nodes.iter().find_map(|n| self.not_ready(n)) else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(HarnessError::ClusterNotReady { timeout, detail });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Why `node` is not ready, or `None` if it is.
    fn not_ready(&self, node: &RedisServer) -> Option<String> {
        let port = node.port();
        if !node.is_running() {
            return Some(format!("node 127.0.0.1:{port} is stopped"));
        }
        let info = match Conn::connect(port, PROBE_TIMEOUT)
            .and_then(|mut c| c.call(&["CLUSTER", "INFO"]))
        {
            Ok(reply) => match reply.text() {
                Some(text) => text,
                None => {
                    return Some(format!(
                        "127.0.0.1:{port} answered CLUSTER INFO with {reply:?}"
                    ))
                }
            },
            Err(e) => return Some(format!("127.0.0.1:{port} did not answer CLUSTER INFO: {e}")),
        };
        let field = |name| info_field(&info, name).unwrap_or("?");
        let known = self.nodes.len().to_string();
        let (state, slots, nodes) = (
            field("cluster_state"),
            field("cluster_slots_assigned"),
            field("cluster_known_nodes"),
        );
        if state == "ok" && slots == SLOTS && nodes == known {
            None
        } else {
            Some(format!(
                "127.0.0.1:{port} reports cluster_state:{state}, \
                 cluster_slots_assigned:{slots}/{SLOTS}, cluster_known_nodes:{nodes}/{known}"
            ))
        }
    }

    /// Runs `redis-cli --cluster create` over all nodes.
    fn create(&self) -> Result<(), HarnessError> {
        let out_path = self.nodes[0].dir().join("cluster-create.log");
        let open = || {
            File::create(&out_path).map_err(|e| {
                HarnessError::io(format!("could not create {}", out_path.display()), e)
            })
        };
        let (stdout, stderr) = (open()?, open()?);
        let mut child = Command::new(REDIS_CLI)
            .args(["--cluster", "create"])
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| HarnessError::spawning(REDIS_CLI, "redis-tools", source))?;

        let deadline = Instant::now() + CREATE_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => break status.to_string(),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Ok(None) => break format!("timed out after {CREATE_TIMEOUT:?}"),
                Err(e) => break format!("could not be waited for: {e}"),
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        Err(HarnessError::ClusterCreate {
            status,
            output: fs::read_to_string(&out_path).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tests::{alive, refuses_connections};

    /// A 3-master cluster starts; keys written through a cluster client are read back, they
    /// land on every master, and after drop no node survives.
    #[tokio::test]
    async fn three_masters_serve_keys_and_are_gone_after_drop() {
        let cluster = RedisCluster::start(3).unwrap();
        assert_eq!(cluster.urls().len(), 3);

        let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
        let mut con = client.get_async_connection().await.unwrap();
        for i in 0..30 {
            let () = redis::cmd("SET")
                .arg(format!("key:{i}"))
                .arg(i)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        for i in 0..30 {
            let value: i64 = redis::cmd("GET")
                .arg(format!("key:{i}"))
                .query_async(&mut con)
                .await
                .unwrap();
            assert_eq!(value, i);
        }
        for node in cluster.nodes() {
            let mut conn = Conn::connect(node.port(), PROBE_TIMEOUT).unwrap();
            let keys = conn.call(&["DBSIZE"]).unwrap();
            assert!(
                matches!(keys, crate::resp::Reply::Integer(n) if n > 0),
                "node {} holds no key: {keys:?}",
                node.port()
            );
        }

        let nodes: Vec<_> = cluster
            .nodes()
            .iter()
            .map(|n| (n.pid().unwrap(), n.addr()))
            .collect();
        drop(cluster);
        for (pid, addr) in nodes {
            assert!(!alive(pid), "node {addr} (pid {pid}) survived the drop");
            assert!(
                refuses_connections(addr),
                "{addr} still accepts connections"
            );
        }
    }

    /// A TLS cluster answers on its nodes' TLS ports, and over TLS `CLUSTER SLOTS` names the
    /// nodes by their TLS ports (so a TLS client finds them all). `redis-cli --tls` is the
    /// client here; the certificate, made by `openssl`, is its own CA.
    #[test]
    fn tls_cluster_names_its_tls_ports() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl is needed for this test (apt-get install openssl)");
        assert!(made.status.success(), "{made:?}");
        let tls = TlsFiles {
            cert_file: cert.clone(),
            key_file: key,
            ca_file: cert.clone(),
        };
        let cluster = RedisCluster::start_tls(3, &tls).unwrap();
        let tls_ports: Vec<u16> = cluster
            .nodes()
            .iter()
            .map(|n| n.tls_port().unwrap())
            .collect();
        assert_eq!(
            cluster.tls_urls(),
            tls_ports
                .iter()
                .map(|p| format!("rediss://127.0.0.1:{p}/"))
                .collect::<Vec<_>>()
        );
        let out = Command::new(REDIS_CLI)
            .args(["--tls", "--cacert"])
            .arg(&cert)
            .args(["-p", &tls_ports[0].to_string(), "CLUSTER", "SLOTS"])
            .output()
            .unwrap();
        let slots = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        for port in &tls_ports {
            assert!(
                slots.lines().any(|l| l.trim() == port.to_string()),
                "TLS port {port} not in CLUSTER SLOTS over TLS:\n{slots}"
            );
        }
    }

    /// Fewer than 3 masters is refused up front, with a message saying why.
    #[test]
    fn fewer_than_three_masters_is_refused() {
        let err = RedisCluster::start(2).unwrap_err();
        assert!(matches!(err, HarnessError::TooFewMasters(2)));
        assert!(err.to_string().contains("at least 3 masters"), "{err}");
    }

    /// A stopped master makes the cluster fail; restarted on its ports with its nodes.conf,
    /// it rejoins and the cluster is ok again.
    #[test]
    fn stopped_master_fails_the_cluster_until_restarted() {
        let mut cluster = RedisCluster::start(3).unwrap();
        cluster.nodes_mut()[2].stop();
        let err = cluster
            .wait_until_ok(Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("is stopped"), "{err}");

        // The surviving masters mark it failed after the node timeout.
        let survivor = cluster.nodes()[0].port();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = Conn::connect(survivor, PROBE_TIMEOUT)
                .and_then(|mut c| c.call(&["CLUSTER", "INFO"]))
                .unwrap()
                .text()
                .unwrap();
            if info_field(&info, "cluster_state") == Some("fail") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster never noticed: {info}");
            thread::sleep(POLL_INTERVAL);
        }

        cluster.nodes_mut()[2].restart().unwrap();
        cluster.wait_until_ok(Duration::from_secs(30)).unwrap();
    }
}
