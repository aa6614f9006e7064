//! End-to-end tests of `tollgate.v1.QuotaService/CheckQuota` through the real binary, on the
//! memory store and on a real Redis.

mod support;

use std::time::{Duration, Instant};
use support::*;
use tollgate_proto::v1::{QuotaPeriod, Verdict};
use tollgate_store::redis::CHECK_LUA;
use tollgate_testkit::{commandstats, RedisServer};

/// The seed scenario: five calls pass with a shrinking quota, the sixth gets 429 "Limit
/// Exceeded" with Retry-After until the next UTC midnight.
async fn seed_scenario(t: &Tollgate) {
    let mut c = t.client().await;
    for i in 0..5u64 {
        let r = check(&mut c, seed_request(TEST_KEY)).await;
        assert_eq!(r.verdict(), Verdict::Ok, "call {i}: {r:?}");
        assert_eq!((r.http_status, r.message.as_str()), (200, "OK"));
        assert_eq!(r.usage_plan_id, "demo-usage-plan");
        assert_eq!(r.key_id, "testApikey");
        let q = r.quota.expect("quota status");
        assert_eq!((q.limit, q.used, q.remaining), (5, i + 1, 4 - i));
        assert_eq!(q.period(), QuotaPeriod::Day);
        assert!(r.throttle.is_none(), "the demo plan has no throttle");
        assert_eq!(header(&r, "RateLimit-Limit"), Some("5"));
        assert_eq!(
            header(&r, "RateLimit-Remaining"),
            Some((4 - i).to_string().as_str())
        );
    }
    let r = check(&mut c, seed_request(TEST_KEY)).await;
    assert_eq!(r.verdict(), Verdict::QuotaExceeded);
    assert_eq!((r.http_status, r.message.as_str()), (429, "Limit Exceeded"));
    let q = r.quota.unwrap();
    assert_eq!((q.used, q.remaining), (5, 0));
    let resets = q.resets_at.unwrap().seconds;
    assert_eq!(resets % 86_400, 0, "resets at UTC midnight");
    let retry: u64 = header(&r, "Retry-After").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 86_400);
    assert_eq!(header(&r, "RateLimit-Remaining"), Some("0"));
}

/// Seed scenario on the embedded memory store.
#[tokio::test]
async fn seed_scenario_on_memory() {
    let cfg = seed_config();
    let t = Tollgate::start(&["--config", cfg.to_str().unwrap()]);
    seed_scenario(&t).await;
}

/// Seed scenario on Redis, configured through the environment as in production.
#[tokio::test]
async fn seed_scenario_on_redis() {
    let redis = RedisServer::start().unwrap();
    let cfg = seed_config();
    let t = Tollgate::start_with_env(
        &[],
        &[
            ("TOLLGATE_REDIS_URL", &redis.url()),
            ("TOLLGATE_CONFIG", cfg.to_str().unwrap()),
        ],
    );
    seed_scenario(&t).await;
    // A restart of tollgate keeps the count: the state is in Redis.
    drop(t);
    let t = Tollgate::seeded_on_redis(&redis.url(), &[]);
    let r = check(&mut t.client().await, seed_request(TEST_KEY)).await;
    assert_eq!(r.verdict(), Verdict::QuotaExceeded);
}

/// Redis connections tollgate opens after `checks` checks one at a time, with `args`.
/// Each instance gets a Redis of its own, so only its connections are counted.
async fn redis_connections_after_checks(args: &[&str], checks: usize) -> usize {
    let redis = RedisServer::start().unwrap();
    let t = Tollgate::seeded_on_redis(&redis.url(), args);
    let mut c = t.client().await;
    for _ in 0..checks {
        check(&mut c, seed_request(PREMIUM_KEY)).await;
    }
    // Less the one asking.
    redis.connected_clients().unwrap() - 1
}

