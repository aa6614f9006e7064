//! The check request, the verdict, and the decision a proxy acts on.

use crate::batch::{BatchOutcome, LimitStatus};
use crate::calendar::QuotaPeriod;
use crate::catalog::ResolvedCheck;
use crate::headers::{self, ratelimit_headers, Header};
use crate::CoreError;

/// Largest accepted cost of one request. Larger values are refused as bad input rather than
/// silently failing every limit, since they are almost always a unit mix-up.
pub const MAX_COST: u64 = 1_000_000;

/// A question: may this key make this call now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    /// The key value as the client sent it (never logged).
    pub api_key: String,
    /// Which API.
    pub api_id: String,
    /// Which stage of it.
    pub stage: String,
    /// Resource path, e.g. `/usageplanOffering`.
    pub resource: String,
    /// HTTP method.
    pub method: String,
    /// Units to consume; 0 reads only.
    pub cost: u64,
}

/// Turns an optional wire cost into a checked cost: absent means 1.
pub fn checked_cost(cost: Option<u64>) -> Result<u64, CoreError> {
    match cost {
        None => Ok(1),
        Some(c) if c <= MAX_COST => Ok(c),
        Some(c) => Err(CoreError::invalid(
            "cost",
            format!("must be at most {MAX_COST}, got {c}"),
        )),
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Admitted.
    Ok,
    /// Over the throttle.
    Throttled,
    /// Over the quota for this period.
    QuotaExceeded,
    /// No key was sent.
    KeyMissing,
    /// The key is unknown.
    KeyInvalid,
    /// The key is disabled.
    KeyDisabled,
    /// The key is in no plan for this API stage.
    KeyNotSubscribed,
    /// The limit store could not be reached and the policy is to refuse.
    Unavailable,
}

impl Verdict {
    /// Every verdict, in declaration order (for metrics that list them all up front).
    pub const ALL: [Verdict; 8] = [
        Verdict::Ok,
        Verdict::Throttled,
        Verdict::QuotaExceeded,
        Verdict::KeyMissing,
        Verdict::KeyInvalid,
        Verdict::KeyDisabled,
        Verdict::KeyNotSubscribed,
        Verdict::Unavailable,
    ];

    /// The HTTP status a proxy should answer with.
    pub fn http_status(self) -> u16 {
        match self {
            Verdict::Ok => 200,
            Verdict::Throttled | Verdict::QuotaExceeded => 429,
            Verdict::KeyMissing
            | Verdict::KeyInvalid
            | Verdict::KeyDisabled
            | Verdict::KeyNotSubscribed => 403,
            Verdict::Unavailable => 503,
        }
    }

    /// The message AWS API Gateway answers with for the same outcome.
    pub fn message(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Throttled => "Too Many Requests",
            Verdict::QuotaExceeded => "Limit Exceeded",
            Verdict::KeyMissing
            | Verdict::KeyInvalid
            | Verdict::KeyDisabled
            | Verdict::KeyNotSubscribed => "Forbidden",
            Verdict::Unavailable => "Service Unavailable",
        }
    }

    /// Whether the call may pass.
    pub fn is_allowed(self) -> bool {
        self == Verdict::Ok
    }
}

/// The throttle part of a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleReport {
    /// Configured rate, requests per second.
    pub rate_limit: f64,
    /// Configured burst.
    pub burst_limit: u64,
    /// Requests that could pass at once now.
    pub remaining: u64,
    /// When denied, milliseconds until this call could pass; 0 when admitted, or when
    /// denied and no wait lets a call of this cost pass (its cost exceeds the burst).
    pub retry_after_ms: u64,
    /// Milliseconds until the full burst is back.
    pub reset_after_ms: u64,
    /// The `"/resource/METHOD"` override that applied, if any.
    pub resource_method: Option<String>,
}

/// The quota part of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaReport {
    /// Limit in force this period, an operator's grant included, so `used + remaining`
    /// never exceeds it.
    pub limit: u64,
    /// Units consumed this period (as the usage report counts them).
    pub used: u64,
    /// Units left this period.
    pub remaining: u64,
    /// The period.
    pub period: QuotaPeriod,
    /// Unix milliseconds at which the next period starts.
    pub resets_at_ms: i64,
    /// Milliseconds until then.
    pub reset_after_ms: u64,
}

/// Everything a protocol adapter needs to answer a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// The plan that applied, if the key resolved.
    pub plan_id: Option<String>,
    /// The key's id, if the key resolved.
    pub key_id: Option<String>,
    /// The throttle's status, if one applied.
    pub throttle: Option<ThrottleReport>,
    /// The quota's status, if one applied.
    pub quota: Option<QuotaReport>,
    /// Seconds a denied client should wait (the `Retry-After` value), on 429 only.
    pub retry_after_s: Option<u64>,
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and, on 429, `Retry-After`;
    /// none on an admission under no known limit.
    pub headers: Vec<Header>,
}

/// The headers of an answer no limit was evaluated for. A refusal says a limit of 0: the
/// client may not call. An admission (a plan without limits, or the store down and the
/// failure mode admitting) says nothing: no limit is known, and a `RateLimit-Remaining: 0`
/// would tell a client that honours it to stop.
fn no_limit_headers(verdict: Verdict) -> Vec<Header> {
    if verdict == Verdict::Ok {
        Vec::new()
    } else {
        ratelimit_headers(None, None)
    }
}

fn ms(us: u64) -> u64 {
    us.div_ceil(1_000)
}

