//! The trait every limit store implements.

use crate::StoreError;
use async_trait::async_trait;
use tollgate_core::batch::{BatchOutcome, BatchPart, LimitBatch, MultiOutcome};

/// Where limit state lives. One async trait, object-safe, shared by every backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Evaluates every limit of `batch` and, if all admit and the cost is above 0, consumes
    /// the cost from all of them, atomically. Time is the store's own clock.
    async fn check(&self, batch: &LimitBatch) -> Result<BatchOutcome, StoreError>;

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