/// By default tollgate keeps one Redis connection per request thread: with one thread, 8
/// connections served about a fifth fewer checks per second than 1 (docs/benchmarks.md).
/// `--redis-pool-size` sets the number, and it is what is used even when checks come one at
/// a time (a slot used to hand its connection back, and the next slot took the same one).
#[tokio::test]
async fn redis_connections_follow_the_threads_or_the_pool_size() {
    let one = redis_connections_after_checks(&["--worker-threads", "1"], 20).await;
    let three = redis_connections_after_checks(&["--worker-threads", "3"], 20).await;
    let five =
        redis_connections_after_checks(&["--worker-threads", "1", "--redis-pool-size", "5"], 20)
            .await;
    assert_eq!(
        three - one,
        2,
        "one connection per thread: {one} and {three}"
    );
    assert_eq!(five - one, 4, "five pooled connections: {one} and {five}");
}

/// The seed scenario on Redis with `--worker-threads 1`, where the whole server runs on
/// tokio's current-thread scheduler (a different runtime from every other test's binary).
#[tokio::test]
async fn seed_scenario_on_one_thread() {
    let redis = RedisServer::start().unwrap();
    let t = Tollgate::seeded_on_redis(&redis.url(), &["--worker-threads", "1"]);
    seed_scenario(&t).await;
    assert_eq!(t.http_get("/healthz").map(|(s, _)| s), Some(200));
}

/// Missing, unknown, unsubscribed and disabled keys each get their verdict and 403.
#[tokio::test]
async fn key_refusals() {
    let cfg = temp_config(&format!(
        "{}\n  - name: disabledKey\n    value: disabled-key-0123456789abcdef\n    enabled: false\n    usagePlanIds: [demo-usage-plan]\n",
        std::fs::read_to_string(seed_config()).unwrap().trim_end()
    ));
    let t = Tollgate::start(&["--config", cfg.to_str().unwrap()]);
    let mut c = t.client().await;
    let cases = [
        (seed_request(""), Verdict::KeyMissing),
        (
            seed_request("no-such-key-0123456789abcdef"),
            Verdict::KeyInvalid,
        ),
        (
            seed_request("disabled-key-0123456789abcdef"),
            Verdict::KeyDisabled,
        ),
        (
            tollgate_proto::v1::CheckQuotaRequest {
                stage: "prod".into(),
                ..seed_request(TEST_KEY)
            },
            Verdict::KeyNotSubscribed,
        ),
    ];
    for (req, want) in cases {
        let r = check(&mut c, req).await;
        assert_eq!(r.verdict(), want);
        assert_eq!((r.http_status, r.message.as_str()), (403, "Forbidden"));
        assert_eq!(header(&r, "RateLimit-Limit"), Some("0"));
    }
}

/// The premium plan's throttle passes its burst of 20 at once, then throttles with 429 "Too
/// Many Requests" and a Retry-After; the per-method override applies to DELETE only.
#[tokio::test]
async fn premium_throttle() {
    let cfg = seed_config();
    let t = Tollgate::start(&["--config", cfg.to_str().unwrap()]);
    let mut c = t.client().await;
    let started = Instant::now();
    let mut ok = 0u64;
    let refused = loop {
        let r = check(&mut c, seed_request(PREMIUM_KEY)).await;
        if r.verdict() != Verdict::Ok {
            break r;
        }
        ok += 1;
        assert!(ok <= 200, "never throttled");
    };
    // From idle the burst of 20 passes at once, plus one per 100 ms of the time it took.
    let refill = (started.elapsed().as_millis() / 100) as u64;
    assert!(
        ok >= 20 && ok <= 20 + refill + 1,
        "{ok} admitted in {:?}",
        started.elapsed()
    );
    assert_eq!(refused.verdict(), Verdict::Throttled);
    assert_eq!(
        (refused.http_status, refused.message.as_str()),
        (429, "Too Many Requests")
    );
    assert_eq!(header(&refused, "Retry-After"), Some("1"));
    let th = refused.throttle.unwrap();
    assert_eq!((th.burst_limit, th.remaining), (20, 0));
    assert!(th.retry_after_ms > 0 && th.retry_after_ms <= 100);
    let del = tollgate_proto::v1::CheckQuotaRequest {
        method: "DELETE".into(),
        ..seed_request(PREMIUM_KEY)
    };
    let r = check(&mut c, del).await;
    assert_eq!(r.verdict(), Verdict::Ok);
    let th = r.throttle.unwrap();
    assert_eq!(
        (th.burst_limit, th.resource_method.as_str()),
        (4, "/usageplanOffering/DELETE")
    );
}

