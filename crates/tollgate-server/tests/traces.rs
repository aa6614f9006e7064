//! OpenTelemetry traces from the real binary: with `--otlp-endpoint`, every check adapter's
//! span reaches an OTLP/gRPC collector, as the child of the caller's W3C `traceparent` when
//! one was sent, with the store call as its own child span, and never with the key's value.
//!
//! The collector here is the OTLP trace service from the OpenTelemetry protos
//! (opentelemetry-proto), served by tonic on a free port, keeping what it is sent.

mod support;

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
    rate_limit_descriptor::Entry, RateLimitDescriptor,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AuthzHttp,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tonic::metadata::MetadataValue;
use tonic::transport::{Identity, ServerTlsConfig};

/// A span as the collector got it, with its service's name.
#[derive(Clone, Debug)]
struct Got {
    service: String,
    span: Span,
}

impl Got {
    fn attr(&self, key: &str) -> Option<String> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(text)
    }
}

fn text(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        AnyValue::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// An OTLP trace collector on a free port, keeping every span it is sent and each export's
/// `grpc-encoding` (gzip, as real collectors, is accepted).
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Got>>>,
    encodings: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .to_owned();
        self.encodings
            .lock()
            .expect("collector lock")
            .push(encoding);
        let mut kept = self.spans.lock().expect("collector lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(text)
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push(Got {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Starts serving; returns the collector and its endpoint URL.
    async fn start() -> (Collector, String) {
        Self::serve(None).await
    }

    /// Starts serving over TLS with `identity`; returns the collector and its https URL.
    async fn start_tls(identity: Identity) -> (Collector, String) {
        Self::serve(Some(identity)).await
    }

    async fn serve(tls: Option<Identity>) -> (Collector, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let address = listener.local_addr().expect("address");
        let mut server = tonic::transport::Server::builder();
        let scheme = match tls {
            Some(identity) => {
                server = server
                    .tls_config(ServerTlsConfig::new().identity(identity))
                    .expect("server TLS");
                "https"
            }
            None => "http",
        };
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        tokio::spawn(
            server
                .add_service(service)
                .serve_with_incoming(tokio_stream_of(listener)),
        );
        (collector, format!("{scheme}://{address}"))
    }

    /// Waits up to 10 s for a span named `name` in trace `trace_id` (hex), and returns it.
    async fn span(&self, name: &str, trace_id: &str) -> Got {
        self.wait_for(|g| g.span.name == name && hex(&g.span.trace_id) == trace_id)
            .await
            .unwrap_or_else(|| panic!("no span {name} in trace {trace_id}: {:#?}", self.names()))
    }

    async fn wait_for(&self, pick: impl Fn(&Got) -> bool) -> Option<Got> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(g) = self.spans.lock().expect("lock").iter().find(|g| pick(g)) {
                return Some(g.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn names(&self) -> Vec<(String, String)> {
        let spans = self.spans.lock().expect("lock");
        spans
            .iter()
            .map(|g| (g.span.name.clone(), hex(&g.span.trace_id)))
            .collect()
    }

    fn all(&self) -> Vec<Got> {
        self.spans.lock().expect("lock").clone()
    }
}

/// A listener as the incoming-connection stream tonic serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, _)| s);
        Some((next, l))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A caller's W3C trace context: trace id, parent span id, and the header carrying them.
struct Caller {
    trace_id: String,
    span_id: String,
}

impl Caller {
    fn new(n: u8) -> Caller {
        Caller {
            trace_id: format!(
                "{:032x}",
                0x0af7651916cd43dd8448eb211c80319c_u128 + u128::from(n)
            ),
            span_id: format!("{:016x}", 0xb7ad6b7169203331_u64 + u64::from(n)),
        }
    }

    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }

    fn grpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        let value: MetadataValue<_> = self.traceparent().parse().expect("metadata value");
        r.metadata_mut().insert("traceparent", value);
        r
    }
}

const RLS_DOMAIN: &str = "domain: traced\ndescriptors:\n  - key: tier\n    rate_limit: {unit: minute, requests_per_unit: 100}\n";

/// Starts tollgate on the seed plans with an RLS domain, sending spans to `endpoint` in
/// batches every `batch_delay_ms`, plus `extra` flags and `env`.
fn traced_tollgate(
    endpoint: &str,
    rls_dir: &std::path::Path,
    batch_delay_ms: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Tollgate {
    let seed = seed_config();
    let mut args = vec![
        "--config",
        seed.to_str().expect("utf-8 path"),
        "--rls-config",
        rls_dir.to_str().expect("utf-8 path"),
        "--otlp-endpoint",
        endpoint,
    ];
    args.extend_from_slice(extra);
    let mut all = vec![("OTEL_BSP_SCHEDULE_DELAY", batch_delay_ms)];
    all.extend_from_slice(env);
    Tollgate::start_with_env(&args, &all)
}

fn rls_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("traced.yaml"), RLS_DOMAIN).expect("write the domain");
    dir
}

/// Asserts `got` is the caller's child, named for its adapter, with the check's fields, and
/// that the store call is its child in turn.
async fn assert_check_span(collector: &Collector, name: &str, caller: &Caller) -> Got {
    let got = collector.span(name, &caller.trace_id).await;
    assert_eq!(hex(&got.span.parent_span_id), caller.span_id, "{got:#?}");
    assert_eq!(got.service, "tollgate", "{got:#?}");
    let own_id = got.span.span_id.clone();
    let store = collector
        .wait_for(|g| g.span.name == "store.check" && g.span.parent_span_id == own_id)
        .await
        .unwrap_or_else(|| panic!("no store span under {name}: {:#?}", collector.names()));
    assert_eq!(hex(&store.span.trace_id), caller.trace_id);
    assert_eq!(
        store.attr("backend").as_deref(),
        Some("memory"),
        "{store:#?}"
    );
    got
}

/// Each check adapter (CheckQuota, Envoy RLS and ext_authz, POST /v1/check, GET /v1/auth)
/// joins the caller's trace: its span has the caller's trace id and span as parent, carries
/// the check's plan, key id and verdict, and has the store call as a child. A check with no
/// `traceparent` starts a trace of its own. No span anywhere carries the key's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_adapter_joins_the_callers_trace() {
    let (collector, endpoint) = Collector::start().await;
    let dir = rls_dir();
    let t = traced_tollgate(&endpoint, dir.path(), "50", &[], &[]);

    // CheckQuota, through the gRPC hot path.
    let caller = Caller::new(1);
    let mut client = t.client().await;
    let answer = client
        .check_quota(caller.grpc(seed_request(TEST_KEY)))
        .await
        .expect("CheckQuota")
        .into_inner();
    assert_eq!(answer.http_status, 200);
    let span = assert_check_span(&collector, "CheckQuota", &caller).await;
    assert_eq!(
        span.attr("plan_id").as_deref(),
        Some(answer.usage_plan_id.as_str())
    );
    assert_eq!(span.attr("key_id").as_deref(), Some(answer.key_id.as_str()));
    assert_eq!(span.attr("verdict").as_deref(), Some("ok"));
    assert_eq!(span.attr("api_id").as_deref(), Some("demo-API-usage-plan"));

    // Envoy RLS, one descriptor of the file's domain.
    let caller = Caller::new(2);
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", t.grpc_port))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
    let rls = RateLimitRequest {
        domain: "traced".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "tier".into(),
                value: "gold".into(),
            }],
            ..RateLimitDescriptor::default()
        }],
        hits_addend: 1,
    };
    RateLimitServiceClient::new(channel.clone())
        .should_rate_limit(caller.grpc(rls))
        .await
        .expect("ShouldRateLimit");
    let span = assert_check_span(&collector, "ShouldRateLimit", &caller).await;
    assert_eq!(span.attr("domain").as_deref(), Some("traced"));
    assert_eq!(span.attr("overall_code").as_deref(), Some("OK"));

    // Envoy ext_authz.
    let caller = Caller::new(3);
    let authz = CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(Address {
                    address: Some(
                        envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(
                            SocketAddress {
                                address: "10.0.0.1".into(),
                                ..SocketAddress::default()
                            },
                        ),
                    ),
                }),
                ..Peer::default()
            }),
            request: Some(AuthzHttp {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: "/usageplanOffering".into(),
                    headers: HashMap::from([("x-api-key".to_string(), TEST_KEY.to_string())]),
                    ..HttpRequest::default()
                }),
                ..AuthzHttp::default()
            }),
            context_extensions: HashMap::from([
                (
                    "tollgate_api".to_string(),
                    "demo-API-usage-plan".to_string(),
                ),
                ("tollgate_stage".to_string(), "usage-plan-test".to_string()),
            ]),
            ..AttributeContext::default()
        }),
    };
    AuthorizationClient::new(channel)
        .check(caller.grpc(authz))
        .await
        .expect("ext_authz Check");
    let span = assert_check_span(&collector, "ext_authz.Check", &caller).await;
    assert_eq!(span.attr("verdict").as_deref(), Some("ok"));

    // POST /v1/check.
    let caller = Caller::new(4);
    let body = format!(
        r#"{{"apiKey":"{TEST_KEY}","apiId":"demo-API-usage-plan","stage":"usage-plan-test","resource":"/usageplanOffering","method":"POST"}}"#
    );
    let r = t.http(
        "POST",
        "/v1/check",
        &[("traceparent", &caller.traceparent())],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let span = assert_check_span(&collector, "http.check", &caller).await;
    assert_eq!(span.attr("verdict").as_deref(), Some("ok"));

    // GET /v1/auth, as nginx's auth_request sends it.
    let caller = Caller::new(5);
    let r = t.http(
        "GET",
        "/v1/auth?api=demo-API-usage-plan&stage=usage-plan-test",
        &[
            ("traceparent", &caller.traceparent()),
            ("x-api-key", TEST_KEY),
            ("x-original-uri", "/usageplanOffering"),
            ("x-original-method", "POST"),
        ],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let span = assert_check_span(&collector, "http.auth_request", &caller).await;
    assert_eq!(span.attr("verdict").as_deref(), Some("ok"));

    // No traceparent: a root span in a trace of tollgate's own.
    let answer = check(&mut client, seed_request(TEST_KEY)).await;
    assert_eq!(answer.http_status, 200);
    let root = collector
        .wait_for(|g| g.span.name == "CheckQuota" && g.span.parent_span_id.is_empty())
        .await
        .unwrap_or_else(|| panic!("no root span: {:#?}", collector.names()));
    assert!(
        (1..=5).all(|n| hex(&root.span.trace_id) != Caller::new(n).trace_id),
        "{root:#?}"
    );

    // The key's value is in no span's name, attributes or events.
    for got in collector.all() {
        let shown = format!("{:?}", got.span);
        assert!(!shown.contains(TEST_KEY), "the key value leaked: {shown}");
    }
}

/// On SIGTERM the spans still buffered are sent before the process exits, also on the
/// one-thread runtime, where the exporter's connection shares the thread that stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_buffered_at_shutdown_are_sent() {
    let (collector, endpoint) = Collector::start().await;
    let dir = rls_dir();
    // Nothing is sent on the timer within this test: only shutdown can send it.
    let mut t = traced_tollgate(
        &endpoint,
        dir.path(),
        "600000",
        &["--worker-threads", "1"],
        &[],
    );
    let caller = Caller::new(9);
    let mut client = t.client().await;
    client
        .check_quota(caller.grpc(seed_request(TEST_KEY)))
        .await
        .expect("CheckQuota");
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(collector.all().is_empty(), "{:#?}", collector.names());
    t.terminate();
    let status = t.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        t.log()
    );
    assert_check_span(&collector, "CheckQuota", &caller).await;
}

