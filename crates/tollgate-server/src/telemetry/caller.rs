//! Joining the caller's trace: a check's span becomes the child of the span whose W3C
//! `traceparent` the caller sent.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes the current span a child of the caller's trace when spans are exported and the
/// caller sent a W3C `traceparent` (Envoy does, with tracing on); otherwise does nothing.
pub fn follow_caller(headers: &http::HeaderMap) {
    let span = Span::current();
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderCarrier(headers));
    // Fails only when the span has already started, which a handler's first line precedes.
    let _ = span.set_parent(parent);
}

/// Reads trace context from request headers.
struct HeaderCarrier<'a>(&'a http::HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
