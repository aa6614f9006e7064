//! The Lua script and the core's reference evaluation are twins: random sequences of checks
//! get the same answers from the Redis store and the memory store.
//!
//! Throttles here refill so slowly (one unit per ~11 days) that the two stores' clocks,
//! read a few microseconds apart, cannot change an answer; what is compared is everything
//! but the time fields.

use proptest::prelude::*;
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::gcra::GcraLimit;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::{MemoryStore, RedisConfig, RedisMode, RedisStore, Store};
use tollgate_testkit::RedisServer;

#[derive(Debug, Clone)]
struct Step {
    tag: u8,
    cost: u64,
    limits: Vec<(bool, u64, u8)>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u8..3,
        prop_oneof![Just(0u64), Just(1), Just(1), Just(2), Just(5)],
        proptest::collection::vec((any::<bool>(), 1u64..8, 0u8..3), 0..4),
    )
        .prop_map(|(tag, cost, limits)| Step { tag, cost, limits })
}

fn to_batch(s: &Step) -> LimitBatch {
    let limits = s
        .limits
        .iter()
        .map(|&(throttle, n, name)| Limit {
            name: format!("{}{name}", if throttle { "t" } else { "q" }).into(),
            kind: if throttle {
                LimitKind::Throttle(GcraLimit::per_second(0.000_001, n).unwrap())
            } else {
                let period =
                    [QuotaPeriod::Day, QuotaPeriod::Week, QuotaPeriod::Month][usize::from(name)];
                LimitKind::Quota(QuotaLimit {
                    limit: n,
                    period,
                    offset: 0,
                    anchor_s: 0,
                })
            },
        })
        .collect();
    LimitBatch {
        tag: format!("twin:{}", s.tag),
        limits,
        cost: s.cost,
        usage_retention_days: Some(7),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Same checks, same answers, on both backends.
    #[test]
    fn redis_and_memory_agree(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = RedisServer::start().unwrap();
        rt.block_on(async {
            let redis = RedisStore::new(&RedisConfig::new(RedisMode::Standalone, vec![server.url()])).unwrap();
            let memory = MemoryStore::new();
            for (i, s) in steps.iter().enumerate() {
                let b = to_batch(s);
                let r = redis.check(&b).await.unwrap();
                let m = memory.check(&b).await.unwrap();
                let strip = |o: &tollgate_core::batch::BatchOutcome| {
                    (o.admitted, o.statuses.iter().map(|s| (s.allowed, s.limit, s.remaining, s.used)).collect::<Vec<_>>())
                };
                prop_assert_eq!(strip(&r), strip(&m), "step {} {:?}", i, s);
            }
            Ok(())
        })?;
    }
}
