//! What a load is driven against. A [`Target`] makes one call for the keys it is given and
//! says how the checks ended; the drivers in [`crate::driver`] decide when to call.
//!
//! - [`GrpcCheckQuota`]: `tollgate.v1.QuotaService/CheckQuota` over a few HTTP/2 connections.
//! - [`RedisCeiling`]: tollgate's own `check.lua` straight against Redis, with the KEYS and
//!   ARGV tollgate would send (built by `tollgate_store::redis::check_invocation` from the
//!   catalog's resolution of the same key), one script call per round trip per caller; or,
//!   with `in_flight > 1`, that many calls in flight per connection (pipelined), for
//!   reference.
//!
//! Extension point: Envoy RLS `ShouldRateLimit`. Add a `RlsShouldRateLimit` target holding
//! an `envoy.service.ratelimit.v3.RateLimitServiceClient` (from the `envoy-types` crate the
//! RLS service uses) that, for key index `k`, sends one `RateLimitRequest` with the domain
//! and a descriptor `[{key: "api_key", value: <key value>}]` (plus any entries the RLS config
//! matches on), and maps `OVER_LIMIT` to `limited`, `OK` to `allowed`. Then add a `rls`
//! subcommand beside `grpc` in `crate::cli` that builds it; the drivers, reports and
//! `bench.sh` need no change.

use crate::report::Tally;
use crate::workload;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use tollgate_core::catalog::Catalog;
use tollgate_proto::v1 as pb;
use tollgate_proto::v1::quota_service_client::QuotaServiceClient;
use tollgate_store::redis::{check_invocation, CHECK_SCRIPT};
use tonic::transport::{Channel, Endpoint};

/// Something a load is driven against.
pub trait Target: Clone + Send + Sync + 'static {
    /// Short name for reports (`grpc`, `ceiling`, ...).
    fn name(&self) -> String;

    /// Checks one call makes (1, or the pipeline depth).
    fn checks_per_call(&self) -> usize {
        1
    }

    /// A handle for worker `i`; workers spread over the target's connections this way.
    fn for_worker(&self, i: usize) -> Self;

    /// Makes one call checking `keys` (as many as [`Target::checks_per_call`]).
    fn call(&mut self, keys: &[usize]) -> impl Future<Output = Tally> + Send;
}

/// `CheckQuota` over `connections` HTTP/2 connections, workers spread round-robin.
#[derive(Clone)]
pub struct GrpcCheckQuota {
    clients: Arc<Vec<QuotaServiceClient<Channel>>>,
    mine: QuotaServiceClient<Channel>,
    requests: Arc<Vec<pb::CheckQuotaRequest>>,
}

impl GrpcCheckQuota {
    /// Connects `connections` channels to `addr` (e.g. `http://127.0.0.1:8081`), for a load
    /// over `keys` ordinary keys plus the hot key.
    pub async fn connect(addr: &str, connections: usize, keys: usize) -> anyhow::Result<Self> {
        let mut clients = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            let channel = Endpoint::from_shared(addr.to_string())
                .with_context(|| format!("`{addr}` is not a gRPC address"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("cannot connect to tollgate at {addr}"))?;
            clients.push(QuotaServiceClient::new(channel));
        }
        let values = workload::key_values(keys);
        let requests = (0..values.len())
            .map(|k| {
                let r = workload::request(k, &values);
                pb::CheckQuotaRequest {
                    api_key: r.api_key,
                    api_id: r.api_id,
                    stage: r.stage,
                    resource: r.resource,
                    method: r.method,
                    cost: None,
                }
            })
            .collect();
        Ok(GrpcCheckQuota {
            mine: clients[0].clone(),
            clients: Arc::new(clients),
            requests: Arc::new(requests),
        })
    }
}

impl Target for GrpcCheckQuota {
    fn name(&self) -> String {
        "grpc".into()
    }

    fn for_worker(&self, i: usize) -> Self {
        let mut t = self.clone();
        t.mine = self.clients[i % self.clients.len()].clone();
        t
    }