impl Decision {
    /// A decision made before any limit was evaluated (bad key, store down; `Ok` when the
    /// store is down and the failure mode admits).
    pub fn refused(verdict: Verdict) -> Self {
        Decision {
            verdict,
            plan_id: None,
            key_id: None,
            throttle: None,
            quota: None,
            retry_after_s: None,
            headers: no_limit_headers(verdict),
        }
    }

    /// The decision for a resolved check whose limits the store evaluated; takes the check
    /// so its ids move into the decision rather than being copied.
    pub fn from_outcome(resolved: ResolvedCheck, outcome: &BatchOutcome) -> Self {
        let status = |i: usize| outcome.statuses.get(i).copied();
        let throttle = resolved.throttle.and_then(|t| {
            status(t.index).map(|s| ThrottleReport {
                rate_limit: t.rate_limit,
                burst_limit: t.burst_limit,
                remaining: s.remaining,
                retry_after_ms: ms(s.retry_after_us),
                reset_after_ms: ms(s.reset_after_us),
                resource_method: t.resource_method,
            })
        });
        let quota = resolved.quota.and_then(|q| {
            status(q.index).map(|s| QuotaReport {
                limit: s.limit,
                used: s.used.max(0) as u64,
                remaining: s.remaining,
                period: q.period,
                resets_at_ms: (outcome.now_us + s.reset_after_us as i64).div_euclid(1_000),
                reset_after_ms: ms(s.reset_after_us),
            })
        });
        let denied = outcome.denied_by();
        let verdict = match denied {
            None => Verdict::Ok,
            Some(i) if resolved.quota.is_some_and(|q| q.index == i) => Verdict::QuotaExceeded,
            Some(_) => Verdict::Throttled,
        };
        // The headers describe the limit that denied, else the one closest to running out.
        let shown: Option<LimitStatus> = match denied {
            Some(i) => status(i),
            None => outcome.statuses.iter().copied().min_by_key(|s| s.remaining),
        };
        // None also when no wait lets this cost pass (see crate::headers): a 429 without
        // Retry-After, and retry_after_ms 0 in the reports.
        let retry_after_s = denied
            .and_then(status)
            .and_then(|s| headers::retry_after_s(&s));
        Decision {
            verdict,
            plan_id: Some(resolved.plan_id),
            key_id: Some(resolved.key_id),
            throttle,
            quota,
            retry_after_s,
            headers: match shown {
                Some(s) => ratelimit_headers(Some(&s), retry_after_s),
                None => no_limit_headers(verdict),
            },
        }
    }

    /// The HTTP status a proxy should answer with.
    pub fn http_status(&self) -> u16 {
        self.verdict.http_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An admission under no known limit carries no RateLimit fields (a Remaining of 0
    /// would tell clients to stop); a refusal before any limit says a limit of 0.
    #[test]
    fn headers_only_where_a_limit_is_known() {
        let resolved = ResolvedCheck {
            plan_id: "p".into(),
            key_id: "k".into(),
            batch: crate::batch::LimitBatch {
                tag: "p:k".into(),
                limits: Vec::new(),
                cost: 1,
                usage_retention_days: None,
            },
            throttle: None,
            quota: None,
        };
        let outcome = BatchOutcome {
            admitted: true,
            now_us: 0,
            statuses: Vec::new(),
        };
        let d = Decision::from_outcome(resolved, &outcome);
        assert_eq!((d.verdict, d.headers.len()), (Verdict::Ok, 0));
        assert!(
            Decision::refused(Verdict::Ok).headers.is_empty(),
            "failing open"
        );
        let names: Vec<_> = Decision::refused(Verdict::KeyInvalid)
            .headers
            .iter()
            .map(|h| (h.name, h.value.clone()))
            .collect();
        assert_eq!(
            names,
            [
                (headers::RATELIMIT_LIMIT, "0".to_string()),
                (headers::RATELIMIT_REMAINING, "0".to_string()),
                (headers::RATELIMIT_RESET, "0".to_string()),
            ]
        );
    }

    /// `Verdict::ALL` holds every verdict once, in order; a new variant stops this match
    /// from compiling until it is added there too.
    #[test]
    fn all_lists_every_verdict_once() {
        for (i, v) in Verdict::ALL.into_iter().enumerate() {
            let position = match v {
                Verdict::Ok => 0,
                Verdict::Throttled => 1,
                Verdict::QuotaExceeded => 2,
                Verdict::KeyMissing => 3,
                Verdict::KeyInvalid => 4,
                Verdict::KeyDisabled => 5,
                Verdict::KeyNotSubscribed => 6,
                Verdict::Unavailable => 7,
            };
            assert_eq!(i, position, "{v:?}");
        }
    }

    /// Every verdict maps to the status and message AWS uses.
    #[test]
    fn statuses_and_messages() {
        assert_eq!(
            (Verdict::Ok.http_status(), Verdict::Ok.message()),
            (200, "OK")
        );
        assert_eq!(Verdict::Throttled.http_status(), 429);
        assert_eq!(Verdict::QuotaExceeded.message(), "Limit Exceeded");
        assert_eq!(Verdict::KeyDisabled.http_status(), 403);
        assert_eq!(Verdict::Unavailable.http_status(), 503);
    }

    /// Absent cost means 1, zero reads, and huge costs are refused.
    #[test]
    fn cost_rules() {
        assert_eq!(checked_cost(None), Ok(1));
        assert_eq!(checked_cost(Some(0)), Ok(0));
        assert!(checked_cost(Some(MAX_COST + 1)).is_err());
    }
}