/// Cost 0 reads without consuming; a cost above the cap is refused as INVALID_ARGUMENT.
#[tokio::test]
async fn cost_rules() {
    let cfg = seed_config();
    let t = Tollgate::start(&["--config", cfg.to_str().unwrap()]);
    let mut c = t.client().await;
    for _ in 0..3 {
        let r = check(
            &mut c,
            tollgate_proto::v1::CheckQuotaRequest {
                cost: Some(0),
                ..seed_request(TEST_KEY)
            },
        )
        .await;
        assert_eq!(r.verdict(), Verdict::Ok);
        assert_eq!(r.quota.unwrap().used, 0);
    }
    let r = check(
        &mut c,
        tollgate_proto::v1::CheckQuotaRequest {
            cost: Some(3),
            ..seed_request(TEST_KEY)
        },
    )
    .await;
    assert_eq!(r.quota.unwrap().used, 3);
    let err = c
        .check_quota(tollgate_proto::v1::CheckQuotaRequest {
            cost: Some(u32::MAX),
            ..seed_request(TEST_KEY)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("cost"), "{}", err.message());
    let err = c
        .check_quota(tollgate_proto::v1::CheckQuotaRequest {
            resource: "/x".repeat(5_000),
            ..seed_request(TEST_KEY)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

/// Exactness: 4 instances sharing one Redis, 64 concurrent clients on one key with a quota of
/// 1000 admit exactly 1000; every other answer is QUOTA_EXCEEDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_the_quota_across_instances() {
    let redis = RedisServer::start().unwrap();
    let cfg = temp_config(
        "usagePlans:\n  - id: exact\n    quota: {limit: 1000, period: MONTH}\n    apiStages: [{apiId: api, stage: prod}]\napiKeys:\n  - name: hot\n    value: hot-key-0123456789abcdef\n    usagePlanIds: [exact]\n",
    );
    // The test is about exactness, not latency: a generous timeout keeps a starved CI
    // machine (4 servers, 64 clients, 2 cores) from turning slowness into UNAVAILABLE.
    let instances: Vec<Tollgate> = (0..4)
        .map(|_| {
            Tollgate::start(&[
                "--redis-url",
                &redis.url(),
                "--config",
                cfg.to_str().unwrap(),
                "--redis-timeout-ms",
                "5000",
            ])
        })
        .collect();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let mut c = instances[i % 4].client().await;
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut over) = (0u32, 0u32);
            for _ in 0..20 {
                let req = tollgate_proto::v1::CheckQuotaRequest {
                    api_key: "hot-key-0123456789abcdef".into(),
                    api_id: "api".into(),
                    stage: "prod".into(),
                    resource: "/".into(),
                    method: "GET".into(),
                    cost: None,
                };
                match check(&mut c, req).await.verdict() {
                    Verdict::Ok => ok += 1,
                    Verdict::QuotaExceeded => over += 1,
                    other => panic!("unexpected verdict {other:?}"),
                }
            }
            (ok, over)
        }));
    }
    let (mut ok, mut over) = (0, 0);
    for t in tasks {
        let (a, b) = t.await.unwrap();
        ok += a;
        over += b;
    }
    assert_eq!(ok, 1000);
    assert_eq!(over, 64 * 20 - 1000);
}

