//! The command line: `tollgate serve` and `tollgate check-config`, each flag also read from
//! a `TOLLGATE_*` environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use tollgate_store::redis::redact_url;

/// tollgate: rate limits and quotas for APIs sold as products.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, propagate_version = true)]
#[command(
    about = "Distributed rate limiting and quotas for APIs: usage plans, API keys, throttles and quotas, enforced across a fleet of edge proxies."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: `text` or `json`. Verbosity follows RUST_LOG (default `info`).
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", default_value = "text", global = true, value_parser = ["text", "json"])]
    pub log_format: String,
}

/// Subcommands.
// Parsed once at start: the size of the `serve` settings does not matter, and boxing them
// would only add noise wherever they are matched.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the service: gRPC (CheckQuota, Envoy RLS and ext_authz, health, reflection) and
    /// HTTP (/v1/check, /v1/auth, the management API, /openapi.json, /metrics, /healthz).
    Serve(ServeSettings),
    /// Validate a configuration file and print what it defines, without starting anything.
    CheckConfig {
        /// The YAML file of usage plans and API keys.
        #[arg(long, short = 'c', env = "TOLLGATE_CONFIG", value_name = "FILE")]
        config: PathBuf,
    },
    /// Apply a YAML file of usage plans and API keys to the shared Redis, idempotently;
    /// running instances pick the change up within a second.
    Apply(ApplyArgs),
}

/// The Redis flags `serve` and `apply` share.
#[derive(Clone, Args)]
pub struct RedisArgs {
    /// Redis to keep limit state in; several comma-separated URLs for cluster or sentinel
    /// mode. redis:// or rediss:// (TLS), with user:password@ for AUTH. Without it, state is
    /// kept in this process only (single instance; `apply` needs one).
    #[arg(
        long,
        env = "TOLLGATE_REDIS_URL",
        value_name = "URL[,URL...]",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// Redis topology.
    #[arg(long, env = "TOLLGATE_REDIS_MODE", default_value = "standalone", value_parser = ["standalone", "cluster", "sentinel"])]
    pub redis_mode: String,
    /// Master name to ask the sentinels for (sentinel mode).
    #[arg(
        long,
        env = "TOLLGATE_REDIS_SENTINEL_MASTER",
        default_value = "mymaster",
        value_name = "NAME"
    )]
    pub redis_sentinel_master: String,
    /// Username for AUTH on the master found through Sentinel (sentinel mode). The URLs'
    /// credentials are the sentinels'.
    #[arg(
        long,
        env = "TOLLGATE_REDIS_SENTINEL_MASTER_USERNAME",
        value_name = "NAME"
    )]
    pub redis_sentinel_master_username: Option<String>,
    /// Password for AUTH on the master found through Sentinel (sentinel mode); it may differ
    /// from the sentinels'. Prefer the environment variable: flags show in process lists.
    #[arg(
        long,
        env = "TOLLGATE_REDIS_SENTINEL_MASTER_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub redis_sentinel_master_password: Option<String>,
    /// PEM bundle of the CA certificates that sign the Redis servers' certificates, for
    /// rediss:// URLs; only these are then trusted, and host names are still verified.
    #[arg(long, env = "TOLLGATE_REDIS_TLS_CA_FILE", value_name = "FILE")]
    pub redis_tls_ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for Redis servers that require one
    /// (tls-auth-clients yes); needs --redis-tls-key-file.
    #[arg(
        long,
        env = "TOLLGATE_REDIS_TLS_CERT_FILE",
        value_name = "FILE",
        requires = "redis_tls_key_file"
    )]
    pub redis_tls_cert_file: Option<PathBuf>,
    /// PEM private key of --redis-tls-cert-file.
    #[arg(
        long,
        env = "TOLLGATE_REDIS_TLS_KEY_FILE",
        value_name = "FILE",
        requires = "redis_tls_cert_file"
    )]
    pub redis_tls_key_file: Option<PathBuf>,
}

/// Settings of `tollgate apply`.
#[derive(Clone, Args)]
pub struct ApplyArgs {
    /// The YAML file of usage plans and API keys (the format of `serve --config`).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// The Redis the fleet shares (as for `serve`).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Bound on one Redis call, in milliseconds.
    #[arg(long, env = "TOLLGATE_REDIS_TIMEOUT_MS", default_value_t = 2_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,
    /// Store key values too (see `serve --keep-key-values`).
    #[arg(long, env = "TOLLGATE_KEEP_KEY_VALUES")]
    pub keep_key_values: bool,
    /// Say what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

// The Redis URL may hold a password.
impl fmt::Debug for ApplyArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyArgs")
            .field("file", &self.file)
            .field("redis_mode", &self.redis.redis_mode)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// What to do when the limit store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailureMode {
    /// Fail open: admit calls while the store is down.
    Allow,
    /// Fail closed: answer UNAVAILABLE (HTTP 503) while the store is down.
    Deny,
}

