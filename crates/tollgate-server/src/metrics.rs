//! Prometheus metrics, served in the text format at `GET /metrics` on the HTTP port.
//!
//! One process-wide registry ([`metrics()`]), so any module records without a handle being
//! passed around. Names start with `tollgate_`; the dashboards and alerts in `deploy/` use
//! them. Label values are bounded by code or configuration (protocols, verdicts, rule stats
//! keys), except the stats keys of `detailed_metric` rules and of descriptors carrying their
//! own limit, which hold request values, as envoyproxy/ratelimit's do: that is what those
//! options ask for.
//!
//! Every protocol adapter records its answers with [`observe_check`] under its protocol
//! (`grpc` for CheckQuota, `ext_authz`, `rls`; the HTTP checks use `http` and, for nginx,
//! `auth_request`), and the limiter counts store failures with [`store_error`].
//!
//! Series whose label values are known in advance (protocols, verdicts, store error kinds,
//! RLS codes) exist at zero from the start: a counter that first appears at 1 hides that
//! first increase from `rate()` and `increase()`, so an alert on store errors would miss
//! the first burst of them.

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::sync::LazyLock;
use std::time::Instant;
use tollgate_core::check::Verdict;
use tollgate_store::StoreError;

/// Buckets of the check latency histogram, in seconds: 100 µs to 1 s.
const CHECK_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The `protocol` label of each check adapter; adapters name theirs from here, so the
/// series created at start are the ones they count in.
pub mod protocol {
    /// CheckQuota over gRPC.
    pub const GRPC: &str = "grpc";
    /// `POST /v1/check`.
    pub const HTTP: &str = "http";
    /// nginx's `auth_request` endpoint.
    pub const AUTH_REQUEST: &str = "auth_request";
    /// Envoy external authorization.
    pub const EXT_AUTHZ: &str = "ext_authz";
    /// Envoy RLS `ShouldRateLimit`.
    pub const RLS: &str = "rls";
}

/// The `protocol` label of each adapter that answers with a [`Verdict`].
const VERDICT_PROTOCOLS: [&str; 4] = [
    protocol::GRPC,
    protocol::HTTP,
    protocol::AUTH_REQUEST,
    protocol::EXT_AUTHZ,
];
/// The `kind` label values of `tollgate_store_errors_total`.
const STORE_ERROR_KINDS: [&str; 4] = ["unavailable", "timeout", "protocol", "config"];

