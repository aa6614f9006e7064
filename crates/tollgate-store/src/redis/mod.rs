//! The Redis backend: standalone, Cluster or Sentinel, through deadpool-redis pools of
//! multiplexed connections.
//!
//! A check is one `EVALSHA` of `check.lua`, built by [`ScriptCall`]; a server that answers
//! `NOSCRIPT` (after a restart, a failover or `SCRIPT FLUSH`) gets the same call as `EVAL`
//! with the source, which caches the script there again. Every call is bounded by a timeout so a hung
//! Redis turns into a prompt, transient [`StoreError`].
//!
//! Control-plane records (the [`crate::CatalogStore`] side) are in the `catalog` submodule;
//! in Sentinel mode, the `sentinel` submodule finds the master and follows it across
//! failovers. The `tls` submodule reads a private CA and a client certificate for
//! `rediss://`, and `cluster_pool` pools Cluster connections whose client carries them.
//! While Cluster slots migrate, `node_conn` keeps an `ASK` redirect's `ASKING` glued to its
//! command, and `cluster_call` sends a command refused with `TRYAGAIN` again until the call's
//! deadline.
//!
//! A check of several batches ([`Store::check_all`]) is also one `EVALSHA` on standalone and
//! Sentinel, and on Cluster when all its tags share a slot. Across several Cluster slots no
//! single script can be atomic, so it runs in two phases; see [`RedisStore::check_all`].

mod calendar_hint;
mod catalog;
mod cluster_call;
mod cluster_pool;
mod node_conn;
mod script_call;
mod sentinel;
mod tls;

pub use calendar_hint::CalendarHint;
pub use script_call::{unpack_integers, LuaScript, ScriptCall, StaticScript};
pub use tls::RedisTlsFiles;

use crate::error::classify;
use crate::keys;
use crate::{QuotaUpdate, Store, StoreError};
use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use redis::Script;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tollgate_core::batch::{
    BatchOutcome, BatchPart, LimitBatch, LimitKind, LimitStatus, MultiOutcome, QUOTA_RETENTION_S,
};
use tollgate_core::calendar::{day_id, window};
use tollgate_core::catalog::QUOTA_LIMIT_NAME;
use tollgate_core::quota::{QuotaLimit, QuotaState, MAX_QUOTA};

/// The check script's source, for tools that need to know what it runs (the load generator
/// tells the commands the script calls apart from client round trips in `INFO commandstats`).
pub const CHECK_LUA: &str = include_str!("scripts/check.lua");

/// The check script; see its header for the KEYS/ARGV contract.
pub static CHECK_SCRIPT: StaticScript = LazyLock::new(|| LuaScript::new(CHECK_LUA));

/// The line of `check.lua` where its function block ends; scripts that reuse the calendar
/// run with everything above it in front.
const CHECK_BODY_MARKER: &str = "local time = redis.call('TIME')";

/// The set-remaining script (AWS UpdateUsage) with `check.lua`'s calendar in front; see its
/// header for the KEYS/ARGV contract.
pub static SET_REMAINING_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    let check = include_str!("scripts/check.lua");
    let functions = check.split(CHECK_BODY_MARKER).next().unwrap_or(check);
    Script::new(&format!(
        "{functions}\n{}",
        include_str!("scripts/set_remaining.lua")
    ))
});

/// The compensating script of a check spread over several Cluster slots; see its header.
pub static REFUND_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/refund.lua")));

/// How tollgate reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// One server (or a proxy in front of several).
    Standalone,
    /// Redis Cluster; the URLs are seed nodes.
    Cluster,
    /// A master found through Sentinel; the URLs are sentinels.
    Sentinel,
}

impl std::str::FromStr for RedisMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "standalone" => Ok(RedisMode::Standalone),
            "cluster" => Ok(RedisMode::Cluster),
            "sentinel" => Ok(RedisMode::Sentinel),
            other => Err(StoreError::Config(format!(
                "unknown Redis mode `{other}`; use standalone, cluster or sentinel"
            ))),
        }
    }
}

/// Settings of the Redis backend.
#[derive(Clone)]
pub struct RedisConfig {
    /// Topology.
    pub mode: RedisMode,
    /// One URL for standalone; seed nodes for Cluster; sentinels for Sentinel.
    /// `redis://` or `rediss://` (TLS), with `user:password@` for AUTH.
    pub urls: Vec<String>,
    /// Master name to ask the sentinels for.
    pub sentinel_master: String,
    /// Username for AUTH on the master found through Sentinel (the URLs' credentials are
    /// the sentinels').
    pub sentinel_master_username: Option<String>,
    /// Password for AUTH on the master found through Sentinel; it may differ from the
    /// sentinels'.
    pub sentinel_master_password: Option<String>,
    /// A private CA and a client certificate for `rediss://` URLs, in every topology.
    pub tls: RedisTlsFiles,
    /// Connections in the pool; each is multiplexed, so a few carry many concurrent calls.
    pub pool_size: usize,
    /// Bound on one call, connecting included.
    pub timeout: Duration,
}

