//! The IETF `RateLimit-*` headers and `Retry-After` of a decision.
//!
//! The fields follow draft-ietf-httpapi-ratelimit-headers: `RateLimit-Limit` is the
//! limit in force, `RateLimit-Remaining` what is left, `RateLimit-Reset` the seconds until
//! it is available again. A check under several limits shows the one that denied it, or else
//! the one closest to running out, as the draft recommends.
//!
//! A refusal no wait can cure (a cost above the throttle's burst or the quota's limit per
//! period, which the store reports as a denial with no retry time) gets no `Retry-After`:
//! RFC 9110 makes the field optional, and any value would invite a retry that must fail
//! again. It keeps its 429 (the proto's verdicts are the contract) and its `RateLimit-Reset`
//! says when the limit is whole again, which is all that is true to say of it.

use crate::batch::LimitStatus;

/// One response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: &'static str,
    /// Header value.
    pub value: String,
}

/// Name of the limit header.
pub const RATELIMIT_LIMIT: &str = "RateLimit-Limit";
/// Name of the remaining header.
pub const RATELIMIT_REMAINING: &str = "RateLimit-Remaining";
/// Name of the reset header.
pub const RATELIMIT_RESET: &str = "RateLimit-Reset";
/// Name of the retry header, sent on 429.
pub const RETRY_AFTER: &str = "Retry-After";

/// The `Retry-After` seconds of a denied limit: its retry time rounded up, at least 1; `None`
/// when no wait lets the call pass (see the module docs).
pub fn retry_after_s(denied: &LimitStatus) -> Option<u64> {
    (denied.retry_after_us > 0).then(|| denied.retry_after_us.div_ceil(1_000_000).max(1))
}

/// Builds the headers for the limit `shown`, plus `Retry-After` when given (see
/// [`retry_after_s`]).
///
/// A check refused before any limit applied (bad key, store down) reports a limit of 0, so
/// every refusal carries the three fields.
pub fn ratelimit_headers(shown: Option<&LimitStatus>, retry_after_s: Option<u64>) -> Vec<Header> {
    let (limit, remaining, reset_s) = match shown {
        Some(s) => (s.limit, s.remaining, s.wait_us().div_ceil(1_000_000)),
        None => (0, 0, 0),
    };
    let mut h = vec![
        Header {
            name: RATELIMIT_LIMIT,
            value: limit.to_string(),
        },
        Header {
            name: RATELIMIT_REMAINING,
            value: remaining.to_string(),
        },
        Header {
            name: RATELIMIT_RESET,
            value: reset_s.to_string(),
        },
    ];
    if let Some(r) = retry_after_s {
        h.push(Header {
            name: RETRY_AFTER,
            value: r.to_string(),
        });
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A denied limit shows its retry time as the reset, rounded up, and adds Retry-After.
    #[test]
    fn denied_limit_headers() {
        let s = LimitStatus {
            allowed: false,
            limit: 5,
            remaining: 0,
            retry_after_us: 1_200_000,
            reset_after_us: 9_000_000,
            used: 5,
        };
        let h = ratelimit_headers(Some(&s), Some(2));
        let v: Vec<_> = h.iter().map(|h| (h.name, h.value.as_str())).collect();
        assert_eq!(
            v,
            vec![
                ("RateLimit-Limit", "5"),
                ("RateLimit-Remaining", "0"),
                ("RateLimit-Reset", "2"),
                ("Retry-After", "2")
            ]
        );
    }

    /// A denial no wait can cure has no Retry-After, and its reset is the limit's own.
    #[test]
    fn hopeless_denial_has_no_retry_after() {
        let s = LimitStatus {
            allowed: false,
            limit: 5,
            remaining: 3,
            retry_after_us: 0,
            reset_after_us: 1_500_000,
            used: 0,
        };
        assert_eq!(retry_after_s(&s), None);
        let h = ratelimit_headers(Some(&s), retry_after_s(&s));
        let v: Vec<_> = h.iter().map(|h| (h.name, h.value.as_str())).collect();
        assert_eq!(
            v,
            vec![
                ("RateLimit-Limit", "5"),
                ("RateLimit-Remaining", "3"),
                ("RateLimit-Reset", "2"),
            ]
        );
    }
}