/// Every metric tollgate exports.
pub struct Metrics {
    registry: Registry,
    /// Checks answered, by protocol and verdict (`ok`, `throttled`, `quota_exceeded`,
    /// `key_missing`, `key_invalid`, `key_disabled`, `key_not_subscribed`, `unavailable`;
    /// for RLS `ok`, `over_limit`, `unavailable`).
    pub checks: IntCounterVec,
    /// Time to answer a check, by protocol.
    pub check_duration: HistogramVec,
    /// Limit store calls that failed, by kind (`unavailable`, `timeout`, `protocol`, `config`).
    pub store_errors: IntCounterVec,
    /// Checks answered from the deny cache without a store call.
    pub deny_cache_hits: IntCounter,
    /// RLS config directory loads that took effect (the first one included).
    pub rls_config_reloads: IntCounter,
    /// RLS config directory loads refused (a broken file); the previous config stays.
    pub rls_config_errors: IntCounter,
    /// RLS domains in force.
    pub rls_config_domains: IntGauge,
    /// `ShouldRateLimit` answers, by overall code (`ok`, `over_limit`, `error`).
    pub rls_requests: IntCounterVec,
    /// Descriptors that matched a rule, by the rule's stats key.
    pub rls_rule_checks: IntCounterVec,
    /// Descriptors answered OVER_LIMIT, by the rule's stats key.
    pub rls_rule_over_limit: IntCounterVec,
    /// Descriptors over their limit but let through by shadow mode, by the rule's stats key.
    pub rls_rule_shadow_mode: IntCounterVec,
    /// ext_authz `Check` answers, by verdict (`ok`, `throttled`, `key_invalid`, ...).
    pub ext_authz_checks: IntCounterVec,
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let counter_vec =
            |name: &str, help: &str, label: &str| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let checks = IntCounterVec::new(
            Opts::new(
                "tollgate_checks_total",
                "Checks answered, by protocol and verdict.",
            ),
            &["protocol", "verdict"],
        )?;
        registry.register(Box::new(checks.clone()))?;
        let check_duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_check_duration_seconds",
                "Time to answer a check, by protocol.",
            )
            .buckets(CHECK_BUCKETS.to_vec()),
            &["protocol"],
        )?;
        registry.register(Box::new(check_duration.clone()))?;
        let rls_config_domains = IntGauge::new(
            "tollgate_rls_config_domains",
            "Envoy rate-limit domains in force.",
        )?;
        registry.register(Box::new(rls_config_domains.clone()))?;
        let m = Metrics {
            checks,
            check_duration,
            store_errors: counter_vec(
                "tollgate_store_errors_total",
                "Limit store calls that failed, by kind.",
                "kind",
            )?,
            deny_cache_hits: counter(
                "tollgate_deny_cache_hits_total",
                "Checks answered from the deny cache without a store call.",
            )?,
            rls_config_reloads: counter(
                "tollgate_rls_config_reloads_total",
                "Envoy rate-limit config loads that took effect.",
            )?,
            rls_config_errors: counter(
                "tollgate_rls_config_errors_total",
                "Envoy rate-limit config loads refused because a file is broken; the previous config stays in force.",
            )?,
            rls_config_domains,
            rls_requests: counter_vec(
                "tollgate_rls_requests_total",
                "ShouldRateLimit answers by overall code.",
                "code",
            )?,
            rls_rule_checks: counter_vec(
                "tollgate_rls_rule_checks_total",
                "Descriptors that matched a rate-limit rule, by the rule's stats key.",
                "rule",
            )?,
            rls_rule_over_limit: counter_vec(
                "tollgate_rls_rule_over_limit_total",
                "Descriptors answered OVER_LIMIT, by the rule's stats key.",
                "rule",
            )?,
            rls_rule_shadow_mode: counter_vec(
                "tollgate_rls_rule_shadow_mode_total",
                "Descriptors over their limit but let through by shadow mode, by the rule's stats key.",
                "rule",
            )?,
            ext_authz_checks: counter_vec(
                "tollgate_ext_authz_checks_total",
                "ext_authz Check answers by verdict.",
                "verdict",
            )?,
            registry,
        };
        m.create_known_series();
        Ok(m)
    }

    /// Creates, at zero, every series whose labels are known before any request.
    fn create_known_series(&self) {
        for verdict in Verdict::ALL.map(verdict_label) {
            for protocol in VERDICT_PROTOCOLS {
                self.checks.with_label_values(&[protocol, verdict]);
            }
            self.ext_authz_checks.with_label_values(&[verdict]);
        }
        for outcome in RlsOutcome::ALL {
            self.checks
                .with_label_values(&[protocol::RLS, outcome.verdict()]);
            self.rls_requests.with_label_values(&[outcome.code()]);
        }
        for name in VERDICT_PROTOCOLS.into_iter().chain([protocol::RLS]) {
            self.check_duration.with_label_values(&[name]);
        }
        for kind in STORE_ERROR_KINDS {
            self.store_errors.with_label_values(&[kind]);
        }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| match Metrics::new() {
    Ok(m) => m,
    // Only a duplicate or malformed name can fail, which the unit test below rules out.
    Err(e) => panic!("metric definitions are invalid: {e}"),
});

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The label of a verdict, as `tollgate_checks_total` has it.
pub fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Throttled => "throttled",
        Verdict::QuotaExceeded => "quota_exceeded",
        Verdict::KeyMissing => "key_missing",
        Verdict::KeyInvalid => "key_invalid",
        Verdict::KeyDisabled => "key_disabled",
        Verdict::KeyNotSubscribed => "key_not_subscribed",
        Verdict::Unavailable => "unavailable",
    }
}

/// Records one answered check of `protocol` begun at `started`.
pub fn observe_check(protocol: &str, verdict: &str, started: Instant) {
    let m = metrics();
    m.checks.with_label_values(&[protocol, verdict]).inc();
    m.check_duration
        .with_label_values(&[protocol])
        .observe(started.elapsed().as_secs_f64());
}

/// How a `ShouldRateLimit` call ended, as the RLS metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlsOutcome {
    /// Every descriptor under its limit.
    Ok,
    /// At least one descriptor over its limit.
    OverLimit,
    /// The limit store failed.
    Unavailable,
}

