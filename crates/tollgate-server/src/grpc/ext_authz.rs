//! `envoy.service.auth.v3.Authorization/Check` (Envoy's ext_authz filter): API keys and usage
//! plans in front of any upstream. Translates the request into one core check for
//! [`Limiter::check`] and its decision back; no limit logic here.
//!
//! The key is read from the `x-api-key` header (`--ext-authz-api-key-header`), the resource
//! from the path (decoded, query string dropped; see [`crate::request_path`]) and the
//! method from the request, the API and stage from the route's `context_extensions`
//! `tollgate_api` and `tollgate_stage` (without both, a key in exactly one plan uses that
//! plan).
//!
//! Answers, as AWS API Gateway gives them:
//! - allowed: gRPC OK, with upstream headers `x-tollgate-key-id` and `x-tollgate-plan-id`
//!   and the `RateLimit-*` headers added to the client's response;
//! - 403 `{"message":"Forbidden"}` (gRPC PERMISSION_DENIED) for a missing, unknown, disabled
//!   or unsubscribed key;
//! - 429 `{"message":"Too Many Requests"}` when throttled and `{"message":"Limit Exceeded"}`
//!   over quota (gRPC RESOURCE_EXHAUSTED), with `Retry-After`;
//! - 503 `{"message":"Service Unavailable"}` (gRPC UNAVAILABLE) when the store is down and
//!   the failure mode is to refuse.
//!
//! Every denial carries `content-type: application/json` and the `RateLimit-*` headers.

use crate::limiter::Limiter;
use crate::metrics::{metrics, protocol, verdict_label};
use crate::request_path::resource_of_target;
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, HttpStatusCode, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use std::sync::Arc;
use tollgate_core::check::{CheckRequest as CoreCheck, Decision};
use tonic::{Code, Request, Response, Status};
use tracing::instrument;

/// The default header carrying the API key.
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";
/// The context extension naming the API.
pub const API_EXTENSION: &str = "tollgate_api";
/// The context extension naming the stage.
pub const STAGE_EXTENSION: &str = "tollgate_stage";
/// The upstream header naming the key's id.
pub const KEY_ID_HEADER: &str = "x-tollgate-key-id";
/// The upstream header naming the plan's id.
pub const PLAN_ID_HEADER: &str = "x-tollgate-plan-id";

/// Longest accepted path, in bytes.
const MAX_PATH_LEN: usize = 8_192;
/// Longest accepted key, method, API id or stage, in bytes.
const MAX_FIELD_LEN: usize = 2_048;

/// The Authorization implementation.
pub struct ExtAuthzApi {
    limiter: Arc<Limiter>,
    /// The key header, lower case (Envoy sends header names in lower case).
    api_key_header: String,
}

impl ExtAuthzApi {
    /// A service answering from `limiter`, reading the key from `api_key_header`.
    pub fn new(limiter: Arc<Limiter>, api_key_header: &str) -> Self {
        ExtAuthzApi {
            limiter,
            api_key_header: api_key_header.to_ascii_lowercase(),
        }
    }

    /// Checks sizes and turns the wire request into a core check.
    pub fn to_core(&self, req: &CheckRequest) -> Result<CoreCheck, Status> {
        let attrs = req
            .attributes
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("attributes must be set"))?;
        let http = attrs
            .request
            .as_ref()
            .and_then(|r| r.http.as_ref())
            .ok_or_else(|| Status::invalid_argument("attributes.request.http must be set"))?;
        let api_key = header(http, &self.api_key_header).unwrap_or_default();
        let ext = |name: &str| {
            attrs
                .context_extensions
                .get(name)
                .cloned()
                .unwrap_or_default()
        };
        let path = resource_of_target(&http.path);
        if path.len() > MAX_PATH_LEN {
            return Err(Status::invalid_argument(format!(
                "path is {} bytes long; at most {MAX_PATH_LEN} are accepted",
                path.len()
            )));
        }
        let check = CoreCheck {
            api_key,
            api_id: ext(API_EXTENSION),
            stage: ext(STAGE_EXTENSION),
            resource: path.into_owned(),
            method: http.method.clone(),
            cost: 1,
        };
        for (name, value) in [
            (self.api_key_header.as_str(), &check.api_key),
            ("method", &check.method),
            (API_EXTENSION, &check.api_id),
            (STAGE_EXTENSION, &check.stage),
        ] {
            if value.len() > MAX_FIELD_LEN {
                return Err(Status::invalid_argument(format!(
                    "{name} is {} bytes long; at most {MAX_FIELD_LEN} are accepted",
                    value.len()
                )));
            }
        }
        Ok(check)
    }
}

/// A header's value: from `headers` (Envoy's default), else from `header_map` (sent when the
/// filter encodes raw headers); names are matched in any case.
fn header(
    http: &envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest,
    name: &str,
) -> Option<String> {
    if let Some(v) = http.headers.get(name) {
        return Some(v.clone());
    }
    if let Some((_, v)) = http
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
    {
        return Some(v.clone());
    }
    let map = http.header_map.as_ref()?;
    map.headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .map(|h| {
            if h.raw_value.is_empty() {
                h.value.clone()
            } else {
                String::from_utf8_lossy(&h.raw_value).into_owned()
            }
        })
}

fn header_option(key: &str, value: impl Into<String>) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.into(),
            raw_value: Vec::new(),
        }),
        ..HeaderValueOption::default()
    }
}

/// The wire response of a decision.
pub fn to_pb(d: &Decision) -> CheckResponse {
    let ratelimit = d
        .headers
        .iter()
        .map(|h| header_option(h.name, h.value.clone()));
    if d.verdict.is_allowed() {
        let mut upstream = Vec::new();
        if let Some(k) = &d.key_id {
            upstream.push(header_option(KEY_ID_HEADER, k.clone()));
        }
        if let Some(p) = &d.plan_id {
            upstream.push(header_option(PLAN_ID_HEADER, p.clone()));
        }
        return CheckResponse {
            status: Some(rpc::Status {
                code: Code::Ok as i32,
                message: String::new(),
                details: Vec::new(),
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: upstream,
                response_headers_to_add: ratelimit.collect(),
                ..OkHttpResponse::default()
            })),
            ..CheckResponse::default()
        };
    }
    let (grpc, http) = match d.verdict.http_status() {
        429 => (Code::ResourceExhausted, HttpStatusCode::TooManyRequests),
        503 => (Code::Unavailable, HttpStatusCode::ServiceUnavailable),
        _ => (Code::PermissionDenied, HttpStatusCode::Forbidden),
    };
    let message = d.verdict.message();
    let mut headers = vec![header_option("content-type", "application/json")];
    headers.extend(ratelimit);
    CheckResponse {
        status: Some(rpc::Status {
            code: grpc as i32,
            message: message.to_owned(),
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: http as i32 }),
            headers,
            body: serde_json::json!({ "message": message }).to_string(),
        })),
        ..CheckResponse::default()
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthzApi {
    #[instrument(
        name = "ext_authz.Check",
        level = "debug",
        skip_all,
        fields(api_id, stage, method, plan_id, key_id, verdict)
    )]
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        crate::telemetry::follow_caller(request.extensions().get());
        let check = self.to_core(request.get_ref())?;
        let decision = self.limiter.check_for(protocol::EXT_AUTHZ, &check).await;
        metrics()
            .ext_authz_checks
            .with_label_values(&[verdict_label(decision.verdict)])
            .inc();
        Ok(Response::new(to_pb(&decision)))
    }
}
