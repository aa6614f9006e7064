//! Logging and tracing set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `info`),
//! and, when an OTLP endpoint is given, the service's spans sent to an OpenTelemetry
//! collector over OTLP/gRPC, each check joined to its caller's trace by W3C `traceparent`.
//!
//! Without an endpoint no exporter exists and the check spans (at debug level) stay disabled,
//! so a check pays nothing for tracing.

mod caller;
mod exporter_settings;
mod sampling;

pub use caller::{follow_caller, CallerTrace};
pub use exporter_settings::check_endpoint;
pub use sampling::{check_sampling, exporting, in_check_scope};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::io::IsTerminal;
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The service name traces carry unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// names one.
const SERVICE_NAME: &str = "tollgate";

/// Why tracing could not be set up.
#[derive(Debug, Error)]
pub enum TelemetryError {
    /// The endpoint a variable gave is not an http(s) URL.
    #[error("{0}")]
    Endpoint(String),
    /// The OTLP exporter refused its settings.
    #[error("cannot set up the OTLP trace exporter for {endpoint}: {source}")]
    Exporter {
        /// The endpoint given.
        endpoint: String,
        /// What the exporter said.
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// `OTEL_TRACES_SAMPLER` or its argument is not one tollgate knows.
    #[error("{0}")]
    Sampler(String),
    /// A TLS file named by an `OTEL_EXPORTER_OTLP_*` variable could not be read.
    #[error("cannot read {variable} ({path}): {source}")]
    TlsFile {
        /// The variable naming the file.
        variable: &'static str,
        /// The path it gave.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// Only one of the client certificate and its key was given.
    #[error("{given} is set, but neither {} nor {} is; a client certificate and its key go together", missing[0], missing[1])]
    ClientIdentity {
        /// The variable that was set.
        given: &'static str,
        /// Either would complete the pair.
        missing: exporter_settings::Variables,
    },
    /// A transport other than gRPC was asked for.
    #[error("{variable} is {value:?}; tollgate sends traces over OTLP/gRPC only (unset it, or set it to grpc)")]
    Protocol {
        /// The variable that asked.
        variable: &'static str,
        /// What it asked for.
        value: String,
    },
}

/// What was set up; [`Telemetry::shutdown`] sends the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter, waiting at most the SDK's export timeout.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK's shutdown blocks until the last batch is sent, and the gRPC exporter's
        // connection is driven by this runtime, which may have only this thread.
        let stopped = match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stopped {
            eprintln!("tollgate: the trace exporter did not stop cleanly: {e}");
        }
    }
}

/// The OTLP endpoint to send traces to: the `--otlp-endpoint` flag when given, else the
/// standard variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then
/// `OTEL_EXPORTER_OTLP_ENDPOINT`); `None` when none is set.
pub fn otlp_endpoint(flag: Option<&str>) -> Result<Option<String>, TelemetryError> {
    exporter_settings::endpoint(flag, exporter_settings::process_variable)
        .map_err(TelemetryError::Endpoint)
}

/// Installs the global subscriber: logs in `format` (`text` or `json`), and spans to
/// `otlp_endpoint` (an OTLP/gRPC URL such as `http://collector:4317`) when given. Must run
/// inside the tokio runtime, which drives the exporter's connection.
pub fn init(format: &str, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let provider = match otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint)?),
        None => None,
    };
    // A second init (tests starting several servers in one process) is harmless, hence the
    // ignored results.
    let (Some(p), Some(endpoint)) = (provider.as_ref(), otlp_endpoint) else {
        // Logs alone. The filter is the subscriber's own, not the layer's: a span that every
        // layer's filter turns away would still be built by the registry.
        let _ = logs_only(format).try_init();
        return Ok(Telemetry { provider });
    };
    let traces = tracing_opentelemetry::layer()
        .with_tracer(p.tracer(SERVICE_NAME))
        // Activation would start a span's trace when it is entered, and an `instrument`ed
        // handler is entered before it can read the caller's traceparent; no code here
        // reads OpenTelemetry's own current context.
        .with_context_activation(false)
        // Per-span extras a check's span does not need: busy/idle times (two clock reads
        // per poll) and the thread; the span names already say where they come from.
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_filter(filter_fn(sampling::exported));
    // Checks not chosen for tracing run under the logs-only subscriber: their spans are then
    // never built (see `sampling`).
    sampling::install_untraced(logs_only(format).into());
    let _ = tracing_subscriber::registry()
        .with(logs_layer(format).with_filter(log_filter()))
        .with(traces)
        .try_init();
    tracing::info!(%endpoint, "sending traces over OTLP/gRPC");
    Ok(Telemetry { provider })
}