/// Settings of `tollgate serve`.
#[derive(Clone, Args)]
pub struct ServeSettings {
    /// YAML file of usage plans and API keys, applied at start.
    #[arg(long, short = 'c', env = "TOLLGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where limit state and records are kept.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Redis connections per instance, each multiplexed. Default: one per request thread
    /// (--worker-threads) on standalone and Sentinel, 8 on Cluster.
    #[arg(long, env = "TOLLGATE_REDIS_POOL_SIZE", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub redis_pool_size: Option<u16>,
    /// Threads serving requests; 0 (the default) is one per CPU, and 1 runs everything on
    /// one thread. Fewer leave cores to what shares the machine: with Redis on the same
    /// two cores, one thread served more checks per second than two (docs/benchmarks.md).
    #[arg(long, env = "TOLLGATE_WORKER_THREADS", default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub worker_threads: u16,
    /// Bound on one Redis call, in milliseconds; past it the failure mode applies.
    #[arg(long, env = "TOLLGATE_REDIS_TIMEOUT_MS", default_value_t = 250, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,
    /// After SIGTERM or SIGINT, how long calls in flight may take to finish, in
    /// milliseconds. Connections still open then, such as a client that never finishes its
    /// request, are dropped and the process exits.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_GRACE_MS", default_value_t = 10_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub shutdown_grace_ms: u64,
    /// Address of the gRPC server.
    #[arg(
        long,
        env = "TOLLGATE_GRPC_ADDR",
        default_value = "0.0.0.0:8081",
        value_name = "ADDR"
    )]
    pub grpc_addr: SocketAddr,
    /// Address of the HTTP server.
    #[arg(
        long,
        env = "TOLLGATE_HTTP_ADDR",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    pub http_addr: SocketAddr,
    /// What to answer when the limit store is down.
    #[arg(long, env = "TOLLGATE_FAILURE_MODE", value_enum, default_value_t = FailureMode::Deny)]
    pub failure_mode: FailureMode,
    /// Days to keep per-day usage of each key for usage reports.
    #[arg(long, env = "TOLLGATE_USAGE_RETENTION_DAYS", default_value_t = 90, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub usage_retention_days: u32,
    /// Management API: credentials and key value policy.
    #[command(flatten)]
    pub admin: crate::admin::AdminSettings,

    // Envoy integrations: the rate-limit service (RLS v3) and ext_authz.
    /// Directory of Envoy rate-limit configs in the envoyproxy/ratelimit YAML format (one
    /// domain per *.yaml file), served on gRPC as envoy.service.ratelimit.v3; reloaded when
    /// the files change, a broken file keeping the previous config.
    #[arg(long, env = "TOLLGATE_RLS_CONFIG", value_name = "DIR")]
    pub rls_config: Option<PathBuf>,
    /// How often the rate-limit config directory is checked for changes, in milliseconds.
    #[arg(long, env = "TOLLGATE_RLS_RELOAD_INTERVAL_MS", default_value_t = 1000, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    pub rls_reload_interval_ms: u64,
    /// Global shadow mode for Envoy rate limits: count and report, never answer OVER_LIMIT.
    #[arg(long, env = "TOLLGATE_RLS_SHADOW_MODE")]
    pub rls_shadow_mode: bool,
    /// Descriptor entry key whose value is an API key: such a descriptor applies the key's
    /// usage plan (API and stage from its tollgate_api and tollgate_stage entries).
    #[arg(
        long,
        env = "TOLLGATE_RLS_API_KEY_ENTRY",
        default_value = "api_key",
        value_name = "KEY"
    )]
    pub rls_api_key_entry: String,
    /// Rate-limit headers in Envoy rate-limit answers.
    #[arg(long, env = "TOLLGATE_RLS_RESPONSE_HEADERS", value_enum, default_value_t = RlsResponseHeaders::Off)]
    pub rls_response_headers: RlsResponseHeaders,
    /// Request header that carries the API key in ext_authz checks.
    #[arg(
        long,
        env = "TOLLGATE_EXT_AUTHZ_API_KEY_HEADER",
        default_value = "x-api-key",
        value_name = "NAME"
    )]
    pub ext_authz_api_key_header: String,

    // Observability.
    /// OpenTelemetry collector to send traces to, over OTLP/gRPC, as http://HOST:PORT or
    /// https://HOST:PORT (4317 is the collector's usual port): a span per check, joined to the
    /// caller's trace by its W3C traceparent header. Without the flag, the endpoint comes from
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT. Sampling follows
    /// OTEL_TRACES_SAMPLER, the service name OTEL_SERVICE_NAME (default tollgate), and https://
    /// trusts the public roots or the CA file OTEL_EXPORTER_OTLP_CERTIFICATE names. Without an
    /// endpoint no spans are made.
    #[arg(long, value_name = "URL", value_parser = otlp_endpoint)]
    pub otlp_endpoint: Option<String>,
}

