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
//!
//! A denial is kept as the state of each limit, not as one answer: the same key is asked
//! about with different costs, and a cost-3 call must be told when a cost-3 call can pass,
//! not what the cached cost-1 call was told. Each hit re-runs the core evaluation on that
//! state (in process, no store call), so it answers exactly as the store would have.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tollgate_core::batch::{
    evaluate_batch, implied_state, BatchOutcome, LimitBatch, LimitKind, StoredValue,
};

/// Entries kept at most; past this, expired ones are swept, and if that is not enough the
/// cache starts over (it is only an optimisation).
const MAX_ENTRIES: usize = 100_000;

/// How long one caller's probe of an expired denial may take before another may probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

struct Denial {
    /// The denial as cached, answered when the state below would admit (a caller waiting
    /// for the probe after the denial ran out).
    outcome: BatchOutcome,
    /// Each limit's state at `outcome.now_us`, by name: what the store held then.
    states: Vec<(String, Option<StoredValue>)>,
    cached_at: Instant,
    until: Instant,
    /// When a caller was let through to the store after `until`, to learn whether the
    /// denial still holds.
    probing_since: Option<Instant>,
    /// The [`DenyCache::epoch`] the store was asked in; an entry of an older one is ignored.
    epoch: u64,
}

impl Denial {
    /// The answer to `batch` (of any cost) at `now`: the core's evaluation of the cached
    /// state, or the cached outcome if that state would now admit, since only the store
    /// may admit.
    fn answer(&self, batch: &LimitBatch, now: Instant) -> BatchOutcome {
        let elapsed = now.duration_since(self.cached_at).as_micros() as i64;
        let now_us = self.outcome.now_us.saturating_add(elapsed);
        let e = evaluate_batch(batch, now_us, |name| {
            self.states
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.clone())
        });
        if e.outcome.admitted {
            self.at(now)
        } else {
            e.outcome
        }
    }

    /// The cached outcome with its times brought up to `now`.
    fn at(&self, now: Instant) -> BatchOutcome {
        let elapsed = now.duration_since(self.cached_at).as_micros() as u64;
        let mut o = self.outcome.clone();
        o.now_us += elapsed as i64;
        for s in &mut o.statuses {
            s.retry_after_us = s.retry_after_us.saturating_sub(elapsed);
            s.reset_after_us = s.reset_after_us.saturating_sub(elapsed);
        }
        o
    }
}

/// What the cache says about a check.
pub enum Lookup {
    /// Known denied: answer this without the store.
    Denied(BatchOutcome),
    /// Ask the store, then [`DenyCache::record`] its answer under this identity.
    AskStore(String),
}

/// Denials by batch identity (hash tag and limit names).
///
/// When a denial runs out, exactly one caller is let through to the store (a probe) while
/// the others keep getting the denial until the probe's answer is recorded. Without this,
/// every caller of a hot key would reach Redis together at each expiry (a thundering herd:
/// 50 callers × 10 expiries/s for a key throttled to 10/s). Holding the others back costs
/// nothing for a throttle, where an expiry frees one unit and the probe takes it; after a
/// quota period ends, the others wait one store round trip longer than they had to.
///
/// A [`DenyCache::clear`] starts a new epoch. A store answer is kept only if no clear came
/// between the moment its check read the catalog and the moment it is recorded: a call in
/// flight across a plan change or an operator's UpdateUsage may carry the refusal of the old
/// limits, and kept, it would refuse until the period ends (a month, for a monthly quota).
#[derive(Default)]
pub struct DenyCache {
    entries: DashMap<String, Denial>,
    epoch: AtomicU64,
}

/// The identity of a batch: its hash tag and limit names.
pub fn identity(batch: &LimitBatch) -> String {
    let mut id = String::with_capacity(batch.tag.len() + 8 * batch.limits.len());
    id.push_str(&batch.tag);
    for l in &batch.limits {
        id.push('\u{1f}');
        id.push_str(&l.name);
    }
    id
}

