//! Drives the gRPC hot path (`grpc::hot_path`) in process: `CheckQuota`, Envoy RLS
//! `ShouldRateLimit` and ext_authz `Check`, each fed either an arbitrary body (the gRPC
//! framing and protobuf bytes as they come off the wire) or a request message built from
//! arbitrary fields (descriptors with odd keys and values, `hits_addend` extremes, huge
//! costs and limit overrides, ext_authz headers and paths with escapes).
//!
//! Why: this is what Envoy and application code send on every request; a panic here takes
//! the check path down. The target asserts no panic and that every call is answered (as
//! a message or a gRPC status) with HTTP 200, as gRPC requires.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
    rate_limit_descriptor::{Entry, RateLimitOverride},
    RateLimitDescriptor,
};
use envoy_types::pb::envoy::service::auth::v3::{
    attribute_context::{HttpRequest, Request as AttrRequest},
    AttributeContext, CheckRequest,
};
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tollgate_core::catalog::Catalog;
use tollgate_core::rls::registry::RlsRegistry;
use tollgate_proto::v1::CheckQuotaRequest;
use tollgate_server::cli::FailureMode;
use tollgate_server::grpc::ext_authz::ExtAuthzApi;
use tollgate_server::grpc::hot_path::{CheckServices, HotPathLayer};
use tollgate_server::grpc::quota::QuotaApi;
use tollgate_server::grpc::rls::RlsApi;
use tollgate_server::limiter::Limiter;
use tollgate_store::MemoryStore;
use tower_service::Service;

const SEED: &str = include_str!("../../../../examples/calculator/tollgate.yaml");
const RLS_CALCULATOR: &str = include_str!("../../../../deploy/envoy/ratelimit/calculator.yaml");
const RLS_CONFORMANCE: &str = include_str!("../../tests/fixtures/rls/conformance.yaml");
const KEY_VALUES: [&str; 2] = [
    "demo-testApikey-0123456789abcdef",
    "demo-premiumApikey-0123456789abcdef",
];
const PATHS: [&str; 3] = [
    "/tollgate.v1.QuotaService/CheckQuota",
    "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
    "/envoy.service.auth.v3.Authorization/Check",
];