// URLs may carry passwords: show hosts only.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RedisConfig")
            .field("mode", &self.mode)
            .field("urls", &hosts)
            .field("sentinel_master", &self.sentinel_master)
            .field("sentinel_master_username", &self.sentinel_master_username)
            .field(
                "sentinel_master_password",
                &self.sentinel_master_password.as_ref().map(|_| "***"),
            )
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Whether `url` asks for TLS without checking certificates (`rediss://...#insecure`).
fn is_insecure_tls(url: &str) -> bool {
    redis::IntoConnectionInfo::into_connection_info(url).is_ok_and(|info| {
        matches!(
            info.addr(),
            redis::ConnectionAddr::TcpTls { insecure: true, .. }
        )
    })
}

/// `redis://user:secret@host:6379/0` → `redis://***@host:6379/0`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

impl RedisConfig {
    /// Defaults for `urls` in `mode`.
    pub fn new(mode: RedisMode, urls: Vec<String>) -> Self {
        RedisConfig {
            mode,
            urls,
            sentinel_master: "mymaster".to_string(),
            sentinel_master_username: None,
            sentinel_master_password: None,
            tls: RedisTlsFiles::default(),
            pool_size: Self::default_pool_size(mode, 1),
            timeout: Duration::from_millis(250),
        }
    }

    /// How many connections to keep for `mode` when the caller serves requests on
    /// `threads` threads.
    ///
    /// Standalone and Sentinel: one per thread. A multiplexed connection pipelines every call
    /// in flight on one socket, so one per thread lets each thread drive one, and more only
    /// split the same calls over more sockets: more reads and writes per check on both ends.
    /// With one thread beside Redis on two cores, 8 connections served about a fifth fewer
    /// checks per second than 1 (docs/benchmarks.md, second session of 7 December).
    ///
    /// Cluster: 8 whatever the threads. The redis crate's Cluster connection stops all its
    /// calls while it reloads the slot map, as it does on every slot moved under a reshard,
    /// and with one shared connection every check then failed (see `Slotted::pooled`).
    pub fn default_pool_size(mode: RedisMode, threads: usize) -> usize {
        match mode {
            RedisMode::Cluster => 8,
            RedisMode::Standalone | RedisMode::Sentinel => threads.max(1),
        }
    }
}

enum Pool {
    Standalone(deadpool_redis::Pool),
    Cluster(cluster_pool::ClusterPool),
    Sentinel(Arc<sentinel::SentinelMaster>),
}

/// Limit state in Redis.
///
/// Why not `pool.get()` per call: deadpool-redis checks a connection on every checkout
/// with `UNWATCH` + `PING`, a second round trip per check. Connections here are multiplexed
/// (many concurrent calls pipelined on one socket), so the store keeps `pool_size` of them in
/// slots, hands out cheap clones round-robin, and goes back to the pool (which creates and
/// health-checks connections) only to fill a slot that is empty or whose connection failed.
/// Each slot keeps its connection checked out of the pool (see `Slotted::pooled` for why),
/// so `pool_size` is the number of connections in use once every slot has been used.
pub struct RedisStore {
    pool: Pool,
    slots: Vec<ArcSwapOption<Slotted>>,
    /// Held while the slot of the same index is being filled; see [`RedisStore::fill`].
    filling: Vec<tokio::sync::Mutex<()>>,
    next: AtomicUsize,
    timeout: Duration,
    mode: RedisMode,
    urls: Vec<String>,
    /// The private CA and client certificate for `rediss://`, for connections made outside
    /// the pools (catalog notifications).
    certs: Option<redis::TlsCertificates>,
    /// The private CA's file, named when a server's certificate is not trusted.
    ca_file: Option<PathBuf>,
}

/// Picks rustls' crypto provider for `rediss://` connections. rustls refuses to guess when
/// none is installed (it would panic on the first TLS handshake); installing twice is a no-op.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl RedisStore {
    fn is_cluster(&self) -> bool {
        matches!(self.pool, Pool::Cluster(_))
    }

    /// The private CA's file given for `rediss://`, if any.
    pub(super) fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }
}

/// How a multiplexed connection to one server (standalone, the master Sentinel names, or a
/// sentinel itself) is made.
///
/// The redis crate bounds each connection attempt (1 s) and each answer (500 ms) by default,
/// under the store's own bound: a `--redis-timeout-ms` above those failed at them instead,
/// as "unavailable". So connecting is bounded by the configured timeout, and answers only by
/// the caller's own timer (for checks, the one in `run`, which also replaces the connection
/// when it fires).
fn connection_config(timeout: Duration) -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(None)
}

/// Longest pause, in ms, of the cluster client between two tries of a command the cluster
/// asked to retry. Its pauses are drawn from 1 ms up to 2, 4, 8, ... ms, capped here: a
/// check waiting out a slot migration is answered at most this long after it completes,
/// and a slot in migration, or a cluster down, sees a retry per check every 16 ms on average.
/// After its 16 tries (a few hundred ms), `cluster_call` goes on until the call's deadline.
const CLUSTER_RETRY_MAX_WAIT_MS: u64 = 32;

