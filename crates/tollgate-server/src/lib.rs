//! The tollgate binary: gRPC and HTTP services around the tollgate limiter, its
//! configuration, telemetry and wiring.
//!
//! Module map:
//! - [`cli`]: command line and environment (`tollgate serve`, `tollgate check-config`).
//! - [`config`]: the YAML file of plans and keys, validated into a core catalog.
//! - [`deny_cache`]: answers checks of keys known to be over a limit without a store call.
//! - [`limiter`]: [`limiter::Limiter`], the one entry point every protocol adapter calls.
//! - [`admin`]: the management API (usage plans, API keys, usage), AWS API Gateway-shaped.
//! - [`catalog_sync`]: keeps this instance's catalog in step with the shared records.
//! - [`bootstrap`]: applies the YAML file to the shared records (`serve --config`, `apply`).
//! - [`grpc`]: tonic services (`tollgate.v1.QuotaService`, Envoy's rate-limit service and
//!   ext_authz, health, reflection), the check methods on their own unary hot path.
//! - [`http`]: axum routes (`/healthz`, `/metrics`, `POST /v1/check`, `/v1/auth` for nginx).
//! - [`console`]: the operator console at `/console`, static pages over the management API.
//! - [`request_path`]: a proxy's forwarded request target as the resource plans name.
//! - [`rls_config`]: the Envoy rate-limit config directory, loaded and hot-reloaded.
//! - [`metrics`]: Prometheus metrics.
//! - [`app`]: builds everything from the settings and runs it until shutdown.
//! - [`shutdown`]: the future that resolves on SIGINT or SIGTERM.
//! - [`telemetry`]: logs, and OpenTelemetry traces over OTLP/gRPC: which checks are traced
//!   (`sampling`) and joining the caller's trace (`caller`).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod bootstrap;
pub mod catalog_sync;
pub mod cli;
pub mod config;
pub mod console;
pub mod deny_cache;
pub mod grpc;
pub mod http;
pub mod limiter;
pub mod metrics;
pub mod request_path;
pub mod rls_config;
pub mod shutdown;
pub mod telemetry;
