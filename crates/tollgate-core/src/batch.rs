//! A set of limits checked all-or-nothing, and the reference evaluation of it.
//!
//! [`evaluate_batch`] is the semantics every store must have: every limit is evaluated in
//! order against the stored state (a limit named twice sees the first one's pending use),
//! and only if all admit are their writes returned. A refused request consumes nothing, so
//! its answer reports every limit as it stands (as a cost-0 read would), never as if the
//! cost had been taken from the limits that would have admitted it. The memory store applies those writes
//! under one lock; the Redis store runs `check.lua`, the same steps in Lua, inside one
//! script call. The behavioural test suite holds both to the same results.
//!
//! [`evaluate_all`] extends this to several batches under different hash tags, checked
//! all-or-nothing together (one Envoy rate-limit request with several descriptors): each
//! batch is evaluated as above, in order, seeing the pending use of the batches before it
//! that admitted; the request is admitted only if every batch that is not in shadow mode
//! admits, and then every batch that admitted is committed. `check.lua` is its twin too.

use crate::calendar::day_id;
use crate::gcra::{self, GcraLimit};
use crate::quota::{self, QuotaLimit, QuotaState};
use std::borrow::Cow;
use std::collections::HashMap;

/// How long a quota record outlives its period, so late readers still see the final count.
pub const QUOTA_RETENTION_S: i64 = 86_400;

/// Which algorithm a limit uses, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitKind {
    /// A GCRA throttle.
    Throttle(GcraLimit),
    /// A calendar-period quota.
    Quota(QuotaLimit),
}

/// One limit of a batch, stored under `name` within the batch's hash tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Name of the limit's state within the batch's tag, e.g. `t`, `q`, `t:/pets/GET`;
    /// borrowed for the fixed names, so most checks allocate none.
    pub name: Cow<'static, str>,
    /// The algorithm and its parameters.
    pub kind: LimitKind,
}

/// The limits of one check, all stored under one hash tag so one atomic step covers them.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitBatch {
    /// The tag shared by every state of this batch, e.g. `<plan id>:<key id>`.
    pub tag: String,
    /// The limits, all of which must admit.
    pub limits: Vec<Limit>,
    /// Units to consume; 0 reads only.
    pub cost: u64,
    /// Days to keep the per-day usage record of this tag; `None` records no usage.
    pub usage_retention_days: Option<u32>,
}

/// The result for one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    /// Whether this limit admitted the request.
    pub allowed: bool,
    /// The limit: burst for a throttle, the period's limit for a quota.
    pub limit: u64,
    /// Units left right after this check (nothing is taken when the request is refused).
    pub remaining: u64,
    /// When denied, how long until a request of this cost could pass; 0 when admitted, and
    /// 0 when denied by a limit no wait can satisfy (the cost exceeds a throttle's burst or
    /// a quota's limit per period).
    pub retry_after_us: u64,
    /// How long until the limit is fully available again (throttle) or the period ends (quota).
    pub reset_after_us: u64,
    /// Units used in the current period (quota); 0 for a throttle.
    pub used: i64,
}

impl LimitStatus {
    /// Denied by a limit no wait can satisfy, which the store reports with no retry time:
    /// such a refusal names no `Retry-After` (see [`crate::headers`]).
    pub fn no_wait_passes(&self) -> bool {
        !self.allowed && self.retry_after_us == 0
    }

    /// How long until what an answer announces: a denied request's retry time, else (an
    /// admission, or a denial no wait cures) the time until the limit is whole again.
    pub fn wait_us(&self) -> u64 {
        if self.allowed || self.no_wait_passes() {
            self.reset_after_us
        } else {
            self.retry_after_us
        }
    }
}

/// The result for a whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Whether every limit admitted the request (and so its cost was consumed).
    pub admitted: bool,
    /// The store's clock at the check, in Unix microseconds.
    pub now_us: i64,
    /// One status per limit, in batch order.
    pub statuses: Vec<LimitStatus>,
}

