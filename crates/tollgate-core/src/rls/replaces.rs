//! `replaces`: when several descriptors of one request match rules, a rule whose `name` is
//! listed in another matched rule's `replaces` is dropped, as envoyproxy/ratelimit does.
//!
//! Every matched rule's `replaces` counts, an unlimited one's too, and a rule may not
//! replace itself (validation refuses that). All names are collected before any rule is
//! dropped, so the result does not depend on the order of the descriptors.

use crate::rls::matcher::MatchedRule;
use std::collections::HashSet;

/// Drops (sets to `None`) every match replaced by another; positions stay aligned with the
/// request's descriptors.
pub fn apply_replaces(matches: &mut [Option<MatchedRule>]) {
    let replaced: HashSet<String> = matches
        .iter()
        .flatten()
        .flat_map(|m| m.rule.replaces().iter().cloned())
        .collect();
    if replaced.is_empty() {
        return;
    }
    for slot in matches.iter_mut() {
        if slot
            .as_ref()
            .and_then(MatchedRule::name)
            .is_some_and(|name| replaced.contains(name))
        {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rls::testutil::{domain, STOREFRONT};

    /// A rule named in another matched rule's `replaces` is dropped; others stay in place.
    #[test]
    fn replaced_rules_are_dropped() {
        let d = domain(STOREFRONT);
        let mut matches = vec![
            d.lookup(&[("path", "/checkout")]),
            d.lookup(&[("client_tier", "partner"), ("path", "/checkout")]),
            d.lookup(&[("remote_address", "10.0.0.9")]),
            d.lookup(&[("no", "match")]),
        ];
        assert_eq!(
            matches[0].as_ref().and_then(|m| m.name()),
            Some("checkout-any")
        );
        apply_replaces(&mut matches);
        assert!(matches[0].is_none());
        assert_eq!(
            matches[1].as_ref().and_then(|m| m.name()),
            Some("partner-checkout")
        );
        assert!(matches[2].is_some());
        assert!(matches[3].is_none());
    }

    /// Without the replacing rule in the request, the named rule stays.
    #[test]
    fn nothing_replaced_alone() {
        let d = domain(STOREFRONT);
        let mut matches = vec![d.lookup(&[("path", "/checkout")])];
        apply_replaces(&mut matches);
        assert!(matches[0].is_some());
    }
}