    async fn call(&mut self, keys: &[usize]) -> Tally {
        let mut tally = Tally::default();
        for &k in keys {
            let req = self.requests[k].clone();
            match self.mine.check_quota(req).await {
                Ok(r) => match r.into_inner().verdict() {
                    pb::Verdict::Ok => tally.allowed += 1,
                    pb::Verdict::Throttled | pb::Verdict::QuotaExceeded => tally.limited += 1,
                    pb::Verdict::Unavailable => tally.unavailable += 1,
                    pb::Verdict::Unspecified => tally.errors += 1,
                    _ => tally.forbidden += 1,
                },
                Err(_) => tally.errors += 1,
            }
        }
        tally
    }
}

/// tollgate's check script straight against Redis: each worker on its own connection, as
/// many calls in flight on it as `in_flight` (1 = one call per round trip).
#[derive(Clone)]
pub struct RedisCeiling {
    connections: Arc<Vec<redis::aio::MultiplexedConnection>>,
    mine: redis::aio::MultiplexedConnection,
    invocations: Arc<Vec<redis::ScriptInvocation<'static>>>,
    in_flight: usize,
}

impl RedisCeiling {
    /// Opens `connections` connections to `url`, loads the script, and prepares the call of
    /// every key of a load over `keys` ordinary keys plus the hot key, resolved against
    /// `catalog` (see [`workload::catalog`]) with usage kept `usage_retention_days`, as
    /// tollgate resolves them.
    pub async fn connect(
        url: &str,
        connections: usize,
        in_flight: usize,
        keys: usize,
        catalog: &Catalog,
        usage_retention_days: u32,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).with_context(|| format!("bad Redis URL {url}"))?;
        let mut conns = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            conns.push(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .with_context(|| format!("cannot connect to Redis at {url}"))?,
            );
        }
        CHECK_SCRIPT
            .prepare_invoke()
            .load_async(&mut conns[0])
            .await
            .context("SCRIPT LOAD of check.lua")?;
        let values = workload::key_values(keys);
        let mut invocations = Vec::with_capacity(values.len());
        for k in 0..values.len() {
            let resolved = catalog
                .resolve(&workload::request(k, &values), Some(usage_retention_days))
                .map_err(|v| anyhow::anyhow!("key {k} does not resolve: {v:?}"))?;
            invocations.push(check_invocation(&resolved.batch));
        }
        Ok(RedisCeiling {
            mine: conns[0].clone(),
            connections: Arc::new(conns),
            invocations: Arc::new(invocations),
            in_flight: in_flight.max(1),
        })
    }
}

fn tally_reply(reply: redis::RedisResult<Vec<i64>>) -> Tally {
    match reply {
        Ok(v) if v.first() == Some(&1) => Tally {
            allowed: 1,
            ..Tally::default()
        },
        Ok(_) => Tally {
            limited: 1,
            ..Tally::default()
        },
        Err(_) => Tally {
            errors: 1,
            ..Tally::default()
        },
    }
}

impl Target for RedisCeiling {
    fn name(&self) -> String {
        if self.in_flight > 1 {
            "ceiling-pipelined".into()
        } else {
            "ceiling".into()
        }
    }

    fn checks_per_call(&self) -> usize {
        self.in_flight
    }

    fn for_worker(&self, i: usize) -> Self {
        let mut t = self.clone();
        t.mine = self.connections[i % self.connections.len()].clone();
        t
    }

    async fn call(&mut self, keys: &[usize]) -> Tally {
        if let [k] = keys {
            return tally_reply(self.invocations[*k].invoke_async(&mut self.mine).await);
        }
        // Several calls in flight on one multiplexed connection: redis-rs writes them
        // back to back without waiting for replies, i.e. pipelines them.
        let mut calls = tokio::task::JoinSet::new();
        for &k in keys {
            let mut conn = self.mine.clone();
            let invocations = self.invocations.clone();
            calls.spawn(async move { invocations[k].invoke_async::<Vec<i64>>(&mut conn).await });
        }
        let mut tally = Tally::default();
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(r) => tally.add(&tally_reply(r)),
                Err(_) => tally.errors += 1,
            }
        }
        tally
    }
}
