//! Pure limiting logic for tollgate: calendar periods, GCRA, usage plans and keys, verdicts
//! and headers. No I/O, no async.
//!
//! Module map:
//! - [`calendar`]: UTC calendar periods (day, ISO week, month, year) and their ids.
//! - [`gcra`]: the throttle, as a generic cell rate algorithm over one stored TAT.
//! - [`quota`]: per-period counters with the first-period offset.
//! - [`batch`]: a set of limits checked all-or-nothing, and [`batch::evaluate_batch`], the
//!   reference evaluation that the memory store runs and the Redis Lua script mirrors.
//! - [`plan`]: usage plans, throttles, quotas and API stages.
//! - [`apikey`]: API keys and the SHA-256 form their values are kept in.
//! - [`catalog`]: the validated set of plans and keys, and the resolver from a check request
//!   to the limits that apply to it.
//! - [`check`]: the check request, the verdict, and the decision a proxy acts on.
//! - [`headers`]: the IETF `RateLimit-*` and `Retry-After` headers of a decision.
//! - [`rls`]: Envoy RLS v3 configs (envoyproxy/ratelimit YAML), descriptor matching and `replaces`.
//! - [`error`]: validation errors.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod apikey;
pub mod batch;
pub mod calendar;
pub mod catalog;
pub mod check;
pub mod error;
pub mod gcra;
pub mod headers;
pub mod plan;
pub mod quota;
pub mod rls;

pub use error::CoreError;
