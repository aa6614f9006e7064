//! Tests only the Redis backend can have: key expiry, script reloading, the Lua calendar
//! twin, Cluster, AUTH and outages.

use redis::AsyncCommands;
use std::time::{Duration, Instant};
use tollgate_core::batch::{BatchPart, Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::{day_id, window, QuotaPeriod};
use tollgate_core::gcra::GcraLimit;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::redis::{
    check_call_with, group_by_slot, parse_check_all_reply, parse_check_reply, refund_invocation,
    CalendarHint,
};
use tollgate_store::{keys, RedisConfig, RedisMode, RedisStore, Store, StoreError};
use tollgate_testkit::{RedisCluster, RedisServer};

const CHECK_LUA: &str = include_str!("../src/redis/scripts/check.lua");

fn plan_batch(tag: &str, cost: u64) -> LimitBatch {
    LimitBatch {
        tag: tag.into(),
        limits: vec![
            Limit {
                name: "t".into(),
                kind: LimitKind::Throttle(GcraLimit::per_second(10.0, 20).unwrap()),
            },
            Limit {
                name: "q".into(),
                kind: LimitKind::Quota(QuotaLimit {
                    limit: 5,
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

fn store_for(url: String) -> RedisStore {
    RedisStore::new(&RedisConfig::new(RedisMode::Standalone, vec![url])).expect("store")
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key a check writes has a TTL: throttle at its TAT, quota after its period, usage
/// the retention past the end of its day. The second check writes in the same period and
/// day, where the script leaves the expiries as the first set them: they must still hold.
#[tokio::test]
async fn every_key_has_a_ttl() {
    let server = RedisServer::start().unwrap();
    let store = store_for(server.url());
    for _ in 0..2 {
        assert!(store.check(&plan_batch("p1:k1", 1)).await.unwrap().admitted);
    }
    let mut c = raw(&server.url()).await;
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    for k in &all {
        let ttl: i64 = c.pttl(k).await.unwrap();
        assert!(ttl > 0, "{k} has no TTL ({ttl})");
    }
    let t: i64 = c.pttl(keys::limit_key("p1:k1", "t")).await.unwrap();
    assert!(t <= 201, "throttle key lives until its TAT, got {t} ms");
    let u: i64 = c.ttl(keys::usage_key("p1:k1")).await.unwrap();
    assert!(u > 90 * 86_400 && u <= 91 * 86_400, "usage TTL {u}");
    let q: i64 = c.ttl(keys::limit_key("p1:k1", "q")).await.unwrap();
    assert!(q > 86_400 && q <= 2 * 86_400, "quota TTL {q}");
    let used: i64 = c.hget(keys::limit_key("p1:k1", "q"), "n").await.unwrap();
    assert_eq!(used, 2, "the second check counted on the first's record");
}

/// A check whose calendar hint names another day than Redis's clock (an instance whose
/// clock is off, or a call built before midnight) is answered from Redis's own calendar:
/// the hint's period and day are ignored, and the outcome is the one a correct hint gives.
#[tokio::test]
async fn a_hint_for_another_day_is_ignored() {
    let server = RedisServer::start().unwrap();
    let mut c = raw(&server.url()).await;
    // Day 0 is 1970-01-01: had the script used it, the record would say m197001-like ids.
    let stale = CalendarHint::for_day(0);
    let mut outcomes = Vec::new();
    for (tag, hint) in [
        ("p1:stale", stale),
        ("p1:right", (*CalendarHint::today()).clone()),
    ] {
        for _ in 0..2 {
            let call = check_call_with(&plan_batch(tag, 1), &hint);
            let reply: Vec<u8> = call.query(&mut c).await.unwrap();
            let reply = tollgate_store::redis::unpack_integers(&reply).unwrap();
            outcomes.push(parse_check_reply(&reply, 2).unwrap());
        }
        let now_s = outcomes.last().unwrap().now_us / 1_000_000;
        let period: String = c.hget(keys::limit_key(tag, "q"), "p").await.unwrap();
        assert_eq!(period, window(QuotaPeriod::Day, now_s).id, "{tag}");
        let used: i64 = c.hget(keys::usage_key(tag), day_id(now_s)).await.unwrap();
        assert_eq!(used, 2, "{tag}: usage counted under today");
        let ttl: i64 = c.ttl(keys::limit_key(tag, "q")).await.unwrap();
        assert!(ttl > 86_400 && ttl <= 2 * 86_400, "{tag}: quota TTL {ttl}");
    }
    let summary = |o: &tollgate_core::batch::BatchOutcome| {
        o.statuses
            .iter()
            .map(|s| (s.allowed, s.limit, s.remaining, s.used))
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&outcomes[1]), summary(&outcomes[3]));
    // The two calls run moments apart, so their reset_after_us differ; the instant they
    // point at, now + reset, is the period's end and must be the same to the microsecond.
    let period_end_us = |o: &tollgate_core::batch::BatchOutcome| {
        assert!(o.statuses[1].reset_after_us > 0);
        o.now_us + i64::try_from(o.statuses[1].reset_after_us).expect("a day fits in i64")
    };
    assert_eq!(
        period_end_us(&outcomes[1]),
        period_end_us(&outcomes[3]),
        "the same period end"
    );
    let end_s = window(QuotaPeriod::Day, outcomes[3].now_us / 1_000_000).end_s;
    assert_eq!(
        period_end_us(&outcomes[3]),
        end_s * 1_000_000,
        "today's end"
    );
}

/// The daily usage record counts admitted units only, under today's date.
#[tokio::test]
async fn usage_counts_admitted_units() {
    let server = RedisServer::start().unwrap();
    let store = store_for(server.url());
    let mut admitted = 0;
    for _ in 0..4 {
        if store.check(&plan_batch("p1:k2", 2)).await.unwrap().admitted {
            admitted += 2;
        }
    }
    assert_eq!(admitted, 4, "quota 5 admits two requests of cost 2");
    let o = store.check(&plan_batch("p1:k2", 0)).await.unwrap();
    let day = tollgate_core::calendar::day_id(o.now_us / 1_000_000);
    let mut c = raw(&server.url()).await;
    let used: i64 = c.hget(keys::usage_key("p1:k2"), day).await.unwrap();
    assert_eq!(used, 4);
}

/// Checks sent one at a time still use every one of the `pool_size` connections: each
/// connection slot keeps its own. Before, a slot handed its connection back to the pool at
/// once and the next slot got the same idle one, so all checks went over one connection,
/// or over up to `pool_size` if the first checks came in a burst.
#[tokio::test]
async fn checks_one_at_a_time_use_every_pooled_connection() {
    let server = RedisServer::start().unwrap();
    let mut config = RedisConfig::new(RedisMode::Standalone, vec![server.url()]);
    config.pool_size = 4;
    let store = RedisStore::new(&config).unwrap();
    let before = server.connected_clients().unwrap();
    for i in 0..40 {
        store
            .check(&plan_batch(&format!("p1:conn{i}"), 1))
            .await
            .unwrap();
    }
    assert_eq!(
        server.connected_clients().unwrap() - before,
        4,
        "one connection from each of the 4 slots"
    );
}

/// After `SCRIPT FLUSH` the store reloads the script and goes on counting.
#[tokio::test]
async fn recovers_from_script_flush() {
    let server = RedisServer::start().unwrap();
    let store = store_for(server.url());
    assert!(store.check(&plan_batch("p1:k3", 1)).await.unwrap().admitted);
    let mut c = raw(&server.url()).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut c)
        .await
        .unwrap();
    let o = store.check(&plan_batch("p1:k3", 1)).await.unwrap();
    assert!(o.admitted);
    assert_eq!(o.statuses[1].used, 2, "state survived, script was reloaded");
}

/// The Lua calendar agrees with the Rust one on period ids and bounds, on edge instants
/// and on a spread of ordinary ones from 1970 to 2400.
#[tokio::test]
async fn lua_calendar_is_the_twin_of_rust() {
    let server = RedisServer::start().unwrap();
    let mut c = raw(&server.url()).await;
    let functions = CHECK_LUA
        .split("local time = redis.call('TIME')")
        .next()
        .unwrap();
    let probe = redis::Script::new(&format!(
        "{functions}\nlocal out = {{}}\nfor i = 2, #ARGV do\n  local id, s, e = period_window(ARGV[1], tonumber(ARGV[i]))\n  out[#out + 1] = id .. ' ' .. string.format('%d %d', s, e)\nend\nreturn out"
    ));
    let mut instants: Vec<i64> = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        instants.push((x % 13_569_465_600) as i64);
    }
    for p in [
        QuotaPeriod::Day,
        QuotaPeriod::Week,
        QuotaPeriod::Month,
        QuotaPeriod::Year,
    ] {
        let mut edges = Vec::new();
        for &t in &instants[..100] {
            let w = window(p, t);
            edges.extend([w.start_s, w.end_s - 1, w.end_s]);
        }
        // Leap days, year ends and ISO week-53 years.
        edges.extend([
            951_782_400,
            951_868_799,
            1_709_164_800,
            1_735_603_200,
            1_609_631_999,
            1_609_718_400,
            4_107_456_000,
        ]);
        let all: Vec<i64> = instants.iter().copied().chain(edges).collect();
        let got: Vec<String> = probe
            .arg(p.code())
            .arg(&all)
            .invoke_async(&mut c)
            .await
            .unwrap();
        for (t, g) in all.iter().zip(&got) {
            let w = window(p, *t);
            assert_eq!(
                g,
                &format!("{} {} {}", w.id, w.start_s, w.end_s),
                "period {p} at {t}"
            );
        }
    }
}

/// The same script runs on a 3-master Redis Cluster, for keys spread over all slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_redis_cluster() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = RedisStore::new(&RedisConfig::new(RedisMode::Cluster, cluster.urls())).unwrap();
    store.ping().await.unwrap();
    for k in 0..30 {
        let tag = format!("plan:key{k}");
        for i in 0..6 {
            let o = store.check(&plan_batch(&tag, 1)).await.unwrap();
            assert_eq!(o.admitted, i < 5, "key {k} request {i}");
        }
    }
}

/// A password-protected server works through a URL with credentials, and refuses without.
#[tokio::test]
async fn auth_from_url() {
    let server = RedisServer::start_with_password("s3cret-pw").unwrap();
    let store = store_for(server.url_with_password());
    assert!(store.check(&plan_batch("p1:k4", 1)).await.unwrap().admitted);
    let anonymous = store_for(server.url());
    assert!(anonymous.check(&plan_batch("p1:k4", 1)).await.is_err());
}

/// A Redis that needs a password, reached without one or with a wrong one (or given one it
/// does not need), refuses tollgate: that is a configuration error saying so, at the
/// start-up ping and at every check, never "unavailable" (a retry cannot mend it) nor a
/// "protocol" error (it is no bug).
#[tokio::test]
async fn refused_credentials_are_a_configuration_error() {
    let server = RedisServer::start_with_password("s3cret-pw").unwrap();
    let open = RedisServer::start().unwrap();
    let urls = [
        server.url(),
        format!("redis://:wrong@127.0.0.1:{}/", server.port()),
        format!("redis://nobody:s3cret-pw@127.0.0.1:{}/", server.port()),
        format!("redis://:unneeded@127.0.0.1:{}/", open.port()),
    ];
    for url in urls {
        let store = store_for(url.clone());
        let ping = store.ping().await.unwrap_err();
        let check = store.check(&plan_batch("p1:auth", 1)).await.unwrap_err();
        for e in [ping, check] {
            let shown = e.to_string();
            assert!(matches!(e, StoreError::Config(_)), "{url}: {e:?}");
            assert!(!e.is_transient(), "{url}");
            assert!(
                shown.contains("Redis refused tollgate's credentials"),
                "{url}: {shown}"
            );
        }
    }
}

/// With Redis down, a check fails fast with a transient error, and succeeds again once
/// Redis is back, without a new store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_transient_and_recovers() {
    let mut server = RedisServer::start().unwrap();
    let store = store_for(server.url());
    assert!(store.check(&plan_batch("p1:k5", 1)).await.unwrap().admitted);
    server.stop();
    let started = Instant::now();
    let err = store.check(&plan_batch("p1:k5", 1)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    server.restart().unwrap();
    let mut ok = false;
    for _ in 0..50 {
        if store.check(&plan_batch("p1:k5", 1)).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "store recovered after Redis came back");
}

/// A paused (hung) Redis turns into a timeout error within the configured bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_redis_times_out() {
    let server = RedisServer::start().unwrap();
    let mut cfg = RedisConfig::new(RedisMode::Standalone, vec![server.url()]);
    cfg.timeout = Duration::from_millis(200);
    let store = RedisStore::new(&cfg).unwrap();
    store.ping().await.unwrap();
    server.pause().unwrap();
    let started = Instant::now();
    let err = store.check(&plan_batch("p1:k6", 1)).await.unwrap_err();
    server.resume().unwrap();
    assert!(matches!(err, StoreError::Timeout(200)), "{err}");
    assert!(started.elapsed() < Duration::from_millis(600));
}

/// The configured timeout is the bound, also above the redis crate's own default of 500 ms:
/// a Redis that answers after 800 ms is waited for under a 2 s bound, and one that answers
/// later than the bound fails as a timeout of that bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_timeout_is_honoured() {
    let server = RedisServer::start().unwrap();
    let mut cfg = RedisConfig::new(RedisMode::Standalone, vec![server.url()]);
    cfg.timeout = Duration::from_millis(2000);
    let store = RedisStore::new(&cfg).unwrap();
    store.ping().await.unwrap();
    client_pause(&server.url(), 800).await;
    assert!(answered_after(&store).await >= Duration::from_millis(700));

    client_pause(&server.url(), 3000).await;
    let started = Instant::now();
    let err = store.check(&plan_batch("p1:k7", 1)).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, StoreError::Timeout(2000)),
        "{err} after {took:?}"
    );
    assert!(took >= Duration::from_millis(1900), "{took:?}");
}