struct Shared {
    runtime: tokio::runtime::Runtime,
    catalog: Catalog,
    rls: RlsRegistry,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let files = vec![
            ("calculator.yaml".to_string(), RLS_CALCULATOR.to_string()),
            ("conformance.yaml".to_string(), RLS_CONFORMANCE.to_string()),
        ];
        Shared {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the fuzz target"),
            catalog: tollgate_server::config::parse("tollgate.yaml", SEED, 1_780_000_000)
                .expect("the seed file loads"),
            rls: tollgate_server::rls_config::build(&files).expect("the RLS fixtures load"),
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Str {
    Key(u8),
    Known(u8),
    Raw(String),
}

const KNOWN: [&str; 20] = [
    "demo-API-usage-plan",
    "usage-plan-test",
    "/usageplanOffering",
    "GET",
    "DELETE",
    "calculator",
    "conformance",
    "api_key",
    "tollgate_api",
    "tollgate_stage",
    "path",
    "remote_address",
    "tier",
    "gold",
    "user",
    "client",
    "partner",
    "shadowed",
    "daily",
    "bulk",
];

impl Str {
    fn s(&self) -> String {
        match self {
            Str::Key(i) => KEY_VALUES[usize::from(*i) % 2].into(),
            Str::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()].into(),
            Str::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Descriptor {
    entries: Vec<(Str, Str)>,
    limit: Option<(u32, i32)>,
    hits_addend: Option<u64>,
    negative: bool,
}

#[derive(Arbitrary, Debug)]
enum Call {
    Raw {
        method: u8,
        body: Vec<u8>,
        gzip: bool,
    },
    Quota {
        api_key: Str,
        api_id: Str,
        stage: Str,
        resource: Str,
        method: Str,
        cost: Option<u32>,
    },
    Rls {
        domain: Str,
        descriptors: Vec<Descriptor>,
        hits_addend: u32,
    },
    Authz {
        headers: Vec<(Str, Str)>,
        raw_headers: Vec<(Str, Vec<u8>)>,
        path: Str,
        method: Str,
        extensions: Vec<(Str, Str)>,
    },
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut b = vec![0];
    b.extend_from_slice(&(message.len() as u32).to_be_bytes());
    b.extend_from_slice(message);
    b
}

fn encode(call: &Call) -> (usize, Vec<u8>, bool) {
    match call {
        Call::Raw { method, body, gzip } => (usize::from(*method) % 3, body.clone(), *gzip),
        Call::Quota {
            api_key,
            api_id,
            stage,
            resource,
            method,
            cost,
        } => {
            let m = CheckQuotaRequest {
                api_key: api_key.s(),
                api_id: api_id.s(),
                stage: stage.s(),
                resource: resource.s(),
                method: method.s(),
                cost: *cost,
            };
            (0, framed(&m.encode_to_vec()), false)
        }
        Call::Rls {
            domain,
            descriptors,
            hits_addend,
        } => {
            let m = RateLimitRequest {
                domain: domain.s(),
                descriptors: descriptors
                    .iter()
                    .map(|d| RateLimitDescriptor {
                        entries: d
                            .entries
                            .iter()
                            .map(|(k, v)| Entry {
                                key: k.s(),
                                value: v.s(),
                            })
                            .collect(),
                        limit: d.limit.map(|(n, unit)| RateLimitOverride {
                            requests_per_unit: n,
                            unit,
                        }),
                        hits_addend: d
                            .hits_addend
                            .map(|value| envoy_types::pb::google::protobuf::UInt64Value { value }),
                        is_negative_hits: d.negative,
                    })
                    .collect(),
                hits_addend: *hits_addend,
            };
            (1, framed(&m.encode_to_vec()), false)
        }
        Call::Authz {
            headers,
            raw_headers,
            path,
            method,
            extensions,
        } => {
            let mut h: HashMap<String, String> = HashMap::new();
            for (k, v) in headers {
                h.insert(k.s(), v.s());
            }
            let m = CheckRequest {
                attributes: Some(AttributeContext {
                    request: Some(AttrRequest {
                        http: Some(HttpRequest {
                            headers: h,
                            header_map: Some(HeaderMap {
                                headers: raw_headers
                                    .iter()
                                    .map(|(k, v)| HeaderValue {
                                        key: k.s(),
                                        raw_value: v.clone(),
                                        ..Default::default()
                                    })
                                    .collect(),
                            }),
                            path: path.s(),
                            method: method.s(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    context_extensions: extensions.iter().map(|(k, v)| (k.s(), v.s())).collect(),
                    ..Default::default()
                }),
            };
            (2, framed(&m.encode_to_vec()), false)
        }
    }
}

fn run(data: &[u8]) {
    let u = Unstructured::new(data);
    let Ok(calls) = Vec::<Call>::arbitrary_take_rest(u) else {
        return;
    };
    if calls.is_empty() || calls.len() > 8 {
        return;
    }
    let s = shared();
    let limiter = Limiter::new(
        s.catalog.clone(),
        Arc::new(MemoryStore::new()),
        FailureMode::Deny,
        7,
    );
    limiter.set_rls_registry(s.rls.clone());
    let limiter = Arc::new(limiter);
    let services = CheckServices {
        quota: Arc::new(QuotaApi::new(limiter.clone())),
        rls: Arc::new(RlsApi::new(limiter.clone())),
        ext_authz: Arc::new(ExtAuthzApi::new(limiter, "x-api-key")),
    };
    let mut hot = tower_layer::Layer::layer(
        &HotPathLayer::new(services),
        tonic::service::Routes::default(),
    );
    s.runtime.block_on(async {
        for call in &calls {
            let (method, body, gzip) = encode(call);
            let req = http::Request::builder()
                .method("POST")
                .uri(format!("http://tollgate{}", PATHS[method]))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("grpc-encoding", if gzip { "gzip" } else { "identity" })
                .body(tonic::body::Body::new(http_body_util::Full::new(
                    prost::bytes::Bytes::from(body),
                )))
                .expect("a valid request");
            let resp = hot.call(req).await.expect("the hot path answers");
            assert_eq!(resp.status(), http::StatusCode::OK);
            let in_headers = resp.headers().get("grpc-status").cloned();
            let collected = resp.into_body().collect().await.expect("the body reads");
            let status = in_headers.or_else(|| {
                collected
                    .trailers()
                    .and_then(|t| t.get("grpc-status").cloned())
            });
            let status = status.expect("every answer has a grpc-status");
            // INTERNAL is what malformed frames get (as tonic answers them), so only a
            // well-framed message must not get it; UNKNOWN, UNAVAILABLE or DATA_LOSS would
            // mean a failure the memory store cannot have.
            let raw = matches!(call, Call::Raw { .. });
            assert!(
                !matches!(status.as_bytes(), b"2" | b"14" | b"15") && (raw || status != "13"),
                "{}: grpc-status {status:?} for {call:?}",
                PATHS[method]
            );
        }
    });
}

fuzz_target!(|data: &[u8]| run(data));
