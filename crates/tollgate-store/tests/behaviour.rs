//! Behavioural tests of the limit stores, written once and run against every backend.
//!
//! The memory store runs the core's reference evaluation; the Redis store runs `check.lua`.
//! Both must answer alike, which is what keeps the Lua twin from drifting. The Redis store
//! also runs the limit tests on a 3-master Cluster (shared by the tests, each with its own
//! tags), where `check_all` over tags on several slots takes the two-phase path.

use futures_util::StreamExt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tollgate_core::apikey::{ApiKey, KeyHash};
use tollgate_core::batch::{BatchOutcome, BatchPart, Limit, LimitBatch, LimitKind, MultiOutcome};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::catalog::{batch_tag, QUOTA_LIMIT_NAME};
use tollgate_core::gcra::GcraLimit;
use tollgate_core::plan::{ApiStage, UsagePlan};
use tollgate_core::quota::QuotaLimit;
use tollgate_store::catalog::{Change, Commit, KeyRecord, PlanRecord};
use tollgate_store::{CatalogStore, MemoryStore, RedisConfig, RedisMode, RedisStore, Store};
use tollgate_testkit::{RedisCluster, RedisServer};

/// A store under test and whatever must live as long as it.
struct Backend {
    store: Arc<dyn Store>,
    catalog: Arc<dyn CatalogStore>,
    _server: Option<RedisServer>,
}

fn memory() -> Backend {
    let store = Arc::new(MemoryStore::new());
    Backend {
        store: store.clone(),
        catalog: store,
        _server: None,
    }
}

fn redis() -> Backend {
    let server = RedisServer::start().expect("start redis-server");
    let store = Arc::new(
        RedisStore::new(&RedisConfig::new(RedisMode::Standalone, vec![server.url()]))
            .expect("redis store"),
    );
    Backend {
        store: store.clone(),
        catalog: store,
        _server: Some(server),
    }
}

fn cluster() -> Backend {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| RedisCluster::start(3).expect("start Redis Cluster"));
    // Three nodes and the rest of the suite share the machine's cores, and a check over
    // several slots is several calls: these tests are about answers, not the 250 ms default.
    let mut config = RedisConfig::new(RedisMode::Cluster, cluster.urls());
    config.timeout = Duration::from_secs(2);
    let store = RedisStore::new(&config).expect("cluster store");
    let store = Arc::new(store);
    Backend {
        store: store.clone(),
        catalog: store,
        _server: None,
    }
}

fn throttle(rate: f64, burst: u64) -> Limit {
    Limit {
        name: "t".into(),
        kind: LimitKind::Throttle(GcraLimit::per_second(rate, burst).unwrap()),
    }
}

fn quota(limit: u64, period: QuotaPeriod) -> Limit {
    Limit {
        name: "q".into(),
        kind: LimitKind::Quota(QuotaLimit {
            limit,
            period,
            offset: 0,
            anchor_s: 0,
        }),
    }
}