impl RlsOutcome {
    /// Every outcome.
    const ALL: [RlsOutcome; 3] = [
        RlsOutcome::Ok,
        RlsOutcome::OverLimit,
        RlsOutcome::Unavailable,
    ];

    /// Its `code` label on `tollgate_rls_requests_total`.
    fn code(self) -> &'static str {
        match self {
            RlsOutcome::Ok => "ok",
            RlsOutcome::OverLimit => "over_limit",
            RlsOutcome::Unavailable => "error",
        }
    }

    /// Its `verdict` label on `tollgate_checks_total{protocol="rls"}`.
    fn verdict(self) -> &'static str {
        match self {
            RlsOutcome::Ok => "ok",
            RlsOutcome::OverLimit => "over_limit",
            RlsOutcome::Unavailable => "unavailable",
        }
    }
}

/// Records one answered `ShouldRateLimit` call begun at `started`: its overall code, and
/// the check's verdict and time under `protocol="rls"`.
pub fn observe_rls(outcome: RlsOutcome, started: Instant) {
    metrics()
        .rls_requests
        .with_label_values(&[outcome.code()])
        .inc();
    observe_check(protocol::RLS, outcome.verdict(), started);
}

/// Records a failed limit store call.
pub fn store_error(e: &StoreError) {
    metrics()
        .store_errors
        .with_label_values(&[store_error_kind(e)])
        .inc();
}

/// The `kind` label of a store error (one of [`STORE_ERROR_KINDS`]).
fn store_error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Unavailable(_) => STORE_ERROR_KINDS[0],
        StoreError::Timeout(_) => STORE_ERROR_KINDS[1],
        StoreError::Protocol(_) => STORE_ERROR_KINDS[2],
        StoreError::Config(_) => STORE_ERROR_KINDS[3],
    }
}

/// `GET /metrics`.
pub async fn serve() -> impl IntoResponse {
    match metrics().render() {
        Ok(text) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot render metrics: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric registers and renders under its name.
    #[test]
    fn metrics_render() {
        let m = Metrics::new().unwrap();
        m.rls_config_errors.inc();
        m.rls_requests.with_label_values(&["ok"]).inc();
        m.checks.with_label_values(&["grpc", "ok"]).inc();
        m.check_duration.with_label_values(&["grpc"]).observe(0.001);
        let text = m.render().unwrap();
        assert!(
            text.contains("tollgate_checks_total{protocol=\"grpc\",verdict=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "tollgate_check_duration_seconds_bucket{protocol=\"grpc\",le=\"0.001\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("tollgate_deny_cache_hits_total 0"), "{text}");
        assert!(
            text.contains("tollgate_rls_config_errors_total 1"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_rls_requests_total{code=\"ok\"} 1"),
            "{text}"
        );
    }

    /// Before any request, every series with known labels is there at zero, and nothing
    /// else is: a rule's series still wait for the rule.
    #[test]
    fn known_series_start_at_zero() {
        let text = Metrics::new().unwrap().render().unwrap();
        for line in [
            "tollgate_store_errors_total{kind=\"timeout\"} 0",
            "tollgate_store_errors_total{kind=\"unavailable\"} 0",
            "tollgate_checks_total{protocol=\"auth_request\",verdict=\"key_invalid\"} 0",
            "tollgate_checks_total{protocol=\"grpc\",verdict=\"unavailable\"} 0",
            "tollgate_checks_total{protocol=\"rls\",verdict=\"over_limit\"} 0",
            "tollgate_ext_authz_checks_total{verdict=\"throttled\"} 0",
            "tollgate_rls_requests_total{code=\"error\"} 0",
            "tollgate_check_duration_seconds_count{protocol=\"http\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        let checks = text
            .lines()
            .filter(|l| l.starts_with("tollgate_checks_total{"))
            .count();
        assert_eq!(checks, 4 * Verdict::ALL.len() + 3, "{text}");
        assert!(!text.contains("tollgate_rls_rule_checks_total{"), "{text}");
    }

    /// Each store error counts under its own kind.
    #[test]
    fn store_error_kinds_are_distinct() {
        let kinds = [
            StoreError::Unavailable(String::new()),
            StoreError::Timeout(1),
            StoreError::Protocol(String::new()),
            StoreError::Config(String::new()),
        ]
        .map(|e| store_error_kind(&e));
        assert_eq!(kinds, STORE_ERROR_KINDS);
    }
}
