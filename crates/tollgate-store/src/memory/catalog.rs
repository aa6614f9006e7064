//! Control-plane records of the in-process store: one lock around the records, so a commit's
//! version check and its writes are one step, and a `watch` channel that tells every
//! subscriber in this process about each new version.

use super::MemoryStore;
use crate::catalog::{CatalogRecords, CatalogStore, Change, ChangeStream, Commit};
use crate::StoreError;
use async_trait::async_trait;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

/// The records and the channel that announces their versions.
pub(super) struct MemoryCatalog {
    records: Mutex<CatalogRecords>,
    changes: watch::Sender<u64>,
}

impl Default for MemoryCatalog {
    fn default() -> Self {
        MemoryCatalog {
            records: Mutex::new(CatalogRecords::default()),
            changes: watch::Sender::new(0),
        }
    }
}

impl MemoryCatalog {
    /// The records, locked. Writers replace them only after building the new value, so a
    /// poisoned lock still holds a consistent one.
    fn records(&self) -> MutexGuard<'_, CatalogRecords> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl CatalogStore for MemoryStore {
    async fn load_catalog(&self) -> Result<CatalogRecords, StoreError> {
        Ok(self.catalog.records().clone())
    }

    async fn catalog_version(&self) -> Result<u64, StoreError> {
        Ok(self.catalog.records().version)
    }

    async fn commit(
        &self,
        expected_version: u64,
        changes: &[Change],
    ) -> Result<Commit, StoreError> {
        let mut records = self.catalog.records();
        if records.version != expected_version {
            return Ok(Commit::Stale(records.version));
        }
        if changes.is_empty() {
            return Ok(Commit::Applied(records.version));
        }
        let mut next = records.clone();
        next.apply(changes);
        next.version += 1;
        let version = next.version;
        *records = next;
        drop(records);
        self.catalog.changes.send_replace(version);
        Ok(Commit::Applied(version))
    }

    async fn restore(
        &self,
        expected_version: u64,
        records: &CatalogRecords,
    ) -> Result<Commit, StoreError> {
        let mut stored = self.catalog.records();
        if stored.version != expected_version {
            return Ok(Commit::Stale(stored.version));
        }
        *stored = records.clone();
        let version = stored.version;
        drop(stored);
        self.catalog.changes.send_replace(version);
        Ok(Commit::Applied(version))
    }

    async fn subscribe(&self) -> Result<ChangeStream, StoreError> {
        let rx = self.catalog.changes.subscribe();
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move {
                rx.changed().await.ok()?;
                let v = *rx.borrow_and_update();
                Some((v, rx))
            },
        )))
    }
}