/// A configuration the redis crate or the pool refuses, as the store's error.
fn config_error(e: impl fmt::Display) -> StoreError {
    StoreError::Config(e.to_string())
}

/// The pool of connections to one server (standalone, or the master Sentinel names) at
/// `info`, each made with [`connection_config`].
fn server_pool(
    info: impl redis::IntoConnectionInfo,
    size: usize,
    timeout: Duration,
) -> Result<deadpool_redis::Pool, StoreError> {
    let manager = deadpool_redis::Manager::new_with_config(info, connection_config(timeout))
        .map_err(config_error)?;
    deadpool_redis::Pool::builder(manager)
        .config(pool_config(size, timeout))
        .runtime(deadpool_redis::Runtime::Tokio1)
        .build()
        .map_err(config_error)
}

/// `info` with the CA and client certificate of `certs`, when it is a TLS address and there
/// are any. The redis crate takes them only through a client it builds.
fn with_certs(
    info: redis::ConnectionInfo,
    certs: Option<&redis::TlsCertificates>,
) -> Result<redis::ConnectionInfo, StoreError> {
    match certs {
        Some(certs) if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) => {
            let client =
                redis::Client::build_with_tls(info, certs.clone()).map_err(config_error)?;
            Ok(client.get_connection_info().clone())
        }
        _ => Ok(info),
    }
}

/// `url` parsed, with the CA and client certificate of `certs` (see [`with_certs`]).
fn connection_info(
    url: &str,
    certs: Option<&redis::TlsCertificates>,
) -> Result<redis::ConnectionInfo, StoreError> {
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(config_error)?;
    with_certs(info, certs)
}

fn pool_config(size: usize, timeout: Duration) -> deadpool_redis::PoolConfig {
    let mut pc = deadpool_redis::PoolConfig::new(size.max(1));
    pc.timeouts.wait = Some(timeout);
    pc.timeouts.create = Some(timeout);
    pc.timeouts.recycle = Some(timeout);
    pc
}

