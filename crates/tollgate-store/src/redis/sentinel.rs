//! Sentinel mode: find the master through the sentinels, and follow it when they fail over.
//!
//! Why not deadpool-redis's sentinel pool: it asks the sentinels only when it creates a
//! connection, and a multiplexed connection lives as long as its socket. A failover that
//! leaves the old master running (`SENTINEL FAILOVER`, a partition that heals) leaves that
//! socket open to a server that still answers as a master until Sentinel turns it into a
//! replica on its next look at it, about ten seconds later, and that resync wipes what was
//! written there meanwhile. Every check of those seconds was admitted and then forgotten:
//! a quota spent in that window can be spent again. So the store asks the sentinels itself,
//! [`WATCH_EVERY`], and when they name another master it opens a new pool to that one and
//! bumps a generation that makes every connection of an older pool be dropped on its next
//! use.
//!
//! The sentinel URLs' credentials are the sentinels'; the master's username and password
//! are given on their own ([`RedisConfig::sentinel_master_password`]), since a master often
//! has a password the sentinels do not. The master is reached over TLS when the sentinel URLs
//! are `rediss://` (with their `#insecure`, and the configured CA and client certificate),
//! and the database of the URLs' `/db` is selected on the master: sentinels have no
//! databases, and would refuse a `SELECT`.

use super::{pool_error, redact_url, with_certs, RedisConfig};
use crate::error::classify;
use crate::StoreError;
use arc_swap::ArcSwapOption;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::Duration;
use tracing::{debug, warn};

/// How often the sentinels are asked which server is the master. Writes that reach the old
/// master after a failover are lost, so this bounds that window.
pub(super) const WATCH_EVERY: Duration = Duration::from_millis(250);

/// The master as the sentinels last named it, and a pool of connections to it.
pub(super) struct MasterPool {
    /// `host:port`.
    addr: String,
    pool: deadpool_redis::Pool,
    /// The [`SentinelMaster::generation`] this pool belongs to.
    pub(super) generation: u64,
}

/// The master of one Sentinel-monitored set, followed across failovers.
pub(super) struct SentinelMaster {
    /// Each sentinel's URL, redacted for messages, and how to connect to it.
    sentinels: Vec<(String, ConnectionInfo)>,
    name: String,
    /// AUTH and database for the master.
    master_settings: RedisConnectionInfo,
    /// `Some(insecure)` when the master is reached over TLS.
    master_tls: Option<bool>,
    certs: Option<redis::TlsCertificates>,
    /// The private CA's file, named when a certificate is not trusted.
    ca_file: Option<PathBuf>,
    pool_size: usize,
    timeout: Duration,
    current: ArcSwapOption<MasterPool>,
    generation: AtomicU64,
    watching: Once,
}

impl SentinelMaster {
    /// The master named in `config` by the sentinels at its URLs, reached with `certs`
    /// when the URLs are `rediss://`; nothing is asked until the first connection is needed.
    pub(super) fn new(
        config: &RedisConfig,
        certs: Option<redis::TlsCertificates>,
    ) -> Result<Self, StoreError> {
        let mut sentinels = Vec::with_capacity(config.urls.len());
        let mut master_tls = None;
        let mut db = None;
        for url in &config.urls {
            let info = url
                .as_str()
                .into_connection_info()
                .map_err(super::config_error)?;
            let tls = match info.addr() {
                ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
                _ => None,
            };
            let url_db = info.redis_settings().db();
            if sentinels.is_empty() {
                master_tls = tls;
                db = Some(url_db);
            } else if tls != master_tls || Some(url_db) != db {
                return Err(StoreError::Config(format!(
                    "the sentinel URLs differ in TLS (rediss://, #insecure) or database (`/db`) at `{}`; the master is reached as they say, so they must agree",
                    redact_url(url)
                )));
            }
            let own = info.redis_settings().clone().set_db(0);
            let info = with_certs(info.set_redis_settings(own), certs.as_ref())?;
            sentinels.push((redact_url(url), info));
        }
        let mut master_settings = RedisConnectionInfo::default().set_db(db.unwrap_or(0));
        if let Some(user) = &config.sentinel_master_username {
            master_settings = master_settings.set_username(user);
        }
        if let Some(password) = &config.sentinel_master_password {
            master_settings = master_settings.set_password(password);
        }
        Ok(SentinelMaster {
            sentinels,
            name: config.sentinel_master.clone(),
            master_settings,
            master_tls,
            certs,
            ca_file: config.tls.ca_file.clone(),
            pool_size: config.pool_size,
            timeout: config.timeout,
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            watching: Once::new(),
        })
    }

