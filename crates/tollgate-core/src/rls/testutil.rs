//! Test helpers for the RLS modules: YAML parsing and a shared realistic config.

use crate::rls::{RlsConfig, RlsDomain};

/// A storefront config in the spirit of the envoyproxy/ratelimit README examples: a
/// per-client-address default, a partner tier with its own per-path rules (one of which
/// replaces a general rule, one a shadow-mode wildcard shared across its paths), an
/// unlimited health check, a per-user daily quota with detailed metrics, and a numeric value.
pub(crate) const STOREFRONT: &str = r#"
domain: storefront
descriptors:
  # Every client address on its own: 600 a minute.
  - key: remote_address
    rate_limit:
      unit: MINUTE
      requests_per_unit: 600

  - key: client_tier
    value: partner
    descriptors:
      - key: path
        value: /checkout
        rate_limit:
          unit: second
          requests_per_unit: 20
          name: partner-checkout
          replaces:
            - name: checkout-any
      - key: path
        value: "/reports/*"
        shadow_mode: true
        share_threshold: true
        rate_limit:
          unit: Hour
          requests_per_unit: 100

  - key: path
    value: /checkout
    rate_limit:
      unit: second
      requests_per_unit: 5
      name: checkout-any

  - key: internal
    value: healthcheck
    rate_limit:
      unlimited: true

  - key: api_plan
    descriptors:
      - key: user_id
        detailed_metric: true
        rate_limit:
          unit: day
          requests_per_unit: 10000

  - key: status
    value: 500
    descriptors:
"#;

/// Parses a config, panicking on error.
pub(crate) fn parse(yaml: &str) -> RlsConfig {
    serde_norway::from_str(yaml).unwrap()
}

/// Parses and validates a domain, panicking on error.
pub(crate) fn domain(yaml: &str) -> RlsDomain {
    RlsDomain::from_config(parse(yaml)).unwrap()
}

/// The validation error of a config that parses, as text.
pub(crate) fn domain_err(yaml: &str) -> String {
    RlsDomain::from_config(parse(yaml)).unwrap_err().to_string()
}
