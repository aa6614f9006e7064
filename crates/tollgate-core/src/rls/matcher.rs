//! Matching a request descriptor against a domain, with envoyproxy/ratelimit's semantics.
//!
//! A request descriptor is an ordered list of `(key, value)` entries. The walk takes one
//! entry per level of the tree: among the level's descriptors with the entry's key it
//! prefers the one with exactly the entry's value, else the first (in config order) whose
//! wildcard pattern (`foo*`, or a bare `*`) is a prefix of the value, else the one with no
//! value. The limit that applies is the `rate_limit` of the descriptor reached by the *last*
//! entry: if the walk stops early, or ends on a descriptor without `rate_limit`, nothing
//! applies. A request that is longer or shorter than the config path thus matches nothing.

use crate::batch::LimitKind;
use crate::rls::domain::{Level, Node, RlsDomain, ValuePattern};
use crate::rls::error::RlsConfigError;
use crate::rls::naming::{push_stats_part, state_name, NameValue};
use crate::rls::rule::RlsRule;
use crate::rls::unit::RlsUnit;
use std::sync::Arc;

/// How one request entry was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMatch {
    /// By a descriptor with exactly its value.
    Exact,
    /// By a descriptor whose value is a wildcard pattern.
    Wildcard,
    /// By a descriptor with the key and no value.
    KeyOnly,
    /// Not matched: the request carried its own limit, which applies as-is.
    Override,
}

/// One entry of the request descriptor, as matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedEntry {
    /// The entry's key.
    pub key: String,
    /// The entry's value, as the request sent it.
    pub value: String,
    /// How the entry was matched.
    pub how: EntryMatch,
}

/// The rule that applies to one request descriptor, and the counter it counts against.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedRule {
    /// The domain of the request.
    pub domain: String,
    /// The rule.
    pub rule: Arc<RlsRule>,
    /// Every entry of the request descriptor, in order, with how it matched.
    pub entries: Vec<MatchedEntry>,
    /// The counter's name, safe inside a Redis key after a hash tag
    /// (see [`naming`](crate::rls::naming)).
    pub state_name: String,
    /// The name envoyproxy/ratelimit reports the limit's stats under, raw.
    pub stats_key: String,
}

impl MatchedRule {
    /// The core limit to enforce; `None` when the rule is unlimited.
    pub fn limit_kind(&self) -> Option<LimitKind> {
        self.rule.limit_kind()
    }

    /// The rule's name, which other rules' `replaces` refer to.
    pub fn name(&self) -> Option<&str> {
        self.rule.name()
    }

    /// The keys of the matched entries, in request order.
    pub fn matched_keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|e| e.key.as_str())
    }
}

/// One step of a walk: a request entry and the descriptor it reached.
struct Step<'a> {
    key: &'a str,
    value: &'a str,
    node: &'a Node,
    how: EntryMatch,
}

impl RlsDomain {
    /// The rule that applies to the request descriptor `entries`, if any.
    pub fn lookup(&self, entries: &[(&str, &str)]) -> Option<MatchedRule> {
        let steps = self.walk(entries)?;
        let rule = steps.last()?.node.rule.clone()?;
        Some(self.matched(rule, &steps))
    }

    /// The rule for a request descriptor that carries its own limit (Envoy's
    /// `RateLimitDescriptor.limit`): it applies as-is, whatever the tree says, and counts
    /// under the request's entries like any other match.
    pub fn lookup_override(
        &self,
        entries: &[(&str, &str)],
        requests_per_unit: u32,
        unit: RlsUnit,
    ) -> Result<MatchedRule, RlsConfigError> {
        let rule = RlsRule::limited(requests_per_unit, unit)?;
        let named = entries.iter().map(|&(k, v)| (k, NameValue::Concrete(v)));
        let mut stats_key = self.name.clone();
        entries
            .iter()
            .for_each(|(k, v)| push_stats_part(&mut stats_key, k, v));
        Ok(MatchedRule {
            domain: self.name.clone(),
            state_name: state_name(&self.name, named, Some(unit)),
            stats_key,
            entries: entries
                .iter()
                .map(|&(k, v)| matched_entry(k, v, EntryMatch::Override))
                .collect(),
            rule: Arc::new(rule),
        })
    }

    /// Walks one level per entry; `None` as soon as an entry finds no descriptor.
    fn walk<'a>(&'a self, entries: &[(&'a str, &'a str)]) -> Option<Vec<Step<'a>>> {
        let mut level = &self.root;
        let mut steps = Vec::with_capacity(entries.len());
        for &(key, value) in entries {
            let (node, how) = level.find(key, value)?;
            steps.push(Step {
                key,
                value,
                node,
                how,
            });
            level = &node.children;
        }
        Some(steps)
    }

    fn matched(&self, rule: Arc<RlsRule>, steps: &[Step<'_>]) -> MatchedRule {
        let named = steps.iter().map(|s| (s.key, name_value(s)));
        MatchedRule {
            domain: self.name.clone(),
            state_name: state_name(&self.name, named, rule.unit()),
            stats_key: stats_key(&self.name, steps, rule.detailed_metric()),
            entries: steps
                .iter()
                .map(|s| matched_entry(s.key, s.value, s.how))
                .collect(),
            rule,
        }
    }
}