impl BatchOutcome {
    /// Index of the first limit that denied the request.
    pub fn denied_by(&self) -> Option<usize> {
        self.statuses.iter().position(|s| !s.allowed)
    }
}

/// The stored state of one limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    /// A throttle's theoretical arrival time, Unix microseconds.
    Tat(i64),
    /// A quota's period and use.
    Quota(QuotaState),
}

/// A write a store must apply, atomically with the others of the same batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// Replace the state `name` and let it expire at `expire_at_us`.
    Set {
        /// Name within the tag.
        name: String,
        /// New value.
        value: StoredValue,
        /// Unix microseconds after which the state is worthless.
        expire_at_us: i64,
    },
    /// Add `units` to the day `day` (`YYYYMMDD`) of the usage record.
    Usage {
        /// Day id.
        day: String,
        /// Units to add.
        units: u64,
        /// Unix microseconds after which the record may go (retention from now).
        expire_at_us: i64,
    },
}

/// An evaluated batch: what to answer, and what to write if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEvaluation {
    /// The answer.
    pub outcome: BatchOutcome,
    /// Writes to apply; empty unless admitted with a cost above 0.
    pub writes: Vec<StateWrite>,
}

/// The stored value `status` implies for `limit` at `now_us`, the inverse of an
/// evaluation: a throttle's TAT from its reset time (none when idle), a quota's use and
/// grant from its use and limit in force. For answering later checks of the same state in
/// process (the server's deny cache) exactly as the store would.
pub fn implied_state(limit: &Limit, status: &LimitStatus, now_us: i64) -> Option<StoredValue> {
    match &limit.kind {
        LimitKind::Throttle(_) => (status.reset_after_us > 0)
            .then(|| StoredValue::Tat(now_us.saturating_add(status.reset_after_us as i64))),
        LimitKind::Quota(q) => {
            let current = crate::calendar::window(q.period, now_us.div_euclid(1_000_000));
            let grant = status.limit as i64 - q.effective_limit(&current) as i64;
            Some(StoredValue::Quota(QuotaState {
                period_id: current.id,
                used: status.used,
                grant,
            }))
        }
    }
}

/// Evaluates `batch` at `now_us`, reading stored state through `read`.
pub fn evaluate_batch(
    batch: &LimitBatch,
    now_us: i64,
    mut read: impl FnMut(&str) -> Option<StoredValue>,
) -> BatchEvaluation {
    let e = evaluate_limits(batch, now_us, &mut |name| read(name));
    let admitted = e.statuses.iter().all(|s| s.allowed);
    BatchEvaluation {
        outcome: BatchOutcome {
            admitted,
            now_us,
            statuses: if admitted { e.statuses } else { e.as_is },
        },
        writes: if admitted { e.writes } else { Vec::new() },
    }
}

/// One batch of a multi-batch check, and whether its refusal blocks the others.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPart {
    /// The limits, under their own hash tag.
    pub batch: LimitBatch,
    /// A shadow batch is evaluated and reported, and consumed with the request when it
    /// admits, but its refusal blocks nothing (Envoy's `shadow_mode`).
    pub shadow: bool,
}

/// The result of a multi-batch check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiOutcome {
    /// Whether every batch not in shadow mode admitted (and so the request was committed).
    pub admitted: bool,
    /// The store's clock at the check, in Unix microseconds.
    pub now_us: i64,
    /// One outcome per batch, in order; each batch's `admitted` says whether all of its own
    /// limits admitted.
    pub parts: Vec<BatchOutcome>,
}

/// An evaluated multi-batch check: what to answer, and what to write per batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiEvaluation {
    /// The answer.
    pub outcome: MultiOutcome,
    /// Writes to apply under each batch's tag, aligned with the batches; all empty unless
    /// the request was admitted.
    pub writes: Vec<Vec<StateWrite>>,
}