/// TLS to an https:// collector, from the standard variables: the CA bundle to trust
/// (`OTEL_EXPORTER_OTLP_CERTIFICATE`; default, the public roots) and a client certificate
/// and key for collectors that ask for one, each in its traces-only form first.
fn tls_config() -> Result<ClientTlsConfig, TelemetryError> {
    use exporter_settings::{CERTIFICATE, CLIENT_CERTIFICATE, CLIENT_KEY};
    let read = |names| -> Result<Option<(&'static str, Vec<u8>)>, TelemetryError> {
        let Some((variable, path)) = exporter_settings::from_process(names) else {
            return Ok(None);
        };
        std::fs::read(&path)
            .map(|pem| Some((variable, pem)))
            .map_err(|source| TelemetryError::TlsFile {
                variable,
                path,
                source,
            })
    };
    let mut tls = match read(CERTIFICATE)? {
        Some((_, ca)) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
        None => ClientTlsConfig::new().with_webpki_roots(),
    };
    match (read(CLIENT_CERTIFICATE)?, read(CLIENT_KEY)?) {
        (Some((_, cert)), Some((_, key))) => tls = tls.identity(Identity::from_pem(cert, key)),
        (Some((given, _)), None) => {
            return Err(TelemetryError::ClientIdentity {
                given,
                missing: CLIENT_KEY,
            })
        }
        (None, Some((given, _))) => {
            return Err(TelemetryError::ClientIdentity {
                given,
                missing: CLIENT_CERTIFICATE,
            })
        }
        (None, None) => {}
    }
    Ok(tls)
}

/// A subscriber that only logs, in `format`, at the level `RUST_LOG` sets.
fn logs_only(format: &str) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry()
        .with(log_filter())
        .with(logs_layer(format))
}

/// Log lines to stderr in `format`.
fn logs_layer<S>(format: &str) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(colour(std::io::stderr().is_terminal()))
        .with_writer(std::io::stderr);
    if format == "json" {
        logs.json().boxed()
    } else {
        logs.boxed()
    }
}

/// What is logged: the level `RUST_LOG` sets (default `info`).
fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

fn tracer_provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    if let Some((variable, value)) = exporter_settings::from_process(exporter_settings::PROTOCOL) {
        if value != "grpc" {
            return Err(TelemetryError::Protocol { variable, value });
        }
    }
    let sampler = sampling::CheckSampler::from_settings(
        std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref(),
        std::env::var("OTEL_TRACES_SAMPLER_ARG").ok().as_deref(),
    )
    .map_err(TelemetryError::Sampler)?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint);
    if endpoint.starts_with("https://") {
        exporter = exporter.with_tls_config(tls_config()?);
    }
    let exporter = exporter
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let resource = if named {
        detected
    } else {
        Resource::builder().with_service_name(SERVICE_NAME).build()
    };
    // Checks are sampled before their spans exist (`sampling`), so the SDK keeps what it
    // gets; batching follows OTEL_BSP_*, read by the SDK.
    sampling::install(sampler);
    Ok(SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// Colour only for a person at a terminal: escape codes in a file, journald or a container's
/// log are noise to whoever greps it. `NO_COLOR` (any non-empty value) turns it off anywhere.
fn colour(stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