/// On Cluster too, the first call's connecting is bounded by the store's timeout and not by
/// the cluster client's own 1 s: nodes that answer only after 1.5 s are waited for under a
/// 3 s bound (under a 1 s bound the same call fails at 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_timeout_is_honoured_when_connecting_to_a_cluster() {
    let cluster = RedisCluster::start(3).unwrap();
    let mut cfg = RedisConfig::new(RedisMode::Cluster, cluster.urls());
    cfg.timeout = Duration::from_millis(3000);
    // Connections are made by the first call, while every node is paused.
    let store = RedisStore::new(&cfg).unwrap();
    for url in cluster.urls() {
        client_pause(&url, 1500).await;
    }
    assert!(answered_after(&store).await >= Duration::from_millis(1200));
}

/// Makes the server at `url` leave every client unanswered for `ms` (`CLIENT PAUSE ms ALL`).
async fn client_pause(url: &str, ms: u64) {
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("ALL")
        .query_async(&mut raw(url).await)
        .await
        .unwrap();
}

/// How long one check on `store` took to be answered; it must not fail.
async fn answered_after(store: &RedisStore) -> Duration {
    let started = Instant::now();
    let outcome = store.check(&plan_batch("p1:k7", 1)).await;
    assert!(
        outcome.is_ok(),
        "failed after {:?}: {}",
        started.elapsed(),
        outcome.unwrap_err()
    );
    started.elapsed()
}

