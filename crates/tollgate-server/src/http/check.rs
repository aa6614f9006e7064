//! `POST /v1/check`: `CheckQuota` as JSON over HTTP, for application code and proxies that
//! speak HTTP but not gRPC.
//!
//! **Request.** A JSON object holding the fields of `tollgate.v1.CheckQuotaRequest`, named as
//! the proto3 JSON mapping names them: lowerCamelCase (`apiKey`, `apiId`, `stage`,
//! `resource`, `method`, `cost`). Like every proto3 JSON parser, the proto field names
//! (`api_key`, `api_id`) are accepted too, so a body written for one gRPC JSON tool works
//! here. As in proto3, an absent or `null` string is empty (no `apiKey` is the KEY_MISSING
//! verdict, no `apiId`/`stage` resolves a key that is in one plan only) and an absent `cost`
//! is 1. Unknown fields are refused: a misspelt `"apikey"` must not turn into a quiet 403.
//! The body goes through the same validation as `CheckQuota` ([`crate::grpc::quota::to_core`]),
//! so both transports accept exactly the same requests. The `Content-Type` is not checked,
//! so `curl -d` works without `-H`.
//!
//! **Response.** `200` for every check that was decided, whatever the verdict: the verdict is
//! in the body, as `CheckQuota` answers refusals with gRPC OK. This keeps "tollgate says
//! your client gets 429" apart from a failure of the call itself (a load balancer's 503, a
//! proxy's own 429), which a caller must handle differently. Callers act on `httpStatus`.
//! The body mirrors `CheckQuotaResponse` (enum values without their `VERDICT_` /
//! `QUOTA_PERIOD_` prefix, integers as JSON numbers, `resetsAt` as RFC 3339), and the
//! response carries the decision's `RateLimit-*` and `Retry-After` headers as well.
//! A malformed request is `400` (`413` when over 64 KiB) with
//! `{"code": "INVALID_ARGUMENT", "message": "..."}` naming the field.

use crate::grpc::quota::to_core;
use crate::limiter::Limiter;
use crate::metrics::protocol;
use crate::telemetry::CallerTrace;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tollgate_core::calendar::{civil_from_days, SECONDS_PER_DAY};
use tollgate_core::check::{checked_cost, CheckRequest, Decision, Verdict};
use tollgate_core::headers::Header;
use tollgate_proto::v1 as pb;
use tracing::instrument;

/// Largest accepted request body. A check is a few hundred bytes; the field limits of
/// `CheckQuota` (2 KiB resource and key) fit well within it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// The client's key value (never logged).
    #[serde(default, rename = "apiKey", alias = "api_key")]
    pub api_key: Option<String>,
    /// Which API.
    #[serde(default, rename = "apiId", alias = "api_id")]
    pub api_id: Option<String>,
    /// Which stage of it.
    #[serde(default)]
    pub stage: Option<String>,
    /// Resource path.
    #[serde(default)]
    pub resource: Option<String>,
    /// HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// Units to consume; absent = 1, 0 reads only.
    #[serde(default)]
    pub cost: Option<u64>,
}

/// A refused request: status and message, answered as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// 400, or 413 for a body over [`MAX_BODY_BYTES`].
    pub status: StatusCode,
    /// What is wrong, naming the field.
    pub message: String,
}

