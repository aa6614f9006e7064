//! Every Redis key tollgate writes, built in one place.
//!
//! Format: `tg:{<plan id>:<key id>}:<name>`. The part in braces is the Redis Cluster hash
//! tag: all state of one API key in one plan hashes to one slot, so one script call covers
//! its throttle, quota and usage atomically. Ids are validated to hold no braces.
//!
//! | name            | type   | holds                                        | expires          |
//! |-----------------|--------|----------------------------------------------|------------------|
//! | `t`             | string | plan throttle TAT, Unix µs                   | at the TAT       |
//! | `t:<api>:<stage>:/res/METHOD` | string | per-method throttle TAT      | at the TAT       |
//! | `q`             | hash   | `p` period id, `n` units used                | period end + 1 d |
//! | `u`             | hash   | `YYYYMMDD` → units admitted that day         | retention        |
//!
//! Envoy rate-limit (RLS) counters use the tag `rls:<state name>`, where the state name is
//! core's `MatchedRule::state_name` (`<domain>:<key>=<value>…@<unit>`, percent-escaped, so
//! it holds no braces): `tg:{rls:shop:remote_address=10.0.0.1@minute}:t` (a GCRA TAT for
//! second/minute/hour) or `…@day}:q` (a quota hash for day/week/month/year). Each counter
//! thus has its own tag, so on Cluster the counters of a domain spread over all slots instead
//! of making one slot hot; a request whose descriptors land on several slots is made
//! all-or-nothing by the Redis store (see `RedisStore::check_all`). A state name always holds
//! `@`, which plan and key ids never do, so the two kinds of tag cannot collide.

/// Prefix of every key.
pub const PREFIX: &str = "tg";

/// The key of the limit state `name` under hash tag `tag`.
pub fn limit_key(tag: &str, name: &str) -> String {
    format!("{PREFIX}:{{{tag}}}:{name}")
}

/// The key of the daily usage record under hash tag `tag`.
pub fn usage_key(tag: &str) -> String {
    limit_key(tag, "u")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the key format: changing it orphans every counter in production.
    #[test]
    fn key_format() {
        assert_eq!(limit_key("plan1:key1", "q"), "tg:{plan1:key1}:q");
        assert_eq!(
            limit_key("p:k", "t:api:prod:/a/{id}/GET"),
            "tg:{p:k}:t:api:prod:/a/{id}/GET"
        );
        assert_eq!(usage_key("p:k"), "tg:{p:k}:u");
        assert_eq!(
            limit_key("rls:shop:remote_address=10.0.0.1@minute", "t"),
            "tg:{rls:shop:remote_address=10.0.0.1@minute}:t"
        );
    }
}
