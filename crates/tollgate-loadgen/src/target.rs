//! What a load is driven against. A [`Target`] makes one call for the keys it is given and
//! says how the checks ended; the drivers in [`crate::driver`] decide when to call.
//!
//! - [`GrpcCheckQuota`]: `tollgate.v1.QuotaService/CheckQuota` over a few HTTP/2 connections,
//!   through the lean caller of [`crate::grpc_unary`].
//! - [`RedisCeiling`]: tollgate's own `check.lua` straight against Redis, with the KEYS and
//!   ARGV tollgate would send (built by `tollgate_store::redis::check_call` from the
//!   catalog's resolution of the same key), one script call per round trip per caller; or,
//!   with `in_flight > 1`, that many calls in flight per connection (pipelined), for
//!   reference.
//! - [`RlsShouldRateLimit`]: Envoy RLS, one request to
//!   `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` per call, with one or
//!   more descriptors of a [`RlsDescriptor`] workload, decided all-or-nothing and counted
//!   as one check.
//!
//! Another protocol is another `Target`: the drivers, reports and `bench.sh` need no change.

use crate::grpc_unary::{self, UnaryChannel};
use crate::report::Tally;
use crate::workload::{self, RlsDescriptor};
use anyhow::Context;
use bytes::Bytes;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
    rate_limit_descriptor::Entry, RateLimitDescriptor,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use http::Uri;
use std::future::Future;
use std::sync::Arc;
use tollgate_core::catalog::Catalog;
use tollgate_proto::v1 as pb;
use tollgate_store::redis::{check_call, ScriptCall, CHECK_SCRIPT};

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

/// `connections` HTTP/2 connections to the gRPC server at `addr`.
async fn channels(addr: &str, connections: usize) -> anyhow::Result<Vec<UnaryChannel>> {
    let mut out = Vec::with_capacity(connections.max(1));
    for _ in 0..connections.max(1) {
        out.push(
            UnaryChannel::connect(addr)
                .await
                .with_context(|| format!("cannot connect to tollgate at {addr}"))?,
        );
    }
    Ok(out)
}

/// The gRPC side of a target: its connections, the one a worker uses, the method, and every
/// key's request, framed once (as the ceiling prepares its Redis calls once).
#[derive(Clone)]
struct GrpcCalls {
    channels: Arc<Vec<UnaryChannel>>,
    mine: UnaryChannel,
    method: Uri,
    requests: Arc<Vec<Bytes>>,
}

impl GrpcCalls {
    async fn connect(
        addr: &str,
        connections: usize,
        path: &str,
        requests: Vec<Bytes>,
    ) -> anyhow::Result<Self> {
        let channels = channels(addr, connections).await?;
        let method = channels[0].method(path)?;
        Ok(GrpcCalls {
            mine: channels[0].clone(),
            channels: Arc::new(channels),
            method,
            requests: Arc::new(requests),
        })
    }

    fn for_worker(&self, i: usize) -> Self {
        let mut t = self.clone();
        t.mine = self.channels[i % self.channels.len()].clone();
        t
    }

    /// Key `k`'s call, decoded as `M`; `None` for any failure of the call or the reply.
    async fn call<M: prost::Message + Default>(&self, k: usize) -> Option<M> {
        let reply = self
            .mine
            .call(&self.method, self.requests[k].clone())
            .await
            .ok()?;
        M::decode(reply).ok()
    }
}

/// `CheckQuota` over `connections` HTTP/2 connections, workers spread round-robin.
#[derive(Clone)]
pub struct GrpcCheckQuota {
    calls: GrpcCalls,
}

impl GrpcCheckQuota {
    /// Connects `connections` channels to `addr` (e.g. `http://127.0.0.1:8081`), for a load
    /// over `keys` ordinary keys plus the hot key.
    pub async fn connect(addr: &str, connections: usize, keys: usize) -> anyhow::Result<Self> {
        let values = workload::key_values(keys);
        let requests = (0..values.len())
            .map(|k| grpc_unary::frame(&check_quota_request(k, &values)))
            .collect();
        Ok(GrpcCheckQuota {
            calls: GrpcCalls::connect(addr, connections, CHECK_QUOTA_PATH, requests).await?,
        })
    }
}

/// Key `k`'s `CheckQuota` request in a load whose key values are `values`
/// ([`workload::key_values`]).
pub fn check_quota_request(k: usize, values: &[String]) -> pb::CheckQuotaRequest {
    let r = workload::request(k, values);
    pb::CheckQuotaRequest {
        api_key: r.api_key,
        api_id: r.api_id,
        stage: r.stage,
        resource: r.resource,
        method: r.method,
        cost: None,
    }
}

/// gRPC path of tollgate's `CheckQuota`.
pub const CHECK_QUOTA_PATH: &str = "/tollgate.v1.QuotaService/CheckQuota";
/// gRPC path of Envoy's `ShouldRateLimit`.
const SHOULD_RATE_LIMIT_PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

impl Target for GrpcCheckQuota {
    fn name(&self) -> String {
        "grpc".into()
    }

