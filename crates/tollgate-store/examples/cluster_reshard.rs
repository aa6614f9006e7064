//! Checks under a live reshard: how many fail, and how slow the slowest is, while
//! `redis-cli --cluster reshard` moves slots between the masters of a Redis Cluster.
//!
//! Starts a 3-master cluster (the testkit's), makes check state for tags in the slots that
//! will move and for tags elsewhere, then runs a steady load of checks through the store's
//! API while `redis-cli` moves the first `--slots` slots of one master to another. Prints
//! the counts and latencies of the checks started before, during and after the reshard.
//!
//! ```text
//! cargo run --release -p tollgate-store --example cluster_reshard -- [--slots 300]
//!     [--workers 32] [--tags 600] [--timeout-ms 250]
//! ```
//!
//! This is a measurement, not a test: it asserts nothing and its figures depend on the host.
//! On a small host the nodes, `redis-cli` and the load share the cores, and the host itself
//! stalls now and then; a thread that sleeps 5 ms at a time counts how far it overslept, so
//! the worst latency can be read against the worst stall of the host.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use redis::cluster_routing::Slot;
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::gcra::GcraLimit;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::{keys, RedisConfig, RedisMode, RedisStore, Store, StoreError};
use tollgate_testkit::RedisCluster;

/// What to move and how hard to drive the store meanwhile.
#[derive(Parser)]
struct Options {
    /// How many slots to move, from the first of one master's.
    #[arg(long, default_value_t = 300)]
    slots: u16,
    /// Checks in flight, each from its own task.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Distinct API keys (hash tags) the checks spread over.
    #[arg(long, default_value_t = 600)]
    tags: usize,
    /// Each check's deadline (the store's --redis-timeout-ms).
    #[arg(long, default_value_t = 250)]
    timeout_ms: u64,
}

/// A plan as a user would have one: a throttle (whose key expires between a tag's checks),
/// a daily quota and the usage record.
fn batch(tag: &str) -> LimitBatch {
    LimitBatch {
        tag: tag.into(),
        limits: vec![
            Limit {
                name: "t".into(),
                kind: LimitKind::Throttle(GcraLimit::per_second(1000.0, 2000).unwrap()),
            },
            Limit {
                name: "q".into(),
                kind: LimitKind::Quota(QuotaLimit {
                    limit: 100_000_000,
                    period: QuotaPeriod::Day,
                    offset: 0,
                    anchor_s: 0,
                }),
            },
        ],
        cost: 1,
        usage_retention_days: Some(90),
    }
}

/// `n` tags whose slots are in `wanted` (or, with `inside` false, are not).
fn tags_in(wanted: &HashMap<Slot, u16>, inside: bool, n: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("plan:{prefix}{i}"))
        .filter(|t| wanted.contains_key(&Slot::for_key(keys::limit_key(t, "q"))) == inside)
        .take(n)
        .collect()
}

/// When a check started, relative to the reshard.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Before,
    During,
    After,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, usize>,
}

fn error_kind(e: &StoreError) -> String {
    match e {
        StoreError::Timeout(_) => "timeout".into(),
        other => {
            let s = other.to_string();
            // The error's first words name it; the rest (slots, addresses) varies.
            s.split(|c: char| c == ':' || c.is_ascii_digit())
                .take(2)
                .collect::<Vec<_>>()
                .join(":")
        }
    }
}