impl BadRequest {
    fn new(message: impl Into<String>) -> Self {
        BadRequest {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let code = if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            "PAYLOAD_TOO_LARGE"
        } else {
            "INVALID_ARGUMENT"
        };
        let body = ErrorBody {
            code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Parses and validates a request body into a core check.
pub fn parse_body(body: &[u8]) -> Result<CheckRequest, BadRequest> {
    // serde would also read a struct from a JSON array; only an object is a check.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(BadRequest::new(
                "the body is empty; send a JSON object such as {\"apiKey\": \"...\", \"apiId\": \"...\", \"stage\": \"...\"}",
            ))
        }
        Some(_) => return Err(BadRequest::new("the body must be a JSON object")),
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: CheckBody = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            // Syntax errors are about the text, not a field, even when inside one.
            if inner.is_syntax() || inner.is_eof() || at == "." || at == "?" {
                BadRequest::new(format!("invalid JSON body: {inner}"))
            } else {
                BadRequest::new(format!("{at}: {inner}"))
            }
        })
        .and_then(|b| {
            de.end()
                .map(|()| b)
                .map_err(|e| BadRequest::new(format!("invalid JSON body: {e}")))
        })?;
    // The cost cap is checked on the full JSON number before it is narrowed to the proto's
    // uint32, so 2^40 is "too large" rather than a different number.
    let cost = checked_cost(parsed.cost).map_err(|e| BadRequest::new(e.to_string()))?;
    let wire = pb::CheckQuotaRequest {
        api_key: parsed.api_key.unwrap_or_default(),
        api_id: parsed.api_id.unwrap_or_default(),
        stage: parsed.stage.unwrap_or_default(),
        resource: parsed.resource.unwrap_or_default(),
        method: parsed.method.unwrap_or_default(),
        cost: parsed.cost.map(|_| u32::try_from(cost).unwrap_or(u32::MAX)),
    };
    to_core(wire).map_err(|status| BadRequest::new(status.message()))
}

/// The verdict's name in the body: the proto enum value without its `VERDICT_` prefix.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "OK",
        Verdict::Throttled => "THROTTLED",
        Verdict::QuotaExceeded => "QUOTA_EXCEEDED",
        Verdict::KeyMissing => "KEY_MISSING",
        Verdict::KeyInvalid => "KEY_INVALID",
        Verdict::KeyDisabled => "KEY_DISABLED",
        Verdict::KeyNotSubscribed => "KEY_NOT_SUBSCRIBED",
        Verdict::Unavailable => "UNAVAILABLE",
    }
}

/// The response body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    verdict: &'static str,
    http_status: u16,
    message: &'static str,
    usage_plan_id: Option<String>,
    key_id: Option<String>,
    throttle: Option<ThrottleBody>,
    quota: Option<QuotaBody>,
    headers: Vec<HeaderBody>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThrottleBody {
    rate_limit: f64,
    burst_limit: u64,
    remaining: u64,
    retry_after_ms: u64,
    reset_after_ms: u64,
    resource_method: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QuotaBody {
    limit: u64,
    used: u64,
    remaining: u64,
    period: &'static str,
    resets_at: String,
    reset_after_ms: u64,
}

#[derive(Debug, Serialize)]
struct HeaderBody {
    name: &'static str,
    value: String,
}

/// Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-27T00:00:00Z` (milliseconds shown only
/// when not zero). Quota periods start on whole seconds, so the short form is the usual one.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1_000);
    let ms = unix_ms.rem_euclid(1_000);
    let day = secs.div_euclid(SECONDS_PER_DAY);
    let sod = secs.rem_euclid(SECONDS_PER_DAY);
    let d = civil_from_days(day);
    let (h, m, s) = (sod / 3_600, sod % 3_600 / 60, sod % 60);
    if ms == 0 {
        format!(
            "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}Z",
            d.year, d.month, d.day
        )
    } else {
        format!(
            "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z",
            d.year, d.month, d.day
        )
    }
}

impl CheckResponse {
    /// The body of a decision.
    pub fn from_decision(d: &Decision) -> Self {
        CheckResponse {
            verdict: verdict_name(d.verdict),
            http_status: d.verdict.http_status(),
            message: d.verdict.message(),
            usage_plan_id: d.plan_id.clone(),
            key_id: d.key_id.clone(),
            throttle: d.throttle.as_ref().map(|t| ThrottleBody {
                rate_limit: t.rate_limit,
                burst_limit: t.burst_limit,
                remaining: t.remaining,
                retry_after_ms: t.retry_after_ms,
                reset_after_ms: t.reset_after_ms,
                resource_method: t.resource_method.clone(),
            }),
            quota: d.quota.as_ref().map(|q| QuotaBody {
                limit: q.limit,
                used: q.used,
                remaining: q.remaining,
                period: q.period.as_str(),
                resets_at: rfc3339_ms(q.resets_at_ms),
                reset_after_ms: q.reset_after_ms,
            }),
            headers: d
                .headers
                .iter()
                .map(|h| HeaderBody {
                    name: h.name,
                    value: h.value.clone(),
                })
                .collect(),
        }
    }
}

