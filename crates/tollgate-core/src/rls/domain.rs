//! One validated RLS domain: the descriptor tree of a config, indexed for matching.
//!
//! Each level groups its descriptors by key; within a key there are exact values, prefix
//! patterns (a value ending in `*`, kept in config order because the first one that matches
//! wins, as in the original) and at most one key-only descriptor (no value, or an empty one).
//! Validation names the descriptor path of every error, e.g.
//! `descriptors[0].descriptors[1].rate_limit.unit`.

use crate::rls::config::{RlsConfig, RlsDescriptorConfig};
use crate::rls::error::RlsConfigError;
use crate::rls::rule::{RlsRule, RuleFlags};
use std::collections::HashMap;
use std::sync::Arc;

/// A validated domain, ready to match request descriptors.
#[derive(Debug, Clone, Default)]
pub struct RlsDomain {
    pub(crate) name: String,
    pub(crate) root: Level,
}

/// The descriptors of one level of the tree.
#[derive(Debug, Clone, Default)]
pub(crate) struct Level {
    pub(crate) by_key: HashMap<String, KeyGroup>,
}

/// The descriptors of one level that share a key.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyGroup {
    pub(crate) exact: HashMap<String, Node>,
    pub(crate) wildcards: Vec<Node>,
    pub(crate) key_only: Option<Node>,
}

/// What a descriptor's `value` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValuePattern {
    /// Exactly this value.
    Exact(String),
    /// Any value starting with this prefix (the config value without its trailing `*`).
    Prefix(String),
    /// Any value (the descriptor has no value).
    KeyOnly,
}

/// One descriptor of the tree.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) key: String,
    pub(crate) pattern: ValuePattern,
    pub(crate) rule: Option<Arc<RlsRule>>,
    pub(crate) share_threshold: bool,
    pub(crate) value_to_metric: bool,
    pub(crate) children: Level,
    path: String,
}