/// Control-plane records share one hash tag, so commits, snapshots and notifications work
/// on a Cluster; so does setting a remaining quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_and_grants_on_redis_cluster() {
    use futures_util::StreamExt;
    use tollgate_store::catalog::{Change, Commit};
    use tollgate_store::CatalogStore;
    let cluster = RedisCluster::start(3).unwrap();
    let store = RedisStore::new(&RedisConfig::new(RedisMode::Cluster, cluster.urls())).unwrap();
    store.ping().await.unwrap();
    let mut changes = store.subscribe().await.unwrap();
    let plan = tollgate_core::plan::UsagePlan {
        id: "p1".into(),
        name: "p1".into(),
        description: None,
        throttle: None,
        quota: None,
        api_stages: vec![],
        quota_start_s: 0,
    };
    let put = [
        Change::PutPlan(tollgate_store::catalog::PlanRecord {
            plan,
            tags: Default::default(),
        }),
        Change::AddMember {
            plan_id: "p1".into(),
            key_id: "k1".into(),
        },
    ];
    assert_eq!(store.commit(0, &put).await.unwrap(), Commit::Applied(1));
    let got = store.load_catalog().await.unwrap();
    assert_eq!((got.version, got.plans.len(), got.members.len()), (1, 1, 1));
    let v = tokio::time::timeout(Duration::from_secs(2), changes.next()).await;
    assert_eq!(v.unwrap(), Some(1));
    let q = QuotaLimit {
        limit: 5,
        period: QuotaPeriod::Day,
        offset: 0,
        anchor_s: 0,
    };
    for k in 0..10 {
        let tag = format!("p1:key{k}");
        let u = store.set_quota_remaining(&tag, &q, 1).await.unwrap();
        // A fresh key: nothing used, one left, so the grant takes four from the limit.
        assert_eq!((u.state.used, u.state.grant), (0, -4));
        assert!(store.check(&plan_batch(&tag, 1)).await.unwrap().admitted);
        assert!(!store.check(&plan_batch(&tag, 1)).await.unwrap().admitted);
    }
}
/// A Cluster store with a generous timeout: these tests are about answers, and the nodes
/// share the machine's cores with the rest of the suite.
fn cluster_store(cluster: &RedisCluster) -> RedisStore {
    let mut config = RedisConfig::new(RedisMode::Cluster, cluster.urls());
    config.timeout = Duration::from_secs(2);
    RedisStore::new(&config).unwrap()
}