/// Evaluates `parts` together at `now_us`, reading stored state through `read(tag, name)`.
///
/// Each batch sees the pending use of the earlier batches that admitted (the same state in
/// two descriptors counts twice); a batch that refused leaves no pending use behind. The
/// request is admitted when every non-shadow batch admits; then each batch that admitted
/// commits its writes, and a batch that refused (necessarily a shadow one) writes nothing
/// and reports its limits as the earlier batches left them. A refused request reports every
/// limit as stored, since nothing at all is written.
pub fn evaluate_all(
    parts: &[BatchPart],
    now_us: i64,
    mut read: impl FnMut(&str, &str) -> Option<StoredValue>,
) -> MultiEvaluation {
    let mut pending: HashMap<(String, String), StoredValue> = HashMap::new();
    let mut outcomes = Vec::with_capacity(parts.len());
    let mut writes = Vec::with_capacity(parts.len());
    for part in parts {
        let tag = part.batch.tag.as_str();
        let e = evaluate_limits(&part.batch, now_us, &mut |name| match pending
            .get(&(tag.to_owned(), name.to_owned()))
        {
            Some(v) => Some(v.clone()),
            None => read(tag, name),
        });
        let allowed = e.statuses.iter().all(|s| s.allowed);
        if allowed {
            for w in &e.writes {
                if let StateWrite::Set { name, value, .. } = w {
                    pending.insert((tag.to_owned(), name.clone()), value.clone());
                }
            }
        }
        outcomes.push(BatchOutcome {
            admitted: allowed,
            now_us,
            statuses: if allowed { e.statuses } else { e.as_is },
        });
        writes.push(if allowed { e.writes } else { Vec::new() });
    }
    let admitted = parts
        .iter()
        .zip(&outcomes)
        .all(|(p, o)| p.shadow || o.admitted);
    if !admitted {
        writes.iter_mut().for_each(Vec::clear);
        // Nothing is written, so every limit stands as stored: report it so, not as the
        // pending use of the earlier batches left it. Only refusals pay for these reads.
        for (part, outcome) in parts.iter().zip(&mut outcomes) {
            let tag = part.batch.tag.as_str();
            for (limit, status) in part.batch.limits.iter().zip(&mut outcome.statuses) {
                *status = as_is(limit, read(tag, &limit.name), now_us, *status);
            }
        }
    }
    MultiEvaluation {
        outcome: MultiOutcome {
            admitted,
            now_us,
            parts: outcomes,
        },
        writes,
    }
}

/// The limits of one batch, evaluated.
struct Evaluated {
    /// Per limit, as it stands if the batch commits.
    statuses: Vec<LimitStatus>,
    /// Per limit, the same decision with the state as the batch found it (before any of its
    /// own use): what to report when the batch does not commit.
    as_is: Vec<LimitStatus>,
    /// The writes that admitting the batch would make.
    writes: Vec<StateWrite>,
}

/// `decided` with the remaining, reset and use of `limit` read from `stored` at `now_us`
/// with nothing taken (a cost-0 evaluation); its decision and retry time are kept.
fn as_is(
    limit: &Limit,
    stored: Option<StoredValue>,
    now_us: i64,
    decided: LimitStatus,
) -> LimitStatus {
    let (remaining, reset_after_us, used, limit_now) = match &limit.kind {
        LimitKind::Throttle(g) => {
            let tat = match stored {
                Some(StoredValue::Tat(t)) => Some(t),
                _ => None,
            };
            let o = gcra::evaluate(g, tat, now_us, 0);
            (o.remaining, o.reset_after_us, 0, g.burst())
        }
        LimitKind::Quota(q) => {
            let state = match stored {
                Some(StoredValue::Quota(s)) => Some(s),
                _ => None,
            };
            let o = quota::evaluate(q, state.as_ref(), now_us.div_euclid(1_000_000), 0);
            (o.remaining, decided.reset_after_us, o.used, o.limit)
        }
    };
    LimitStatus {
        remaining,
        reset_after_us,
        used,
        limit: limit_now,
        ..decided
    }
}