impl RedisStore {
    /// Builds the pool. Connections are made lazily, so this succeeds while Redis is down;
    /// use [`Store::ping`] to wait for it.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        if config.urls.is_empty() {
            return Err(StoreError::Config("no Redis URL given".into()));
        }
        for u in &config.urls {
            redis::parse_redis_url(u).ok_or_else(|| {
                StoreError::Config(format!(
                    "`{}` is not a Redis URL (expected redis://[user:password@]host[:port][/db] or rediss://...)",
                    redact_url(u)
                ))
            })?;
        }
        if config.urls.iter().any(|u| u.starts_with("rediss://")) {
            install_tls_provider();
        }
        if let Some(ca_file) = &config.tls.ca_file {
            // `#insecure` checks no certificate at all: with it, the redis crate would use the
            // CA file for nothing, and the operator who gave one would believe it in force.
            if let Some(url) = config.urls.iter().find(|u| is_insecure_tls(u)) {
                return Err(StoreError::Config(format!(
                    "`{}` ends in #insecure, which turns TLS certificate checks off, while --redis-tls-ca-file `{}` asks to check them against that CA; drop one of the two",
                    redact_url(url),
                    ca_file.display()
                )));
            }
        }
        let certs = config.tls.load()?;
        if certs.is_some() {
            if let Some(plain) = config.urls.iter().find(|u| !u.starts_with("rediss://")) {
                return Err(StoreError::Config(format!(
                    "Redis TLS files are given, but `{}` is not a rediss:// (TLS) URL",
                    redact_url(plain)
                )));
            }
        }
        let pool = match config.mode {
            RedisMode::Standalone => {
                if config.urls.len() != 1 {
                    return Err(StoreError::Config(
                        "standalone mode takes exactly one Redis URL; use --redis-mode cluster for several".into(),
                    ));
                }
                // Nagle's algorithm stays on (the redis crate's default) on purpose: a
                // check written while an earlier one is unanswered waits for that answer
                // and goes out with the others then, a pipeline the kernel builds. With
                // TCP_NODELAY, A/B rounds on one Redis (docs/benchmarks.md, 27 November)
                // gave 7 and 17 % fewer checks/s at the peak, and no better p99 at half.
                Pool::Standalone(server_pool(
                    connection_info(&config.urls[0], certs.as_ref())?,
                    config.pool_size,
                    config.timeout,
                )?)
            }
            RedisMode::Cluster => {
                // The cluster client has no answer timeout of its own, so the store's applies.
                // Its pause before retrying TRYAGAIN (a slot in migration), CLUSTERDOWN or
                // LOADING is 1.28 s at least by default, longer than a check may take: so short
                // pauses, doubling (see `CLUSTER_RETRY_MAX_WAIT_MS`).
                let mut builder = redis::cluster::ClusterClientBuilder::new(config.urls.clone())
                    .min_retry_wait(1)
                    .retry_wait_formula(1, 2)
                    .max_retry_wait(CLUSTER_RETRY_MAX_WAIT_MS);
                if let Some(certs) = &certs {
                    builder = builder.certs(certs.clone());
                }
                let client = builder.build().map_err(config_error)?;
                Pool::Cluster(
                    cluster_pool::ClusterPool::builder(cluster_pool::ClusterManager::new(client))
                        .config(pool_config(config.pool_size, config.timeout))
                        .runtime(deadpool_redis::Runtime::Tokio1)
                        .build()
                        .map_err(config_error)?,
                )
            }
            RedisMode::Sentinel => Pool::Sentinel(Arc::new(sentinel::SentinelMaster::new(
                config,
                certs.clone(),
            )?)),
        };
        Ok(RedisStore {
            pool,
            slots: (0..config.pool_size.max(1))
                .map(|_| ArcSwapOption::empty())
                .collect(),
            filling: (0..config.pool_size.max(1))
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            next: AtomicUsize::new(0),
            timeout: config.timeout,
            mode: config.mode,
            urls: config.urls.clone(),
            certs,
            ca_file: config.tls.ca_file.clone(),
        })
    }

    /// A new (or pooled and health-checked) connection from deadpool, and the generation
    /// of the pool it came from.
    async fn checkout(&self) -> Result<Slotted, StoreError> {
        Ok(match &self.pool {
            Pool::Standalone(p) => {
                let pooled = p.get().await.map_err(|e| pool_error(e, self.ca_file()))?;
                Slotted {
                    conn: Conn::Multiplexed((*pooled).clone()),
                    generation: 0,
                    pooled: Pooled::Server(pooled),
                }
            }
            Pool::Cluster(p) => {
                let pooled = p.get().await.map_err(|e| pool_error(e, self.ca_file()))?;
                Slotted {
                    conn: Conn::Cluster(cluster_call::ClusterCall::new((*pooled).clone())),
                    generation: 0,
                    pooled: Pooled::Cluster(pooled),
                }
            }
            Pool::Sentinel(m) => {
                let (pooled, generation) = m.connection().await?;
                Slotted {
                    conn: Conn::Multiplexed((*pooled).clone()),
                    generation,
                    pooled: Pooled::Server(pooled),
                }
            }
        })
    }

    /// Fills slot `index` from the pool, unless another call has meanwhile, and gives its
    /// connection. One call at a time fills a slot: a Cluster slot keeps its connection checked
    /// out, and a burst of calls each checking one out for the same empty slot would drain the
    /// pool (the rest waiting for connections no slot hands back).
    async fn fill(&self, index: usize) -> Result<Conn, StoreError> {
        let _filling = self.filling[index].lock().await;
        let slot = &self.slots[index];
        if let Some(s) = slot.load_full() {
            if s.generation == self.generation() {
                return Ok(s.conn.clone());
            }
        }
        let s = self.checkout().await?;
        let conn = s.conn.clone();
        slot.store(Some(Arc::new(s)));
        Ok(conn)
    }

    /// The generation slotted connections must have to be used: a Sentinel failover starts
    /// a new one; other topologies stay at 0.
    fn generation(&self) -> u64 {
        match &self.pool {
            Pool::Sentinel(m) => m.generation(),
            _ => 0,
        }
    }

    /// Runs `f` on a slotted connection within the timeout. On Cluster, a command refused
    /// with `TRYAGAIN` is sent again until the timeout (see `cluster_call`).
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: AsyncFnOnce(&mut Conn) -> Result<T, redis::RedisError>,
    {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[index];
        let deadline = tokio::time::Instant::now() + self.timeout;
        let work = async {
            let mut conn = match slot.load_full() {
                Some(s) if s.generation == self.generation() => s.conn.clone(),
                // Boxed: the pool's checkout future is ~10 KiB, and inlined it would make
                // every check's future that big (copied on each call), though it runs only
                // to fill an empty slot.
                _ => Box::pin(self.fill(index)).await?,
            };
            if let Conn::Cluster(c) = &mut conn {
                c.set_deadline(deadline);
            }
            f(&mut conn).await.map_err(|e| {
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                    discard(slot);
                }
                classify(e, self.ca_file())
            })
        };
        match tokio::time::timeout_at(deadline, work).await {
            // Connecting a new connection is bounded by the same timeout, started a moment
            // later; when both fire on the same timer tick the connection's error comes first.
            // It is still this call's deadline that ran out.
            Ok(Err(StoreError::Unavailable(_))) if tokio::time::Instant::now() >= deadline => {
                discard(slot);
                Err(StoreError::Timeout(self.timeout.as_millis() as u64))
            }
            Ok(r) => r,
            Err(_) => {
                // A hung connection would hold up every call multiplexed on it: replace it.
                discard(slot);
                Err(StoreError::Timeout(self.timeout.as_millis() as u64))
            }
        }
    }
}

