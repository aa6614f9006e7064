//! The local deny cache: once the store has said a key is out of quota (or throttled with
//! nothing left), this instance answers the same check itself until the limit resets, with
//! no Redis call.
//!
//! Why it is safe: a denial can only end when time passes (a period ends, a throttle
//! refills) or an operator changes the plan, the key or the quota. Traffic cannot end it,
//! since a denied request consumes nothing and other instances can only use more. So the
//! cache holds a denial until the moment a cost-1 request could pass again, and is cleared
//! whenever the catalog changes. An abusive key then costs Redis one call per reset, not one
//! per request.

use dashmap::DashMap;
use std::time::{Duration, Instant};
use tollgate_core::batch::{BatchOutcome, LimitBatch, LimitKind};

/// Entries kept at most; past this, expired ones are swept, and if that is not enough the
/// cache starts over (it is only an optimisation).
const MAX_ENTRIES: usize = 100_000;

struct Denial {
    outcome: BatchOutcome,
    cached_at: Instant,
    until: Instant,
}

/// Denials by batch identity (hash tag and limit names).
#[derive(Default)]
pub struct DenyCache {
    entries: DashMap<String, Denial>,
}

fn identity(batch: &LimitBatch) -> String {
    let mut id = String::with_capacity(batch.tag.len() + 8 * batch.limits.len());
    id.push_str(&batch.tag);
    for l in &batch.limits {
        id.push('\u{1f}');
        id.push_str(&l.name);
    }
    id
}

/// How long, from the check, until a cost-1 request could pass the limit that denied
/// `outcome`; `None` when a cost-1 request could pass now (only a bigger cost was refused).
fn denial_span(batch: &LimitBatch, outcome: &BatchOutcome) -> Option<Duration> {
    let i = outcome.denied_by()?;
    let status = outcome.statuses.get(i)?;
    if status.remaining > 0 {
        return None;
    }
    let wait_us = match &batch.limits.get(i)?.kind {
        LimitKind::Quota(_) => status.reset_after_us,
        // reset_after is the time to a full burst; one unit frees (burst - 1) intervals sooner.
        LimitKind::Throttle(g) => status
            .reset_after_us
            .saturating_sub(g.interval_us().saturating_mul(g.burst().saturating_sub(1))),
    };
    (wait_us > 0).then(|| Duration::from_micros(wait_us))
}

impl DenyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached denial of `batch`, with its times brought up to now.
    pub fn get(&self, batch: &LimitBatch) -> Option<BatchOutcome> {
        let id = identity(batch);
        let now = Instant::now();
        let hit = self.entries.get(&id).and_then(|d| {
            (d.until > now).then(|| {
                let elapsed = now.duration_since(d.cached_at).as_micros() as u64;
                let mut o = d.outcome.clone();
                o.now_us += elapsed as i64;
                for s in &mut o.statuses {
                    s.retry_after_us = s.retry_after_us.saturating_sub(elapsed);
                    s.reset_after_us = s.reset_after_us.saturating_sub(elapsed);
                }
                o
            })
        });
        if hit.is_none() {
            self.entries.remove_if(&id, |_, d| d.until <= now);
        }
        hit
    }

    /// Remembers `outcome` if it denies every request of `batch` for a while.
    pub fn record(&self, batch: &LimitBatch, outcome: &BatchOutcome) {
        if outcome.admitted {
            return;
        }
        let Some(span) = denial_span(batch, outcome) else {
            return;
        };
        if self.entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            self.entries.retain(|_, d| d.until > now);
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        let now = Instant::now();
        self.entries.insert(
            identity(batch),
            Denial {
                outcome: outcome.clone(),
                cached_at: now,
                until: now + span,
            },
        );
    }

    /// Forgets every denial (the plans, keys or quotas changed).
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// Number of entries, expired ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::batch::{evaluate_batch, Limit, StoredValue};
    use tollgate_core::calendar::QuotaPeriod;
    use tollgate_core::gcra::GcraLimit;
    use tollgate_core::quota::{QuotaLimit, QuotaState};

    fn batch(limits: Vec<Limit>, cost: u64) -> LimitBatch {
        LimitBatch {
            tag: "p:k".into(),
            limits,
            cost,
            usage_retention_days: None,
        }
    }

    /// A quota with nothing left is cached until the period ends; a denial of a large cost
    /// with units left is not cached.
    #[test]
    fn caches_only_total_denials() {
        let q = Limit {
            name: "q".into(),
            kind: LimitKind::Quota(QuotaLimit {
                limit: 5,
                period: QuotaPeriod::Day,
                offset: 0,
                anchor_s: 0,
            }),
        };
        let now = 1_800_000_000_000_000;
        let period = tollgate_core::calendar::window(QuotaPeriod::Day, now / 1_000_000).id;
        let used = |n| {
            let period = period.clone();
            move |_: &str| {
                Some(StoredValue::Quota(QuotaState {
                    period_id: period.clone(),
                    used: n,
                }))
            }
        };
        let cache = DenyCache::new();
        let big = batch(vec![q.clone()], 3);
        cache.record(&big, &evaluate_batch(&big, now, used(4)).outcome);
        assert!(
            cache.get(&big).is_none(),
            "one unit is left: a cost-1 call could pass"
        );
        let one = batch(vec![q], 1);
        let o = evaluate_batch(&one, now, used(5)).outcome;
        cache.record(&one, &o);
        let hit = cache.get(&one).expect("cached");
        assert!(!hit.admitted);
        assert!(hit.statuses[0].retry_after_us <= o.statuses[0].retry_after_us);
        cache.clear();
        assert!(cache.get(&one).is_none());
    }

    /// A throttle denial lasts until one unit is free again, not until the full burst.
    #[test]
    fn throttle_denial_lasts_one_interval() {
        let t = Limit {
            name: "t".into(),
            kind: LimitKind::Throttle(GcraLimit::per_second(1000.0, 5).unwrap()),
        };
        let b = batch(vec![t], 1);
        let now = 1_800_000_000_000_000;
        let o = evaluate_batch(&b, now, |_| Some(StoredValue::Tat(now + 5_000))).outcome;
        assert!(!o.admitted);
        assert_eq!(denial_span(&b, &o), Some(Duration::from_micros(1_000)));
        let cache = DenyCache::new();
        cache.record(&b, &o);
        assert!(cache.get(&b).is_some());
        std::thread::sleep(Duration::from_millis(2));
        assert!(cache.get(&b).is_none(), "expired after one interval");
        assert!(cache.is_empty(), "expired entries are dropped on lookup");
    }
}
