//! Keeps this instance's catalog in step with the shared record store.
//!
//! [`CatalogSync`] holds the records at the version this instance knows and installs the
//! core catalog built from them into the [`Limiter`]. It learns of changes three ways:
//! its own commits (installed at once), the store's change channel (Redis pub/sub, or the
//! in-process channel of the memory store), and a periodic version poll, because pub/sub
//! loses messages across reconnects. The poll runs every second while subscribed and four
//! times a second while not, so a change made through any instance is enforced here within
//! about a second even when the channel is down. If the store ever holds an older catalog
//! than this instance (it lost data), the instance writes its records back.

use crate::limiter::Limiter;
use arc_swap::ArcSwap;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tollgate_store::catalog::{CatalogRecords, Change, Commit};
use tollgate_store::{CatalogStore, StoreError};
use tracing::{debug, error, info, warn};

/// Version poll period while the change channel is up.
const POLL_SUBSCRIBED: Duration = Duration::from_secs(1);
/// Version poll period while it is down.
const POLL_UNSUBSCRIBED: Duration = Duration::from_millis(250);
/// How often to try subscribing again after the channel went down.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(2);
/// Commits retried this many times against newer versions before giving up.
const COMMIT_ATTEMPTS: usize = 16;
/// How far a restore moves the version past this instance's own. Instances learn of each
/// commit within about a second, so one may hold a few commits more than the instance that
/// restores first; the restored version must still be newer than all of theirs, or an
/// instance whose version it equals would never load it and the fleet would disagree.
const RESTORE_VERSION_STEP: u64 = 1_000;

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

    /// Reads every record from the store and installs them if they are newer; puts this
    /// instance's records back if the store's are older (see `CatalogSync::restore`).
    pub async fn reload(&self) -> Result<u64, StoreError> {
        let records = self.store.load_catalog().await?;
        let known = self.records();
        if known.version != 0 && records.version < known.version {
            return self.restore(&known, records.version).await;
        }
        let version = records.version;
        self.install(records, known.version == 0).await;
        Ok(version)
    }

    /// The store's catalog is older than the one this instance enforces. Versions only
    /// grow, so the store lost data: Redis restarted without persistence, was flushed, or
    /// failed over to a replica that missed writes. Left alone, every write here would be
    /// stale forever (409 to the operator) and instances started from now on would enforce
    /// the older or empty catalog while this one enforces its own. The fleet holds the
    /// records, so write them back, at a version past every instance's; of several
    /// instances finding the loss at once, the first restores and the others load its
    /// records. Usage counters are not in the catalog and stay lost.
    async fn restore(&self, known: &CatalogRecords, found: u64) -> Result<u64, StoreError> {
        let mut restored = known.clone();
        restored.version = known.version.saturating_add(RESTORE_VERSION_STEP);
        match self.store.restore(found, &restored).await? {
            Commit::Applied(version) => {
                error!(
                    known = known.version,
                    found,
                    restored = version,
                    plans = restored.plans.len(),
                    keys = restored.keys.len(),
                    "the record store went back to an older catalog (it lost data); restored this instance's records"
                );
                self.install(restored, false).await;
                Ok(version)
            }
            // Another instance restored first, or committed: load whatever is there now.
            Commit::Stale(now) => {
                let records = self.store.load_catalog().await?;
                if records.version >= known.version {
                    self.install(records, false).await;
                }
                Ok(now)
            }
        }
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