/// With Redis down, fail-closed answers UNAVAILABLE (503) within the timeout, fail-open
/// admits, and /healthz reports 503; both recover when Redis returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_modes() {
    let mut redis = RedisServer::start().unwrap();
    let closed = Tollgate::seeded_on_redis(&redis.url(), &[]);
    let open = Tollgate::seeded_on_redis(&redis.url(), &["--failure-mode", "allow"]);
    let (mut cc, mut co) = (closed.client().await, open.client().await);
    assert_eq!(
        check(&mut cc, seed_request(TEST_KEY)).await.verdict(),
        Verdict::Ok
    );
    redis.stop();
    let started = Instant::now();
    let r = check(&mut cc, seed_request(TEST_KEY)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!((r.verdict(), r.http_status), (Verdict::Unavailable, 503));
    assert_eq!(r.key_id, "testApikey");
    assert_eq!(
        check(&mut co, seed_request(TEST_KEY)).await.verdict(),
        Verdict::Ok
    );
    assert_eq!(closed.http_get("/healthz").unwrap().0, 503);
    redis.restart().unwrap();
    let mut recovered = false;
    for _ in 0..50 {
        if check(&mut cc, seed_request(TEST_KEY)).await.verdict() == Verdict::Ok {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "fail-closed instance recovered by itself");
    assert_eq!(closed.http_get("/healthz").unwrap().0, 200);
}

/// gRPC health reports SERVING for the service and /healthz answers 200 on the memory store.
#[tokio::test]
async fn health_endpoints() {
    let t = Tollgate::start(&[]);
    assert_eq!(t.http_get("/healthz").unwrap().0, 200);
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", t.grpc_port))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tollgate.v1.QuotaService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

/// Redis calls made since the last `CONFIG RESETSTAT`, by command name.
async fn redis_calls(c: &mut redis::aio::MultiplexedConnection) -> commandstats::CommandCalls {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(c)
        .await
        .unwrap();
    commandstats::parse(&info)
}

/// A connection to `redis` whose command counts (`redis_calls`) start from zero now.
async fn counting_from_now(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let mut raw = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .unwrap();
    raw
}

/// One Redis round trip per admitted check, and none for a key known to be over (or, after
/// an admission that took its last unit, certain to be over)
/// its quota (the local deny cache) until its reset.
#[tokio::test]
async fn redis_calls_per_check() {
    let redis = RedisServer::start().unwrap();
    let t = Tollgate::seeded_on_redis(&redis.url(), &[]);
    let mut c = t.client().await;
    // Warm up: loads the script on the server (EVALSHA, NOSCRIPT, EVAL or SCRIPT LOAD) and
    // fills the store's 8 connection slots (each checked out once, with a PING).
    for _ in 0..10 {
        check(&mut c, seed_request(PREMIUM_KEY)).await;
    }
    let mut raw = counting_from_now(&redis).await;
    for _ in 0..5 {
        assert_eq!(
            check(&mut c, seed_request(TEST_KEY)).await.verdict(),
            Verdict::Ok
        );
    }
    for _ in 0..100 {
        let r = check(&mut c, seed_request(TEST_KEY)).await;
        assert_eq!(r.verdict(), Verdict::QuotaExceeded);
        assert!(header(&r, "Retry-After").is_some());
    }
    let calls = redis_calls(&mut raw).await;
    // commandstats also counts the commands a script runs; those are not round trips.
    let sent = commandstats::client_calls(&Default::default(), &calls, &[CHECK_LUA]);
    let round_trips: u64 = sent
        .iter()
        .filter(|(k, _)| k.as_str() != "config|resetstat")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(calls.get("evalsha"), Some(&5), "{calls:?}");
    assert_eq!(
        round_trips, 5,
        "5 admitted, the fifth taking the last unit, then none: {calls:?}"
    );
}

/// The deny cache covers Envoy RLS too: a descriptor whose limit is used up costs Redis
/// nothing more until it resets, whether it counts a plain descriptor or an API key.
#[tokio::test]
async fn rls_refusals_known_over_limit_skip_redis() {
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
        rate_limit_descriptor::Entry, RateLimitDescriptor,
    };
    use envoy_types::pb::envoy::service::ratelimit::v3::{
        rate_limit_response::Code, rate_limit_service_client::RateLimitServiceClient,
        RateLimitRequest,
    };
    let redis = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("calls.yaml"),
        "domain: calls\ndescriptors:\n  - key: client\n    rate_limit: {unit: day, requests_per_unit: 3}\n  - key: api_key\n",
    )
    .unwrap();
    let t = Tollgate::seeded_on_redis(
        &redis.url(),
        &["--rls-config", dir.path().to_str().unwrap()],
    );
    let mut c = RateLimitServiceClient::connect(format!("http://127.0.0.1:{}", t.grpc_port))
        .await
        .unwrap();
    let request = |key: &str, value: &str| RateLimitRequest {
        domain: "calls".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: key.into(),
                value: value.into(),
            }],
            ..Default::default()
        }],
        hits_addend: 1,
    };
    // Warm up: loads the script and fills the store's connection slots.
    for i in 0..10 {
        let r = c
            .should_rate_limit(request("client", &format!("warm{i}")))
            .await
            .unwrap();
        assert_eq!(r.into_inner().overall_code(), Code::Ok);
    }
    let mut raw = counting_from_now(&redis).await;
    for (key, value, admitted) in [("client", "abuser", 3), ("api_key", TEST_KEY, 5)] {
        for i in 0..admitted + 50 {
            let code = c
                .should_rate_limit(request(key, value))
                .await
                .unwrap()
                .into_inner()
                .overall_code();
            let expected = if i < admitted {
                Code::Ok
            } else {
                Code::OverLimit
            };
            assert_eq!(code, expected, "{key} call {i}");
        }
    }
    let calls = redis_calls(&mut raw).await;
    assert_eq!(
        calls.get("evalsha"),
        Some(&8),
        "3 + 5 admitted, each last one taking the last unit, then none: {calls:?}"
    );
}