fn quota_part(tag: &str, limit: u64, cost: u64) -> BatchPart {
    BatchPart {
        batch: LimitBatch {
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
            cost,
            usage_retention_days: None,
        },
        shadow: false,
    }
}

/// `refund.lua` gives back exactly what a committed `check.lua` call took: the throttle's
/// burst, the quota's units and the day's usage, leaving other use in place.
#[tokio::test]
async fn refund_gives_back_a_commit() {
    let server = RedisServer::start().unwrap();
    let store = store_for(server.url());
    let parts = [BatchPart {
        batch: plan_batch("p1:refund", 2),
        shadow: false,
    }];
    assert!(
        store
            .check(&plan_batch("p1:refund", 1))
            .await
            .unwrap()
            .admitted
    );
    let mut c = raw(&server.url()).await;
    let call = tollgate_store::redis::check_all_call(parts.iter(), true);
    let reply: Vec<u8> = call.query(&mut c).await.unwrap();
    let reply = tollgate_store::redis::unpack_integers(&reply).unwrap();
    let committed = parse_check_all_reply(&reply, &[2]).unwrap();
    assert!(committed.admitted);
    assert_eq!(committed.parts[0].statuses[1].used, 3);
    let refund = refund_invocation(&[&parts[0]], &committed).expect("something to refund");
    let applied: i64 = refund.invoke_async(&mut c).await.unwrap();
    assert_eq!(applied, 3, "throttle, quota and usage");
    let o = store.check(&plan_batch("p1:refund", 0)).await.unwrap();
    assert_eq!(o.statuses[1].used, 1, "only the first check's unit is left");
    assert_eq!(
        o.statuses[0].remaining, 19,
        "the throttle gave back two intervals"
    );
    let day = tollgate_core::calendar::day_id(o.now_us / 1_000_000);
    let used: i64 = c.hget(keys::usage_key("p1:refund"), day).await.unwrap();
    assert_eq!(used, 1);
}

