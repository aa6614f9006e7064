//! The trait every limit store implements.

use crate::StoreError;
use async_trait::async_trait;
use tollgate_core::batch::{BatchOutcome, BatchPart, LimitBatch, MultiOutcome};
use tollgate_core::quota::{QuotaLimit, QuotaState};

/// The quota state an operator set with [`Store::set_quota_remaining`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUpdate {
    /// The state written for the current period.
    pub state: QuotaState,
    /// The plan's limit in force in the current period, before the grant.
    pub limit: u64,
    /// The store's clock when it was written, Unix microseconds.
    pub now_us: i64,
}

/// Where limit state lives. One async trait, object-safe, shared by every backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Evaluates every limit of `batch` and, if all admit and the cost is above 0, consumes
    /// the cost from all of them, atomically. Time is the store's own clock.
    async fn check(&self, batch: &LimitBatch) -> Result<BatchOutcome, StoreError>;

    /// Units admitted under hash tag `tag` on each of `days` (`YYYYMMDD`), in that order;
    /// 0 for a day without use or past the usage retention.
    async fn daily_usage(&self, tag: &str, days: &[String]) -> Result<Vec<u64>, StoreError>;

    /// Sets the quota state `q` under `tag` so that `remaining` units are left in the
    /// current period of `quota` (AWS UpdateUsage), by the store's clock. This is
    /// [`tollgate_core::quota::state_with_remaining`], written atomically.
    async fn set_quota_remaining(
        &self,
        tag: &str,
        quota: &QuotaLimit,
        remaining: u64,
    ) -> Result<QuotaUpdate, StoreError>;
    /// Evaluates several batches, each under its own hash tag, as one request: admitted only
    /// if every non-shadow batch admits, and then every batch that admitted is consumed;
    /// otherwise nothing is (see [`tollgate_core::batch::evaluate_all`]). Envoy rate-limit
    /// requests with several descriptors use this. Time is the store's own clock.
    async fn check_all(&self, parts: &[BatchPart]) -> Result<MultiOutcome, StoreError>;

    /// Answers `Ok` when the store can take checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Short name of the backend, for logs and metrics (`memory`, `redis`).
    fn backend(&self) -> &'static str;
}