/// Evaluates the limits of one batch in order, a limit named twice seeing the first one's
/// pending use; returns the statuses, the same as found before the batch's own use, and
/// the writes that admitting the batch would make (the usage record included), which the
/// caller keeps only if it admits.
fn evaluate_limits(
    batch: &LimitBatch,
    now_us: i64,
    read: &mut dyn FnMut(&str) -> Option<StoredValue>,
) -> Evaluated {
    let now_s = now_us.div_euclid(1_000_000);
    let mut pending: HashMap<&str, StoredValue> = HashMap::new();
    let mut statuses = Vec::with_capacity(batch.limits.len());
    let mut writes = Vec::new();
    for limit in &batch.limits {
        let stored = match pending.get(limit.name.as_ref()) {
            Some(v) => Some(v.clone()),
            None => read(&limit.name),
        };
        match &limit.kind {
            LimitKind::Throttle(g) => {
                let tat = match stored {
                    Some(StoredValue::Tat(t)) => Some(t),
                    _ => None,
                };
                let o = gcra::evaluate(g, tat, now_us, batch.cost);
                if let Some(new_tat) = o.new_tat_us {
                    pending.insert(&limit.name, StoredValue::Tat(new_tat));
                    writes.push(StateWrite::Set {
                        name: limit.name.to_string(),
                        value: StoredValue::Tat(new_tat),
                        expire_at_us: new_tat,
                    });
                }
                statuses.push(LimitStatus {
                    allowed: o.allowed,
                    limit: g.burst(),
                    remaining: o.remaining,
                    retry_after_us: o.retry_after_us,
                    reset_after_us: o.reset_after_us,
                    used: 0,
                });
            }
            LimitKind::Quota(q) => {
                let state = match stored {
                    Some(StoredValue::Quota(s)) => Some(s),
                    _ => None,
                };
                let o = quota::evaluate(q, state.as_ref(), now_s, batch.cost);
                let reset_after_us = (o.window.end_s * 1_000_000 - now_us).max(0) as u64;
                if let Some(s) = o.new_state {
                    pending.insert(&limit.name, StoredValue::Quota(s.clone()));
                    writes.push(StateWrite::Set {
                        name: limit.name.to_string(),
                        value: StoredValue::Quota(s),
                        expire_at_us: (o.window.end_s + QUOTA_RETENTION_S) * 1_000_000,
                    });
                }
                // A cost above the plan's limit fails in the next period too: no retry time.
                let retry_after_us = if o.allowed || quota::never_passes(q, batch.cost) {
                    0
                } else {
                    reset_after_us
                };
                statuses.push(LimitStatus {
                    allowed: o.allowed,
                    limit: o.limit,
                    remaining: o.remaining,
                    retry_after_us,
                    reset_after_us,
                    used: o.used,
                });
            }
        }
    }
    let admitted = statuses.iter().all(|s| s.allowed);
    let as_is_statuses = if admitted {
        // Not reported when the batch commits; spare the work on the hot path.
        Vec::new()
    } else {
        batch
            .limits
            .iter()
            .zip(&statuses)
            // Read again rather than kept from above: nothing is written yet, so `read`
            // still gives the state the batch found, and an admitted check keeps no copies.
            .map(|(l, s)| as_is(l, read(&l.name), now_us, *s))
            .collect()
    };
    if !admitted || batch.cost == 0 {
        writes.clear();
    } else if let Some(days) = batch.usage_retention_days {
        writes.push(StateWrite::Usage {
            day: day_id(now_s),
            units: batch.cost,
            expire_at_us: now_us + i64::from(days) * 86_400 * 1_000_000,
        });
    }
    Evaluated {
        statuses,
        as_is: as_is_statuses,
        writes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::QuotaPeriod;

    fn batch(cost: u64) -> LimitBatch {
        LimitBatch {
            tag: "p:k".into(),
            limits: vec![
                Limit {
                    name: "t".into(),
                    kind: LimitKind::Throttle(GcraLimit::per_second(1.0, 5).unwrap()),
                },
                Limit {
                    name: "q".into(),
                    kind: LimitKind::Quota(QuotaLimit {
                        limit: 2,
                        period: QuotaPeriod::Day,
                        offset: 0,
                        anchor_s: 0,
                    }),
                },
            ],
            cost,
            usage_retention_days: Some(90),
        }
    }

    /// A request denied by the quota writes nothing, not even to the throttle it passed.
    #[test]
    fn denied_writes_nothing() {
        let stored = StoredValue::Quota(QuotaState {
            period_id: crate::calendar::window(QuotaPeriod::Day, 1_800_000_000).id,
            used: 2,
            grant: 0,
        });
        let e = evaluate_batch(&batch(1), 1_800_000_000_000_000, |n| {
            (n == "q").then(|| stored.clone())
        });
        assert!(!e.outcome.admitted);
        assert!(e.outcome.statuses[0].allowed);
        assert_eq!(e.outcome.denied_by(), Some(1));
        assert!(e.writes.is_empty());
    }

    /// A request refused by the throttle reports the quota it would have used as it stands,
    /// nothing taken, as a cost-0 read does.
    #[test]
    fn refused_reports_limits_as_they_stand() {
        let tat = StoredValue::Tat(NOW + 4_500_000);
        let e = evaluate_batch(&batch(1), NOW, |n| (n == "t").then(|| tat.clone()));
        assert!(!e.outcome.admitted && e.outcome.statuses[1].allowed);
        let peek = evaluate_batch(&batch(0), NOW, |n| (n == "t").then(|| tat.clone()));
        assert_eq!(e.outcome.statuses[1], peek.outcome.statuses[1]);
        assert_eq!(
            (e.outcome.statuses[1].used, e.outcome.statuses[1].remaining),
            (0, 2)
        );
        // A cost above the burst can never pass: denied with no retry time, the throttle
        // reported as it stands (idle: the whole burst).
        let e = evaluate_batch(&batch(6), NOW, |_| None);
        let t = e.outcome.statuses[0];
        assert!(!t.allowed);
        assert_eq!((t.remaining, t.retry_after_us, t.reset_after_us), (5, 0, 0));
        assert_eq!(e.outcome.statuses[1].used, 0);
    }

    /// A limit named twice in a refused batch reports the stored state for both.
    #[test]
    fn refused_twice_named_reports_stored_state() {
        let mut b = batch(1);
        b.limits = vec![b.limits[1].clone(), b.limits[1].clone()];
        let one = StoredValue::Quota(QuotaState {
            period_id: crate::calendar::window(QuotaPeriod::Day, NOW / 1_000_000).id,
            used: 1,
            grant: 0,
        });
        let e = evaluate_batch(&b, NOW, |_| Some(one.clone()));
        assert!(!e.outcome.admitted);
        let used: Vec<i64> = e.outcome.statuses.iter().map(|s| s.used).collect();
        assert_eq!(used, vec![1, 1]);
    }

    /// A multi-batch request refused by a later batch reports the earlier, admitting batch
    /// as stored, not as its pending use left it.
    #[test]
    fn refused_request_reports_every_batch_as_stored() {
        let parts = [quota_part("a", 5, 2, false), quota_part("a", 1, 2, false)];
        let e = evaluate_all(&parts, NOW, |_, _| None);
        assert!(!e.outcome.admitted && e.outcome.parts[0].admitted);
        assert_eq!(e.outcome.parts[0].statuses[0].used, 0);
        assert_eq!(e.outcome.parts[0].statuses[0].remaining, 5);
        assert_eq!(e.outcome.parts[1].statuses[0].used, 0);
        // A cost above a quota's limit per period is denied with no retry time.
        assert_eq!(e.outcome.parts[1].statuses[0].retry_after_us, 0);
    }

    /// An admitted request writes every limit and the day's usage.
    #[test]
    fn admitted_writes_all() {
        let e = evaluate_batch(&batch(2), 1_800_000_000_000_000, |_| None);
        assert!(e.outcome.admitted);
        assert_eq!(e.writes.len(), 3);
        assert!(matches!(&e.writes[2], StateWrite::Usage { units: 2, .. }));
    }

    fn quota_part(tag: &str, limit: u64, cost: u64, shadow: bool) -> BatchPart {
        BatchPart {
            batch: LimitBatch {
                tag: tag.into(),
                limits: vec![Limit {
                    name: "q".into(),
                    kind: LimitKind::Quota(QuotaLimit {
                        limit,
                        period: QuotaPeriod::Day,
                        offset: 0,
                        anchor_s: 0,
                    }),
                }],
                cost,
                usage_retention_days: None,
            },
            shadow,
        }
    }

    const NOW: i64 = 1_800_000_000_000_000;

    /// Several batches admit together and each commits under its own tag.
    #[test]
    fn all_batches_admit_together() {
        let parts = [quota_part("a", 2, 1, false), quota_part("b", 2, 2, false)];
        let e = evaluate_all(&parts, NOW, |_, _| None);
        assert!(e.outcome.admitted);
        assert_eq!(e.outcome.parts[1].statuses[0].used, 2);
        assert_eq!((e.writes[0].len(), e.writes[1].len()), (1, 1));
    }

    /// One refusing batch refuses the request, and no batch writes anything.
    #[test]
    fn one_refusal_writes_nothing_anywhere() {
        let parts = [quota_part("a", 2, 1, false), quota_part("b", 1, 2, false)];
        let e = evaluate_all(&parts, NOW, |_, _| None);
        assert!(!e.outcome.admitted);
        assert!(e.outcome.parts[0].admitted && !e.outcome.parts[1].admitted);
        assert!(e.writes.iter().all(Vec::is_empty));
    }

    /// A shadow batch's refusal blocks nothing; it writes nothing itself, the others commit.
    #[test]
    fn shadow_refusal_blocks_nothing() {
        let parts = [quota_part("a", 1, 2, true), quota_part("b", 5, 1, false)];
        let e = evaluate_all(&parts, NOW, |_, _| None);
        assert!(e.outcome.admitted);
        assert!(!e.outcome.parts[0].admitted);
        assert!(e.writes[0].is_empty() && e.writes[1].len() == 1);
    }

    /// The same state in two batches counts twice; a refused batch leaves no pending use.
    #[test]
    fn pending_use_across_batches() {
        let parts = [quota_part("a", 3, 2, false), quota_part("a", 3, 1, false)];
        let e = evaluate_all(&parts, NOW, |_, _| None);
        assert!(e.outcome.admitted);
        assert_eq!(e.outcome.parts[1].statuses[0].used, 3);
        let parts = [quota_part("a", 1, 2, true), quota_part("a", 1, 1, false)];
        let e = evaluate_all(&parts, NOW, |_, _| None);
        assert!(e.outcome.admitted, "the shadow refusal used nothing");
        assert_eq!(e.outcome.parts[1].statuses[0].used, 1);
    }

    /// One batch evaluated alone or as the only part of a multi-batch check answers alike.
    #[test]
    fn single_part_matches_evaluate_batch() {
        let one = evaluate_batch(&batch(1), NOW, |_| None);
        let all = evaluate_all(
            &[BatchPart {
                batch: batch(1),
                shadow: false,
            }],
            NOW,
            |_, _| None,
        );
        assert_eq!(all.outcome.parts[0], one.outcome);
        assert_eq!(all.writes[0], one.writes);
    }

    /// A limit named twice sees the first one's pending use.
    #[test]
    fn same_name_twice_counts_twice() {
        let mut b = batch(1);
        b.limits[0] = b.limits[1].clone();
        let e = evaluate_batch(&b, 1_800_000_000_000_000, |_| None);
        assert_eq!(e.outcome.statuses[1].used, 2);
    }
}
