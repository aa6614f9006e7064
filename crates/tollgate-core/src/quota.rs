//! Quotas: units counted per calendar period, with the first-period offset.
//!
//! The stored state is the id of the period it counts for and the units used in it. A state
//! of an older period counts as zero, so a period rolls over without anyone resetting it.
//! An operator may set the remaining units of the current period (AWS UpdateUsage). That
//! is kept apart from the use, as a `grant` added to this period's limit, so that `used`
//! stays what was consumed (what the usage report counts) and the limit an answer shows
//! always covers `used + remaining`.

use crate::calendar::{window, PeriodWindow, QuotaPeriod};
use crate::check::MAX_COST;

/// Largest quota limit of a plan, and largest remaining quota an operator may set for a
/// period (AWS UpdateUsage): 2^52.
///
/// Why this bound: the Redis check script works in Lua numbers, doubles that are exact only up
/// to 2^53. A grant sets the limit in force to the period's use plus the remaining asked for
/// (at most 2^52), and nothing is counted past the limit in force, so `used`, `used + cost`
/// and `limit - used` stay exact until a period has really consumed 2^52 units. A larger limit
/// is silently rounded there (and one near 2^63 reads back as 0), so every store refuses it
/// rather than enforce it wrongly.
/// AWS's own quota limit is a 32-bit integer; this bound is far above it, so nothing an AWS
/// client sends is refused.
pub const MAX_QUOTA: u64 = 1 << 52;

// The reasoning above, checked: the largest limit with the largest grant on top, and a cost
// on top of the largest limit, are still exact in doubles.
const _: () = assert!(MAX_QUOTA + MAX_QUOTA <= 1 << 53 && MAX_QUOTA + MAX_COST <= 1 << 53);

/// A quota limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaLimit {
    /// Units allowed per period.
    pub limit: u64,
    /// The calendar period counted over.
    pub period: QuotaPeriod,
    /// Units subtracted from the limit in the first period.
    pub offset: u64,
    /// A Unix second inside the first period (when the plan's quota took effect).
    pub anchor_s: i64,
}

impl QuotaLimit {
    /// The limit in force in `window`: the offset applies in the anchor's period only.
    pub fn effective_limit(&self, current: &PeriodWindow) -> u64 {
        if self.offset > 0 && window(self.period, self.anchor_s).id == current.id {
            self.limit.saturating_sub(self.offset)
        } else {
            self.limit
        }
    }
}

/// The stored state of one quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaState {
    /// The period this state counts for.
    pub period_id: String,
    /// Units consumed in that period.
    pub used: i64,
    /// Units an operator added to (or, negative, took from) that period's limit.
    pub grant: i64,
}

/// What one quota evaluation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaOutcome {
    /// Whether a request of this cost (at least 1 when peeking) may pass.
    pub allowed: bool,
    /// The state to store if committed; `None` when nothing is to be written.
    pub new_state: Option<QuotaState>,
    /// The limit in force this period, the operator's grant included.
    pub limit: u64,
    /// Units used this period, after this request if committed.
    pub used: i64,
    /// Units left this period.
    pub remaining: u64,
    /// The current period.
    pub window: PeriodWindow,
}

/// Evaluates a request of `cost` against `quota` at `now_s`, given the stored state.
///
/// A denial whose cost exceeds the plan's limit per period (no grant counted) can pass in
/// no later period either; the caller reports it with no retry time (see
/// [`crate::headers`]).
pub fn evaluate(
    quota: &QuotaLimit,
    stored: Option<&QuotaState>,
    now_s: i64,
    cost: u64,
) -> QuotaOutcome {
    let current = window(quota.period, now_s);
    let (used, grant) = stored
        .filter(|s| s.period_id == current.id)
        .map_or((0, 0), |s| (s.used, s.grant));
    let limit = limit_with_grant(quota.effective_limit(&current), grant);
    let need = cost.max(1) as i64;
    let allowed = used.saturating_add(need) <= limit as i64;
    let used_after = if allowed && cost > 0 {
        used + cost as i64
    } else {
        used
    };
    QuotaOutcome {
        allowed,
        new_state: (allowed && cost > 0).then(|| QuotaState {
            period_id: current.id.clone(),
            used: used_after,
            grant,
        }),
        limit,
        used: used_after,
        remaining: (limit as i64 - used_after).max(0) as u64,
        window: current,
    }
}