/// A thread that sleeps 5 ms at a time until `stop`, and gives the longest oversleep seen in
/// each phase.
fn host_stalls(
    stop: Arc<AtomicBool>,
    phase: Arc<Mutex<Phase>>,
) -> std::thread::JoinHandle<BTreeMap<Phase, Duration>> {
    std::thread::spawn(move || {
        let mut worst: BTreeMap<Phase, Duration> = BTreeMap::new();
        let nap = Duration::from_millis(5);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            std::thread::sleep(nap);
            let over = started.elapsed().saturating_sub(nap);
            let w = worst.entry(*phase.lock().unwrap()).or_default();
            *w = (*w).max(over);
        }
        worst
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let o = Options::parse();
    let cluster = RedisCluster::start(3).expect("cluster");
    let from_id = cluster.node_id(0).expect("id");
    let to_id = cluster.node_id(1).expect("id");
    // redis-cli takes a source's slots in order: node 0 owns 0..5460, so 0..slots move.
    let moving: HashMap<Slot, u16> = (0..o.slots)
        .filter_map(|s| Slot::new(s).map(|slot| (slot, s)))
        .collect();
    let moving_tags = tags_in(&moving, true, o.tags / 2, "moving");
    let other_tags = tags_in(&moving, false, o.tags - o.tags / 2, "still");

    let mut config = RedisConfig::new(RedisMode::Cluster, cluster.urls());
    config.timeout = Duration::from_millis(o.timeout_ms);
    let store = Arc::new(RedisStore::new(&config).expect("store"));
    store.ping().await.expect("ping");
    for t in moving_tags.iter().chain(&other_tags) {
        store.check(&batch(t)).await.expect("priming check");
    }

    let phase = Arc::new(Mutex::new(Phase::Before));
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Arc<Mutex<BTreeMap<(Phase, bool), Tally>>> = Arc::default();
    let tags: Arc<Vec<(String, bool)>> = Arc::new(
        moving_tags
            .iter()
            .map(|t| (t.clone(), true))
            .chain(other_tags.iter().map(|t| (t.clone(), false)))
            .collect(),
    );
    let mut workers = Vec::new();
    for w in 0..o.workers {
        let (store, phase, stop, tallies, tags) = (
            store.clone(),
            phase.clone(),
            stop.clone(),
            tallies.clone(),
            tags.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = w * 7919;
            let mut local: BTreeMap<(Phase, bool), Tally> = BTreeMap::new();
            while !stop.load(Ordering::Relaxed) {
                i = (i + 1) % tags.len();
                let (tag, in_moving) = &tags[i];
                let p = *phase.lock().unwrap();
                let started = Instant::now();
                let r = store.check(&batch(tag)).await;
                let t = local.entry((p, *in_moving)).or_default();
                t.latencies.push(started.elapsed());
                if let Err(e) = r {
                    *t.errors.entry(error_kind(&e)).or_default() += 1;
                }
            }
            let mut all = tallies.lock().unwrap();
            for (k, v) in local {
                let t = all.entry(k).or_default();
                t.latencies.extend(v.latencies);
                for (e, n) in v.errors {
                    *t.errors.entry(e).or_default() += n;
                }
            }
        }));
    }

    let stalls = host_stalls(stop.clone(), phase.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    *phase.lock().unwrap() = Phase::During;
    let seed = format!("127.0.0.1:{}", cluster.nodes()[0].port());
    let slots = o.slots.to_string();
    let reshard_started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("redis-cli")
            .args(["--cluster", "reshard", &seed])
            .args(["--cluster-from", &from_id, "--cluster-to", &to_id])
            .args(["--cluster-slots", &slots, "--cluster-yes"])
            .output()
    })
    .await
    .expect("join")
    .expect("redis-cli");
    let reshard_took = reshard_started.elapsed();
    *phase.lock().unwrap() = Phase::After;
    assert!(
        out.status.success(),
        "reshard failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let stalls = stalls.join().expect("stall thread");
    let owner = cluster.slot_owner(0).expect("owner");
    println!(
        "reshard of {} slots (node 0 -> node 1; slot 0 now on node {owner}) took {:.2?}; \
         {} workers, {} tags, timeout {} ms",
        o.slots, reshard_took, o.workers, o.tags, o.timeout_ms
    );
    println!(
        "{:<7} {:<7} {:>8} {:>7} {:>9} {:>9} {:>9}  errors",
        "phase", "slots", "checks", "failed", "p50", "p99", "max"
    );
    for (p, worst) in stalls {
        println!("{p:?}: the host's worst stall (a 5 ms sleep overslept by) {worst:.2?}");
    }
    for ((p, in_moving), mut t) in std::mem::take(&mut *tallies.lock().unwrap()) {
        t.latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((t.latencies.len() as f64 - 1.0) * q).round() as usize;
            t.latencies.get(i).copied().unwrap_or_default()
        };
        let failed: usize = t.errors.values().sum();
        println!(
            "{:<7} {:<7} {:>8} {:>7} {:>9.2?} {:>9.2?} {:>9.2?}  {:?}",
            format!("{p:?}"),
            if in_moving { "moving" } else { "other" },
            t.latencies.len(),
            failed,
            at(0.5),
            at(0.99),
            at(1.0),
            t.errors
        );
    }
}
