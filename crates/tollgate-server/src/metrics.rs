//! Prometheus metrics, served in the text format at `GET /metrics` on the HTTP port.
//!
//! One process-wide registry ([`metrics()`]), so any module records without a handle being
//! passed around. Names start with `tollgate_`. Label values are bounded by configuration
//! (rule stats keys, verdicts), except the stats keys of `detailed_metric` rules and of
//! descriptors carrying their own limit, which hold request values, as envoyproxy/ratelimit's
//! do: that is what those options ask for.

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::sync::LazyLock;

/// Every metric tollgate exports.
pub struct Metrics {
    registry: Registry,
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
        let rls_config_domains = IntGauge::new(
            "tollgate_rls_config_domains",
            "Envoy rate-limit domains in force.",
        )?;
        registry.register(Box::new(rls_config_domains.clone()))?;
        Ok(Metrics {
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
        })
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
        let text = m.render().unwrap();
        assert!(
            text.contains("tollgate_rls_config_errors_total 1"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_rls_requests_total{code=\"ok\"} 1"),
            "{text}"
        );
    }
}