    fn for_worker(&self, i: usize) -> Self {
        GrpcCheckQuota {
            calls: self.calls.for_worker(i),
        }
    }

    async fn call(&mut self, keys: &[usize]) -> Tally {
        let mut tally = Tally::default();
        for &k in keys {
            match self.calls.call::<pb::CheckQuotaResponse>(k).await {
                Some(r) => match r.verdict() {
                    pb::Verdict::Ok => tally.allowed += 1,
                    pb::Verdict::Throttled | pb::Verdict::QuotaExceeded => tally.limited += 1,
                    pb::Verdict::Unavailable => tally.unavailable += 1,
                    pb::Verdict::Unspecified => tally.errors += 1,
                    _ => tally.forbidden += 1,
                },
                None => tally.errors += 1,
            }
        }
        tally
    }
}

/// `ShouldRateLimit` over `connections` HTTP/2 connections, workers spread round-robin.
#[derive(Clone)]
pub struct RlsShouldRateLimit {
    calls: GrpcCalls,
    name: String,
}

/// The shape of the requests an [`RlsShouldRateLimit`] sends.
#[derive(Debug, Clone, Copy)]
pub struct RlsShape {
    /// What each descriptor carries.
    pub descriptor: RlsDescriptor,
    /// Descriptors per request (1 to 64): the picked key's, then other keys' (see
    /// [`workload::request_keys`]).
    pub per_request: usize,
}

impl RlsShouldRateLimit {
    /// Connects `connections` channels to `addr` (e.g. `http://127.0.0.1:8081`), for a load
    /// over `keys` ordinary keys plus the hot key in domain `domain`.
    pub async fn connect(
        addr: &str,
        connections: usize,
        keys: usize,
        domain: &str,
        shape: RlsShape,
    ) -> anyhow::Result<Self> {
        let values = workload::key_values(keys);
        let requests = (0..values.len())
            .map(|k| {
                grpc_unary::frame(&RateLimitRequest {
                    domain: domain.to_string(),
                    descriptors: workload::request_keys(k, keys, shape.per_request)
                        .into_iter()
                        .map(|d| RateLimitDescriptor {
                            entries: shape
                                .descriptor
                                .entries(d, &values)
                                .into_iter()
                                .map(|(key, value)| Entry { key, value })
                                .collect(),
                            ..RateLimitDescriptor::default()
                        })
                        .collect(),
                    // 0 is one hit, as Envoy sends it.
                    hits_addend: 0,
                })
            })
            .collect();
        let mut name = format!("rls-{}", shape.descriptor.as_str());
        if shape.per_request > 1 {
            name.push_str(&format!("-x{}", shape.per_request));
        }
        Ok(RlsShouldRateLimit {
            calls: GrpcCalls::connect(addr, connections, SHOULD_RATE_LIMIT_PATH, requests).await?,
            name,
        })
    }
}

impl Target for RlsShouldRateLimit {
    /// `rls-api-key` or `rls-client`, with `-xN` for N descriptors per request.
    fn name(&self) -> String {
        self.name.clone()
    }

    fn for_worker(&self, i: usize) -> Self {
        RlsShouldRateLimit {
            calls: self.calls.for_worker(i),
            name: self.name.clone(),
        }
    }

    async fn call(&mut self, keys: &[usize]) -> Tally {
        let mut tally = Tally::default();
        for &k in keys {
            match self.calls.call::<RateLimitResponse>(k).await {
                Some(r) => match Code::try_from(r.overall_code) {
                    Ok(Code::Ok) => tally.allowed += 1,
                    Ok(Code::OverLimit) => tally.limited += 1,
                    Ok(Code::Unknown) | Err(_) => tally.errors += 1,
                },
                None => tally.errors += 1,
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
    invocations: Arc<Vec<ScriptCall>>,
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
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(CHECK_SCRIPT.source())
            .query_async(&mut conns[0])
            .await
            .context("SCRIPT LOAD of check.lua")?;
        let values = workload::key_values(keys);
        let mut invocations = Vec::with_capacity(values.len());
        for k in 0..values.len() {
            let resolved = catalog
                .resolve(&workload::request(k, &values), Some(usage_retention_days))
                .map_err(|v| anyhow::anyhow!("key {k} does not resolve: {v:?}"))?;
            invocations.push(check_call(&resolved.batch));
        }
        Ok(RedisCeiling {
            mine: conns[0].clone(),
            connections: Arc::new(conns),
            invocations: Arc::new(invocations),
            in_flight: in_flight.max(1),
        })
    }
}

/// The script's reply starts with a packed 1 when it admitted, 0 when it refused.
fn tally_reply(reply: redis::RedisResult<Vec<u8>>) -> Tally {
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
            return tally_reply(self.invocations[*k].query(&mut self.mine).await);
        }
        // Several calls in flight on one multiplexed connection: redis-rs writes them
        // back to back without waiting for replies, i.e. pipelines them.
        let mut calls = tokio::task::JoinSet::new();
        for &k in keys {
            let mut conn = self.mine.clone();
            let invocations = self.invocations.clone();
            calls.spawn(async move { invocations[k].query::<Vec<u8>>(&mut conn).await });
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
