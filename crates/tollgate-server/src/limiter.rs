//! The limiter: resolve a check against the current catalog, evaluate it in the store, and
//! turn the outcome into a decision. Every protocol adapter calls [`Limiter::check`] (or,
//! for Envoy's rate-limit service, [`Limiter::check_rls`]) and only translates; no limit
//! logic lives in an adapter.

use crate::cli::FailureMode;
use crate::deny_cache::{DenyCache, Lookup};
use arc_swap::ArcSwap;
use std::future::Future;
use std::sync::Arc;
use thiserror::Error;
use tollgate_core::batch::{BatchOutcome, LimitBatch, MultiOutcome};
use tollgate_core::catalog::Catalog;
use tollgate_core::check::{CheckRequest, Decision, Verdict};
use tollgate_core::rls::check::{
    self as rls_check, RlsDecision, RlsOptions, RlsRequest, RlsRequestError,
};
use tollgate_core::rls::RlsRegistry;
use tollgate_store::{Store, StoreError};
use tracing::{warn, Instrument};

/// The shared limiter of one tollgate instance.
pub struct Limiter {
    catalog: ArcSwap<Catalog>,
    store: Arc<dyn Store>,
    failure_mode: FailureMode,
    usage_retention_days: u32,
    denials: DenyCache,
    /// Envoy rate-limit domains in force, swapped whole on reload.
    rls: ArcSwap<RlsRegistry>,
    rls_options: RlsOptions,
}

