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
//! Control-plane records all share the one hash tag `{cat}`, so a commit that touches a plan,
//! a key and a membership at once is one atomic script on Redis Cluster too:
//!
//! | key                 | type   | holds                                         |
//! |---------------------|--------|-----------------------------------------------|
//! | `tg:{cat}:v`        | string | catalog version, bumped by every commit       |
//! | `tg:{cat}:plans`    | hash   | plan id → JSON record                         |
//! | `tg:{cat}:keys`     | hash   | API key id → JSON record (value hash only)    |
//! | `tg:{cat}:members`  | hash   | `<plan id>:<key id>` → `1`                    |
//!
//! Every commit publishes the new version on the channel `tg:{cat}:changed`. Ids hold no `:`
//! (see `tollgate_core::plan::validate_id`), so a membership field splits unambiguously.
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
    // Joined by hand, not with format!: the formatting machinery cost several times the
    // copying (callgrind).
    limit_key_pieces(tag, name).concat()
}

/// The pieces that, joined, are [`limit_key`]`(tag, name)`: for a writer that copies them
/// straight into its buffer rather than building the key first (the check call does).
pub fn limit_key_pieces<'a>(tag: &'a str, name: &'a str) -> [&'a str; 5] {
    [PREFIX, ":{", tag, "}:", name]
}

/// The name of the daily usage record within its hash tag.
pub const USAGE_NAME: &str = "u";

/// The key of the daily usage record under hash tag `tag`.
pub fn usage_key(tag: &str) -> String {
    limit_key(tag, USAGE_NAME)
}

/// Hash tag of every control-plane record.
const CATALOG_TAG: &str = "cat";

fn catalog_key(name: &str) -> String {
    format!("{PREFIX}:{{{CATALOG_TAG}}}:{name}")
}

/// The catalog version counter.
pub fn catalog_version_key() -> String {
    catalog_key("v")
}

/// The hash of usage plan records.
pub fn catalog_plans_key() -> String {
    catalog_key("plans")
}

/// The hash of API key records.
pub fn catalog_keys_key() -> String {
    catalog_key("keys")
}

/// The hash of plan memberships.
pub fn catalog_members_key() -> String {
    catalog_key("members")
}

/// The pub/sub channel every commit announces its new version on.
pub fn catalog_channel() -> String {
    catalog_key("changed")
}

/// The field of a membership in [`catalog_members_key`].
pub fn member_field(plan_id: &str, key_id: &str) -> String {
    format!("{plan_id}:{key_id}")
}

/// Splits a membership field back into `(plan id, key id)`.
pub fn split_member_field(field: &str) -> Option<(&str, &str)> {
    field.split_once(':')
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
        assert_eq!(catalog_version_key(), "tg:{cat}:v");
        assert_eq!(catalog_plans_key(), "tg:{cat}:plans");
        assert_eq!(catalog_keys_key(), "tg:{cat}:keys");
        assert_eq!(catalog_members_key(), "tg:{cat}:members");
        assert_eq!(catalog_channel(), "tg:{cat}:changed");
        assert_eq!(member_field("p1", "k1"), "p1:k1");
        assert_eq!(split_member_field("p1:k1"), Some(("p1", "k1")));
        assert_eq!(
            limit_key("rls:shop:remote_address=10.0.0.1@minute", "t"),
            "tg:{rls:shop:remote_address=10.0.0.1@minute}:t"
        );
    }
}
