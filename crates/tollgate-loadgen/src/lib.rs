//! Load generator for tollgate: drives CheckQuota and Envoy RLS ShouldRateLimit closed- and
//! open-loop over many keys or one hot key, and measures the Redis ceiling of tollgate's own
//! check script.
//!
//! Module map:
//! - [`cli`]: the command line (`grpc`, `rls`, `ceiling`, `gen-config`, `gen-rls-config`,
//!   `wake-probe`) and what each runs.
//! - [`workload`]: the plans and keys of a load, as tollgate YAML and as an in-process
//!   catalog, the Envoy rate-limit descriptors and rules, and the choice of key per call
//!   (uniform, or one hot key).
//! - [`target`]: what is driven: gRPC `CheckQuota`, Envoy RLS `ShouldRateLimit`, or
//!   `check.lua` straight on Redis (the ceiling).
//! - [`grpc_unary`]: the lean gRPC unary caller the gRPC targets use, on `h2`.
//! - [`driver`]: closed loop (fixed callers) and open loop (fixed rate, latency from the
//!   intended send time).
//! - [`pacer`]: the open loop's fixed-rate schedule, at the kernel timer's precision.
//! - [`report`]: counts, HDR latency histograms, and the printed figures.
//! - [`redis_stats`]: Redis round trips per check from `INFO commandstats`.
//! - [`wake_probe`]: what one wake-up costs on this host, on one core and across two.
//!
//! Nothing in the workspace depends on this crate.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod cli;
pub mod driver;
pub mod grpc_unary;
pub mod pacer;
pub mod redis_stats;
pub mod report;
pub mod target;
pub mod wake_probe;
pub mod workload;
