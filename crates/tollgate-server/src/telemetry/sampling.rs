//! Which checks are traced, decided before a check's first span exists.
//!
//! Why not leave it to the OpenTelemetry SDK's sampler: that sampler runs only once a span
//! is built, so every check would still pay for its spans going through `tracing`'s registry
//! and the OpenTelemetry layer, sampled or not (about a third more instructions per check
//! with 1 % sampled; docs/benchmarks.md). Here the decision is made from the caller's
//! headers as a check arrives, and a check not chosen runs under a second subscriber that
//! only logs, whose filter disables the check's spans before they are built. (A per-layer
//! filter on the exporting layer is not enough: the registry keeps a span that every layer's
//! filter turned away.) The SDK then keeps everything it is given.
//!
//! The standard variables say how: `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`,
//! `traceidratio`, and their `parentbased_` forms, the default `parentbased_always_on`) and
//! `OTEL_TRACES_SAMPLER_ARG` (the ratio, from 0 to 1).

use super::caller::{parse_traceparent, CallerTrace};
use opentelemetry::trace::SpanContext;
use std::future::Future;
use std::sync::OnceLock;
use tracing::instrument::WithSubscriber;
use tracing::{Dispatch, Level, Metadata};

/// How checks are sampled; set once traces are exported.
static CHECK_SAMPLER: OnceLock<CheckSampler> = OnceLock::new();

/// The subscriber a check not chosen for tracing runs under: logs only.
static UNTRACED: OnceLock<Dispatch> = OnceLock::new();

/// A sampler for checks, as `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` describe it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CheckSampler {
    /// Follow the caller's sampled flag when it sent a `traceparent`.
    follow_parent: bool,
    /// Share of the other checks traced, from 0 to 1.
    ratio: f64,
}

impl CheckSampler {
    /// The sampler the two variables' values name (the default when unset).
    pub(super) fn from_settings(sampler: Option<&str>, arg: Option<&str>) -> Result<Self, String> {
        let name = sampler.map(str::trim).filter(|s| !s.is_empty());
        // Whether the caller's decision counts, and the ratio when the name fixes it.
        let (follow_parent, fixed) = match name.unwrap_or("parentbased_always_on") {
            "always_on" => (false, Some(1.0)),
            "always_off" => (false, Some(0.0)),
            "traceidratio" => (false, None),
            "parentbased_always_on" => (true, Some(1.0)),
            "parentbased_always_off" => (true, Some(0.0)),
            "parentbased_traceidratio" => (true, None),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER is {other:?}; tollgate knows always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off and \
                     parentbased_traceidratio"
                ))
            }
        };
        let ratio = match fixed {
            Some(ratio) => ratio,
            None => {
                let raw = arg.map(str::trim).unwrap_or_default();
                match raw.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => r,
                    _ => {
                        return Err(format!(
                        "OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1 for {}, got {raw:?}",
                        name.unwrap_or_default()
                    ))
                    }
                }
            }
        };
        Ok(CheckSampler {
            follow_parent,
            ratio,
        })
    }

    /// Whether a check whose caller's span is `parent` (if it sent a usable one) is traced.
    fn decide(&self, parent: Option<&SpanContext>) -> bool {
        if let Some(parent) = parent.filter(|_| self.follow_parent) {
            return parent.is_sampled();
        }
        self.ratio >= 1.0 || (self.ratio > 0.0 && rand::random::<f64>() < self.ratio)
    }
}

/// Puts `sampler` in force for every check from now on; only the first call counts.
pub(super) fn install(sampler: CheckSampler) {
    let _ = CHECK_SAMPLER.set(sampler);
}

/// Whether spans are exported at all.
pub fn exporting() -> bool {
    CHECK_SAMPLER.get().is_some()
}

/// Whether the check whose caller sent `headers` is traced, or `None` when no traces are
/// exported; hand it to [`in_check_scope`] around the check's handling. The caller's
/// `traceparent` is read here, once: when the check is traced and the caller sent one, it
/// goes into `extensions` for the handler's [`follow_caller`](super::follow_caller).
pub fn check_sampling(
    headers: &http::HeaderMap,
    extensions: &mut http::Extensions,
) -> Option<bool> {
    let sampler = CHECK_SAMPLER.get()?;
    let parent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent);
    let sampled = sampler.decide(parent.as_ref());
    if let Some(parent) = parent.filter(|_| sampled) {
        extensions.insert(CallerTrace::new(parent));
    }
    Some(sampled)
}

