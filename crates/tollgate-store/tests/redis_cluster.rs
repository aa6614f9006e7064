//! Redis Cluster while a hash slot moves between masters, set up step by step with the
//! testkit's [`SlotMigration`]: a check whose keys are split between the two masters
//! (`TRYAGAIN`) or have all moved (`ASK`) is answered as soon as the move allows, within its
//! deadline, and is counted exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::gcra::GcraLimit;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::{keys, RedisConfig, RedisMode, RedisStore, Store};
use tollgate_testkit::{RedisCluster, SlotMigration};

/// A throttle slow enough that its key outlives the test (a TAT 100 s per unit ahead), a
/// daily quota and the usage record: three keys, all present after the first check.
fn batch(tag: &str, cost: u64) -> LimitBatch {
    LimitBatch {
        tag: tag.into(),
        limits: vec![
            Limit {
                name: "t".into(),
                kind: LimitKind::Throttle(GcraLimit::per_second(0.01, 1000).unwrap()),
            },
            Limit {
                name: "q".into(),
                kind: LimitKind::Quota(QuotaLimit {
                    limit: 1000,
                    period: QuotaPeriod::Day,
                    offset: 0,
                    anchor_s: 0,
                }),
            },
        ],
        cost,
        usage_retention_days: Some(90),
    }
}

fn store(cluster: &RedisCluster, timeout: Duration) -> Arc<RedisStore> {
    let mut config = RedisConfig::new(RedisMode::Cluster, cluster.urls());
    config.timeout = timeout;
    Arc::new(RedisStore::new(&config).unwrap())
}

/// The keys a check of `tag` touches, in the order the script takes them.
fn keys_of(tag: &str) -> [String; 3] {
    [
        keys::limit_key(tag, "t"),
        keys::limit_key(tag, "q"),
        keys::usage_key(tag),
    ]
}

/// Starts moving the slot of `tag` to the next master.
fn begin<'c>(cluster: &'c RedisCluster, tag: &str) -> SlotMigration<'c> {
    let slot = cluster.key_slot(&keys::limit_key(tag, "q")).unwrap();
    let to = (cluster.slot_owner(slot).unwrap() + 1) % cluster.nodes().len();
    cluster.begin_slot_migration(slot, to).unwrap()
}

/// `n` checks of `tag` started at once; each gives its outcome and when it ended.
fn spawn_checks(
    store: &Arc<RedisStore>,
    tag: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(Result<bool, String>, Instant)>> {
    (0..n)
        .map(|_| {
            let (store, tag) = (store.clone(), tag.to_string());
            tokio::spawn(async move {
                let r = store.check(&batch(&tag, 1)).await;
                (
                    r.map(|o| o.admitted).map_err(|e| e.to_string()),
                    Instant::now(),
                )
            })
        })
        .collect()
}

/// The units the quota of `tag` has counted.
async fn used(store: &RedisStore, tag: &str) -> i64 {
    store.check(&batch(tag, 0)).await.unwrap().statuses[1].used
}

/// A check whose keys are split between the two masters of a slot in migration gets
/// `TRYAGAIN` from both until the migration completes. It waits for that (not for its
/// timeout, and not for a fixed pause of the client's), is answered soon after, and counts
/// once. Checks in flight while the keys are split cannot be answered, which the test
/// checks too, so it cannot pass without the split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_keys_are_answered_once_the_migration_completes() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = store(&cluster, Duration::from_secs(3));
    let tag = "mig:split";
    assert!(store.check(&batch(tag, 1)).await.unwrap().admitted);
    let migration = begin(&cluster, tag);
    let [_, quota, _] = keys_of(tag);
    migration.move_keys(&[&quota]).unwrap();

    let checks = spawn_checks(&store, tag, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        checks.iter().all(|c| !c.is_finished()),
        "no check can be answered while its keys are split"
    );
    migration.finish().unwrap();
    let completed = Instant::now();
    for c in checks {
        let (outcome, ended) = c.await.unwrap();
        assert_eq!(outcome, Ok(true));
        let after = ended.saturating_duration_since(completed);
        assert!(
            after < Duration::from_millis(300),
            "answered {after:?} after the migration completed"
        );
    }
    assert_eq!(used(&store, tag).await, 1 + 8);
}

