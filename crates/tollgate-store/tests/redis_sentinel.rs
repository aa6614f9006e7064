//! `--redis-mode sentinel`: the store finds the master through a real Redis Sentinel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::{RedisConfig, RedisMode, RedisStore, Store};
use tollgate_testkit::RedisServer;

/// A sentinel process, killed on drop.
struct Sentinel(Child);

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sentinel_knows_master(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"SENTINEL get-master-addr-by-name mymaster\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 256];
    matches!(s.read(&mut buf), Ok(n) if n > 0 && buf[0] == b'*' && buf[1] != b'-')
}

/// Checks go to the master the sentinel names, and count as on any Redis.
#[tokio::test]
async fn finds_master_through_sentinel() {
    let master = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
            dir.path().display(),
            master.port()
        ),
    )
    .unwrap();
    let child = Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server --sentinel");
    let _sentinel = Sentinel(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sentinel_knows_master(port) {
        assert!(Instant::now() < deadline, "sentinel did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut cfg = RedisConfig::new(
        RedisMode::Sentinel,
        vec![format!("redis://127.0.0.1:{port}/")],
    );
    cfg.sentinel_master = "mymaster".into();
    let store = RedisStore::new(&cfg).unwrap();
    let batch = LimitBatch {
        tag: "p:sentinel".into(),
        limits: vec![Limit {
            name: "q".into(),
            kind: LimitKind::Quota(QuotaLimit {
                limit: 1,
                period: QuotaPeriod::Day,
                offset: 0,
                anchor_s: 0,
            }),
        }],
        cost: 1,
        usage_retention_days: None,
    };
    assert!(store.check(&batch).await.unwrap().admitted);
    assert!(!store.check(&batch).await.unwrap().admitted);
    let mut c = redis::Client::open(master.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let n: i64 = redis::cmd("HGET")
        .arg("tg:{p:sentinel}:q")
        .arg("n")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1, "the count landed on the master");
}