impl RlsDomain {
    /// Validates one config file into a domain.
    pub fn from_config(cfg: RlsConfig) -> Result<RlsDomain, RlsConfigError> {
        if cfg.domain.is_empty() {
            return Err(RlsConfigError::invalid("domain", "must not be empty"));
        }
        Ok(RlsDomain {
            root: Level::build(cfg.descriptors, "")?,
            name: cfg.domain,
        })
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl ValuePattern {
    fn parse(value: Option<String>) -> ValuePattern {
        match value {
            None => ValuePattern::KeyOnly,
            Some(v) if v.is_empty() => ValuePattern::KeyOnly,
            Some(v) => match v.strip_suffix('*') {
                Some(prefix) => ValuePattern::Prefix(prefix.to_owned()),
                None => ValuePattern::Exact(v),
            },
        }
    }

    /// How the pattern reads in a message.
    fn describe(&self) -> String {
        match self {
            ValuePattern::Exact(v) => format!(" value `{v}`"),
            ValuePattern::Prefix(p) => format!(" value `{p}*`"),
            ValuePattern::KeyOnly => " without value".to_owned(),
        }
    }
}

impl Level {
    /// Builds the level of `descriptors`, whose paths start with `parent`.
    fn build(descriptors: Vec<RlsDescriptorConfig>, parent: &str) -> Result<Level, RlsConfigError> {
        let mut level = Level::default();
        for (i, d) in descriptors.into_iter().enumerate() {
            level.insert(Node::build(d, format!("{parent}descriptors[{i}]"))?)?;
        }
        Ok(level)
    }

    fn insert(&mut self, node: Node) -> Result<(), RlsConfigError> {
        let group = self.by_key.entry(node.key.clone()).or_default();
        if let Some(first) = group.find_same(&node.pattern) {
            return Err(RlsConfigError::DuplicateDescriptor {
                what: format!("key `{}`{}", node.key, node.pattern.describe()),
                first: first.path.clone(),
                path: node.path,
            });
        }
        match &node.pattern {
            ValuePattern::Exact(v) => {
                group.exact.insert(v.clone(), node);
            }
            ValuePattern::Prefix(_) => group.wildcards.push(node),
            ValuePattern::KeyOnly => group.key_only = Some(node),
        }
        Ok(())
    }
}

impl KeyGroup {
    /// The descriptor with exactly this pattern, if any.
    fn find_same(&self, pattern: &ValuePattern) -> Option<&Node> {
        match pattern {
            ValuePattern::Exact(v) => self.exact.get(v),
            ValuePattern::Prefix(_) => self.wildcards.iter().find(|n| &n.pattern == pattern),
            ValuePattern::KeyOnly => self.key_only.as_ref(),
        }
    }
}

impl Node {
    fn build(d: RlsDescriptorConfig, path: String) -> Result<Node, RlsConfigError> {
        if d.key.is_empty() {
            return Err(RlsConfigError::invalid(
                format!("{path}.key"),
                "must not be empty",
            ));
        }
        let pattern = ValuePattern::parse(d.value);
        if d.share_threshold && !matches!(pattern, ValuePattern::Prefix(_)) {
            return Err(RlsConfigError::invalid(
                format!("{path}.share_threshold"),
                "only allowed on a wildcard value (one ending in `*`)",
            ));
        }
        let flags = RuleFlags {
            shadow_mode: d.shadow_mode,
            detailed_metric: d.detailed_metric,
        };
        let rule = d
            .rate_limit
            .map(|r| RlsRule::from_config(r, flags, &format!("{path}.rate_limit")))
            .transpose()?;
        Ok(Node {
            key: d.key,
            pattern,
            rule: rule.map(Arc::new),
            share_threshold: d.share_threshold,
            value_to_metric: d.value_to_metric,
            children: Level::build(d.descriptors, &format!("{path}."))?,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::rls::testutil::domain_err;

    /// An empty domain is refused.
    #[test]
    fn empty_domain() {
        assert_eq!(domain_err("domain: ''\n"), "domain: must not be empty");
    }

    /// An empty key is refused with its path.
    #[test]
    fn empty_key() {
        assert_eq!(
            domain_err("domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: ''\n"),
            "descriptors[0].descriptors[0].key: must not be empty"
        );
    }

    /// Two descriptors with the same key and value at one level are refused, naming both.
    #[test]
    fn duplicate_descriptors() {
        let yaml = "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n        value: x\n      - key: b\n      - key: b\n        value: x\n";
        assert_eq!(
            domain_err(yaml),
            "descriptors[0].descriptors[2]: duplicate descriptor key `b` value `x` at this level (first defined at descriptors[0].descriptors[0])"
        );
        let yaml = "domain: d\ndescriptors:\n  - key: a\n  - key: a\n    value: ''\n";
        assert_eq!(
            domain_err(yaml),
            "descriptors[1]: duplicate descriptor key `a` without value at this level (first defined at descriptors[0])"
        );
        let yaml =
            "domain: d\ndescriptors:\n  - key: a\n    value: p*\n  - key: a\n    value: p*\n";
        assert_eq!(
            domain_err(yaml),
            "descriptors[1]: duplicate descriptor key `a` value `p*` at this level (first defined at descriptors[0])"
        );
    }

    /// The same key and value at different levels or under different parents is fine.
    #[test]
    fn same_pair_elsewhere_is_fine() {
        let yaml = "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: a\n  - key: b\n    descriptors:\n      - key: a\n";
        crate::rls::testutil::domain(yaml);
    }

    /// `share_threshold` is only accepted on a wildcard value.
    #[test]
    fn share_threshold_needs_wildcard() {
        assert_eq!(
            domain_err(
                "domain: d\ndescriptors:\n  - key: a\n    value: x\n    share_threshold: true\n"
            ),
            "descriptors[0].share_threshold: only allowed on a wildcard value (one ending in `*`)"
        );
    }
}