/// Sampling is decided as a check arrives: a caller's unsampled `traceparent` means no span
/// for that check, over gRPC and HTTP alike, and with `parentbased_traceidratio` at 0 a
/// check without a parent is not traced, while a sampled parent's check still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsampled_checks_make_no_spans() {
    let (collector, endpoint) = Collector::start().await;
    let dir = rls_dir();
    let t = traced_tollgate(
        &endpoint,
        dir.path(),
        "50",
        &[],
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    );
    let unsampled = |n: u8| {
        let c = Caller::new(n);
        format!("00-{}-{}-00", c.trace_id, c.span_id)
    };
    let mut client = t.client().await;
    let mut req = tonic::Request::new(seed_request(TEST_KEY));
    req.metadata_mut().insert(
        "traceparent",
        unsampled(20).parse().expect("metadata value"),
    );
    client.check_quota(req).await.expect("CheckQuota");
    let r = t.http(
        "POST",
        "/v1/check",
        &[("traceparent", &unsampled(21))],
        &format!(
            r#"{{"apiKey":"{TEST_KEY}","apiId":"demo-API-usage-plan","stage":"usage-plan-test","resource":"/usageplanOffering","method":"POST"}}"#
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // No parent: the ratio, 0, says no.
    check(&mut client, seed_request(TEST_KEY)).await;
    // A sampled parent: traced, and once its spans are in, the others would be too.
    let caller = Caller::new(22);
    client
        .check_quota(caller.grpc(seed_request(TEST_KEY)))
        .await
        .expect("CheckQuota");
    assert_check_span(&collector, "CheckQuota", &caller).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let traced: Vec<String> = collector
        .all()
        .iter()
        .map(|g| hex(&g.span.trace_id))
        .collect();
    assert!(
        traced.iter().all(|id| *id == caller.trace_id),
        "spans of unsampled checks: {:#?}",
        collector.names()
    );
    assert_eq!(traced.len(), 2, "{:#?}", collector.names());
}

/// An https:// collector: spans arrive when OTEL_EXPORTER_OTLP_CERTIFICATE names the CA
/// that signed the collector's certificate, and none do when it names another CA (the
/// failed exports are logged). OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE, when set, is the one
/// that counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_collector_is_trusted_through_the_ca_file() {
    let pki = tempfile::tempdir().expect("temp dir");
    tollgate_testkit::private_pki(pki.path()).expect("certificates");
    let read = |f: &str| std::fs::read(pki.path().join(f)).expect("read a certificate file");
    let identity = Identity::from_pem(read("server.pem"), read("server.key"));
    let (collector, endpoint) = Collector::start_tls(identity).await;
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let dir = rls_dir();
    // A tollgate whose variables name these CA files, after one check by caller `n`.
    let checked_with = |cas: &[(&str, &str)], n: u8| {
        let files: Vec<(String, String)> = cas
            .iter()
            .map(|(variable, file)| {
                let path = pki.path().join(file);
                (
                    variable.to_string(),
                    path.to_str().expect("utf-8 path").to_owned(),
                )
            })
            .collect();
        let env: Vec<(&str, &str)> = files
            .iter()
            .map(|(v, f)| (v.as_str(), f.as_str()))
            .collect();
        let t = traced_tollgate(&endpoint, dir.path(), "50", &[], &env);
        let caller = Caller::new(n);
        async move {
            t.client()
                .await
                .check_quota(caller.grpc(seed_request(TEST_KEY)))
                .await
                .expect("CheckQuota");
            (t, caller)
        }
    };

    let general = "OTEL_EXPORTER_OTLP_CERTIFICATE";
    let (_trusting, caller) = checked_with(&[(general, "ca.pem")], 30).await;
    assert_check_span(&collector, "CheckQuota", &caller).await;
    let traces_only = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE";
    let (_first, caller) =
        checked_with(&[(traces_only, "ca.pem"), (general, "other-ca.pem")], 32).await;
    assert_check_span(&collector, "CheckQuota", &caller).await;

    let (t, caller) = checked_with(&[(general, "other-ca.pem")], 31).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.log().contains("BatchSpanProcessor.ExportError") {
        assert!(
            Instant::now() < deadline,
            "no export error logged:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        collector
            .all()
            .iter()
            .all(|g| hex(&g.span.trace_id) != caller.trace_id),
        "a span reached the collector through an untrusted certificate"
    );
}

/// Without `--otlp-endpoint`, the standard variables set the exporter, each traces-only
/// variable (`OTEL_EXPORTER_OTLP_TRACES_*`) before its general form: spans reach the
/// collector the traces endpoint names, not the general one, over gRPC although the general
/// protocol says otherwise, and gzip-compressed as the traces compression asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_only_variables_come_first() {
    let (collector, endpoint) = Collector::start().await;
    let (elsewhere, general) = Collector::start().await;
    let seed = seed_config();
    let t = Tollgate::start_with_env(
        &["--config", seed.to_str().expect("utf-8 path")],
        &[
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &general),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ],
    );
    let caller = Caller::new(40);
    t.client()
        .await
        .check_quota(caller.grpc(seed_request(TEST_KEY)))
        .await
        .expect("CheckQuota");
    assert_check_span(&collector, "CheckQuota", &caller).await;
    let encodings = collector.encodings.lock().expect("collector lock").clone();
    assert!(
        !encodings.is_empty() && encodings.iter().all(|e| e == "gzip"),
        "exports not gzip-compressed: {encodings:?}"
    );
    assert!(
        elsewhere.all().is_empty(),
        "spans went to the general endpoint: {:#?}",
        elsewhere.names()
    );
}