/// Adds the decision's `RateLimit-*` / `Retry-After` headers to `response`.
pub fn add_headers(response: &mut Response, headers: &[Header]) {
    let map = response.headers_mut();
    for h in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) {
            map.insert(name, value);
        }
    }
}

/// `POST /v1/check`.
#[instrument(
    name = "http.check",
    level = "debug",
    skip_all,
    fields(api_id, stage, method, plan_id, key_id, verdict)
)]
pub async fn handler(
    State(limiter): State<Arc<Limiter>>,
    caller: Option<Extension<CallerTrace>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    crate::telemetry::follow_caller(caller.as_ref().map(|Extension(c)| c));
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            return BadRequest {
                status: rejection.status(),
                message: rejection.body_text(),
            }
            .into_response()
        }
    };
    let req = match parse_body(&body) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    let decision = limiter.check_for(protocol::HTTP, &req).await;
    let mut response = (
        StatusCode::OK,
        Json(CheckResponse::from_decision(&decision)),
    )
        .into_response();
    add_headers(&mut response, &decision.headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(body: &str) -> String {
        parse_body(body.as_bytes()).unwrap_err().message
    }

    /// camelCase and proto field names both parse; absent fields default as in proto3.
    #[test]
    fn both_spellings_and_defaults() {
        let r = parse_body(
            br#"{"apiKey":"k","apiId":"a","stage":"s","resource":"/r","method":"GET","cost":3}"#,
        )
        .unwrap();
        assert_eq!(
            (r.api_key.as_str(), r.api_id.as_str(), r.cost),
            ("k", "a", 3)
        );
        let r = parse_body(br#"{"api_key":"k","api_id":"a","stage":null}"#).unwrap();
        assert_eq!((r.api_key.as_str(), r.api_id.as_str()), ("k", "a"));
        assert_eq!((r.stage.as_str(), r.cost), ("", 1));
        assert_eq!(parse_body(b"{}").unwrap().api_key, "");
        assert_eq!(parse_body(br#"{"cost":0}"#).unwrap().cost, 0);
    }

    /// Malformed bodies, wrong types, unknown fields and huge costs are refused with a
    /// message naming the problem.
    #[test]
    fn refusals_name_the_problem() {
        assert!(bad("").contains("empty"));
        assert!(bad("{").contains("invalid JSON"));
        assert!(bad("[1]").contains("must be a JSON object"));
        assert!(bad("5").contains("must be a JSON object"));
        assert!(bad(r#"{"apiKey": 5}"#).starts_with("apiKey: invalid type"));
        assert!(bad(r#"{"cost": "5"}"#).starts_with("cost: invalid type"));
        assert!(bad(r#"{"cost": -1}"#).starts_with("cost:"));
        assert!(bad(r#"{"cost": 1.5}"#).starts_with("cost:"));
        assert!(bad(r#"{"cost": 1000001}"#).contains("at most 1000000"));
        assert!(bad(r#"{"cost": 1099511627776}"#).contains("at most 1000000"));
        assert!(bad(r#"{"cost": 99999999999999999999999}"#).starts_with("cost:"));
        assert!(bad(r#"{"apikey": "x"}"#).contains("unknown field `apikey`"));
        assert!(bad(r#"{} {}"#).contains("trailing"));
        let long = format!(r#"{{"resource": "{}"}}"#, "/x".repeat(2_000));
        assert!(bad(&long).contains("resource is 4000 bytes"));
    }

    /// Timestamps print as RFC 3339 UTC.
    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_795_737_600_000), "2026-11-27T00:00:00Z");
        assert_eq!(rfc3339_ms(1_795_737_601_250), "2026-11-27T00:00:01.250Z");
    }

    /// The body of a refusal carries the verdict, status, message and the zero headers.
    #[test]
    fn refusal_body() {
        let d = Decision::refused(Verdict::KeyInvalid);
        let v = serde_json::to_value(CheckResponse::from_decision(&d)).unwrap();
        assert_eq!(v["verdict"], "KEY_INVALID");
        assert_eq!(v["httpStatus"], 403);
        assert_eq!(v["message"], "Forbidden");
        assert!(v["keyId"].is_null() && v["quota"].is_null());
        assert_eq!(v["headers"][0]["name"], "RateLimit-Limit");
    }
}
