//! The in-process store: the embedded default for a single instance and for quick starts.
//!
//! It runs the reference evaluation ([`tollgate_core::batch::evaluate_batch`]) under one
//! mutex, so it has exactly the semantics of the Redis script, with the machine clock in
//! place of Redis `TIME`. State is lost when the process exits.
//!
//! Its control-plane records (the [`crate::CatalogStore`] side) are in [`catalog`].

mod catalog;

use crate::clock::unix_now_us;
use crate::keys;
use crate::{QuotaUpdate, Store, StoreError};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tollgate_core::batch::QUOTA_RETENTION_S;
use tollgate_core::batch::{
    evaluate_all, evaluate_batch, BatchOutcome, BatchPart, LimitBatch, MultiOutcome, StateWrite,
    StoredValue,
};
use tollgate_core::calendar::{day_id, window};
use tollgate_core::catalog::QUOTA_LIMIT_NAME;
use tollgate_core::quota::{state_with_remaining, QuotaLimit};

/// How many writes pass between sweeps of expired entries.
const SWEEP_EVERY: u64 = 4_096;

#[derive(Default)]
struct MemoryState {
    limits: HashMap<String, (StoredValue, i64)>,
    usage: HashMap<String, (BTreeMap<String, u64>, i64)>,
    writes_since_sweep: u64,
}

impl MemoryState {
    fn read(&self, tag: &str, name: &str, now_us: i64) -> Option<StoredValue> {
        self.limits
            .get(&keys::limit_key(tag, name))
            .filter(|(_, exp)| *exp > now_us)
            .map(|(v, _)| v.clone())
    }

    /// Applies the writes of one admitted batch under `tag`.
    fn apply(&mut self, tag: &str, writes: Vec<StateWrite>, now_us: i64) {
        for w in writes {
            match w {
                StateWrite::Set {
                    name,
                    value,
                    expire_at_us,
                } => {
                    self.limits
                        .insert(keys::limit_key(tag, &name), (value, expire_at_us));
                }
                StateWrite::Usage {
                    day,
                    units,
                    expire_at_us,
                } => {
                    let retention_us = expire_at_us - now_us;
                    let entry = self.usage.entry(keys::usage_key(tag)).or_default();
                    let total = entry.0.entry(day).or_default();
                    *total += units;
                    if *total == units {
                        let cutoff = day_id((now_us - retention_us).div_euclid(1_000_000));
                        entry.0.retain(|d, _| *d >= cutoff);
                    }
                    entry.1 = expire_at_us;
                }
            }
            self.writes_since_sweep += 1;
        }
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.sweep(now_us);
        }
    }

    fn sweep(&mut self, now_us: i64) {
        self.limits.retain(|_, (_, exp)| *exp > now_us);
        self.usage.retain(|_, (_, exp)| *exp > now_us);
        self.writes_since_sweep = 0;
    }
}

/// Limit state in this process's memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
    catalog: catalog::MemoryCatalog,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Units recorded per day (`YYYYMMDD`) under hash tag `tag`.
    pub fn usage_days(&self, tag: &str) -> BTreeMap<String, u64> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .usage
            .get(&keys::usage_key(tag))
            .map(|(days, _)| days.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn check(&self, batch: &LimitBatch) -> Result<BatchOutcome, StoreError> {
        let now_us = unix_now_us();
        // A panic elsewhere cannot leave the map half-written (writes happen after evaluation),
        // so a poisoned lock is still consistent.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let eval = evaluate_batch(batch, now_us, |name| state.read(&batch.tag, name, now_us));
        state.apply(&batch.tag, eval.writes, now_us);
        Ok(eval.outcome)
    }

    async fn check_all(&self, parts: &[BatchPart]) -> Result<MultiOutcome, StoreError> {
        let now_us = unix_now_us();
        // One lock over every tag: all-or-nothing across the batches for free.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let eval = evaluate_all(parts, now_us, |tag, name| state.read(tag, name, now_us));
        for (part, writes) in parts.iter().zip(eval.writes) {
            state.apply(&part.batch.tag, writes, now_us);
        }
        Ok(eval.outcome)
    }

    async fn daily_usage(&self, tag: &str, days: &[String]) -> Result<Vec<u64>, StoreError> {
        let recorded = self.usage_days(tag);
        Ok(days
            .iter()
            .map(|d| recorded.get(d).copied().unwrap_or(0))
            .collect())
    }

    async fn set_quota_remaining(
        &self,
        tag: &str,
        quota: &QuotaLimit,
        remaining: u64,
    ) -> Result<QuotaUpdate, StoreError> {
        let now_us = unix_now_us();
        let now_s = now_us.div_euclid(1_000_000);
        let current = window(quota.period, now_s);
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let stored = match guard.read(tag, QUOTA_LIMIT_NAME, now_us) {
            Some(StoredValue::Quota(s)) => Some(s),
            _ => None,
        };
        let state = state_with_remaining(quota, stored.as_ref(), now_s, remaining);
        guard.limits.insert(
            keys::limit_key(tag, QUOTA_LIMIT_NAME),
            (
                StoredValue::Quota(state.clone()),
                (current.end_s + QUOTA_RETENTION_S) * 1_000_000,
            ),
        );
        Ok(QuotaUpdate {
            state,
            limit: quota.effective_limit(&current),
            now_us,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