/// A key the deny cache knows to be throttled is answered, still without Redis, with the
/// retry time for each call's own cost (not the cached cost-1 one), and a refused call
/// reports the quota untouched; a cost above the burst gets a 429 with no retry time.
#[tokio::test]
async fn deny_cache_answers_each_cost() {
    let redis = RedisServer::start().unwrap();
    let cfg = temp_config(
        "usagePlans:\n  - id: b5\n    throttle: {rateLimit: 1, burstLimit: 5}\n    quota: {limit: 100, period: DAY}\n    apiStages: [{apiId: b5, stage: s}]\napiKeys:\n  - name: kb5\n    value: value-for-kb5-00000000000\n    usagePlanIds: [b5]\n",
    );
    let t = Tollgate::start(&[
        "--redis-url",
        &redis.url(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let mut c = t.client().await;
    let req = |cost| tollgate_proto::v1::CheckQuotaRequest {
        cost: Some(cost),
        ..stage_request("value-for-kb5-00000000000", "b5", "s")
    };
    // Warm up without consuming: loads the script and the store's connections.
    for _ in 0..10 {
        assert_eq!(check(&mut c, req(0)).await.verdict(), Verdict::Ok);
    }
    let mut raw = counting_from_now(&redis).await;
    let r = check(&mut c, req(5)).await;
    assert_eq!(r.verdict(), Verdict::Ok, "{r:?}");
    for (cost, min_ms, after) in [(3, 2_000, "3"), (1, 0, "1"), (4, 3_000, "4")] {
        let r = check(&mut c, req(cost)).await;
        assert_eq!(r.verdict(), Verdict::Throttled, "cost {cost}: {r:?}");
        let th = r.throttle.clone().unwrap();
        assert!(
            th.retry_after_ms > min_ms && th.retry_after_ms <= min_ms + 1_000,
            "cost {cost} waits {cost} intervals, not {} ms",
            th.retry_after_ms
        );
        assert_eq!(header(&r, "Retry-After"), Some(after), "cost {cost}");
        let q = r.quota.unwrap();
        assert_eq!(
            (q.used, q.remaining),
            (5, 95),
            "nothing taken at cost {cost}"
        );
    }
    let r = check(&mut c, req(6)).await;
    assert_eq!(r.verdict(), Verdict::Throttled);
    assert_eq!(
        r.throttle.clone().unwrap().retry_after_ms,
        0,
        "no wait lets cost 6 pass"
    );
    assert_eq!(header(&r, "Retry-After"), None, "{r:?}");
    let calls = redis_calls(&mut raw).await;
    assert_eq!(
        calls.get("evalsha"),
        Some(&1),
        "only the admitted call reached Redis: {calls:?}"
    );
}