    /// The generation of the pool connections should come from now; a connection of an
    /// older one may be on a server that is no longer the master.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A connection to the master, checked out of its pool, and the generation of the pool
    /// it came from. Starts following the master on first use, since only then is there a
    /// runtime to watch from.
    pub(super) async fn connection(
        self: &Arc<Self>,
    ) -> Result<(deadpool_redis::Connection, u64), StoreError> {
        self.watching.call_once(|| {
            tokio::spawn(watch(Arc::downgrade(self)));
        });
        let pool = match self.current.load_full() {
            Some(p) => p,
            None => self.follow(self.ask(&mut None).await?)?,
        };
        let conn = pool
            .pool
            .get()
            .await
            .map_err(|e| pool_error(e, self.ca_file.as_deref()))?;
        Ok((conn, pool.generation))
    }

    /// Makes `host:port` the master connections go to, unless it already is; returns its
    /// pool.
    fn follow(&self, (host, port): (String, u16)) -> Result<Arc<MasterPool>, StoreError> {
        let addr = join_addr(&host, port);
        if let Some(p) = self.current.load_full() {
            if p.addr == addr {
                return Ok(p);
            }
            warn!(from = %p.addr, to = %addr, master = %self.name, "the sentinels name a new master; moving every connection to it");
        }
        let addr_info = match self.master_tls {
            Some(insecure) => ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params: None,
            },
            None => ConnectionAddr::Tcp(host, port),
        }
        .into_connection_info()
        .map_err(super::config_error)?
        .set_redis_settings(self.master_settings.clone());
        let pool = super::server_pool(
            with_certs(addr_info, self.certs.as_ref())?,
            self.pool_size,
            self.timeout,
        )?;
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let next = Arc::new(MasterPool {
            addr,
            pool,
            generation,
        });
        self.current.store(Some(next.clone()));
        Ok(next)
    }

    /// Asks the sentinels, in order, for the master's `host:port`, reusing `conn` (a
    /// connection to a sentinel kept between polls) while it works.
    async fn ask(
        &self,
        conn: &mut Option<redis::aio::MultiplexedConnection>,
    ) -> Result<(String, u16), StoreError> {
        let mut last = StoreError::Config("no sentinel URL given".into());
        for (url, info) in &self.sentinels {
            let attempt = async {
                let c = match conn {
                    Some(c) => c,
                    None => conn.insert(
                        redis::Client::open(info.clone())?
                            .get_multiplexed_async_connection_with_config(
                                &super::connection_config(self.timeout),
                            )
                            .await?,
                    ),
                };
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.name)
                    .query_async::<Option<(String, u16)>>(c)
                    .await
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(Some(addr))) => return Ok(addr),
                Ok(Ok(None)) => {
                    last = StoreError::Unavailable(format!(
                        "the sentinel at {url} knows no master named `{}`",
                        self.name
                    ))
                }
                Ok(Err(e)) => last = classify(e, self.ca_file.as_deref()),
                Err(_) => last = StoreError::Timeout(self.timeout.as_millis() as u64),
            }
            *conn = None;
        }
        Err(last)
    }
}

/// Asks the sentinels every [`WATCH_EVERY`] and follows the master they name, until the
/// store is dropped.
async fn watch(master: Weak<SentinelMaster>) {
    let mut conn = None;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(m) = master.upgrade() else { return };
        match m.ask(&mut conn).await {
            Ok(addr) => {
                if let Err(e) = m.follow(addr) {
                    warn!(error = %e, "cannot follow the master the sentinels name");
                }
            }
            Err(e) => debug!(error = %e, "cannot ask the sentinels for the master"),
        }
    }
}

/// `host:port`, with an IPv6 host in brackets.
fn join_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
