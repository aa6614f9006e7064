//! Keeps this instance's catalog in step with the shared record store.
//!
//! [`CatalogSync`] holds the records at the version this instance knows and installs the
//! core catalog built from them into the [`Limiter`]. It learns of changes three ways:
//! its own commits (installed at once), the store's change channel (Redis pub/sub, or the
//! in-process channel of the memory store), and a periodic version poll, because pub/sub
//! loses messages across reconnects. The poll runs every second while subscribed and four
//! times a second while not, so a change made through any instance is enforced here within
//! about a second even when the channel is down.

use crate::limiter::Limiter;
use arc_swap::ArcSwap;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tollgate_store::catalog::{CatalogRecords, Change, Commit};
use tollgate_store::{CatalogStore, StoreError};
use tracing::{debug, info, warn};

/// Version poll period while the change channel is up.
const POLL_SUBSCRIBED: Duration = Duration::from_secs(1);
/// Version poll period while it is down.
const POLL_UNSUBSCRIBED: Duration = Duration::from_millis(250);
/// How often to try subscribing again after the channel went down.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(2);
/// Commits retried this many times against newer versions before giving up.
const COMMIT_ATTEMPTS: usize = 16;

/// Why a mutation was not committed.
#[derive(Debug)]
pub enum MutateError<E> {
    /// The caller's closure refused (validation, not found, ...).
    Refused(E),
    /// The store failed.
    Store(StoreError),
    /// Other instances kept committing first; the caller may retry.
    Contended,
}

/// The shared records as this instance knows them.
pub struct CatalogSync {
    store: Arc<dyn CatalogStore>,
    limiter: Arc<Limiter>,
    records: ArcSwap<CatalogRecords>,
    /// Serialises installs so a slow reload never replaces a newer version.
    install: Mutex<()>,
}

impl CatalogSync {
    /// A sync over `store` feeding `limiter`; call [`CatalogSync::reload`] to fill it.
    pub fn new(store: Arc<dyn CatalogStore>, limiter: Arc<Limiter>) -> Self {
        CatalogSync {
            store,
            limiter,
            records: ArcSwap::from_pointee(CatalogRecords::default()),
            install: Mutex::new(()),
        }
    }

    /// The records at the version this instance knows.
    pub fn records(&self) -> Arc<CatalogRecords> {
        self.records.load_full()
    }

    /// The record store.
    pub fn store(&self) -> &Arc<dyn CatalogStore> {
        &self.store
    }

    /// Installs `records` unless a version at least as new is installed (or `force`).
    async fn install(&self, records: CatalogRecords, force: bool) {
        let _guard = self.install.lock().await;
        let current = self.records.load();
        if !force && records.version <= current.version && current.version != 0 {
            return;
        }
        match records.to_catalog() {
            Ok(catalog) => {
                debug!(version = records.version, "catalog installed");
                self.limiter.set_catalog(catalog);
                self.records.store(Arc::new(records));
            }
            // Only possible if someone wrote records past validation; keep enforcing the
            // last good catalog rather than none.
            Err(e) => {
                warn!(version = records.version, error = %e, "stored records are invalid; keeping the previous catalog")
            }
        }
    }

    /// Reads every record from the store and installs them if they are newer.
    pub async fn reload(&self) -> Result<u64, StoreError> {
        let records = self.store.load_catalog().await?;
        let version = records.version;
        let first = self.records.load().version == 0;
        self.install(records, first).await;
        Ok(version)
    }

    /// Validates and commits the changes `f` derives from the current records, re-reading
    /// and re-deriving when another instance committed first. Returns the records after
    /// the commit and what `f` returned with its changes.
    pub async fn mutate<T, E>(
        &self,
        f: impl Fn(&CatalogRecords) -> Result<(Vec<Change>, T), E>,
        validate: impl Fn(&CatalogRecords) -> Result<(), E>,
    ) -> Result<(Arc<CatalogRecords>, T), MutateError<E>> {
        for _ in 0..COMMIT_ATTEMPTS {
            let current = self.records();
            let (changes, out) = f(&current).map_err(MutateError::Refused)?;
            if changes.is_empty() {
                return Ok((current, out));
            }
            let mut next = (*current).clone();
            next.apply(&changes);
            validate(&next).map_err(MutateError::Refused)?;
            match self
                .store
                .commit(current.version, &changes)
                .await
                .map_err(MutateError::Store)?
            {
                Commit::Applied(version) => {
                    next.version = version;
                    self.install(next, false).await;
                    return Ok((self.records(), out));
                }
                Commit::Stale(_) => {
                    self.reload().await.map_err(MutateError::Store)?;
                }
            }
        }
        Err(MutateError::Contended)
    }

    /// Follows the store's changes until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let mut changes = match self.store.subscribe().await {
                Ok(s) => {
                    debug!("subscribed to catalog changes");
                    Some(s)
                }
                Err(e) => {
                    debug!(error = %e, "no catalog change channel; polling");
                    None
                }
            };
            // Catch up on whatever happened while unsubscribed.
            self.poll().await;
            let period = if changes.is_some() {
                POLL_SUBSCRIBED
            } else {
                POLL_UNSUBSCRIBED
            };
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let resubscribe = tokio::time::sleep(RESUBSCRIBE_EVERY);
            tokio::pin!(resubscribe);
            loop {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tick.tick() => self.poll().await,
                    msg = async {
                        match changes.as_mut() {
                            Some(s) => s.next().await,
                            None => std::future::pending().await,
                        }
                    } => match msg {
                        Some(version) if version != 0 && version <= self.records.load().version => {}
                        Some(_) => {
                            if let Err(e) = self.reload().await {
                                warn!(error = %e, "catalog reload failed");
                            }
                        }
                        None => {
                            info!("catalog change channel lost; polling until it is back");
                            break;
                        }
                    },
                    _ = &mut resubscribe, if changes.is_none() => break,
                }
            }
        }
    }

    async fn poll(&self) {
        match self.store.catalog_version().await {
            Ok(v) if v != self.records.load().version => {
                if let Err(e) = self.reload().await {
                    warn!(error = %e, "catalog reload failed");
                }
            }
            Ok(_) => {}
            Err(e) => debug!(error = %e, "catalog version poll failed"),
        }
    }
}