/// The limit in force with an operator's `grant`: never below 0.
pub fn limit_with_grant(limit: u64, grant: i64) -> u64 {
    (limit as i64).saturating_add(grant).max(0) as u64
}

/// Whether a request of `cost` can pass in no period at all: above the plan's full limit.
pub fn never_passes(quota: &QuotaLimit, cost: u64) -> bool {
    cost.max(1) > quota.limit
}

/// The state that leaves `remaining` units in the current period (AWS UpdateUsage), given
/// the stored one: the use this period is kept, and the grant makes up the difference.
pub fn state_with_remaining(
    quota: &QuotaLimit,
    stored: Option<&QuotaState>,
    now_s: i64,
    remaining: u64,
) -> QuotaState {
    let current = window(quota.period, now_s);
    let limit = quota.effective_limit(&current) as i64;
    let used = stored
        .filter(|s| s.period_id == current.id)
        .map_or(0, |s| s.used);
    QuotaState {
        used,
        grant: (remaining.min(i64::MAX as u64) as i64)
            .saturating_add(used)
            .saturating_sub(limit),
        period_id: current.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::days_from_civil;

    fn day(y: i64, m: i64, d: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400
    }

    /// The limit holds within a period and a new period starts from zero.
    #[test]
    fn counts_per_period_and_rolls_over() {
        let q = QuotaLimit {
            limit: 2,
            period: QuotaPeriod::Day,
            offset: 0,
            anchor_s: 0,
        };
        let t = day(2026, 11, 26) + 10;
        let a = evaluate(&q, None, t, 1);
        let b = evaluate(&q, a.new_state.as_ref(), t, 1);
        let c = evaluate(&q, b.new_state.as_ref(), t, 1);
        assert!(a.allowed && b.allowed && !c.allowed);
        assert_eq!((c.used, c.remaining), (2, 0));
        let next = evaluate(&q, b.new_state.as_ref(), day(2026, 11, 27), 1);
        assert!(next.allowed);
        assert_eq!(next.used, 1);
    }

    /// The offset reduces the limit in the anchor's period only.
    #[test]
    fn offset_in_first_period_only() {
        let q = QuotaLimit {
            limit: 10,
            period: QuotaPeriod::Month,
            offset: 4,
            anchor_s: day(2026, 11, 3),
        };
        assert_eq!(evaluate(&q, None, day(2026, 11, 30), 0).limit, 6);
        assert_eq!(evaluate(&q, None, day(2026, 12, 1), 0).limit, 10);
    }

    /// A grant beyond the limit is kept as negative use and honoured.
    #[test]
    fn grant_beyond_limit() {
        let q = QuotaLimit {
            limit: 5,
            period: QuotaPeriod::Day,
            offset: 0,
            anchor_s: 0,
        };
        let t = day(2026, 11, 26);
        let two = evaluate(&q, None, t, 2).new_state;
        let s = state_with_remaining(&q, two.as_ref(), t, 8);
        assert_eq!((s.used, s.grant), (2, 5));
        let peek = evaluate(&q, Some(&s), t, 0);
        assert_eq!((peek.limit, peek.used, peek.remaining), (10, 2, 8));
        let o = evaluate(&q, Some(&s), t, 8);
        assert!(o.allowed);
        assert_eq!((o.limit, o.used, o.remaining), (10, 10, 0));
        let next = evaluate(&q, o.new_state.as_ref(), day(2026, 11, 27), 0);
        assert_eq!(
            (next.limit, next.used),
            (5, 0),
            "a grant ends with its period"
        );
    }
}
