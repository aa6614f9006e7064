//! The caller's trace: a W3C `traceparent` read once as a check arrives, giving both the
//! caller's sampling decision and the parent that the check's span then joins.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The trace a sampled check's caller sent, carried in the request's extensions from where
/// it is read to the handler that opens the check's span.
#[derive(Clone, Debug)]
pub struct CallerTrace(Context);

impl CallerTrace {
    /// The caller's span as a remote parent.
    pub(super) fn new(parent: SpanContext) -> Self {
        CallerTrace(Context::new().with_remote_span_context(parent))
    }
}

/// Makes the current span a child of the caller's trace, when there is one (`caller` is set
/// only for a check being traced whose caller sent a usable `traceparent`).
pub fn follow_caller(caller: Option<&CallerTrace>) {
    let Some(CallerTrace(parent)) = caller else {
        return;
    };
    // Fails only when the span has already started, which a handler's first line precedes.
    let _ = Span::current().set_parent(parent.clone());
}

/// The caller's span from a W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`), or
/// `None` when the header is malformed, in which case the caller sent no usable parent.
pub(super) fn parse_traceparent(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        // Version 00 has exactly four fields; later versions may append more.
        && (version != "00" || parts.next().is_none());
    if !valid {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(parent_id).ok()?,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const UNSAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

    fn sampled_flag(traceparent: &str) -> Option<bool> {
        parse_traceparent(traceparent).map(|c| c.is_sampled())
    }

    /// Only well-formed traceparents count as a parent, and its sampled flag is read.
    #[test]
    fn traceparent_flags() {
        assert_eq!(sampled_flag(SAMPLED), Some(true));
        assert_eq!(sampled_flag(UNSAMPLED), Some(false));
        assert_eq!(
            sampled_flag("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03"),
            Some(true)
        );
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(sampled_flag(bad), None, "{bad:?}");
        }
        // A later version may carry more fields.
        assert_eq!(
            sampled_flag("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-xyz"),
            Some(true)
        );
    }

    /// The parent is the caller's span, as a remote one.
    #[test]
    fn parent_is_the_callers_span() {
        let parent = parse_traceparent(SAMPLED).unwrap();
        assert_eq!(
            parent.trace_id(),
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()
        );
        assert_eq!(
            parent.span_id(),
            SpanId::from_hex("b7ad6b7169203331").unwrap()
        );
        assert!(parent.is_remote());
    }
}
