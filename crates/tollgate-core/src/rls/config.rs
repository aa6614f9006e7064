//! The envoyproxy/ratelimit YAML config format, as serde types.
//!
//! One file holds one `domain` and its tree of `descriptors`. Field names are the original's,
//! and every level rejects fields it does not know, naming them. The model keeps values as
//! written (`unit` is a string): [`RlsDomain::from_config`](super::RlsDomain::from_config)
//! validates them, so that its errors can name the descriptor path.
//!
//! Two leniencies follow the original's YAML parser (yaml.v2), so existing files load:
//! any scalar is accepted where a string is expected (`value: 200`), and a list left empty
//! (`descriptors:` with nothing under it) is an empty list.
//!
//! `replaces` lives inside `rate_limit`, where the original reads it; the original ignores it
//! at descriptor level, so there it is rejected as an unknown field rather than silently
//! doing nothing.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// One config file: a domain and its descriptors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsConfig {
    /// The domain Envoy names in its requests; required and not empty.
    #[serde(deserialize_with = "scalar_string")]
    pub domain: String,
    /// The top level of the descriptor tree.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub descriptors: Vec<RlsDescriptorConfig>,
}

/// One node of the descriptor tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsDescriptorConfig {
    /// The entry key this node matches; required and not empty.
    #[serde(deserialize_with = "scalar_string")]
    pub key: String,
    /// The entry value: exact, a prefix pattern ending in `*`, or absent/empty for any value.
    #[serde(default, deserialize_with = "optional_scalar_string")]
    pub value: Option<String>,
    /// The limit that applies when a request descriptor ends on this node.
    #[serde(default)]
    pub rate_limit: Option<RlsRateLimitConfig>,
    /// Count and report, but never deny.
    #[serde(default)]
    pub shadow_mode: bool,
    /// Name the stats of this limit after the request's values, not the config's.
    #[serde(default)]
    pub detailed_metric: bool,
    /// Put the request's value into the stats key where this node matched by wildcard or key.
    #[serde(default)]
    pub value_to_metric: bool,
    /// On a wildcard node: all values matching the pattern share one counter.
    #[serde(default)]
    pub share_threshold: bool,
    /// The next level of the tree.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub descriptors: Vec<RlsDescriptorConfig>,
}

/// A `rate_limit` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsRateLimitConfig {
    /// `second` … `year`, in any case; required unless `unlimited`.
    #[serde(default, deserialize_with = "optional_scalar_string")]
    pub unit: Option<String>,
    /// Requests allowed per unit; at least 1 unless `unlimited`.
    #[serde(default)]
    pub requests_per_unit: Option<u32>,
    /// No limit at all (the descriptor is matched, and nothing is counted).
    #[serde(default)]
    pub unlimited: bool,
    /// The name other rules' `replaces` refer to.
    #[serde(default, deserialize_with = "optional_scalar_string")]
    pub name: Option<String>,
    /// Rules (by name) this one replaces when both match one request.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub replaces: Vec<RlsReplacesConfig>,
}

/// One entry of `replaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsReplacesConfig {
    /// The `name` of the replaced rule.
    #[serde(deserialize_with = "scalar_string")]
    pub name: String,
}

/// A string from any scalar, as yaml.v2 reads one into a Go string.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(ScalarVisitor).map(Scalar)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or another scalar")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Scalar::deserialize(d).map(|s| s.0)
}

fn optional_scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Scalar>::deserialize(d).map(|o| o.map(|s| s.0))
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rls::testutil::{parse, STOREFRONT};

    /// A realistic multi-level config loads with every field where it was written.
    #[test]
    fn realistic_config_deserializes() {
        let cfg = parse(STOREFRONT);
        assert_eq!(cfg.domain, "storefront");
        assert_eq!(cfg.descriptors.len(), 6);
        let ip = &cfg.descriptors[0];
        assert_eq!(
            (ip.key.as_str(), ip.value.as_deref()),
            ("remote_address", None)
        );
        let rl = ip.rate_limit.as_ref().unwrap();
        assert_eq!(rl.unit.as_deref(), Some("MINUTE"));
        assert_eq!(rl.requests_per_unit, Some(600));
        let partner = &cfg.descriptors[1];
        assert_eq!(partner.value.as_deref(), Some("partner"));
        let checkout = &partner.descriptors[0];
        let rl = checkout.rate_limit.as_ref().unwrap();
        assert_eq!(rl.name.as_deref(), Some("partner-checkout"));
        assert_eq!(rl.replaces[0].name, "checkout-any");
        assert!(partner.descriptors[1].shadow_mode);
        assert!(cfg.descriptors[3].rate_limit.as_ref().unwrap().unlimited);
        assert!(cfg.descriptors[4].descriptors[0].detailed_metric);
        assert_eq!(cfg.descriptors[5].value.as_deref(), Some("500"));
    }

    /// An unknown field is an error that names it, at every level.
    #[test]
    fn unknown_fields_are_named() {
        for (yaml, field) in [
            ("domain: d\ntimeout: 1\n", "timeout"),
            (
                "domain: d\ndescriptors:\n  - key: k\n    limit: 1\n",
                "limit",
            ),
            (
                "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, per: 1}\n",
                "per",
            ),
            (
                "domain: d\ndescriptors:\n  - key: k\n    replaces: [{name: x}]\n",
                "replaces",
            ),
        ] {
            let err = serde_norway::from_str::<RlsConfig>(yaml).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("unknown field `{field}`")),
                "{err}"
            );
        }
    }

    /// A missing domain or key is an error; empty lists may be left null.
    #[test]
    fn required_fields_and_null_lists() {
        let err = serde_norway::from_str::<RlsConfig>("descriptors: []\n").unwrap_err();
        assert!(err.to_string().contains("missing field `domain`"), "{err}");
        let err = serde_norway::from_str::<RlsConfig>("domain: d\ndescriptors:\n  - value: v\n")
            .unwrap_err();
        assert!(err.to_string().contains("missing field `key`"), "{err}");
        let cfg = parse("domain: d\ndescriptors:\n");
        assert!(cfg.descriptors.is_empty());
    }

    /// Scalars that are not strings are read as their text, as the original does.
    #[test]
    fn scalars_read_as_strings() {
        let cfg = parse("domain: 7\ndescriptors:\n  - key: code\n    value: 404\n  - key: on\n    value: true\n");
        assert_eq!(cfg.domain, "7");
        assert_eq!(cfg.descriptors[0].value.as_deref(), Some("404"));
        assert_eq!(cfg.descriptors[1].key, "on");
        assert_eq!(cfg.descriptors[1].value.as_deref(), Some("true"));
    }
}