/// Why an Envoy rate-limit request got no answer.
#[derive(Debug, Error)]
pub enum RlsCheckError {
    /// The request is malformed.
    #[error(transparent)]
    Invalid(#[from] RlsRequestError),
    /// The store is down and the failure mode is to refuse.
    #[error(transparent)]
    Unavailable(StoreError),
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
            rls: ArcSwap::from_pointee(RlsRegistry::new()),
            rls_options: RlsOptions {
                usage_retention_days: Some(usage_retention_days),
                ..RlsOptions::default()
            },
        }
    }

    /// Sets how Envoy rate-limit requests are planned and answered; usage of API keys
    /// checked that way is kept as long as for every other check.
    pub fn with_rls_options(mut self, options: RlsOptions) -> Self {
        self.rls_options = RlsOptions {
            usage_retention_days: Some(self.usage_retention_days),
            ..options
        };
        self
    }

    /// The Envoy rate-limit domains in force.
    pub fn rls_registry(&self) -> Arc<RlsRegistry> {
        self.rls.load_full()
    }

    /// Replaces the Envoy rate-limit domains; requests already running finish on the old ones.
    /// Cached denials are dropped, as for a catalog change: a raised limit may lift them, and
    /// a denial's identity names the descriptor, not its limit.
    pub fn set_rls_registry(&self, registry: RlsRegistry) {
        self.rls.store(Arc::new(registry));
        self.denials.clear();
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

    /// Decides one check for the adapter of `protocol` (from [`crate::metrics::protocol`]): like
    /// [`Limiter::check`], and also fills the current span's check fields (`api_id`, `stage`,
    /// `method`, `plan_id`, `key_id`, `verdict`; never the key value) and records the check's
    /// metrics, so every adapter observes checks the same way and only translates.
    pub async fn check_for(&self, protocol: &'static str, req: &CheckRequest) -> Decision {
        let started = std::time::Instant::now();
        let span = tracing::Span::current();
        span.record("api_id", req.api_id.as_str());
        span.record("stage", req.stage.as_str());
        span.record("method", req.method.as_str());
        let decision = self.check(req).await;
        if let Some(p) = &decision.plan_id {
            span.record("plan_id", p.as_str());
        }
        if let Some(k) = &decision.key_id {
            span.record("key_id", k.as_str());
        }
        let verdict = crate::metrics::verdict_label(decision.verdict);
        span.record("verdict", verdict);
        crate::metrics::observe_check(protocol, verdict, started);
        decision
    }

    /// Decides one check, consuming its cost if admitted.
    pub async fn check(&self, req: &CheckRequest) -> Decision {
        // Before the catalog is read, so that a denial of a catalog replaced meanwhile is
        // not cached (see `DenyCache`).
        let epoch = self.denials.epoch();
        let resolved = {
            let catalog = self.catalog.load();
            match catalog.resolve(req, Some(self.usage_retention_days)) {
                Ok(r) => r,
                Err(verdict) => return Decision::refused(verdict),
            }
        };
        let asked = self
            .through_denials(
                epoch,
                Some(&resolved.batch),
                in_store_span(self.store.backend(), self.store.check(&resolved.batch)),
                |o| Some(o),
            )
            .await;
        match asked {
            Ok(Answer::Cached(outcome) | Answer::Fresh(outcome)) => {
                Decision::from_outcome(resolved, &outcome)
            }
            Err(e) => {
                crate::metrics::store_error(&e);
                if store_warning_due() {
                    warn!(error = %e, transient = e.is_transient(), plan_id = %resolved.plan_id, key_id = %resolved.key_id, "limit store failed; applying failure mode (logged at most once a second)");
                }
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

    /// Decides one Envoy rate-limit request: matches its descriptors (API-key descriptors
    /// through the catalog), checks every limit all-or-nothing in one store call, and
    /// answers one status per descriptor.
    pub async fn check_rls(&self, req: &RlsRequest) -> Result<RlsDecision, RlsCheckError> {
        let epoch = self.denials.epoch();
        let plan = {
            let registry = self.rls.load();
            let catalog = self.catalog.load();
            rls_check::plan(&registry, &catalog, req, &self.rls_options)?
        };
        if plan.parts.is_empty() {
            let none = MultiOutcome {
                admitted: true,
                now_us: 0,
                parts: Vec::new(),
            };
            return Ok(rls_check::decide(&plan, &none));
        }
        // A request of one enforced part (one descriptor, or one API key) is answered from
        // the deny cache like a CheckQuota. With several parts a cached denial would still
        // leave the other descriptors' statuses unknown, so those always ask the store.
        let cacheable = match plan.parts.as_slice() {
            [part] if !part.shadow => Some(&part.batch),
            _ => None,
        };
        let asked = self
            .through_denials(
                epoch,
                cacheable,
                in_store_span(self.store.backend(), self.store.check_all(&plan.parts)),
                |o| o.parts.first(),
            )
            .await;
        match asked {
            Ok(Answer::Cached(outcome)) => {
                let refused = MultiOutcome {
                    admitted: false,
                    now_us: outcome.now_us,
                    parts: vec![outcome],
                };
                Ok(rls_check::decide(&plan, &refused))
            }
            Ok(Answer::Fresh(outcome)) => Ok(rls_check::decide(&plan, &outcome)),
            Err(e) => {
                crate::metrics::store_error(&e);
                if store_warning_due() {
                    warn!(error = %e, transient = e.is_transient(), domain = %req.domain, "limit store failed; applying failure mode (logged at most once a second)");
                }
                match self.failure_mode {
                    FailureMode::Allow => Ok(RlsDecision::allow_all(req.descriptors.len())),
                    FailureMode::Deny => Err(RlsCheckError::Unavailable(e)),
                }
            }
        }
    }
}

/// A store answer, or a refusal the deny cache already knew.
enum Answer<T> {
    /// The cached refusal of the one batch asked about; the store was not called.
    Cached(BatchOutcome),
    /// What the store answered.
    Fresh(T),
}

impl Limiter {
    /// Runs `ask` (a store call) unless the deny cache knows `batch` is refused, recording
    /// the answer under `epoch` (read before the check was resolved); with
    /// `batch` `None` the call always runs and nothing is cached. A store answer is recorded
    /// for `batch` (its outcome picked by `outcome_of`), a failure ends the probe, so every
    /// adapter's checks share one deny-cache protocol.
    async fn through_denials<T>(
        &self,
        epoch: u64,
        batch: Option<&LimitBatch>,
        ask: impl Future<Output = Result<T, StoreError>>,
        outcome_of: impl FnOnce(&T) -> Option<&BatchOutcome>,
    ) -> Result<Answer<T>, StoreError> {
        let probe = match batch {
            Some(b) => match self.denials.lookup(b) {
                Lookup::Denied(outcome) => {
                    crate::metrics::metrics().deny_cache_hits.inc();
                    return Ok(Answer::Cached(outcome));
                }
                Lookup::AskStore(id) => Some((id, b)),
            },
            None => None,
        };
        let answer = ask.await;
        if let Some((id, b)) = probe {
            match answer.as_ref().ok().and_then(outcome_of) {
                Some(outcome) => self.denials.record(id, epoch, b, outcome),
                None => self.denials.end_probe(&id),
            }
        }
        answer.map(Answer::Fresh)
    }
}

/// Runs one store call in a span of its own under the check's, when spans are on (an OTLP
/// endpoint is set), so a trace shows the Redis round trip apart from tollgate's own time.
async fn in_store_span<T>(backend: &'static str, call: impl Future<Output = T>) -> T {
    let span = tracing::debug_span!("store.check", backend);
    if span.is_disabled() {
        call.await
    } else {
        call.instrument(span).await
    }
}

/// Whether a store failure should be logged now: at most once a second, since during an
/// outage every check fails the same way and one line per check would flood the logs.
fn store_warning_due() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_SECOND: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST_SECOND.swap(now, Ordering::Relaxed) != now
}