/// Runs one check's handling under its sampling decision (from [`check_sampling`]): a
/// check not chosen runs under the logs-only subscriber, where its spans are disabled.
pub async fn in_check_scope<F: Future>(sampled: Option<bool>, check: F) -> F::Output {
    match (sampled, UNTRACED.get()) {
        (Some(false), Some(untraced)) => check.with_subscriber(untraced.clone()).await,
        _ => check.await,
    }
}

/// Sets the logs-only subscriber for checks not chosen; only the first call counts.
pub(super) fn install_untraced(untraced: Dispatch) {
    let _ = UNTRACED.set(untraced);
}

/// What goes into traces, whatever `RUST_LOG` says: tollgate's own spans, the per-check
/// ones at debug level included, and its log lines at info and above as span events.
pub(super) fn exported(meta: &Metadata<'_>) -> bool {
    let most = if meta.is_span() {
        Level::DEBUG
    } else {
        Level::INFO
    };
    meta.target().starts_with("tollgate") && *meta.level() <= most
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parent a caller sending `traceparent` (or none) gives.
    fn parent(traceparent: Option<&str>) -> Option<SpanContext> {
        traceparent.and_then(parse_traceparent)
    }

    const SAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const UNSAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

    /// The default follows the caller, and traces every check without one.
    #[test]
    fn default_follows_the_parent_else_traces_all() {
        let s = CheckSampler::from_settings(None, None).unwrap();
        assert!(s.decide(parent(Some(SAMPLED)).as_ref()));
        assert!(!s.decide(parent(Some(UNSAMPLED)).as_ref()));
        assert!(s.decide(parent(None).as_ref()));
        assert!(s.decide(parent(Some("garbage")).as_ref()));
    }

    /// Each named sampler, with and without a parent.
    #[test]
    fn named_samplers() {
        let on = CheckSampler::from_settings(Some("always_on"), None).unwrap();
        assert!(on.decide(parent(Some(UNSAMPLED)).as_ref()));
        let off = CheckSampler::from_settings(Some("always_off"), None).unwrap();
        assert!(!off.decide(parent(Some(SAMPLED)).as_ref()));
        let pb_off = CheckSampler::from_settings(Some("parentbased_always_off"), None).unwrap();
        assert!(pb_off.decide(parent(Some(SAMPLED)).as_ref()));
        assert!(!pb_off.decide(parent(None).as_ref()));
        let none = CheckSampler::from_settings(Some("traceidratio"), Some("0")).unwrap();
        assert!(!none.decide(parent(Some(SAMPLED)).as_ref()));
        let pb = CheckSampler::from_settings(Some("parentbased_traceidratio"), Some("0")).unwrap();
        assert!(pb.decide(parent(Some(SAMPLED)).as_ref()));
        assert!(!pb.decide(parent(None).as_ref()));
    }

    /// A ratio traces about that share of checks without a parent.
    #[test]
    fn ratio_traces_about_its_share() {
        let s = CheckSampler::from_settings(Some("traceidratio"), Some("0.25")).unwrap();
        let traced = (0..20_000)
            .filter(|_| s.decide(parent(None).as_ref()))
            .count();
        assert!((4_000..6_000).contains(&traced), "{traced} of 20000");
    }

    /// Unknown samplers and bad ratios are refused, naming what is accepted.
    #[test]
    fn bad_settings_are_refused() {
        let e = CheckSampler::from_settings(Some("jaeger_remote"), None).unwrap_err();
        assert!(e.contains("parentbased_traceidratio"), "{e}");
        for arg in [
            None,
            Some(""),
            Some("1.5"),
            Some("-0.1"),
            Some("half"),
            Some("NaN"),
        ] {
            let e = CheckSampler::from_settings(Some("traceidratio"), arg).unwrap_err();
            assert!(e.contains("from 0 to 1"), "{arg:?}: {e}");
        }
    }
}
