//! The limiter: resolve a check against the current catalog, evaluate it in the store, and
//! turn the outcome into a decision. Every protocol adapter calls [`Limiter::check`] and
//! only translates; no limit logic lives in an adapter.

use crate::cli::FailureMode;
use crate::deny_cache::DenyCache;
use arc_swap::ArcSwap;
use std::sync::Arc;
use tollgate_core::catalog::Catalog;
use tollgate_core::check::{CheckRequest, Decision, Verdict};
use tollgate_store::Store;
use tracing::warn;

/// The shared limiter of one tollgate instance.
pub struct Limiter {
    catalog: ArcSwap<Catalog>,
    store: Arc<dyn Store>,
    failure_mode: FailureMode,
    usage_retention_days: u32,
    denials: DenyCache,
}

impl Limiter {
    /// A limiter over `store`, starting with `catalog`.
    pub fn new(
        catalog: Catalog,
        store: Arc<dyn Store>,
        failure_mode: FailureMode,
        usage_retention_days: u32,
    ) -> Self {
        Limiter {
            catalog: ArcSwap::from_pointee(catalog),
            store,
            failure_mode,
            usage_retention_days,
            denials: DenyCache::new(),
        }
    }

    /// The catalog checks are resolved against now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Replaces the catalog; checks already running finish on the old one. Cached denials
    /// are dropped, since a plan or key change may lift them.
    pub fn set_catalog(&self, catalog: Catalog) {
        self.catalog.store(Arc::new(catalog));
        self.denials.clear();
    }

    /// Drops cached denials (an operator changed a quota outside the catalog).
    pub fn forget_denials(&self) {
        self.denials.clear();
    }

    /// The limit store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Decides one check, consuming its cost if admitted.
    pub async fn check(&self, req: &CheckRequest) -> Decision {
        let resolved = {
            let catalog = self.catalog.load();
            match catalog.resolve(req, Some(self.usage_retention_days)) {
                Ok(r) => r,
                Err(verdict) => return Decision::refused(verdict),
            }
        };
        if let Some(outcome) = self.denials.get(&resolved.batch) {
            return Decision::from_outcome(&resolved, &outcome);
        }
        match self.store.check(&resolved.batch).await {
            Ok(outcome) => {
                self.denials.record(&resolved.batch, &outcome);
                Decision::from_outcome(&resolved, &outcome)
            }
            Err(e) => {
                warn!(error = %e, transient = e.is_transient(), plan_id = %resolved.plan_id, key_id = %resolved.key_id, "limit store failed; applying failure mode");
                let mut d = Decision::refused(match self.failure_mode {
                    FailureMode::Allow => Verdict::Ok,
                    FailureMode::Deny => Verdict::Unavailable,
                });
                d.plan_id = Some(resolved.plan_id);
                d.key_id = Some(resolved.key_id);
                d
            }
        }
    }
}