/// A connection kept in a slot, with the generation of the pool it came from.
struct Slotted {
    conn: Conn,
    generation: u64,
    /// The connection stays checked out of its pool while its slot holds it.
    ///
    /// Why: handed back at once, the pool gives the same idle connection to every slot
    /// filled one call at a time, so how many connections carried the checks depended on
    /// whether the first checks came one by one or in a burst (1 or `pool_size`).
    /// On Cluster it also froze every check: the redis crate's Cluster connection stops
    /// answering all its calls while it reloads its slot map, and during a reshard under
    /// load (every slot moved is a `MOVED` and a reload) that reload could wait on calls it
    /// had itself stopped until they timed out. With one shared connection every check
    /// failed (the `cluster_reshard` example, 64 and 128 checks in flight: 64-391 timeouts a
    /// run); with a connection per slot, none in 7 runs.
    pooled: Pooled,
}

/// A connection checked out of a standalone, Sentinel or Cluster pool.
enum Pooled {
    Server(deadpool_redis::Connection),
    Cluster(cluster_pool::Pooled),
}

/// Empties `slot`, whose connection failed or hung. Its connection is taken out of its pool
/// rather than handed back, where the next checkout would wait on it to answer a `PING`.
fn discard(slot: &ArcSwapOption<Slotted>) {
    match slot.swap(None).and_then(Arc::into_inner).map(|s| s.pooled) {
        Some(Pooled::Server(c)) => drop(deadpool_redis::Connection::take(c)),
        Some(Pooled::Cluster(c)) => drop(deadpool::managed::Object::take(c)),
        None => {}
    }
}