/// A migration that takes longer than the cluster client's own retries of `TRYAGAIN` (16,
/// a few hundred ms in all) is still waited for, up to the check's deadline, and the check
/// is answered soon after it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_migration_is_waited_for_up_to_the_deadline() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = store(&cluster, Duration::from_secs(4));
    let tag = "mig:long";
    assert!(store.check(&batch(tag, 1)).await.unwrap().admitted);
    let migration = begin(&cluster, tag);
    let [_, quota, _] = keys_of(tag);
    migration.move_keys(&[&quota]).unwrap();

    let started = Instant::now();
    let checks = spawn_checks(&store, tag, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(checks.iter().all(|c| !c.is_finished()));
    migration.finish().unwrap();
    let completed = Instant::now();
    for c in checks {
        let (outcome, ended) = c.await.unwrap();
        assert_eq!(outcome, Ok(true), "after {:?}", ended - started);
        assert!(ended.saturating_duration_since(completed) < Duration::from_millis(300));
    }
    assert_eq!(used(&store, tag).await, 1 + 4);
}

/// How many `code` errors (`MOVED`, `ASK`) node `node` has answered.
fn errors(cluster: &RedisCluster, node: usize, code: &str) -> u64 {
    let info = cluster.info(node, "errorstats").unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("errorstat_{code}:count=")))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Once all of a check's keys have moved but the slot is still migrating, the old master
/// answers `ASK`, and the check goes to the new master with `ASKING` in front. With many
/// concurrent checks sharing the new master's connections, nothing comes between `ASKING`
/// and its check: had anything, the new master would have answered `MOVED` (back to the
/// old master, as it does not own the slot yet), and the client would reload its slot map
/// each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_keys_are_followed_by_ask() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = store(&cluster, Duration::from_secs(3));
    let tag = "mig:ask";
    assert!(store.check(&batch(tag, 1)).await.unwrap().admitted);
    let migration = begin(&cluster, tag);
    let keys = keys_of(tag);
    migration
        .move_keys(&keys.each_ref().map(String::as_str))
        .unwrap();

    // Other keys of the new master, checked at the same time, share its connections.
    let target = cluster.nodes()[migration.target()].port();
    let neighbours: Vec<String> = (0..)
        .map(|i| format!("mig:neighbour{i}"))
        .filter(|t| {
            let slot = cluster.key_slot(&keys::limit_key(t, "q")).unwrap();
            cluster.nodes()[cluster.slot_owner(slot).unwrap()].port() == target
        })
        .take(4)
        .collect();
    let asks = errors(&cluster, migration.source(), "ASK");
    let moved = errors(&cluster, migration.target(), "MOVED");
    let started = Instant::now();
    let mut checks = spawn_checks(&store, tag, 200);
    for n in &neighbours {
        checks.extend(spawn_checks(&store, n, 50));
    }
    for c in checks {
        let (outcome, ended) = c.await.unwrap();
        assert_eq!(outcome, Ok(true), "after {:?}", ended - started);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        errors(&cluster, migration.source(), "ASK") >= asks + 200,
        "the checks were sent to the new master by ASK"
    );
    assert_eq!(
        errors(&cluster, migration.target(), "MOVED"),
        moved,
        "the new master never answered MOVED: ASKING always came right before its check"
    );
    assert_eq!(used(&store, tag).await, 1 + 200);
    migration.finish().unwrap();
    assert_eq!(used(&store, tag).await, 1 + 200);
}

/// Each of the store's connection slots holds a Cluster connection of its own, so the pool
/// makes `pool_size` of them even when calls come one at a time (it used to give every slot
/// the same idle one). The redis crate's Cluster connection can stall all its calls while it
/// reloads the slot map (under a reshard); with one shared connection every check stalled.
/// Counted by the connections each master sees from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_slot_has_its_own_cluster_connection() {
    let cluster = RedisCluster::start(3).unwrap();
    let mut config = RedisConfig::new(RedisMode::Cluster, cluster.urls());
    config.pool_size = 4;
    let store = RedisStore::new(&config).unwrap();
    let clients = |node: usize| cluster.connected_clients(node).unwrap();
    let before: Vec<usize> = (0..3).map(clients).collect();
    for i in 0..40 {
        store
            .check(&batch(&format!("mig:conn{i}"), 1))
            .await
            .unwrap();
    }
    for (node, before) in before.into_iter().enumerate() {
        assert_eq!(
            clients(node) - before,
            4,
            "node {node}: one connection from each of the 4 slots"
        );
    }
}