fn batch(tag: &str, limits: Vec<Limit>, cost: u64) -> LimitBatch {
    LimitBatch {
        tag: tag.into(),
        limits,
        cost,
        usage_retention_days: Some(90),
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn check(b: &Backend, batch: &LimitBatch) -> BatchOutcome {
    b.store.check(batch).await.expect("check")
}

/// From idle exactly `burst` requests pass, the next is throttled with a retry time of one
/// interval, and nothing remains.
async fn burst_then_throttled(b: Backend) {
    let req = batch("p:burst", vec![throttle(1.0, 3)], 1);
    for i in 0..3 {
        let o = check(&b, &req).await;
        assert!(o.admitted, "request {i} should pass");
        assert_eq!(o.statuses[0].remaining, 2 - i);
    }
    let o = check(&b, &req).await;
    assert!(!o.admitted);
    assert_eq!(o.statuses[0].remaining, 0);
    let retry = o.statuses[0].retry_after_us;
    assert!(
        retry > 900_000 && retry <= 1_000_000,
        "retry after {retry} us"
    );
}

/// After the emission interval has passed, one more request is admitted.
async fn throttle_refills(b: Backend) {
    let req = batch("p:refill", vec![throttle(20.0, 1)], 1);
    assert!(check(&b, &req).await.admitted);
    assert!(!check(&b, &req).await.admitted);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(check(&b, &req).await.admitted);
}

/// A quota of 5 admits five, refuses the sixth with nothing remaining, and the retry time is
/// the time to the end of the UTC day.
async fn quota_counts_and_stops(b: Backend) {
    let req = batch("p:quota", vec![quota(5, QuotaPeriod::Day)], 1);
    for i in 0..5 {
        let o = check(&b, &req).await;
        assert!(o.admitted, "request {i}");
        assert_eq!(o.statuses[0].used, i as i64 + 1);
    }
    let o = check(&b, &req).await;
    assert!(!o.admitted);
    let s = o.statuses[0];
    assert_eq!((s.limit, s.used, s.remaining), (5, 5, 0));
    let to_midnight = 86_400_000_000 - o.now_us.rem_euclid(86_400_000_000);
    assert_eq!(s.retry_after_us as i64, to_midnight);
}

/// Cost 0 reads without consuming and answers as a cost-1 request would.
async fn cost_zero_reads(b: Backend) {
    let peek = batch("p:peek", vec![quota(2, QuotaPeriod::Month)], 0);
    let use2 = batch("p:peek", vec![quota(2, QuotaPeriod::Month)], 2);
    let o = check(&b, &peek).await;
    assert!(o.admitted);
    assert_eq!((o.statuses[0].used, o.statuses[0].remaining), (0, 2));
    assert!(check(&b, &use2).await.admitted);
    let o = check(&b, &peek).await;
    assert!(!o.admitted);
    assert_eq!(o.statuses[0].used, 2);
    let o = check(&b, &peek).await;
    assert_eq!(o.statuses[0].used, 2, "peeking twice consumed nothing");
}

/// A request refused by one limit consumes nothing from the others.
async fn all_or_nothing(b: Backend) {
    let both = batch(
        "p:aon",
        vec![throttle(0.001, 10), quota(1, QuotaPeriod::Week)],
        1,
    );
    assert!(check(&b, &both).await.admitted);
    for _ in 0..3 {
        let o = check(&b, &both).await;
        assert!(!o.admitted);
        assert!(o.statuses[0].allowed, "the throttle alone would pass");
        assert!(!o.statuses[1].allowed);
    }
    let peek = batch("p:aon", vec![throttle(0.001, 10)], 0);
    assert_eq!(
        check(&b, &peek).await.statuses[0].remaining,
        9,
        "only the admitted request was counted"
    );
}

/// A cost above one consumes that many units; a cost above the burst never passes.
async fn cost_units(b: Backend) {
    let req = batch(
        "p:cost",
        vec![throttle(0.001, 10), quota(100, QuotaPeriod::Day)],
        4,
    );
    let o = check(&b, &req).await;
    assert!(o.admitted);
    assert_eq!(o.statuses[0].remaining, 6);
    assert_eq!(o.statuses[1].used, 4);
    let huge = batch(
        "p:cost",
        vec![throttle(0.001, 10), quota(100, QuotaPeriod::Day)],
        11,
    );
    let o = check(&b, &huge).await;
    assert!(!o.admitted && !o.statuses[0].allowed);
    assert_eq!(
        check(&b, &batch("p:cost", vec![quota(100, QuotaPeriod::Day)], 0))
            .await
            .statuses[0]
            .used,
        4
    );
}

/// The offset lowers the limit in the quota's first period.
async fn quota_offset_first_period(b: Backend) {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let q = Limit {
        name: "q".into(),
        kind: LimitKind::Quota(QuotaLimit {
            limit: 5,
            period: QuotaPeriod::Month,
            offset: 3,
            anchor_s: now_s,
        }),
    };
    let req = batch("p:offset", vec![q], 1);
    assert!(check(&b, &req).await.admitted);
    let o = check(&b, &req).await;
    assert!(o.admitted);
    assert_eq!(o.statuses[0].limit, 2);
    assert!(!check(&b, &req).await.admitted);
}

/// Different tags (keys or plans) never share state.
async fn tags_are_independent(b: Backend) {
    let a = batch("p:a", vec![quota(1, QuotaPeriod::Day)], 1);
    let c = batch("p:c", vec![quota(1, QuotaPeriod::Day)], 1);
    assert!(check(&b, &a).await.admitted);
    assert!(!check(&b, &a).await.admitted);
    assert!(check(&b, &c).await.admitted);
}

/// A limit named twice in one batch is counted twice, and a refusal of the second writes
/// nothing for the first.
async fn same_limit_twice(b: Backend) {
    let req = batch(
        "p:twice",
        vec![quota(3, QuotaPeriod::Day), quota(3, QuotaPeriod::Day)],
        1,
    );
    let o = check(&b, &req).await;
    assert!(o.admitted);
    assert_eq!(o.statuses[1].used, 2);
    let o = check(&b, &req).await;
    assert!(!o.admitted, "3 + 1 > 3 on the second view");
    let peek = batch("p:twice", vec![quota(3, QuotaPeriod::Day)], 0);
    assert_eq!(check(&b, &peek).await.statuses[0].used, 2);
}

/// Many concurrent callers on one key get exactly the quota admitted.
async fn concurrent_exactness(b: Backend) {
    let store = b.store.clone();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let req = batch(
                "p:race",
                vec![throttle(1_000_000.0, 10_000), quota(100, QuotaPeriod::Day)],
                1,
            );
            let mut n = 0;
            for _ in 0..20 {
                if store.check(&req).await.expect("check").admitted {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 100);
}

/// An empty batch admits and reports no limits (a plan with neither throttle nor quota).
async fn empty_batch(b: Backend) {
    let o = check(&b, &batch("p:none", vec![], 1)).await;
    assert!(o.admitted && o.statuses.is_empty());
    assert!(
        o.now_us > 1_600_000_000_000_000,
        "time comes from the store's clock"
    );
}

fn today_id(now_us: i64) -> String {
    tollgate_core::calendar::day_id(now_us.div_euclid(1_000_000))
}

/// Daily usage reads back the admitted units of today, and 0 for other days and tags.
async fn daily_usage_reads_admitted_units(b: Backend) {
    let req = batch("p:usage", vec![quota(3, QuotaPeriod::Day)], 2);
    let o = check(&b, &req).await;
    assert!(o.admitted);
    assert!(!check(&b, &req).await.admitted, "2 + 2 > 3: not counted");
    let today = today_id(o.now_us);
    let days = vec!["20000101".to_string(), today.clone()];
    assert_eq!(
        b.store.daily_usage("p:usage", &days).await.unwrap(),
        vec![0, 2]
    );
    assert_eq!(
        b.store.daily_usage("p:other", &days).await.unwrap(),
        vec![0, 0]
    );
    assert!(b
        .store
        .daily_usage("p:usage", &[])
        .await
        .unwrap()
        .is_empty());
}

/// Setting the remaining quota takes effect at once, within the limit and beyond it, and
/// agrees with the core twin `state_with_remaining`.
async fn set_remaining_quota(b: Backend) {
    let q = QuotaLimit {
        limit: 5,
        period: QuotaPeriod::Day,
        offset: 0,
        anchor_s: 0,
    };
    let one = batch("p:grant", vec![quota(5, QuotaPeriod::Day)], 1);
    for _ in 0..5 {
        assert!(check(&b, &one).await.admitted);
    }
    assert!(!check(&b, &one).await.admitted);
    let before = tollgate_core::quota::QuotaState {
        period_id: tollgate_core::calendar::window(QuotaPeriod::Day, now_s()).id,
        used: 5,
        grant: 0,
    };
    let u = b.store.set_quota_remaining("p:grant", &q, 3).await.unwrap();
    let twin =
        tollgate_core::quota::state_with_remaining(&q, Some(&before), u.now_us / 1_000_000, 3);
    assert_eq!(u.state, twin);
    // The use is kept (the usage report counts it); the grant makes up the remaining.
    assert_eq!((u.limit, u.state.used, u.state.grant), (5, 5, 3));
    for i in 0..3 {
        assert!(check(&b, &one).await.admitted, "granted call {i}");
    }
    assert!(!check(&b, &one).await.admitted);
    // A grant beyond the limit is honoured in full.
    let u = b.store.set_quota_remaining("p:grant", &q, 8).await.unwrap();
    assert_eq!((u.state.used, u.state.grant), (8, 11));
    let peek = check(&b, &batch("p:grant", vec![quota(5, QuotaPeriod::Day)], 0)).await;
    assert_eq!(
        peek.statuses[0].remaining, 8,
        "remaining shows the whole grant"
    );
    let eight = batch("p:grant", vec![quota(5, QuotaPeriod::Day)], 8);
    assert!(check(&b, &eight).await.admitted);
    assert!(!check(&b, &one).await.admitted);
    // Setting 0 stops a fresh key at once.
    b.store.set_quota_remaining("p:fresh", &q, 0).await.unwrap();
    assert!(
        !check(&b, &batch("p:fresh", vec![quota(5, QuotaPeriod::Day)], 1))
            .await
            .admitted
    );
}

/// After a grant, an answer's `used` is what was consumed this period (as the daily usage
/// says) and its limit includes the grant, so `remaining` never exceeds the limit shown; a
/// new period starts without the grant.
async fn grant_reports_use_and_limit(b: Backend) {
    let q = QuotaLimit {
        limit: 3,
        period: QuotaPeriod::Day,
        offset: 0,
        anchor_s: 0,
    };
    let one = batch("p:gr", vec![quota(3, QuotaPeriod::Day)], 1);
    let peek = batch("p:gr", vec![quota(3, QuotaPeriod::Day)], 0);
    for _ in 0..2 {
        assert!(check(&b, &one).await.admitted);
    }
    b.store.set_quota_remaining("p:gr", &q, 10).await.unwrap();
    let s = check(&b, &peek).await.statuses[0];
    assert_eq!((s.limit, s.used, s.remaining), (12, 2, 10));
    let s = check(&b, &one).await.statuses[0];
    assert_eq!((s.limit, s.used, s.remaining), (12, 3, 9));
    let today = tollgate_core::calendar::day_id(now_s());
    let days = b.store.daily_usage("p:gr", &[today]).await.unwrap();
    assert_eq!(
        days,
        vec![3],
        "the usage report counts what the answers call used"
    );
    // Taking the grant back to nothing left: the limit shown is what was used.
    b.store.set_quota_remaining("p:gr", &q, 0).await.unwrap();
    let o = check(&b, &one).await;
    assert!(!o.admitted);
    let s = o.statuses[0];
    assert_eq!((s.limit, s.used, s.remaining), (3, 3, 0));
}

/// A refused check reports every limit as it stands (nothing taken), exactly as a cost-0
/// read does; a cost above the burst is refused with no retry time; a cost the throttle can
/// take later gets the retry time for that cost.
async fn refused_reports_limits_as_they_stand(b: Backend) {
    let limits = || vec![throttle(1.0, 5), quota(100, QuotaPeriod::Day)];
    let o = check(&b, &batch("p:asis", limits(), 6)).await;
    assert!(!o.admitted && !o.statuses[0].allowed && o.statuses[1].allowed);
    let (t, q) = (o.statuses[0], o.statuses[1]);
    assert_eq!((t.remaining, t.retry_after_us), (5, 0), "{t:?}");
    assert_eq!((q.used, q.remaining), (0, 100), "{q:?}");
    assert!(check(&b, &batch("p:asis", limits(), 5)).await.admitted);
    let o = check(&b, &batch("p:asis", limits(), 3)).await;
    assert!(!o.admitted);
    let peek = check(&b, &batch("p:asis", limits(), 0)).await;
    let (q, p) = (o.statuses[1], peek.statuses[1]);
    assert_eq!((q.used, q.remaining), (5, 95), "{q:?}");
    assert_eq!(
        (q.limit, q.used, q.remaining),
        (p.limit, p.used, p.remaining)
    );
    let retry = o.statuses[0].retry_after_us;
    assert!(
        retry > 2_900_000 && retry <= 3_000_000,
        "a cost of 3 waits three intervals, not {retry} us"
    );
}

/// A request refused by one batch reports the batches that would have admitted as stored,
/// not as if their cost had been taken (also across Cluster slots).
async fn check_all_refusal_reports_as_stored(b: Backend) {
    let full = batch("s:full", vec![quota(1, QuotaPeriod::Day)], 1);
    assert!(check(&b, &full).await.admitted);
    let parts = [
        part(
            batch(
                "s:a",
                vec![throttle(0.001, 10), quota(5, QuotaPeriod::Day)],
                2,
            ),
            false,
        ),
        part(full.clone(), false),
    ];
    let o = check_all(&b, &parts).await;
    assert!(!o.admitted && o.parts[0].admitted);
    let s = &o.parts[0].statuses;
    assert_eq!((s[0].remaining, s[1].used, s[1].remaining), (10, 0, 5));
    assert_eq!(
        (
            o.parts[1].statuses[0].used,
            o.parts[1].statuses[0].remaining
        ),
        (1, 0)
    );
}

/// Two batches on one limit: a refused shadow batch reports the limit as the batch before it
/// left it, while the call admits and writes that use; a refused call reports both batches
/// as stored, though the first saw its own use pending.
async fn check_all_refusal_after_pending_use(b: Backend) {
    let q = |cost| batch("s:shared", vec![quota(5, QuotaPeriod::Day)], cost);
    assert!(check(&b, &q(1)).await.admitted);
    let o = check_all(&b, &[part(q(2), false), part(q(3), true)]).await;
    assert!(o.admitted && o.parts[0].admitted && !o.parts[1].admitted);
    let used_left = |s: &tollgate_core::batch::LimitStatus| (s.used, s.remaining);
    assert_eq!(used_left(&o.parts[0].statuses[0]), (3, 2));
    assert_eq!(
        used_left(&o.parts[1].statuses[0]),
        (3, 2),
        "as the first batch left it"
    );
    let o = check_all(&b, &[part(q(1), false), part(q(4), false)]).await;
    assert!(!o.admitted && o.parts[0].admitted && !o.parts[1].admitted);
    assert_eq!(used_left(&o.parts[0].statuses[0]), (3, 2), "as stored");
    assert_eq!(used_left(&o.parts[1].statuses[0]), (3, 2), "as stored");
    assert_eq!(used_left(&check(&b, &q(0)).await.statuses[0]), (3, 2));
}

/// The offset lowers the limit that a set remaining is measured against in the first period.
async fn set_remaining_with_offset(b: Backend) {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let q = QuotaLimit {
        limit: 10,
        period: QuotaPeriod::Month,
        offset: 4,
        anchor_s: now_s,
    };
    let u = b.store.set_quota_remaining("p:off", &q, 1).await.unwrap();
    assert_eq!((u.limit, u.state.used, u.state.grant), (6, 0, -5));
    let req = LimitBatch {
        tag: "p:off".into(),
        limits: vec![Limit {
            name: QUOTA_LIMIT_NAME.into(),
            kind: LimitKind::Quota(q),
        }],
        cost: 1,
        usage_retention_days: None,
    };
    assert!(check(&b, &req).await.admitted);
    assert!(!check(&b, &req).await.admitted);
}

fn plan_record(id: &str, stage: &str) -> PlanRecord {
    PlanRecord {
        plan: UsagePlan {
            id: id.into(),
            name: id.into(),
            description: None,
            throttle: None,
            quota: Some(tollgate_core::plan::Quota {
                limit: 5,
                period: QuotaPeriod::Day,
                offset: 0,
            }),
            api_stages: vec![ApiStage {
                api_id: "api".into(),
                stage: stage.into(),
                throttle: Default::default(),
            }],
            quota_start_s: 1,
        },
        tags: Default::default(),
    }
}

fn key_record(id: &str) -> KeyRecord {
    KeyRecord {
        key: ApiKey {
            id: id.into(),
            name: id.into(),
            description: Some("d".into()),
            customer_id: None,
            enabled: true,
            value_hash: KeyHash::of(&format!("{id}-value-0123456789abcdef")),
            tags: [("team".to_string(), "a".to_string())].into(),
        },
        value: None,
        created_s: 10,
        updated_s: 11,
    }
}

/// Commits apply in order and bump the version by one; a reload returns exactly the records.
async fn catalog_commit_and_load(b: Backend) {
    let c = &b.catalog;
    let empty = c.load_catalog().await.unwrap();
    assert_eq!(empty.version, 0);
    assert!(empty.plans.is_empty() && empty.keys.is_empty());
    let changes = vec![
        Change::PutPlan(plan_record("p1", "prod")),
        Change::PutKey(key_record("k1")),
        Change::AddMember {
            plan_id: "p1".into(),
            key_id: "k1".into(),
        },
    ];
    assert_eq!(c.commit(0, &changes).await.unwrap(), Commit::Applied(1));
    assert_eq!(c.catalog_version().await.unwrap(), 1);
    let got = c.load_catalog().await.unwrap();
    let mut want = empty.clone();
    want.apply(&changes);
    want.version = 1;
    assert_eq!(got, want);
    assert!(got.to_catalog().is_ok());
    // An empty commit changes nothing and keeps the version.
    assert_eq!(c.commit(1, &[]).await.unwrap(), Commit::Applied(1));
    let removal = vec![
        Change::RemoveMember {
            plan_id: "p1".into(),
            key_id: "k1".into(),
        },
        Change::DeleteKey("k1".into()),
        Change::DeletePlan("p1".into()),
    ];
    assert_eq!(c.commit(1, &removal).await.unwrap(), Commit::Applied(2));
    let got = c.load_catalog().await.unwrap();
    assert!(got.plans.is_empty() && got.keys.is_empty() && got.members.is_empty());
    assert_eq!(got.version, 2);
}

/// A commit validated against an old version is refused and writes nothing.
async fn catalog_stale_commit_writes_nothing(b: Backend) {
    let c = &b.catalog;
    assert_eq!(
        c.commit(0, &[Change::PutKey(key_record("k1"))])
            .await
            .unwrap(),
        Commit::Applied(1)
    );
    assert_eq!(
        c.commit(0, &[Change::PutKey(key_record("k2"))])
            .await
            .unwrap(),
        Commit::Stale(1)
    );
    let got = c.load_catalog().await.unwrap();
    assert_eq!(got.keys.keys().collect::<Vec<_>>(), vec!["k1"]);
}

/// Concurrent writers that re-read on a stale answer all land, each exactly once.
async fn catalog_concurrent_commits(b: Backend) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = b.catalog.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let v = c.catalog_version().await.unwrap();
                let k = key_record(&format!("k{i}"));
                if let Commit::Applied(_) = c.commit(v, &[Change::PutKey(k)]).await.unwrap() {
                    return;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = b.catalog.load_catalog().await.unwrap();
    assert_eq!((got.version, got.keys.len()), (8, 8));
}

/// Subscribers hear of every applied commit, with its version.
async fn catalog_subscribers_hear_commits(b: Backend) {
    let mut changes = b.catalog.subscribe().await.unwrap();
    assert_eq!(
        b.catalog
            .commit(0, &[Change::PutPlan(plan_record("p1", "prod"))])
            .await
            .unwrap(),
        Commit::Applied(1)
    );
    let v = tokio::time::timeout(Duration::from_secs(2), changes.next())
        .await
        .expect("notified within 2 s");
    assert_eq!(v, Some(1));
}

/// A restore replaces every record and sets the given version, only from the version the
/// caller found, and tells subscribers; what the store held and the records lack is gone.
async fn catalog_restore_replaces_everything(b: Backend) {
    let c = &b.catalog;
    let held = vec![
        Change::PutPlan(plan_record("old-plan", "prod")),
        Change::PutKey(key_record("old-key")),
    ];
    assert_eq!(c.commit(0, &held).await.unwrap(), Commit::Applied(1));
    let mut wanted = tollgate_store::catalog::CatalogRecords::default();
    wanted.apply(&[
        Change::PutPlan(plan_record("p1", "prod")),
        Change::PutKey(key_record("k1")),
        Change::AddMember {
            plan_id: "p1".into(),
            key_id: "k1".into(),
        },
    ]);
    wanted.version = 1_007;
    assert_eq!(c.restore(0, &wanted).await.unwrap(), Commit::Stale(1));
    assert_eq!(
        c.load_catalog().await.unwrap().plans.len(),
        1,
        "nothing written"
    );
    let mut changes = c.subscribe().await.unwrap();
    assert_eq!(c.restore(1, &wanted).await.unwrap(), Commit::Applied(1_007));
    assert_eq!(c.load_catalog().await.unwrap(), wanted);
    let v = tokio::time::timeout(Duration::from_secs(2), changes.next())
        .await
        .expect("notified within 2 s");
    assert_eq!(v, Some(1_007));
    // Commits go on from the restored version.
    assert_eq!(
        c.commit(1_007, &[Change::DeleteKey("nope".into())])
            .await
            .unwrap(),
        Commit::Applied(1_008)
    );
}

/// The tag a check writes under is the one usage and grants address.
async fn usage_tag_matches_checks(b: Backend) {
    let tag = batch_tag("plan-a", "key-a");
    assert_eq!(tag, "plan-a:key-a");
    let o = check(&b, &batch(&tag, vec![quota(9, QuotaPeriod::Week)], 1)).await;
    let today = today_id(o.now_us);
    assert_eq!(b.store.daily_usage(&tag, &[today]).await.unwrap(), vec![1]);
}

fn part(batch: LimitBatch, shadow: bool) -> BatchPart {
    BatchPart { batch, shadow }
}

async fn check_all(b: &Backend, parts: &[BatchPart]) -> MultiOutcome {
    b.store.check_all(parts).await.expect("check_all")
}

/// Units used so far by the day quota `q` under `tag` (a cost-0 read).
async fn used(b: &Backend, tag: &str, limit: u64) -> i64 {
    check(b, &batch(tag, vec![quota(limit, QuotaPeriod::Day)], 0))
        .await
        .statuses[0]
        .used
}

/// Batches under several tags admit together, each consuming its own cost under its own tag.
async fn check_all_admits_together(b: Backend) {
    let parts = [
        part(batch("m:a", vec![quota(5, QuotaPeriod::Day)], 1), false),
        part(
            batch(
                "m:b",
                vec![throttle(0.001, 10), quota(5, QuotaPeriod::Day)],
                3,
            ),
            false,
        ),
    ];
    let o = check_all(&b, &parts).await;
    assert!(o.admitted);
    assert_eq!(o.parts.len(), 2);
    assert!(o.parts.iter().all(|p| p.admitted));
    assert_eq!(o.parts[1].statuses[0].remaining, 7);
    assert_eq!(o.parts[1].statuses[1].used, 3);
    assert_eq!((used(&b, "m:a", 5).await, used(&b, "m:b", 5).await), (1, 3));
}

/// A request refused under one tag consumes nothing under any other, and says which refused.
async fn check_all_refusal_consumes_nothing(b: Backend) {
    let full = batch("r:full", vec![quota(1, QuotaPeriod::Day)], 1);
    assert!(check(&b, &full).await.admitted);
    let parts = [
        part(
            batch(
                "r:a",
                vec![throttle(0.001, 10), quota(5, QuotaPeriod::Day)],
                1,
            ),
            false,
        ),
        part(full.clone(), false),
        part(batch("r:c", vec![quota(5, QuotaPeriod::Week)], 2), false),
    ];
    for _ in 0..3 {
        let o = check_all(&b, &parts).await;
        assert!(!o.admitted);
        let admitted: Vec<bool> = o.parts.iter().map(|p| p.admitted).collect();
        assert_eq!(admitted, [true, false, true]);
    }
    assert_eq!(used(&b, "r:a", 5).await, 0);
    let peek = batch("r:a", vec![throttle(0.001, 10)], 0);
    assert_eq!(check(&b, &peek).await.statuses[0].remaining, 10);
    let week = batch("r:c", vec![quota(5, QuotaPeriod::Week)], 0);
    assert_eq!(check(&b, &week).await.statuses[0].used, 0);
}

/// A shadow batch over its limit blocks nothing and consumes nothing itself; the others
/// are consumed, and a shadow batch that admits is consumed with them.
async fn check_all_shadow_blocks_nothing(b: Backend) {
    let over = batch("s:over", vec![quota(1, QuotaPeriod::Day)], 2);
    let fine = batch("s:fine", vec![quota(5, QuotaPeriod::Day)], 1);
    let room = batch("s:room", vec![quota(5, QuotaPeriod::Day)], 1);
    let o = check_all(&b, &[part(over, true), part(fine, false), part(room, true)]).await;
    assert!(o.admitted);
    assert!(!o.parts[0].admitted && o.parts[1].admitted && o.parts[2].admitted);
    assert_eq!(used(&b, "s:over", 1).await, 0);
    assert_eq!(used(&b, "s:fine", 5).await, 1);
    assert_eq!(used(&b, "s:room", 5).await, 1);
}

/// The same state named by two batches counts twice; a read-only batch (cost 0) consumes
/// nothing while the others do.
async fn check_all_same_state_twice(b: Backend) {
    let one = batch("t:same", vec![quota(3, QuotaPeriod::Day)], 1);
    let two = batch("t:same", vec![quota(3, QuotaPeriod::Day)], 2);
    let o = check_all(&b, &[part(one.clone(), false), part(two.clone(), false)]).await;
    assert!(o.admitted);
    assert_eq!(o.parts[1].statuses[0].used, 3);
    let o = check_all(&b, &[part(one.clone(), false), part(two, false)]).await;
    assert!(!o.admitted);
    assert_eq!(used(&b, "t:same", 3).await, 3);
    let read = batch("t:read", vec![quota(3, QuotaPeriod::Day)], 0);
    let other = batch("t:other", vec![quota(3, QuotaPeriod::Day)], 1);
    assert!(
        check_all(&b, &[part(read, false), part(other, false)])
            .await
            .admitted
    );
    assert_eq!(
        (used(&b, "t:read", 3).await, used(&b, "t:other", 3).await),
        (0, 1)
    );
}

/// No batches: admitted, with the store's time.
async fn check_all_empty(b: Backend) {
    let o = check_all(&b, &[]).await;
    assert!(o.admitted && o.parts.is_empty());
    assert!(o.now_us > 1_600_000_000_000_000);
}

/// Many concurrent requests over three tags, one of them binding: exactly its quota is
/// admitted, and the other tags count exactly the admitted requests.
async fn check_all_concurrent_exactness(b: Backend) {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = b.store.clone();
        tasks.push(tokio::spawn(async move {
            let parts = [
                part(
                    batch("c:wide", vec![quota(1_000, QuotaPeriod::Day)], 1),
                    false,
                ),
                part(
                    batch("c:tight", vec![quota(40, QuotaPeriod::Day)], 1),
                    false,
                ),
                part(
                    batch("c:also", vec![throttle(1_000_000.0, 10_000)], 1),
                    false,
                ),
            ];
            let mut n = 0;
            for _ in 0..10 {
                if store.check_all(&parts).await.expect("check_all").admitted {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 40);
    assert_eq!(used(&b, "c:wide", 1_000).await, 40);
    assert_eq!(used(&b, "c:tight", 40).await, 40);
}

macro_rules! backend_tests {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::$backend()).await;
                }
            )*
        }
    };
}

backend_tests!(memory: burst_then_throttled, throttle_refills, quota_counts_and_stops, cost_zero_reads,
    all_or_nothing, cost_units, quota_offset_first_period, tags_are_independent, same_limit_twice,
    concurrent_exactness, empty_batch, daily_usage_reads_admitted_units, set_remaining_quota,
    set_remaining_with_offset, grant_reports_use_and_limit, refused_reports_limits_as_they_stand,
    check_all_refusal_reports_as_stored, check_all_refusal_after_pending_use, catalog_commit_and_load, catalog_stale_commit_writes_nothing,
    catalog_concurrent_commits, catalog_subscribers_hear_commits, catalog_restore_replaces_everything,
    usage_tag_matches_checks,
    check_all_admits_together, check_all_refusal_consumes_nothing,
    check_all_shadow_blocks_nothing, check_all_same_state_twice, check_all_empty,
    check_all_concurrent_exactness);
backend_tests!(redis: burst_then_throttled, throttle_refills, quota_counts_and_stops, cost_zero_reads,
    all_or_nothing, cost_units, quota_offset_first_period, tags_are_independent, same_limit_twice,
    concurrent_exactness, empty_batch, daily_usage_reads_admitted_units, set_remaining_quota,
    set_remaining_with_offset, grant_reports_use_and_limit, refused_reports_limits_as_they_stand,
    check_all_refusal_reports_as_stored, check_all_refusal_after_pending_use, catalog_commit_and_load, catalog_stale_commit_writes_nothing,
    catalog_concurrent_commits, catalog_subscribers_hear_commits, catalog_restore_replaces_everything,
    usage_tag_matches_checks,
    check_all_admits_together, check_all_refusal_consumes_nothing,
    check_all_shadow_blocks_nothing, check_all_same_state_twice, check_all_empty,
    check_all_concurrent_exactness);
// The limit tests only: the catalog tests share fixed record keys, and this Cluster is shared.
backend_tests!(cluster: burst_then_throttled, throttle_refills, quota_counts_and_stops, cost_zero_reads,
    all_or_nothing, cost_units, quota_offset_first_period, tags_are_independent, same_limit_twice,
    concurrent_exactness, empty_batch, refused_reports_limits_as_they_stand,
    check_all_refusal_reports_as_stored, check_all_refusal_after_pending_use,
    check_all_admits_together, check_all_refusal_consumes_nothing,
    check_all_shadow_blocks_nothing, check_all_same_state_twice, check_all_empty,
    check_all_concurrent_exactness);