/// A multiplexed connection of any topology, so one code path serves all three. Cloning
/// shares the socket.
#[derive(Clone)]
enum Conn {
    Multiplexed(redis::aio::MultiplexedConnection),
    Cluster(cluster_call::ClusterCall),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Multiplexed(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Multiplexed(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Multiplexed(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A pool's error as the store's; `ca_file` as for [`classify`].
fn pool_error(e: deadpool_redis::PoolError, ca_file: Option<&Path>) -> StoreError {
    match e {
        deadpool_redis::PoolError::Backend(b) => classify(b, ca_file),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Builds the script call for `batch`, following the contract at the top of `check.lua`,
/// with the calendar of today by this instance's clock.
pub fn check_call(batch: &LimitBatch) -> ScriptCall {
    check_call_with(batch, &CalendarHint::today())
}

/// [`check_call`] with the calendar of `hint`'s day, which Redis uses only if its own clock
/// is on that day.
pub fn check_call_with(batch: &LimitBatch, hint: &CalendarHint) -> ScriptCall {
    batches_call(std::iter::once((batch, false)), 1, true, hint)
}

/// Builds one script call for `parts` (all under one slot on Cluster), committing or, with
/// `commit` false, only evaluating.
pub fn check_all_call<'a>(
    parts: impl ExactSizeIterator<Item = &'a BatchPart> + Clone,
    commit: bool,
) -> ScriptCall {
    let n = parts.len();
    batches_call(
        parts.map(|p| (&p.batch, p.shadow)),
        n,
        commit,
        &CalendarHint::today(),
    )
}

/// Arguments `push_batch` sends per limit.
const ARGS_PER_LIMIT: usize = 7;
/// Room for one numeric argument: most are microseconds or day ids, under 20 digits.
const NUMBER_LEN: usize = 20;

fn batches_call<'a>(
    batches: impl Iterator<Item = (&'a LimitBatch, bool)> + Clone,
    n: usize,
    commit: bool,
    hint: &CalendarHint,
) -> ScriptCall {
    // Sized up front so that building the call never regrows the command: each key is
    // copied once, straight from its pieces (callgrind counted the key strings, and the
    // command's buffers growing, among the allocations of a check).
    let (mut num_keys, mut args, mut bytes) = (0, 5, 32);
    for (batch, _) in batches.clone() {
        for pieces in batch_key_pieces(batch) {
            num_keys += 1;
            bytes += pieces.iter().map(|p| p.len()).sum::<usize>();
        }
        args += 4 + ARGS_PER_LIMIT * batch.limits.len();
        bytes += 4 * NUMBER_LEN + batch.limits.len() * ARGS_PER_LIMIT * NUMBER_LEN;
    }
    let mut call = CHECK_SCRIPT.call_sized(num_keys, num_keys + args, bytes);
    for (batch, _) in batches.clone() {
        for pieces in batch_key_pieces(batch) {
            call.arg_joined(&pieces);
        }
    }
    call.arg(QUOTA_RETENTION_S)
        .arg(u8::from(commit))
        .arg(n)
        .arg(hint.day())
        .arg(hint.day_id());
    for (batch, shadow) in batches {
        push_batch(&mut call, batch, shadow, hint);
    }
    call
}

/// Whether `batch` keeps a daily usage record (and so touches the usage key).
fn keeps_usage(batch: &LimitBatch) -> bool {
    batch.usage_retention_days.is_some_and(|d| d > 0)
}

/// The pieces of every key `batch` touches, in the order `check.lua` reads them: one per
/// limit, then the usage record if the batch keeps one.
fn batch_key_pieces(batch: &LimitBatch) -> impl Iterator<Item = [&str; 5]> {
    let usage = keeps_usage(batch).then_some(keys::USAGE_NAME);
    batch
        .limits
        .iter()
        .map(|l| l.name.as_ref())
        .chain(usage)
        .map(|name| keys::limit_key_pieces(&batch.tag, name))
}

fn push_batch(call: &mut ScriptCall, batch: &LimitBatch, shadow: bool, hint: &CalendarHint) {
    call.arg(batch.cost)
        .arg(batch.limits.len())
        .arg(batch.usage_retention_days.unwrap_or(0))
        .arg(u8::from(shadow));
    for limit in &batch.limits {
        match &limit.kind {
            LimitKind::Throttle(g) => {
                call.arg("t")
                    .arg(g.interval_us())
                    .arg(g.burst())
                    .arg("")
                    .arg("")
                    .arg("")
                    .arg("");
            }
            LimitKind::Quota(q) => {
                let period = hint.period(q.period);
                call.arg("q")
                    .arg(q.limit)
                    .arg(q.period.code())
                    .arg(q.offset)
                    .arg(q.anchor_s)
                    .arg(&period.id)
                    .arg(period.end_s);
            }
        }
    }
}

/// Runs a check script call and reads its reply, one string of packed integers.
async fn query_check(
    call: &ScriptCall,
    con: &mut impl redis::aio::ConnectionLike,
) -> Result<Vec<i64>, redis::RedisError> {
    // Taken as a raw value: converting it to Vec<u8> copies it byte by byte.
    let reply: redis::Value = call.query(con).await?;
    let packed = match &reply {
        redis::Value::BulkString(bytes) => unpack_integers(bytes),
        _ => None,
    };
    packed.ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "check script reply is not a string of packed integers",
        ))
    })
}

/// Parses the script's reply for a batch of `n` limits.
pub fn parse_check_reply(reply: &[i64], n: usize) -> Result<BatchOutcome, StoreError> {
    let mut all = parse_check_all_reply(reply, &[n])?;
    let mut outcome = all.parts.pop().unwrap_or(BatchOutcome {
        admitted: all.admitted,
        now_us: all.now_us,
        statuses: Vec::new(),
    });
    outcome.admitted = all.admitted;
    Ok(outcome)
}

/// Parses the script's reply for batches of `sizes[b]` limits each.
pub fn parse_check_all_reply(reply: &[i64], sizes: &[usize]) -> Result<MultiOutcome, StoreError> {
    let n: usize = sizes.iter().sum();
    if reply.len() != 2 + 6 * n {
        return Err(StoreError::Protocol(format!(
            "check script returned {} values for {n} limits",
            reply.len()
        )));
    }
    let now_us = reply[1];
    let mut statuses = reply[2..].chunks_exact(6).map(|c| LimitStatus {
        allowed: c[0] == 1,
        limit: c[1].max(0) as u64,
        remaining: c[2].max(0) as u64,
        retry_after_us: c[3].max(0) as u64,
        reset_after_us: c[4].max(0) as u64,
        used: c[5],
    });
    let parts = sizes
        .iter()
        .map(|&size| {
            let statuses: Vec<LimitStatus> = statuses.by_ref().take(size).collect();
            BatchOutcome {
                admitted: statuses.iter().all(|s| s.allowed),
                now_us,
                statuses,
            }
        })
        .collect();
    Ok(MultiOutcome {
        admitted: reply[0] == 1,
        now_us,
        parts,
    })
}

/// The compensating call that gives back what `outcome` (the committed reply of one slot)
/// consumed for `parts`; `None` when it consumed nothing.
pub fn refund_invocation(
    parts: &[&BatchPart],
    outcome: &MultiOutcome,
) -> Option<redis::ScriptInvocation<'static>> {
    let mut inv = REFUND_SCRIPT.prepare_invoke();
    let now_s = outcome.now_us.div_euclid(1_000_000);
    let mut entries = 0;
    for (part, o) in parts.iter().zip(&outcome.parts) {
        let b = &part.batch;
        if !o.admitted || b.cost == 0 {
            continue;
        }
        for limit in &b.limits {
            inv.key(keys::limit_key(&b.tag, &limit.name));
            match &limit.kind {
                LimitKind::Throttle(g) => {
                    inv.arg("t")
                        .arg(b.cost.saturating_mul(g.interval_us()))
                        .arg("");
                }
                LimitKind::Quota(q) => {
                    inv.arg("q").arg(window(q.period, now_s).id).arg(b.cost);
                }
            }
            entries += 1;
        }
        if keeps_usage(b) {
            inv.key(keys::usage_key(&b.tag));
            inv.arg("u").arg(day_id(now_s)).arg(b.cost);
            entries += 1;
        }
    }
    (entries > 0).then_some(inv)
}