/// A start that must be refused: its flags, its variables, and what the refusal must say.
type RefusalCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);

/// Exporter settings tollgate cannot honour are refused at start with a clear reason: an
/// endpoint that is no http(s) URL (from the flag or a variable), a non-gRPC protocol, an
/// unknown sampler, a bad ratio, a CA file that cannot be read, a client key without its
/// certificate; where a traces-only variable is set, it is the one named.
#[test]
fn unsupported_exporter_settings_are_refused_at_start() {
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
    let https = ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317");
    let form = "expected http://HOST:PORT or https://HOST:PORT";
    let cases: &[RefusalCase] = &[
        (&["--otlp-endpoint", "collector:4317"], &[], &[form]),
        (
            &[],
            &[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
            &[
                "OTEL_EXPORTER_OTLP_PROTOCOL is \"http/protobuf\"",
                "OTLP/gRPC only",
            ],
        ),
        (
            &[],
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317")],
            &["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is \"collector:4317\"", form],
        ),
        (
            &[],
            &[
                endpoint,
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            &["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is \"http/json\""],
        ),
        (
            &[],
            &[endpoint, ("OTEL_TRACES_SAMPLER", "xray")],
            &["OTEL_TRACES_SAMPLER is \"xray\""],
        ),
        (
            &[],
            &[
                endpoint,
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            &["OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1"],
        ),
        (
            &[],
            &[https, ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")],
            &["cannot read OTEL_EXPORTER_OTLP_CERTIFICATE (/nonexistent/ca.pem)"],
        ),
        (
            &[],
            &[
                https,
                ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/traces-ca.pem"),
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/hostname"),
            ],
            &["cannot read OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE (/nonexistent/traces-ca.pem)"],
        ),
        (
            &[],
            &[https, ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/hostname")],
            &["OTEL_EXPORTER_OTLP_CLIENT_KEY is set, but neither OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE nor OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is"],
        ),
    ];
    for (args, env, expected) in cases {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.arg("serve")
            .args(["--grpc-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--http-addr", &format!("127.0.0.1:{}", free_port())])
            .args(*args);
        // Only the case's own OpenTelemetry settings.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().expect("run tollgate");
        assert!(!out.status.success(), "{args:?} {env:?} started");
        let e = String::from_utf8_lossy(&out.stderr);
        for text in *expected {
            assert!(e.contains(text), "{args:?} {env:?}: {e}");
        }
    }
}
