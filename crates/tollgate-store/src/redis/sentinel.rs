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
//! Connections to the master are made as deadpool-redis's sentinel pool made them: plain TCP,
//! no AUTH, database 0; the sentinel URLs' own settings are for the sentinels.

use super::pool_error;
use crate::StoreError;
use arc_swap::ArcSwapOption;
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
    sentinels: Vec<String>,
    name: String,
    pool_size: usize,
    timeout: Duration,
    current: ArcSwapOption<MasterPool>,
    generation: AtomicU64,
    watching: Once,
}

impl SentinelMaster {
    /// The master named `name` by the sentinels at `sentinels`; nothing is asked until the
    /// first connection is needed.
    pub(super) fn new(
        sentinels: Vec<String>,
        name: String,
        pool_size: usize,
        timeout: Duration,
    ) -> Self {
        SentinelMaster {
            sentinels,
            name,
            pool_size,
            timeout,
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            watching: Once::new(),
        }
    }

    /// The generation of the pool connections should come from now; a connection of an
    /// older one may be on a server that is no longer the master.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A connection to the master, and the generation of the pool it came from. Starts
    /// following the master on first use, since only then is there a runtime to watch from.
    pub(super) async fn connection(
        self: &Arc<Self>,
    ) -> Result<(redis::aio::MultiplexedConnection, u64), StoreError> {
        self.watching.call_once(|| {
            tokio::spawn(watch(Arc::downgrade(self)));
        });
        let pool = match self.current.load_full() {
            Some(p) => p,
            None => self.follow(self.ask(&mut None).await?)?,
        };
        let conn = pool.pool.get().await.map_err(pool_error)?;
        Ok(((*conn).clone(), pool.generation))
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
        let pool = super::server_pool(
            redis::ConnectionAddr::Tcp(host, port),
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
        for url in &self.sentinels {
            let attempt = async {
                let c = match conn {
                    Some(c) => c,
                    None => conn.insert(
                        redis::Client::open(url.as_str())?
                            .get_multiplexed_async_connection_with_config(
                                &redis::AsyncConnectionConfig::new()
                                    .set_connection_timeout(Some(self.timeout))
                                    .set_response_timeout(None),
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
                        "the sentinel at {} knows no master named `{}`",
                        super::redact_url(url),
                        self.name
                    ))
                }
                Ok(Err(e)) => last = StoreError::from(e),
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
