//! limitador-rls: a minimal Envoy rate-limit service (RLS v3) around Kuadrant's published
//! `limitador` library, built only so that `loadtest/compare.sh` can measure tollgate against
//! another open-source Envoy rate-limit service on the same machine.
//!
//! It is a stand-in for limitador-server, which is not published as a library crate, and is
//! written from limitador's documentation, not from limitador-server's code. What it keeps:
//!
//! - the library does all the limiting: an `AsyncRateLimiter` over `AsyncRedisStorage` (every
//!   check goes to Redis: one read script, then one pipelined update for an admitted check)
//!   or, with `--cached`, over `CachedRedisStorage` (counters checked in memory and flushed to
//!   Redis in batches, every second by default), the two Redis modes limitador-server offers;
//! - the request maps onto limitador as its documentation describes for the server: the RLS
//!   `domain` is the limit namespace, the request's descriptors are bound as the CEL list
//!   `descriptors` (one map of entry key to value per descriptor, so a limit reads
//!   `descriptors[0].client`), `hits_addend` is the delta (0 meaning 1), and one
//!   `check_rate_limited_and_update` call decides the whole request;
//! - the answer is the overall code only, OK or OVER_LIMIT, with no per-descriptor statuses
//!   and no headers; a storage error is gRPC UNAVAILABLE.
//!
//! What differs from limitador-server: the limits are fixed here for the benchmark (below),
//! not read from a limits file, and there is no reloading, no HTTP API, no metrics, no
//! tracing, no response headers, no TLS or Sentinel options and none of its tuning flags
//! beyond `--cached`; the cached storage runs with the library's defaults.
//!
//! The limits, in namespace `bench` (all flags have defaults):
//!
//! - every `client` value except the hot one: `--client-limit` (1000) per second, its own
//!   counter per value (`descriptors[0].client` is a limit variable);
//! - the hot client (`--hot-client`, `hot`): `--hot-limit` (10) per second.
//!
//! The two limits exclude each other by condition, so every check touches exactly one counter,
//! as in tollgate's RLS config for the same workload.
//!
//! Usage: `limitador-rls --redis-url redis://127.0.0.1:6379/ [--cached] --addr 127.0.0.1:8081`

use anyhow::Context as _;
use clap::Parser;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use limitador::limit::{Context, Limit, Namespace};
use limitador::storage::redis::{AsyncRedisStorage, CachedRedisStorageBuilder};
use limitador::storage::AsyncCounterStorage;
use limitador::AsyncRateLimiter;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// An Envoy RLS v3 server around the limitador library, for benchmarks only.
#[derive(Debug, Parser)]
#[command(name = "limitador-rls", version)]
struct Args {
    /// Redis holding the counters.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    redis_url: String,
    /// Use limitador's CachedRedisStorage (in-memory counters, flushed to Redis in batches)
    /// instead of AsyncRedisStorage (every check on Redis).
    #[arg(long)]
    cached: bool,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// Limit namespace, matched against the request's domain.
    #[arg(long, default_value = "bench")]
    namespace: String,
    /// Requests per second for each ordinary client value.
    #[arg(long, default_value_t = 1000)]
    client_limit: u64,
    /// The client value with its own, lower limit.
    #[arg(long, default_value = "hot")]
    hot_client: String,
    /// Requests per second for the hot client.
    #[arg(long, default_value_t = 10)]
    hot_limit: u64,
}

/// The benchmark's two limits (see the module documentation).
fn bench_limits(args: &Args) -> anyhow::Result<Vec<Limit>> {
    // The hot client's name goes inside a single-quoted CEL string.
    anyhow::ensure!(
        !args.hot_client.contains(['\'', '\\']),
        "--hot-client must not contain quotes or backslashes"
    );
    let hot = &args.hot_client;
    let mut per_client = Limit::new(
        args.namespace.as_str(),
        args.client_limit,
        1,
        [format!("descriptors[0].client != '{hot}'").try_into()?],
        ["descriptors[0].client".try_into()?],
    );
    per_client.set_name("per-client".into());
    let mut hot_client = Limit::new(
        args.namespace.as_str(),
        args.hot_limit,
        1,
        [format!("descriptors[0].client == '{hot}'").try_into()?],
        Vec::<limitador::limit::Expression>::new(),
    );
    hot_client.set_name("hot-client".into());
    Ok(vec![per_client, hot_client])
}

struct Rls {
    limiter: Arc<AsyncRateLimiter>,
}

#[tonic::async_trait]
impl RateLimitService for Rls {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let req = request.into_inner();
        if req.domain.is_empty() {
            return Err(Status::invalid_argument("domain must not be empty"));
        }
        // Nothing to match: no limit applies (and `descriptors[0]` would not exist).
        if req.descriptors.is_empty() {
            return Ok(Response::new(answer(Code::Ok)));
        }

        let descriptors = req
            .descriptors
            .iter()
            .map(|d| {
                d.entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone()))
                    .collect::<HashMap<_, _>>()
            })
            .collect();
        let mut ctx = Context::default();
        ctx.list_binding("descriptors".into(), descriptors);

        let namespace = Namespace::from(req.domain);
        let delta = u64::from(req.hits_addend.max(1));
        let result = self
            .limiter
            .check_rate_limited_and_update(&namespace, &ctx, delta)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(answer(if result.limited {
            Code::OverLimit
        } else {
            Code::Ok
        })))
    }
}

fn answer(code: Code) -> RateLimitResponse {
    RateLimitResponse {
        overall_code: code as i32,
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let storage: Box<dyn AsyncCounterStorage> = if args.cached {
        Box::new(
            CachedRedisStorageBuilder::new(&args.redis_url)
                .build()
                .await
                .context("connecting to Redis (cached storage)")?,
        )
    } else {
        Box::new(
            AsyncRedisStorage::new(&args.redis_url)
                .await
                .context("connecting to Redis")?,
        )
    };
    let limiter = AsyncRateLimiter::new_with_storage(storage);
    for limit in bench_limits(&args)? {
        limiter.add_limit(limit);
    }

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    eprintln!(
        "limitador-rls: RLS v3 on {} (storage: {} on {})",
        listener.local_addr()?,
        if args.cached {
            "CachedRedisStorage"
        } else {
            "AsyncRedisStorage"
        },
        args.redis_url
    );
    let service = RateLimitServiceServer::new(Rls {
        limiter: Arc::new(limiter),
    });
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    Ok(())
}