impl Level {
    /// The descriptor for one entry: exact value, else first matching wildcard, else key-only.
    fn find(&self, key: &str, value: &str) -> Option<(&Node, EntryMatch)> {
        let group = self.by_key.get(key)?;
        if let Some(node) = group.exact.get(value) {
            return Some((node, EntryMatch::Exact));
        }
        let wildcard = group.wildcards.iter().find(|n| match &n.pattern {
            ValuePattern::Prefix(prefix) => value.starts_with(prefix.as_str()),
            _ => false,
        });
        if let Some(node) = wildcard {
            return Some((node, EntryMatch::Wildcard));
        }
        group.key_only.as_ref().map(|n| (n, EntryMatch::KeyOnly))
    }
}

fn matched_entry(key: &str, value: &str, how: EntryMatch) -> MatchedEntry {
    MatchedEntry {
        key: key.to_owned(),
        value: value.to_owned(),
        how,
    }
}

/// The request's value, or a shared wildcard's prefix.
fn name_value<'a>(step: &Step<'a>) -> NameValue<'a> {
    match (&step.node.pattern, step.node.share_threshold) {
        (ValuePattern::Prefix(prefix), true) => NameValue::SharedPrefix(prefix),
        _ => NameValue::Concrete(step.value),
    }
}

/// The stats key as the original names it: the config's path, or with `detailed_metric`
/// the request's values; `value_to_metric` puts the request's value in for wildcard and
/// key-only matches; a shared wildcard always reads as its pattern.
fn stats_key(domain: &str, steps: &[Step<'_>], detailed: bool) -> String {
    let mut out = domain.to_owned();
    for s in steps {
        let config_value = match &s.node.pattern {
            ValuePattern::Prefix(prefix) => format!("{prefix}*"),
            ValuePattern::Exact(v) => v.clone(),
            ValuePattern::KeyOnly => String::new(),
        };
        match (
            s.how,
            detailed,
            s.node.share_threshold,
            s.node.value_to_metric,
        ) {
            (EntryMatch::Wildcard, _, true, _) => push_stats_part(&mut out, s.key, &config_value),
            (_, true, _, _) => {
                out.push('.');
                out.push_str(s.key);
                out.push('_');
                out.push_str(s.value);
            }
            (EntryMatch::Wildcard | EntryMatch::KeyOnly, false, _, true) => {
                push_stats_part(&mut out, s.key, s.value)
            }
            _ => push_stats_part(&mut out, s.key, &config_value),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rls::testutil::{domain, STOREFRONT};

    const TREE: &str = "
domain: d
descriptors:
  - key: tier
    value: gold
    descriptors:
      - key: path
        value: /login
        rate_limit: {unit: second, requests_per_unit: 1}
      - key: path
        value: /api/*
        rate_limit: {unit: second, requests_per_unit: 2}
      - key: path
        value: /a*
        rate_limit: {unit: second, requests_per_unit: 3}
      - key: path
        rate_limit: {unit: second, requests_per_unit: 4}
  - key: tier
    rate_limit: {unit: minute, requests_per_unit: 5}
    descriptors:
      - key: user
        descriptors:
          - key: op
            value: write
            rate_limit: {unit: hour, requests_per_unit: 6}
  - key: any
    value: '*'
    rate_limit: {unit: day, requests_per_unit: 7}
";

    fn rpu(d: &RlsDomain, entries: &[(&str, &str)]) -> Option<u32> {
        d.lookup(entries).map(|m| m.rule.requests_per_unit())
    }

    /// A nested descriptor is reached level by level, and only its own entries reach it.
    #[test]
    fn nested_descriptors() {
        let d = domain(TREE);
        let m = d
            .lookup(&[("tier", "free"), ("user", "u1"), ("op", "write")])
            .unwrap();
        assert_eq!(m.rule.requests_per_unit(), 6);
        assert_eq!(m.rule.unit(), Some(RlsUnit::Hour));
        assert_eq!(m.matched_keys().collect::<Vec<_>>(), ["tier", "user", "op"]);
        let hows: Vec<_> = m.entries.iter().map(|e| e.how).collect();
        assert_eq!(
            hows,
            [EntryMatch::KeyOnly, EntryMatch::KeyOnly, EntryMatch::Exact]
        );
        assert_eq!(
            rpu(&d, &[("tier", "free"), ("user", "u1"), ("op", "read")]),
            None
        );
        assert_eq!(rpu(&d, &[("user", "u1")]), None);
    }

    /// Exact beats wildcard, wildcard beats key-only, and the first wildcard in config order wins.
    #[test]
    fn exact_beats_wildcard_beats_key_only() {
        let d = domain(TREE);
        let gold = |path| rpu(&d, &[("tier", "gold"), ("path", path)]);
        assert_eq!(gold("/login"), Some(1));
        assert_eq!(gold("/api/users"), Some(2));
        assert_eq!(gold("/api/"), Some(2));
        assert_eq!(gold("/api"), Some(3));
        assert_eq!(gold("/admin"), Some(3));
        assert_eq!(gold("/login/x"), Some(4));
        assert_eq!(gold(""), Some(4));
    }

    /// A trailing `*` matches by prefix, a bare `*` matches any value, even empty.
    #[test]
    fn prefix_wildcard() {
        let d = domain(TREE);
        let m = d.lookup(&[("any", "whatever")]).unwrap();
        assert_eq!(m.rule.requests_per_unit(), 7);
        assert_eq!(m.entries[0].how, EntryMatch::Wildcard);
        assert_eq!(rpu(&d, &[("any", "")]), Some(7));
        assert_eq!(rpu(&d, &[("tier", "gold"), ("path", "/b")]), Some(4));
    }

    /// A descriptor shorter or longer than the config path matches nothing.
    #[test]
    fn depth_must_match() {
        let d = domain(TREE);
        assert_eq!(rpu(&d, &[("tier", "free"), ("user", "u1")]), None);
        assert_eq!(rpu(&d, &[("tier", "gold")]), None);
        assert_eq!(rpu(&d, &[("tier", "free")]), Some(5));
        assert_eq!(rpu(&d, &[("any", "x"), ("more", "y")]), None);
        assert_eq!(
            rpu(&d, &[("tier", "gold"), ("path", "/login"), ("x", "y")]),
            None
        );
        assert_eq!(rpu(&d, &[]), None);
    }

    /// An unlimited rule matches, has no core limit, and is named as unlimited.
    #[test]
    fn unlimited_rule() {
        let d = domain(STOREFRONT);
        let m = d.lookup(&[("internal", "healthcheck")]).unwrap();
        assert!(m.rule.unlimited());
        assert_eq!(m.limit_kind(), None);
        assert_eq!(m.rule.unit(), None);
        assert_eq!(m.state_name, "storefront:internal=healthcheck@unlimited");
    }

    /// Key-only and wildcard entries count per concrete value; shared wildcards share one counter.
    #[test]
    fn state_names_per_value() {
        let d = domain(STOREFRONT);
        let a = d.lookup(&[("remote_address", "10.0.0.1")]).unwrap();
        let b = d.lookup(&[("remote_address", "10.0.0.2")]).unwrap();
        assert_eq!(a.state_name, "storefront:remote_address=10.0.0.1@minute");
        assert_ne!(a.state_name, b.state_name);
        let r1 = d
            .lookup(&[("client_tier", "partner"), ("path", "/reports/daily")])
            .unwrap();
        let r2 = d
            .lookup(&[("client_tier", "partner"), ("path", "/reports/weekly")])
            .unwrap();
        assert_eq!(
            r1.state_name,
            "storefront:client_tier=partner:path=%2Freports%2F*@hour"
        );
        assert_eq!(r1.state_name, r2.state_name);
        assert!(r1.rule.shadow_mode());
    }

    /// Stats keys follow the original: config path, or request values with detailed_metric.
    #[test]
    fn stats_keys() {
        let d = domain(STOREFRONT);
        let ip = d.lookup(&[("remote_address", "10.0.0.1")]).unwrap();
        assert_eq!(ip.stats_key, "storefront.remote_address");
        let detailed = d
            .lookup(&[("api_plan", "basic"), ("user_id", "u7")])
            .unwrap();
        assert_eq!(detailed.stats_key, "storefront.api_plan_basic.user_id_u7");
        let shared = d
            .lookup(&[("client_tier", "partner"), ("path", "/reports/x")])
            .unwrap();
        assert_eq!(
            shared.stats_key,
            "storefront.client_tier_partner.path_/reports/*"
        );
    }

    /// A request's own limit applies whatever the tree says, counted under its entries.
    #[test]
    fn override_applies_as_is() {
        let d = domain(TREE);
        let m = d
            .lookup_override(&[("nowhere", "x")], 3, RlsUnit::Minute)
            .unwrap();
        assert_eq!(m.state_name, "d:nowhere=x@minute");
        assert_eq!(m.stats_key, "d.nowhere_x");
        assert_eq!(m.entries[0].how, EntryMatch::Override);
        assert_eq!(
            m.limit_kind(),
            crate::rls::override_limit_kind(3, RlsUnit::Minute).ok()
        );
        assert!(d.lookup_override(&[("a", "b")], 0, RlsUnit::Day).is_err());
    }
}
