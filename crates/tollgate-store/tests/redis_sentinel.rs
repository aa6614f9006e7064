//! `--redis-mode sentinel`: the store finds the master through a real Redis Sentinel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::{RedisConfig, RedisMode, RedisStore, Store};
use tollgate_testkit::{RedisSentinel, RedisServer};

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

/// A sentinel watching `master_port` as `mymaster` (quorum 1), up and knowing the master,
/// and its port.
fn start_sentinel(master_port: u16) -> (RedisSentinel, u16, tempfile::TempDir) {
    start_sentinel_with(master_port, "")
}

/// [`start_sentinel`] with `extra` lines in its configuration.
fn start_sentinel_with(master_port: u16, extra: &str) -> (RedisSentinel, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sentinel = RedisSentinel::start(
        dir.path(),
        &format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n{extra}",
            dir.path().display(),
        ),
    )
    .expect("redis-server --sentinel");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sentinel_knows_master(port) {
        assert!(Instant::now() < deadline, "sentinel did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (sentinel, port, dir)
}

fn sentinel_store(port: u16) -> RedisStore {
    RedisStore::new(&sentinel_config(port)).unwrap()
}

/// The store's configuration for master `mymaster` through the sentinel on `port`.
fn sentinel_config(port: u16) -> RedisConfig {
    let mut cfg = RedisConfig::new(
        RedisMode::Sentinel,
        vec![format!("redis://127.0.0.1:{port}/")],
    );
    cfg.sentinel_master = "mymaster".into();
    cfg
}

/// A daily quota of `limit` under `tag`.
fn quota_batch(tag: &str, limit: u64) -> LimitBatch {
    LimitBatch {
        tag: tag.into(),
        limits: vec![Limit {
            name: "q".into(),
            kind: LimitKind::Quota(QuotaLimit {
                limit,
                period: QuotaPeriod::Day,
                offset: 0,
                anchor_s: 0,
            }),
        }],
        cost: 1,
        usage_retention_days: None,
    }
}

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The quota count stored under `key` on the server behind `c` (0 if none).
async fn count(c: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    let n: Option<i64> = redis::cmd("HGET")
        .arg(key)
        .arg("n")
        .query_async(c)
        .await
        .unwrap();
    n.unwrap_or(0)
}

/// Checks go to the master the sentinel names, and count as on any Redis.
#[tokio::test]
async fn finds_master_through_sentinel() {
    let master = RedisServer::start().unwrap();
    let (_sentinel, port, _dir) = start_sentinel(master.port());
    let store = sentinel_store(port);
    let batch = quota_batch("p:sentinel", 1);
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

/// Each connection slot keeps its own connection to the master, as on standalone: checks
/// sent one at a time open `pool_size` of them, not one.
#[tokio::test]
async fn checks_one_at_a_time_use_every_pooled_connection() {
    let master = RedisServer::start().unwrap();
    let (_sentinel, port, _dir) = start_sentinel(master.port());
    let mut cfg = sentinel_config(port);
    cfg.pool_size = 3;
    let store = RedisStore::new(&cfg).unwrap();
    let before = master.connected_clients().unwrap();
    for i in 0..30 {
        let batch = quota_batch(&format!("p:conn{i}"), 1);
        assert!(store.check(&batch).await.unwrap().admitted);
    }
    assert_eq!(
        master.connected_clients().unwrap() - before,
        3,
        "one connection to the master from each of the 3 slots"
    );
}

/// After a failover that leaves the old master running (`SENTINEL FAILOVER`, or a healed
/// partition), checks go to the new master within a second. Sentinel turns the old one
/// into a replica only on its next look at it, about ten seconds later, and that wipes what
/// was written there meanwhile: units admitted and then forgotten.
#[tokio::test]
async fn follows_the_master_after_a_failover() {
    let old = RedisServer::start().unwrap();
    let old_port = old.port().to_string();
    let new = RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &old_port]).unwrap();
    let (_sentinel, port, _dir) = start_sentinel(old.port());
    let store = sentinel_store(port);
    let batch = quota_batch("p:failover", 1_000_000);
    let key = "tg:{p:failover}:q";
    assert!(store.check(&batch).await.unwrap().admitted);

    let mut sentinel = connect(&format!("redis://127.0.0.1:{port}/")).await;
    // The sentinel learns of the replica from the master's INFO; until then there is no
    // replica to promote.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r: redis::RedisResult<String> = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg("mymaster")
            .query_async(&mut sentinel)
            .await;
        if r.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no failover: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_port = new.port().to_string();
    loop {
        let (_, p): (String, String) = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg("mymaster")
            .query_async(&mut sentinel)
            .await
            .unwrap();
        if p == new_port {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sentinel never named the new master"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut on_new = connect(&new.url()).await;
    let before = count(&mut on_new, key).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut sent = 0;
    loop {
        assert!(store.check(&batch).await.unwrap().admitted);
        sent += 1;
        if count(&mut on_new, key).await > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sent} checks after the failover all went to the old master"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = count(&mut on_new, key).await;
    for _ in 0..5 {
        assert!(store.check(&batch).await.unwrap().admitted);
    }
    assert_eq!(
        count(&mut on_new, key).await,
        at + 5,
        "every check counted on the new master"
    );
}

/// A master with `requirepass` is used with the master password given apart from the
/// sentinels' URL (which has none here), and the URL's database is selected on the master;
/// without the password the master refuses the checks.
#[tokio::test]
async fn master_with_password_and_database() {
    let master = RedisServer::start_with_password("m-s3cret").unwrap();
    let (_sentinel, port, _dir) =
        start_sentinel_with(master.port(), "sentinel auth-pass mymaster m-s3cret\n");
    let url = format!("redis://127.0.0.1:{port}/2");
    let mut cfg = RedisConfig::new(RedisMode::Sentinel, vec![url.clone()]);
    cfg.sentinel_master_password = Some("m-s3cret".into());
    let store = RedisStore::new(&cfg).unwrap();
    let batch = quota_batch("p:auth", 1);
    assert!(store.check(&batch).await.unwrap().admitted);
    assert!(!store.check(&batch).await.unwrap().admitted);

    let mut on_master = connect(&format!("{}2", master.url_with_password())).await;
    assert_eq!(
        count(&mut on_master, "tg:{p:auth}:q").await,
        1,
        "counted in db 2"
    );
    let mut db0 = connect(&master.url_with_password()).await;
    assert_eq!(count(&mut db0, "tg:{p:auth}:q").await, 0, "nothing in db 0");

    let anonymous = RedisStore::new(&RedisConfig::new(RedisMode::Sentinel, vec![url])).unwrap();
    let e = anonymous.check(&batch).await.unwrap_err().to_string();
    assert!(
        e.to_lowercase().contains("auth"),
        "the master refuses a client without its password: {e}"
    );
}