/// The parts of a check grouped by Cluster slot, in order of first appearance; each group
/// holds the indices of its parts.
pub fn group_by_slot(parts: &[BatchPart]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(redis::cluster_routing::Slot, Vec<usize>)> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let slot = redis::cluster_routing::Slot::for_key(keys::limit_key(&p.batch.tag, ""));
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, members)) => members.push(i),
            None => groups.push((slot, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

fn sizes(parts: &[&BatchPart]) -> Vec<usize> {
    parts.iter().map(|p| p.batch.limits.len()).collect()
}

impl RedisStore {
    /// A check over several Cluster slots, all-or-nothing in two phases:
    ///
    /// 1. **peek**: every slot evaluates its batches without writing (`check.lua` with
    ///    commit 0). If any slot refuses, the request is refused and nothing was written.
    /// 2. **commit**: every slot evaluates again and commits, one after the other. If a slot
    ///    refuses now (another request took the last units between the phases), the slots
    ///    already committed are given their units back by `refund.lua`, and the request is
    ///    refused.
    ///
    /// Why this and not the alternatives: a script cannot span slots, and MULTI/WATCH cannot
    /// either, so there is no atomic step. Committing optimistically slot by slot and refunding
    /// on refusal costs one call per slot, but every refused request then holds units it will
    /// give back, so concurrent requests are refused that should pass: under load the limits
    /// would admit less than they promise. Peeking first means a request that will be refused
    /// never writes, so the only transient over-count left is the race between the phases,
    /// and no request is ever admitted beyond a limit, since each slot's commit re-checks its
    /// limits atomically. The price is a second call per slot for checks that span slots; a
    /// check on one slot (always so for one descriptor, or for an API key's throttle and
    /// quota) stays one call. A failure between commit and refund (Redis gone, timeout)
    /// leaves the units consumed: the error direction that never over-admits.
    async fn check_across_slots(
        &self,
        parts: &[BatchPart],
        groups: &[Vec<usize>],
    ) -> Result<MultiOutcome, StoreError> {
        let members: Vec<Vec<&BatchPart>> = groups
            .iter()
            .map(|g| g.iter().map(|&i| &parts[i]).collect())
            .collect();
        // One script call per step, each through `run`; the whole request is bounded by the
        // same timeout as a single call.
        let eval = async |m: &[&BatchPart], commit: bool| -> Result<MultiOutcome, StoreError> {
            let call = check_all_call(m.iter().copied(), commit);
            let reply = self.run(async move |c| query_check(&call, c).await).await?;
            parse_check_all_reply(&reply, &sizes(m))
        };
        let work = async {
            let mut peeks = Vec::with_capacity(members.len());
            for m in &members {
                peeks.push(eval(m, false).await?);
            }
            let now_us = peeks.first().map_or(0, |p| p.now_us);
            if !peeks.iter().all(|p| p.admitted) {
                return Ok(assemble(parts.len(), groups, peeks, false, now_us));
            }
            let mut commits: Vec<MultiOutcome> = Vec::with_capacity(members.len());
            for (j, m) in members.iter().enumerate() {
                let c = eval(m, true).await?;
                if c.admitted {
                    commits.push(c);
                    continue;
                }
                // Lost a race between the phases: give back what the earlier slots took.
                for (m, committed) in members.iter().zip(&commits) {
                    if let Some(inv) = refund_invocation(m, committed) {
                        let _: i64 = self.run(async move |c| inv.invoke_async(c).await).await?;
                    }
                }
                let mut shown = peeks;
                shown[j] = c;
                return Ok(assemble(parts.len(), groups, shown, false, now_us));
            }
            Ok(assemble(parts.len(), groups, commits, true, now_us))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout.as_millis() as u64))?
    }
}

/// Puts per-slot outcomes back in the order of the request's parts.
fn assemble(
    n: usize,
    groups: &[Vec<usize>],
    outcomes: Vec<MultiOutcome>,
    admitted: bool,
    now_us: i64,
) -> MultiOutcome {
    let mut slots: Vec<Option<BatchOutcome>> = vec![None; n];
    for (g, o) in groups.iter().zip(outcomes) {
        for (&i, part) in g.iter().zip(o.parts) {
            slots[i] = Some(part);
        }
    }
    MultiOutcome {
        admitted,
        now_us,
        parts: slots
            .into_iter()
            .map(|o| {
                o.unwrap_or(BatchOutcome {
                    admitted: false,
                    now_us,
                    statuses: Vec::new(),
                })
            })
            .collect(),
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn check(&self, batch: &LimitBatch) -> Result<BatchOutcome, StoreError> {
        let call = check_call(batch);
        let reply = self.run(async move |c| query_check(&call, c).await).await?;
        parse_check_reply(&reply, batch.limits.len())
    }

    async fn daily_usage(&self, tag: &str, days: &[String]) -> Result<Vec<u64>, StoreError> {
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(keys::usage_key(tag)).arg(days);
        let got: Vec<Option<u64>> = self.run(async move |c| cmd.query_async(c).await).await?;
        Ok(got.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn set_quota_remaining(
        &self,
        tag: &str,
        quota: &QuotaLimit,
        remaining: u64,
    ) -> Result<QuotaUpdate, StoreError> {
        let mut inv = SET_REMAINING_SCRIPT.prepare_invoke();
        inv.key(keys::limit_key(tag, QUOTA_LIMIT_NAME))
            .arg(quota.limit)
            .arg(quota.period.code())
            .arg(quota.offset)
            .arg(quota.anchor_s)
            // The management API refuses more (see MAX_QUOTA); the clamp keeps a direct caller's
            // value exact in Lua numbers too.
            .arg(remaining.min(MAX_QUOTA))
            .arg(QUOTA_RETENTION_S);
        let reply: Vec<i64> = self.run(async move |c| inv.invoke_async(c).await).await?;
        let [used, grant, limit, now_us] = reply[..] else {
            return Err(StoreError::Protocol(format!(
                "set_remaining script returned {} values, not 4",
                reply.len()
            )));
        };
        let now_s = now_us.div_euclid(1_000_000);
        Ok(QuotaUpdate {
            state: QuotaState {
                period_id: tollgate_core::calendar::window(quota.period, now_s).id,
                used,
                grant,
            },
            limit: limit.max(0) as u64,
            now_us,
        })
    }

    /// One script call with every key; on Cluster, when the tags span several slots, the
    /// two phases of `check_across_slots` (see there for why).
    async fn check_all(&self, parts: &[BatchPart]) -> Result<MultiOutcome, StoreError> {
        if self.is_cluster() {
            let groups = group_by_slot(parts);
            if groups.len() > 1 {
                return self.check_across_slots(parts, &groups).await;
            }
        }
        // One slot (or no Cluster): one atomic script call with every key.
        let call = check_all_call(parts.iter(), true);
        let reply = self.run(async move |c| query_check(&call, c).await).await?;
        let sizes: Vec<usize> = parts.iter().map(|p| p.batch.limits.len()).collect();
        parse_check_all_reply(&reply, &sizes)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self
            .run(async |c| redis::cmd("PING").query_async(c).await)
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Protocol(format!("PING answered `{pong}`")))
        }
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords never reach logs through the config's Debug.
    #[test]
    fn debug_hides_passwords() {
        let c = RedisConfig::new(
            RedisMode::Standalone,
            vec!["redis://u:s3cret@h:6379/0".into()],
        );
        let s = format!("{c:?}");
        assert!(!s.contains("s3cret"), "{s}");
        assert!(s.contains("h:6379"));
    }

    /// Unknown modes and URLs are refused with a clear message.
    #[test]
    fn bad_config() {
        assert!("sentinel".parse::<RedisMode>().is_ok());
        assert!("ring"
            .parse::<RedisMode>()
            .unwrap_err()
            .to_string()
            .contains("standalone, cluster or sentinel"));
        let c = RedisConfig::new(RedisMode::Standalone, vec!["http://x".into()]);
        assert!(RedisStore::new(&c).is_err());
    }

    /// The keys written straight into the call are the keys `keys` names, numkeys counts
    /// them, and every limit sends its fixed number of arguments.
    #[test]
    fn check_call_layout() {
        use tollgate_core::batch::Limit;
        use tollgate_core::calendar::QuotaPeriod;
        use tollgate_core::gcra::GcraLimit;
        let batch = LimitBatch {
            tag: "plan-1:key-1".into(),
            limits: vec![
                Limit {
                    name: "t:api:prod:/pets/GET".into(),
                    kind: LimitKind::Throttle(GcraLimit::per_second(10.0, 20).unwrap()),
                },
                Limit {
                    name: "q".into(),
                    kind: LimitKind::Quota(QuotaLimit {
                        limit: 5,
                        period: QuotaPeriod::Month,
                        offset: 0,
                        anchor_s: 0,
                    }),
                },
            ],
            cost: 3,
            usage_retention_days: Some(30),
        };
        let call = check_call(&batch);
        let args: Vec<Vec<u8>> = call
            .command()
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        assert_eq!(args[0], b"EVALSHA");
        assert_eq!(args[1], CHECK_SCRIPT.sha1().as_bytes());
        assert_eq!(args[2], b"3");
        assert_eq!(
            args[3..6],
            [
                keys::limit_key("plan-1:key-1", "t:api:prod:/pets/GET").into_bytes(),
                keys::limit_key("plan-1:key-1", "q").into_bytes(),
                keys::usage_key("plan-1:key-1").into_bytes(),
            ]
        );
        // 5 call-wide arguments, then cost, limits, retention and shadow, then 7 per limit.
        assert_eq!(args.len(), 6 + 5 + 4 + 2 * ARGS_PER_LIMIT);
        assert_eq!(args[11], b"3");
    }

    /// A check's future is boxed and moved on every call (the Store trait is object safe),
    /// so its size is a per-check cost: the rarely taken pool checkout (~10 KiB of state)
    /// must stay out of it.
    #[test]
    fn check_future_stays_small() {
        let store = RedisStore::new(&RedisConfig::new(
            RedisMode::Standalone,
            vec!["redis://127.0.0.1:1/".into()],
        ))
        .unwrap();
        let batch = LimitBatch {
            tag: "plan:key".into(),
            limits: vec![],
            cost: 1,
            usage_retention_days: None,
        };
        let check = store.check(&batch);
        let size = std::mem::size_of_val(&*check);
        assert!(size <= 2048, "the check future is {size} bytes");
    }
}
