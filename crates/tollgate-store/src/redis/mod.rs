//! The Redis backend: standalone, Cluster or Sentinel, through deadpool-redis pools of
//! multiplexed connections.
//!
//! A check is one `EVALSHA` of `check.lua`; the script is loaded once per server and called
//! by its SHA, and the redis crate reloads it when a server answers `NOSCRIPT` (after a
//! restart, a failover or `SCRIPT FLUSH`). Every call is bounded by a timeout so a hung
//! Redis turns into a prompt, transient [`StoreError`].

use crate::keys;
use crate::{Store, StoreError};
use async_trait::async_trait;
use redis::Script;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;
use tollgate_core::batch::{BatchOutcome, LimitBatch, LimitKind, LimitStatus, QUOTA_RETENTION_S};

/// The check script's source, for tools that need to know what it runs (the load generator
/// tells the commands the script calls apart from client round trips in `INFO commandstats`).
pub const CHECK_LUA: &str = include_str!("scripts/check.lua");

/// The check script; see its header for the KEYS/ARGV contract.
pub static CHECK_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CHECK_LUA));

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
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
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
            pool_size: 8,
            timeout: Duration::from_millis(250),
        }
    }
}

enum Pool {
    Standalone(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
    Sentinel(deadpool_redis::sentinel::Pool),
}

/// Limit state in Redis.
pub struct RedisStore {
    pool: Pool,
    timeout: Duration,
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
        let pc = pool_config(config.pool_size, config.timeout);
        let rt = Some(deadpool_redis::Runtime::Tokio1);
        let bad = |e: &dyn fmt::Display| StoreError::Config(e.to_string());
        let pool = match config.mode {
            RedisMode::Standalone => {
                if config.urls.len() != 1 {
                    return Err(StoreError::Config(
                        "standalone mode takes exactly one Redis URL; use --redis-mode cluster for several".into(),
                    ));
                }
                let mut c = deadpool_redis::Config::from_url(config.urls[0].clone());
                c.pool = Some(pc);
                Pool::Standalone(c.create_pool(rt).map_err(|e| bad(&e))?)
            }
            RedisMode::Cluster => {
                let mut c = deadpool_redis::cluster::Config::from_urls(config.urls.clone());
                c.pool = Some(pc);
                Pool::Cluster(c.create_pool(rt).map_err(|e| bad(&e))?)
            }
            RedisMode::Sentinel => {
                let mut c = deadpool_redis::sentinel::Config::from_urls(
                    config.urls.clone(),
                    config.sentinel_master.clone(),
                    deadpool_redis::sentinel::SentinelServerType::Master,
                );
                c.pool = Some(pc);
                Pool::Sentinel(c.create_pool(rt).map_err(|e| bad(&e))?)
            }
        };
        Ok(RedisStore {
            pool,
            timeout: config.timeout,
        })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: AsyncFnOnce(&mut Conn) -> Result<T, redis::RedisError>,
    {
        let work = async {
            let mut conn = match &self.pool {
                Pool::Standalone(p) => Conn::Standalone(p.get().await.map_err(pool_error)?),
                Pool::Cluster(p) => Conn::Cluster(p.get().await.map_err(pool_error)?),
                Pool::Sentinel(p) => Conn::Sentinel(p.get().await.map_err(pool_error)?),
            };
            f(&mut conn).await.map_err(StoreError::from)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout.as_millis() as u64))?
    }
}

/// A pooled connection of any topology, so one code path serves all three.
enum Conn {
    Standalone(deadpool_redis::Connection),
    Cluster(deadpool_redis::cluster::Connection),
    Sentinel(deadpool_redis::sentinel::Connection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

fn pool_error(e: deadpool_redis::PoolError) -> StoreError {
    match e {
        deadpool_redis::PoolError::Backend(b) => StoreError::from(b),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Builds the script call for `batch`, following the contract at the top of `check.lua`.
pub fn check_invocation(batch: &LimitBatch) -> redis::ScriptInvocation<'static> {
    let mut inv = CHECK_SCRIPT.prepare_invoke();
    inv.arg(batch.cost)
        .arg(batch.limits.len())
        .arg(batch.usage_retention_days.unwrap_or(0))
        .arg(QUOTA_RETENTION_S);
    for limit in &batch.limits {
        inv.key(keys::limit_key(&batch.tag, &limit.name));
        match &limit.kind {
            LimitKind::Throttle(g) => {
                inv.arg("t")
                    .arg(g.interval_us())
                    .arg(g.burst())
                    .arg("")
                    .arg("");
            }
            LimitKind::Quota(q) => {
                inv.arg("q")
                    .arg(q.limit)
                    .arg(q.period.code())
                    .arg(q.offset)
                    .arg(q.anchor_s);
            }
        }
    }
    if batch.usage_retention_days.is_some_and(|d| d > 0) {
        inv.key(keys::usage_key(&batch.tag));
    }
    inv
}

/// Parses the script's reply for a batch of `n` limits.
pub fn parse_check_reply(reply: &[i64], n: usize) -> Result<BatchOutcome, StoreError> {
    if reply.len() != 2 + 6 * n {
        return Err(StoreError::Protocol(format!(
            "check script returned {} values for {n} limits",
            reply.len()
        )));
    }
    let statuses = reply[2..]
        .chunks_exact(6)
        .map(|c| LimitStatus {
            allowed: c[0] == 1,
            limit: c[1].max(0) as u64,
            remaining: c[2].max(0) as u64,
            retry_after_us: c[3].max(0) as u64,
            reset_after_us: c[4].max(0) as u64,
            used: c[5],
        })
        .collect();
    Ok(BatchOutcome {
        admitted: reply[0] == 1,
        now_us: reply[1],
        statuses,
    })
}

#[async_trait]
impl Store for RedisStore {
    async fn check(&self, batch: &LimitBatch) -> Result<BatchOutcome, StoreError> {
        let inv = check_invocation(batch);
        let reply: Vec<i64> = self.run(async move |c| inv.invoke_async(c).await).await?;
        parse_check_reply(&reply, batch.limits.len())
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
}
