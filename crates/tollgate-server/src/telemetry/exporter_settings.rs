//! The standard OTLP exporter variables tollgate reads itself: the endpoint, the protocol
//! and the TLS files. Each is looked up in its traces-only form (`OTEL_EXPORTER_OTLP_TRACES_*`)
//! before the general one, the order the OpenTelemetry specification gives, so a deployment
//! that points only its traces somewhere is honoured. Headers, timeout and compression are
//! read by the exporter crate itself, in the same order.

/// One setting's two variable names: the traces-only one first.
pub(super) type Variables = [&'static str; 2];

/// Where traces go.
pub(super) const ENDPOINT: Variables = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
/// The transport: only `grpc` is served.
pub(super) const PROTOCOL: Variables = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];
/// The CA bundle an https:// collector is checked against.
pub(super) const CERTIFICATE: Variables = [
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
];
/// The client certificate shown to collectors that ask for one.
pub(super) const CLIENT_CERTIFICATE: Variables = [
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
];
/// The client certificate's private key.
pub(super) const CLIENT_KEY: Variables = [
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
];

/// The first of `names` that `env` holds with a non-empty value, with the name it came
/// from (so an error can say which variable to fix). An empty value counts as unset, as
/// the specification asks.
pub(super) fn first_set(
    names: Variables,
    env: impl Fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    names
        .into_iter()
        .find_map(|name| env(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
}

/// [`first_set`] over the process environment. A value that is not UTF-8 is kept, with
/// replacement characters, so that it fails visibly (as a file that cannot be read, or an
/// endpoint that is no URL) rather than counting as unset.
pub(super) fn from_process(names: Variables) -> Option<(&'static str, String)> {
    first_set(names, process_variable)
}

/// One variable of the process environment, as [`from_process`] reads it.
pub(super) fn process_variable(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Checks an OTLP/gRPC endpoint: an http:// or https:// URL with a host. The scheme is
/// required because it alone says whether TLS is used (`OTEL_EXPORTER_OTLP_INSECURE`
/// only matters for endpoints without one).
pub fn check_endpoint(raw: &str) -> Result<(), String> {
    const FORM: &str = "expected http://HOST:PORT or https://HOST:PORT";
    let uri: http::Uri = raw
        .parse()
        .map_err(|e| format!("not a URL ({e}); {FORM}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(FORM.to_owned()),
    }
}

/// The endpoint to send traces to: the `--otlp-endpoint` flag when given (already checked
/// by the command line), else the first of [`ENDPOINT`] that `env` holds. A variable's value
/// is checked here, and a bad one is named in the error.
pub(super) fn endpoint(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    if let Some(flag) = flag {
        return Ok(Some(flag.to_owned()));
    }
    let Some((name, value)) = first_set(ENDPOINT, env) else {
        return Ok(None);
    };
    check_endpoint(&value).map_err(|e| format!("{name} is {value:?}: {e}"))?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// The traces-only variable wins over the general one, and an empty value is unset.
    #[test]
    fn the_traces_variable_comes_first() {
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            first_set(PROTOCOL, both),
            Some(("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc".to_owned()))
        );
        let empty_traces = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", ""),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert_eq!(
            first_set(PROTOCOL, empty_traces),
            Some(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()))
        );
        assert_eq!(first_set(PROTOCOL, env(&[])), None);
    }

    /// The flag beats both variables; then the traces-only endpoint; then the general one.
    #[test]
    fn endpoint_precedence() {
        let vars = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4317"),
        ]);
        assert_eq!(
            endpoint(Some("https://flag:4317"), &vars)
                .unwrap()
                .as_deref(),
            Some("https://flag:4317")
        );
        assert_eq!(
            endpoint(None, &vars).unwrap().as_deref(),
            Some("http://traces:4317")
        );
        let general = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4317")]);
        assert_eq!(
            endpoint(None, general).unwrap().as_deref(),
            Some("http://all:4317")
        );
        assert_eq!(endpoint(None, env(&[])).unwrap(), None);
    }

    /// A bad endpoint from a variable is refused with the variable's name and the form
    /// expected, even when the general variable holds a good one.
    #[test]
    fn a_bad_variable_endpoint_names_the_variable() {
        let vars = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4317"),
        ]);
        let e = endpoint(None, vars).unwrap_err();
        assert!(
            e.starts_with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is \"collector:4317\""),
            "{e}"
        );
        assert!(
            e.contains("expected http://HOST:PORT or https://HOST:PORT"),
            "{e}"
        );
    }
}
