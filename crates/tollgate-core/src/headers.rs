//! The IETF `RateLimit-*` headers and `Retry-After` of a decision.
//!
//! The fields follow draft-ietf-httpapi-ratelimit-headers: `RateLimit-Limit` is the
//! limit in force, `RateLimit-Remaining` what is left, `RateLimit-Reset` the seconds until
//! it is available again. A check under several limits shows the one that denied it, or else
//! the one closest to running out, as the draft recommends.

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

/// Builds the headers for the limit `shown`, plus `Retry-After` when given.
///
/// A check refused before any limit applied (bad key, store down) reports a limit of 0, so
/// every answer carries the three fields.
pub fn ratelimit_headers(shown: Option<&LimitStatus>, retry_after_s: Option<u64>) -> Vec<Header> {
    let (limit, remaining, reset_s) = match shown {
        Some(s) => {
            let wait = if s.allowed {
                s.reset_after_us
            } else {
                s.retry_after_us
            };
            (s.limit, s.remaining, wait.div_ceil(1_000_000))
        }
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
}