/// On Cluster, a request over tags on three slots is all-or-nothing: refused by one slot, it
/// leaves the others untouched; admitted, it is counted on every slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_all_across_cluster_slots() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = cluster_store(&cluster);
    // Tags whose slots differ (checked, so the two-phase path is what runs).
    let tags: Vec<String> = (0..3).map(|i| format!("rls:spread{i}@day")).collect();
    let parts = |costs: [u64; 3]| -> Vec<BatchPart> {
        tags.iter()
            .zip(costs)
            .map(|(t, c)| quota_part(t, 3, c))
            .collect()
    };
    assert_eq!(group_by_slot(&parts([1, 1, 1])).len(), 3);
    let o = store.check_all(&parts([1, 1, 1])).await.unwrap();
    assert!(o.admitted);
    let o = store.check_all(&parts([1, 3, 1])).await.unwrap();
    assert!(!o.admitted);
    let admitted: Vec<bool> = o.parts.iter().map(|p| p.admitted).collect();
    assert_eq!(admitted, [true, false, true]);
    let o = store.check_all(&parts([0, 0, 0])).await.unwrap();
    let used: Vec<i64> = o.parts.iter().map(|p| p.statuses[0].used).collect();
    assert_eq!(
        used,
        [1, 1, 1],
        "the refused request consumed nothing anywhere"
    );
}

/// On Cluster, racing requests over three slots for the last units of one quota: exactly
/// the quota is admitted and the other slots count exactly the admitted requests (any
/// request that lost the race between peek and commit was refunded).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_races_for_the_last_units() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = std::sync::Arc::new(cluster_store(&cluster));
    let parts = std::sync::Arc::new(vec![
        quota_part("rls:race-a@day", 10_000, 1),
        quota_part("rls:race-b@day", 10_000, 1),
        quota_part("rls:race-tight@day", 25, 1),
    ]);
    assert!(group_by_slot(&parts).len() > 1);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (store, parts) = (store.clone(), parts.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..4 {
                if store.check_all(&parts).await.unwrap().admitted {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    assert_eq!(admitted, 25);
    let reads: Vec<BatchPart> = parts
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.batch.cost = 0;
            p
        })
        .collect();
    let o = store.check_all(&reads).await.unwrap();
    let used: Vec<i64> = o.parts.iter().map(|p| p.statuses[0].used).collect();
    assert_eq!(used, [25, 25, 25]);
}
