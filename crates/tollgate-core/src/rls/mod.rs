//! The pure half of an Envoy rate-limit service (RLS v3) drop-in: envoyproxy/ratelimit YAML
//! configs, descriptor matching, `replaces`, and the translation into core limits.
//!
//! The gRPC adapter in the server turns each `RateLimitDescriptor` of a request into a list of
//! `(key, value)` entries, asks [`RlsRegistry::lookup`] (or [`RlsRegistry::lookup_override`]
//! when the descriptor carries its own `limit`) for a [`MatchedRule`], runs
//! [`apply_replaces`] over the request's matches, and checks each remaining rule's
//! [`MatchedRule::limit_kind`] under its [`MatchedRule::state_name`].
//!
//! [`check`](mod@check) puts it together for one request: [`check::plan`] turns the request's
//! descriptors into store batches (API-key descriptors into the key's usage plan), and
//! [`check::decide`] turns the store's outcome into Envoy's statuses and headers.
//!
//! Module map:
//! - [`check`](mod@check): one request, planned into batches and answered.
//! - [`config`]: the YAML format as serde types (unknown fields are errors).
//! - [`unit`](mod@unit): the units (`second` … `year`) and their translation into core limits.
//! - [`rule`]: a validated `rate_limit` block with its descriptor's flags.
//! - [`domain`]: validation of one config into a matching tree, [`RlsDomain::from_config`].
//! - [`matcher`]: the walk of a request descriptor through a domain to a [`MatchedRule`].
//! - [`naming`]: counter names (safe inside a Redis key) and envoyproxy/ratelimit stats keys.
//! - [`replaces`]: dropping rules that another matched rule replaces.
//! - [`registry`]: domains by name, built from several files.
//! - [`error`]: the errors, [`RlsConfigError`] with the path of what is wrong.
//!
//! Where tollgate differs from envoyproxy/ratelimit, on purpose:
//! - second/minute/hour limits are GCRA throttles, so no client gets twice the limit across a
//!   window edge; day/week/month/year limits are UTC calendar quotas (ISO week, calendar
//!   month and year) rather than epoch-aligned 7/30/365-day windows.
//! - validation is stricter: unknown fields are rejected per level (the original accepts any
//!   known field name anywhere), `requests_per_unit` must be at least 1 unless `unlimited`,
//!   and `unlimited` excludes both `unit` and `requests_per_unit`.

pub mod check;
pub mod config;
pub mod domain;
pub mod error;
pub mod matcher;
pub mod naming;
pub mod registry;
pub mod replaces;
pub mod rule;
pub mod unit;

#[cfg(test)]
mod testutil;

pub use config::{RlsConfig, RlsDescriptorConfig, RlsRateLimitConfig, RlsReplacesConfig};
pub use domain::RlsDomain;
pub use error::{RlsConfigError, UnknownRlsUnit};
pub use matcher::{EntryMatch, MatchedEntry, MatchedRule};
pub use registry::RlsRegistry;
pub use replaces::apply_replaces;
pub use rule::RlsRule;
pub use unit::{override_limit_kind, RlsUnit};