/// The denial to cache after `outcome`, and how long it holds: until a cost-1 request could
/// pass again. `None` when a cost-1 request could pass now.
///
/// A denial with nothing left holds until the denying limit frees a unit. So does an
/// admission that took the last unit of a limit: the next request is certain to be refused
/// until then, so it is cached as that refusal. Without the second case, every admission
/// of a hot throttled key (10/s) would send all its callers to Redis until one of them
/// learnt the refusal again.
fn cached_denial(batch: &LimitBatch, outcome: &BatchOutcome) -> Option<(BatchOutcome, Duration)> {
    let i = if outcome.admitted {
        outcome.statuses.iter().position(|s| s.remaining == 0)?
    } else {
        outcome.denied_by()?
    };
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
    if wait_us == 0 {
        return None;
    }
    let mut denial = outcome.clone();
    if denial.admitted {
        denial.admitted = false;
        if let Some(s) = denial.statuses.get_mut(i) {
            s.allowed = false;
            s.retry_after_us = wait_us;
        }
    }
    Some((denial, Duration::from_micros(wait_us)))
}

/// The state each limit of `batch` was in after `outcome`, rebuilt from its statuses (see
/// `implied_state`). A limit named twice keeps its last status, the state after both uses.
fn states(batch: &LimitBatch, outcome: &BatchOutcome) -> Vec<(String, Option<StoredValue>)> {
    let now_us = outcome.now_us;
    let mut out: Vec<(String, Option<StoredValue>)> = Vec::with_capacity(batch.limits.len());
    for (limit, s) in batch.limits.iter().zip(&outcome.statuses) {
        let value = implied_state(limit, s, now_us);
        match out.iter_mut().find(|(n, _)| *n == limit.name) {
            Some(slot) => slot.1 = value,
            None => out.push((limit.name.to_string(), value)),
        }
    }
    out
}

/// How long the cached denial after `outcome` holds (see [`cached_denial`]).
#[cfg(test)]
fn denial_span(batch: &LimitBatch, outcome: &BatchOutcome) -> Option<Duration> {
    cached_denial(batch, outcome).map(|(_, d)| d)
}