/// An OTLP/gRPC endpoint given on the command line.
fn otlp_endpoint(raw: &str) -> Result<String, String> {
    crate::telemetry::check_endpoint(raw).map(|()| raw.to_owned())
}

/// Which rate-limit headers Envoy rate-limit answers carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RlsResponseHeaders {
    /// None.
    Off,
    /// Envoy's x-ratelimit-limit, -remaining, -reset (its DRAFT_VERSION_03 format).
    XRatelimit,
    /// The IETF RateLimit-Limit, -Remaining, -Reset, and Retry-After when over the limit.
    Ratelimit,
}

impl ServeSettings {
    /// How Envoy rate-limit requests are planned and answered, from these settings.
    pub fn rls_options(&self) -> tollgate_core::rls::check::RlsOptions {
        use tollgate_core::rls::check::{RlsHeaders, RlsOptions};
        RlsOptions {
            api_key_entry: self.rls_api_key_entry.clone(),
            shadow_mode: self.rls_shadow_mode,
            usage_retention_days: Some(self.usage_retention_days),
            headers: match self.rls_response_headers {
                RlsResponseHeaders::Off => RlsHeaders::Off,
                RlsResponseHeaders::XRatelimit => RlsHeaders::XRateLimit,
                RlsResponseHeaders::Ratelimit => RlsHeaders::RateLimit,
            },
        }
    }
}

// The Redis URL may hold a password.
impl fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeSettings")
            .field("config", &self.config)
            .field(
                "redis_url",
                &self
                    .redis
                    .redis_url
                    .as_deref()
                    .map(|u| u.split(',').map(redact_url).collect::<Vec<_>>().join(",")),
            )
            .field("redis_mode", &self.redis.redis_mode)
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("failure_mode", &self.failure_mode)
            .field("usage_retention_days", &self.usage_retention_days)
            .field("rls_config", &self.rls_config)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .finish_non_exhaustive()
    }
}

impl ServeSettings {
    /// Settings with every default, for tests and embedding.
    pub fn with_defaults() -> Self {
        let cli = Cli::parse_from(["tollgate", "serve"]);
        match cli.command {
            Command::Serve(s) => s,
            _ => unreachable!("parsed `serve`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The command line is well-formed (clap's own consistency checks).
    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Defaults follow the contract: gRPC 8081, HTTP 8080, standalone, fail closed.
    #[test]
    fn defaults() {
        let s = ServeSettings::with_defaults();
        assert_eq!(s.grpc_addr.port(), 8081);
        assert_eq!(s.http_addr.port(), 8080);
        assert_eq!(s.redis.redis_mode, "standalone");
        assert_eq!(s.failure_mode, FailureMode::Deny);
    }

    /// Debug output never shows a Redis password.
    #[test]
    fn debug_redacts_password() {
        let mut s = ServeSettings::with_defaults();
        s.redis.redis_url = Some("redis://:hunter2@a:1,redis://:hunter2@b:2".into());
        s.redis.redis_sentinel_master_password = Some("hunter3".into());
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("hunter3"));
    }

    /// The TLS and Sentinel master flags reach the settings, and a client certificate
    /// without its key is refused by the parser.
    #[test]
    fn redis_tls_and_master_flags() {
        let cli = Cli::try_parse_from([
            "tollgate",
            "serve",
            "--redis-tls-ca-file",
            "/etc/redis/ca.pem",
            "--redis-tls-cert-file",
            "/etc/redis/client.pem",
            "--redis-tls-key-file",
            "/etc/redis/client.key",
            "--redis-sentinel-master-password",
            "m",
        ])
        .unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("parsed serve")
        };
        assert_eq!(
            s.redis.redis_tls_ca_file.as_deref(),
            Some(std::path::Path::new("/etc/redis/ca.pem"))
        );
        assert_eq!(s.redis.redis_sentinel_master_password.as_deref(), Some("m"));
        assert!(Cli::try_parse_from([
            "tollgate",
            "serve",
            "--redis-tls-cert-file",
            "/etc/redis/client.pem"
        ])
        .is_err());
    }

    /// An OTLP endpoint must be http:// or https:// with a host; anything else is refused
    /// with the form expected.
    #[test]
    fn otlp_endpoint_flag() {
        let parse = |v: &str| Cli::try_parse_from(["tollgate", "serve", "--otlp-endpoint", v]);
        let cli = parse("http://collector:4317").unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("parsed serve")
        };
        assert_eq!(s.otlp_endpoint.as_deref(), Some("http://collector:4317"));
        for bad in [
            "collector:4317",
            "",
            "http://",
            "grpc://collector:4317",
            "http://a b",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("http://HOST:PORT"), "{bad:?}: {e}");
        }
        assert!(parse("https://collector.example:4317").is_ok());
    }
}