impl DenyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current epoch: read it before resolving a check against the catalog, and hand it
    /// to [`DenyCache::record`] with the store's answer.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether `batch` is known to be denied now, and if so the answer for its own cost.
    pub fn lookup(&self, batch: &LimitBatch) -> Lookup {
        let id = identity(batch);
        let now = Instant::now();
        let epoch = self.epoch();
        let probe_running = |d: &Denial| {
            d.probing_since
                .is_some_and(|t| now.duration_since(t) < PROBE_TIMEOUT)
        };
        match self.entries.get(&id) {
            None => return Lookup::AskStore(id),
            Some(d) if d.epoch != epoch => return Lookup::AskStore(id),
            Some(d) if d.until > now || probe_running(&d) => {
                return Lookup::Denied(d.answer(batch, now))
            }
            Some(_) => {}
        }
        // Expired and nobody probing: claim the probe (re-checked under the write lock, since
        // another caller may have claimed it in between).
        if let Some(mut d) = self.entries.get_mut(&id) {
            if d.epoch == epoch && (d.until > now || probe_running(&d)) {
                return Lookup::Denied(d.answer(batch, now));
            }
            d.probing_since = Some(now);
        }
        Lookup::AskStore(id)
    }

    /// Records the store's answer for the batch `id` (from [`DenyCache::lookup`]), asked in
    /// `epoch` (from [`DenyCache::epoch`]): keeps it if it denies every request of `batch`
    /// for a while, else forgets any old denial. An answer from before a clear is dropped.
    pub fn record(&self, id: String, epoch: u64, batch: &LimitBatch, outcome: &BatchOutcome) {
        if epoch != self.epoch() {
            return;
        }
        let Some((denial, span)) = cached_denial(batch, outcome) else {
            // Only touch the map (a write lock) when there is a denial to end.
            if self.entries.contains_key(&id) {
                self.entries.remove(&id);
            }
            return;
        };
        if self.entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            self.entries
                .retain(|_, d| d.until > now && d.epoch == epoch);
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        let now = Instant::now();
        self.entries.insert(
            id,
            Denial {
                states: states(batch, outcome),
                outcome: denial,
                cached_at: now,
                until: now + span,
                probing_since: None,
                epoch,
            },
        );
    }

    /// Lets another caller probe the batch `id` at once (the probe's store call failed).
    pub fn end_probe(&self, id: &str) {
        if let Some(mut d) = self.entries.get_mut(id) {
            d.probing_since = None;
        }
    }

    /// Forgets every denial (the plans, keys or quotas changed), including those of store
    /// calls still in flight.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
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
    use tollgate_core::batch::Limit;
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

    fn is_denied(l: Lookup) -> bool {
        matches!(l, Lookup::Denied(_))
    }

    fn daily_quota_of_5() -> Limit {
        Limit {
            name: "q".into(),
            kind: LimitKind::Quota(QuotaLimit {
                limit: 5,
                period: QuotaPeriod::Day,
                offset: 0,
                anchor_s: 0,
            }),
        }
    }

    /// A quota with nothing left is cached until the period ends; a denial of a large cost
    /// with units left is not cached.
    #[test]
    fn caches_only_total_denials() {
        let q = daily_quota_of_5();
        let now = 1_800_000_000_000_000;
        let period = tollgate_core::calendar::window(QuotaPeriod::Day, now / 1_000_000).id;
        let used = |n| {
            let period = period.clone();
            move |_: &str| {
                Some(StoredValue::Quota(QuotaState {
                    period_id: period.clone(),
                    used: n,
                    grant: 0,
                }))
            }
        };
        let cache = DenyCache::new();
        let big = batch(vec![q.clone()], 3);
        cache.record(
            identity(&big),
            cache.epoch(),
            &big,
            &evaluate_batch(&big, now, used(4)).outcome,
        );
        assert!(
            !is_denied(cache.lookup(&big)),
            "one unit is left: a cost-1 call could pass"
        );
        let one = batch(vec![q], 1);
        let o = evaluate_batch(&one, now, used(5)).outcome;
        cache.record(identity(&one), cache.epoch(), &one, &o);
        let Lookup::Denied(hit) = cache.lookup(&one) else {
            panic!("not cached")
        };
        assert!(!hit.admitted);
        assert!(hit.statuses[0].retry_after_us <= o.statuses[0].retry_after_us);
        cache.clear();
        assert!(!is_denied(cache.lookup(&one)));
    }

    /// A store answer asked for before a clear is not kept after it: the call may have been
    /// resolved against the plan or quota the clear was for, and its refusal would then hold
    /// until the period ends.
    #[test]
    fn answer_from_before_a_clear_is_dropped() {
        let q = daily_quota_of_5();
        let b = batch(vec![q], 1);
        let now = 1_800_000_000_000_000;
        let period = tollgate_core::calendar::window(QuotaPeriod::Day, now / 1_000_000).id;
        let spent = evaluate_batch(&b, now, |_| {
            Some(StoredValue::Quota(QuotaState {
                period_id: period.clone(),
                used: 5,
                grant: 0,
            }))
        })
        .outcome;
        assert!(!spent.admitted);
        let cache = DenyCache::new();
        let asked_in = cache.epoch();
        let Lookup::AskStore(id) = cache.lookup(&b) else {
            panic!("nothing cached yet")
        };
        // The operator raises the quota while the store call is in flight.
        cache.clear();
        cache.record(id, asked_in, &b, &spent);
        assert!(
            !is_denied(cache.lookup(&b)),
            "the refusal of the old quota is not cached"
        );
        // Answers asked for after the clear are cached as before.
        cache.record(identity(&b), cache.epoch(), &b, &spent);
        assert!(is_denied(cache.lookup(&b)));
    }

    /// A throttle denial lasts until one unit is free again; then one caller probes the
    /// store while the others keep the denial, and an admitted probe ends it.
    #[test]
    fn throttle_denial_then_one_probe() {
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
        cache.record(identity(&b), cache.epoch(), &b, &o);
        assert!(is_denied(cache.lookup(&b)));
        std::thread::sleep(Duration::from_millis(2));
        let Lookup::AskStore(id) = cache.lookup(&b) else {
            panic!("expired after one interval")
        };
        assert!(
            is_denied(cache.lookup(&b)),
            "one probe at a time; the others wait for it"
        );
        let admitted = evaluate_batch(&b, now + 10_000, |_| None).outcome;
        cache.record(id, cache.epoch(), &b, &admitted);
        assert!(cache.is_empty(), "an admitted probe ends the denial");
        assert!(!is_denied(cache.lookup(&b)));
    }

    /// A failed probe lets the next caller probe at once.
    #[test]
    fn failed_probe_is_released() {
        let t = Limit {
            name: "t".into(),
            kind: LimitKind::Throttle(GcraLimit::per_second(1000.0, 1).unwrap()),
        };
        let b = batch(vec![t], 1);
        let now = 1_800_000_000_000_000;
        let o = evaluate_batch(&b, now, |_| Some(StoredValue::Tat(now + 1_000))).outcome;
        let cache = DenyCache::new();
        cache.record(identity(&b), cache.epoch(), &b, &o);
        std::thread::sleep(Duration::from_millis(2));
        let Lookup::AskStore(id) = cache.lookup(&b) else {
            panic!("expired")
        };
        cache.end_probe(&id);
        assert!(!is_denied(cache.lookup(&b)));
    }

    /// An admission that takes the last unit is cached as the refusal the next call would
    /// get, until one unit is free again.
    #[test]
    fn last_unit_admission_caches_the_next_refusal() {
        let t = Limit {
            name: "t".into(),
            kind: LimitKind::Throttle(GcraLimit::per_second(1000.0, 2).unwrap()),
        };
        let b = batch(vec![t], 1);
        let now = 1_800_000_000_000_000;
        let o = evaluate_batch(&b, now, |_| Some(StoredValue::Tat(now + 1_000))).outcome;
        assert!(o.admitted && o.statuses[0].remaining == 0);
        let cache = DenyCache::new();
        cache.record(identity(&b), cache.epoch(), &b, &o);
        let Lookup::Denied(d) = cache.lookup(&b) else {
            panic!("the next call is known to be refused")
        };
        assert!(!d.admitted && !d.statuses[0].allowed);
        assert!(d.statuses[0].retry_after_us > 0 && d.statuses[0].retry_after_us <= 1_000);
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            !is_denied(cache.lookup(&b)),
            "a unit is free after one interval"
        );
    }

    /// A cached throttle denial answers a call of a higher cost with that cost's retry time
    /// (what the store would say), and a cost above the burst with none.
    #[test]
    fn answers_each_cost_with_its_own_retry() {
        let t = Limit {
            name: "t".into(),
            kind: LimitKind::Throttle(GcraLimit::per_second(1.0, 5).unwrap()),
        };
        let now = 1_800_000_000_000_000;
        let drained = |_: &str| Some(StoredValue::Tat(now + 5_000_000));
        let one = batch(vec![t.clone()], 1);
        let o = evaluate_batch(&one, now, drained).outcome;
        let cache = DenyCache::new();
        cache.record(identity(&one), cache.epoch(), &one, &o);
        let three = batch(vec![t.clone()], 3);
        let Lookup::Denied(hit) = cache.lookup(&three) else {
            panic!("a cost-3 call is denied while a cost-1 call is")
        };
        let store = evaluate_batch(&three, now, drained).outcome;
        let retry = hit.statuses[0].retry_after_us;
        assert!(
            retry <= store.statuses[0].retry_after_us && retry > 2_900_000,
            "cost 3 waits three intervals, not {retry} us"
        );
        let Lookup::Denied(hit) = cache.lookup(&batch(vec![t], 6)) else {
            panic!("denied")
        };
        assert!(!hit.admitted);
        assert_eq!(
            hit.statuses[0].retry_after_us, 0,
            "no wait lets cost 6 pass"
        );
    }
}
