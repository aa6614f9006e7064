//! `/v1/auth`: the check as an authorization subrequest, for nginx `auth_request` (and, in
//! `direct` mode, for Traefik `forwardAuth` and Caddy `forward_auth`).
//!
//! **Request** (any method; the body is ignored). Everything comes from headers the proxy
//! sets, so the proxy's config decides what is checked:
//!
//! | input    | header                                       | else query | else          |
//! |----------|----------------------------------------------|------------|---------------|
//! | key      | `X-API-Key`                                  |            | missing key   |
//! | resource | `X-Original-URI`, `X-Forwarded-Uri` (decoded, query dropped) | | empty |
//! | method   | `X-Original-Method`, `X-Forwarded-Method`    |            | empty         |
//! | api      | `X-Tollgate-Api`                             | `api`      | empty         |
//! | stage    | `X-Tollgate-Stage`                           | `stage`    | empty         |
//! | cost     | `X-Tollgate-Cost`                            | `cost`     | 1             |
//! | mode     | `X-Tollgate-Mode`                            | `mode`     | `nginx`       |
//!
//! **Response.** nginx's `auth_request` understands only 2xx (allow), 401 and 403 (deny);
//! anything else becomes a 500 for the client. So in `nginx` mode (the default) every
//! refusal is a 403 that carries the status the client should get in
//! `X-Tollgate-Status` (429, 403, 503, or 400 for a request tollgate could not read), and the
//! nginx config (`deploy/nginx/nginx.conf`) turns it into that status with
//! `auth_request_set` and an `error_page 403` location. In `direct` mode the refusal is
//! answered with its real status and the AWS body (`{"message":"Limit Exceeded"}`), which
//! proxies that pass a refusal through as it is (Traefik, Caddy) hand straight to the client.
//!
//! Allowed: `200` with an empty body. Every answer carries `RateLimit-Limit`,
//! `RateLimit-Remaining`, `RateLimit-Reset` (and `Retry-After` on 429; none of them on an
//! admission under no known limit, see `Decision::refused`), `X-Tollgate-Status`,
//! `X-Tollgate-Verdict`, `X-Tollgate-Message`, and, once the key is known,
//! `X-Tollgate-Key-Id` and `X-Tollgate-Plan-Id` for the proxy to pass upstream.

use crate::grpc::quota::to_core;
use crate::http::check::{add_headers, verdict_name};
use crate::limiter::Limiter;
use crate::metrics::protocol;
use crate::request_path::resource_of_target;
use crate::telemetry::CallerTrace;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_core::check::{checked_cost, CheckRequest, Decision};
use tollgate_proto::v1 as pb;
use tracing::instrument;

/// Header the key is read from.
pub const API_KEY: &str = "x-api-key";
/// Header carrying the status the client should get.
pub const STATUS: &str = "x-tollgate-status";
/// Header carrying the verdict's name (`OK`, `QUOTA_EXCEEDED`, ...).
pub const VERDICT: &str = "x-tollgate-verdict";
/// Header carrying the AWS message (`Limit Exceeded`, `Forbidden`, ...).
pub const MESSAGE: &str = "x-tollgate-message";
/// Header carrying the key's id, for the backend.
pub const KEY_ID: &str = "x-tollgate-key-id";
/// Header carrying the plan's id, for the backend.
pub const PLAN_ID: &str = "x-tollgate-plan-id";

/// How refusals are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every refusal is a 403 with the real status in `X-Tollgate-Status` (nginx).
    Nginx,
    /// Every refusal has its real status (Traefik, Caddy).
    Direct,
}

/// Why a subrequest could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

// UTF-8 rather than only visible ASCII: API ids and stages may be any text the management
// API accepts, and nginx passes header bytes through as it got them.
fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Result<Option<&'a str>, BadInput> {
    for name in names {
        if let Some(v) = headers.get(*name) {
            return std::str::from_utf8(v.as_bytes())
                .map(Some)
                .map_err(|_| BadInput(format!("header {name} is not UTF-8")));
        }
    }
    Ok(None)
}

fn param<'a>(
    headers: &'a HeaderMap,
    name: &str,
    query: &'a HashMap<String, String>,
    key: &str,
) -> Result<Option<&'a str>, BadInput> {
    Ok(header(headers, &[name])?.or(query.get(key).map(String::as_str)))
}

/// The answer mode a subrequest asks for.
pub fn mode(headers: &HeaderMap, query: &HashMap<String, String>) -> Result<Mode, BadInput> {
    match param(headers, "x-tollgate-mode", query, "mode")? {
        None | Some("nginx") => Ok(Mode::Nginx),
        Some("direct") => Ok(Mode::Direct),
        Some(other) => Err(BadInput(format!(
            "mode `{other}` is unknown; use nginx or direct"
        ))),
    }
}

/// Reads a subrequest into a core check, with the same validation as `CheckQuota`.
pub fn to_check(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<CheckRequest, BadInput> {
    let target = header(headers, &["x-original-uri", "x-forwarded-uri"])?.unwrap_or_default();
    let resource = resource_of_target(target);
    let cost = match param(headers, "x-tollgate-cost", query, "cost")? {
        None => None,
        Some(c) => Some(c.trim().parse::<u64>().map_err(|_| {
            BadInput(format!(
                "cost `{c}` is not a whole number from 0 to 1000000"
            ))
        })?),
    };
    let cost = checked_cost(cost)
        .map(|c| cost.map(|_| u32::try_from(c).unwrap_or(u32::MAX)))
        .map_err(|e| BadInput(e.to_string()))?;
    let wire = pb::CheckQuotaRequest {
        api_key: header(headers, &[API_KEY])?.unwrap_or_default().to_string(),
        api_id: param(headers, "x-tollgate-api", query, "api")?
            .unwrap_or_default()
            .to_string(),
        stage: param(headers, "x-tollgate-stage", query, "stage")?
            .unwrap_or_default()
            .to_string(),
        resource: resource.into_owned(),
        method: header(headers, &["x-original-method", "x-forwarded-method"])?
            .unwrap_or_default()
            .to_string(),
        cost,
    };
    to_core(wire).map_err(|s| BadInput(s.message().to_string()))
}

#[derive(Serialize)]
struct MessageBody<'a> {
    message: &'a str,
}

fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// The answer to a decided check.
pub fn answer(decision: &Decision, mode: Mode) -> Response {
    let status = decision.http_status();
    let mut response = if decision.verdict.is_allowed() {
        StatusCode::OK.into_response()
    } else {
        let shown = match mode {
            Mode::Nginx => StatusCode::FORBIDDEN,
            Mode::Direct => StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
        };
        let body = MessageBody {
            message: decision.verdict.message(),
        };
        (shown, Json(body)).into_response()
    };
    add_headers(&mut response, &decision.headers);
    set(&mut response, STATUS, &status.to_string());
    set(&mut response, VERDICT, verdict_name(decision.verdict));
    set(&mut response, MESSAGE, decision.verdict.message());
    if let Some(k) = &decision.key_id {
        set(&mut response, KEY_ID, k);
    }
    if let Some(p) = &decision.plan_id {
        set(&mut response, PLAN_ID, p);
    }
    response
}

/// The answer to a subrequest tollgate could not read.
pub fn answer_bad_input(bad: &BadInput, mode: Mode) -> Response {
    let shown = match mode {
        Mode::Nginx => StatusCode::FORBIDDEN,
        Mode::Direct => StatusCode::BAD_REQUEST,
    };
    let mut response = (shown, Json(MessageBody { message: &bad.0 })).into_response();
    set(&mut response, STATUS, "400");
    set(&mut response, VERDICT, "INVALID_ARGUMENT");
    set(&mut response, MESSAGE, "Bad Request");
    response
}

/// `/v1/auth`.
#[instrument(
    name = "http.auth_request",
    level = "debug",
    skip_all,
    fields(api_id, stage, method, plan_id, key_id, verdict)
)]
pub async fn handler(
    State(limiter): State<Arc<Limiter>>,
    caller: Option<Extension<CallerTrace>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    crate::telemetry::follow_caller(caller.as_ref().map(|Extension(c)| c));
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return answer_bad_input(&BadInput(e.body_text()), Mode::Nginx),
    };
    let mode = match mode(&headers, &query) {
        Ok(m) => m,
        Err(bad) => return answer_bad_input(&bad, Mode::Nginx),
    };
    let req = match to_check(&headers, &query) {
        Ok(r) => r,
        Err(bad) => return answer_bad_input(&bad, mode),
    };
    let decision = limiter.check_for(protocol::AUTH_REQUEST, &req).await;
    answer(&decision, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::check::Verdict;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Headers win over the query; the resource loses its query string; nginx and
    /// Traefik header names both work.
    #[test]
    fn reads_headers_then_query() {
        let q: HashMap<String, String> = [("api", "qa"), ("stage", "qs"), ("cost", "2")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .into();
        let h = headers(&[
            ("x-api-key", "k"),
            ("x-original-uri", "/pets/1?x=y"),
            ("x-original-method", "DELETE"),
            ("x-tollgate-stage", "hs"),
        ]);
        let r = to_check(&h, &q).unwrap();
        assert_eq!(
            (
                r.api_key.as_str(),
                r.api_id.as_str(),
                r.stage.as_str(),
                r.resource.as_str(),
                r.method.as_str(),
                r.cost
            ),
            ("k", "qa", "hs", "/pets/1", "DELETE", 2)
        );
        let h = headers(&[("x-forwarded-uri", "/a"), ("x-forwarded-method", "GET")]);
        let r = to_check(&h, &HashMap::new()).unwrap();
        assert_eq!(
            (r.resource.as_str(), r.method.as_str(), r.cost),
            ("/a", "GET", 1)
        );
    }

    /// The resource is the decoded path, as `/v1/check` takes it; API and stage headers may
    /// carry UTF-8, and bytes that are not UTF-8 are refused with the header's name.
    #[test]
    fn decodes_the_resource_and_reads_utf8_headers() {
        let mut h = headers(&[("x-original-uri", "/caf%c3%a9?q=1")]);
        h.insert(
            "x-tollgate-api",
            HeaderValue::from_bytes("crème".as_bytes()).unwrap(),
        );
        let r = to_check(&h, &HashMap::new()).unwrap();
        assert_eq!((r.resource.as_str(), r.api_id.as_str()), ("/café", "crème"));
        h.insert(
            "x-tollgate-stage",
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        let e = to_check(&h, &HashMap::new()).unwrap_err();
        assert!(e.0.contains("x-tollgate-stage"), "{e:?}");
    }

    /// Bad costs and unknown modes are refused with a message.
    #[test]
    fn bad_input() {
        let q = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        assert!(to_check(&HeaderMap::new(), &q("cost", "x")).is_err());
        assert!(to_check(&HeaderMap::new(), &q("cost", "2000000"))
            .unwrap_err()
            .0
            .contains("at most"));
        assert!(mode(&HeaderMap::new(), &q("mode", "envoy")).is_err());
        assert_eq!(
            mode(&HeaderMap::new(), &q("mode", "direct")),
            Ok(Mode::Direct)
        );
    }

    /// nginx mode answers every refusal with 403 and the real status in a header; direct
    /// mode answers with the real status.
    #[test]
    fn status_mapping() {
        let d = Decision::refused(Verdict::QuotaExceeded);
        let r = answer(&d, Mode::Nginx);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()[STATUS], "429");
        assert_eq!(r.headers()[MESSAGE], "Limit Exceeded");
        assert_eq!(
            answer(&d, Mode::Direct).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        let ok = answer(&Decision::refused(Verdict::Ok), Mode::Nginx);
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(
            ok.headers().get("ratelimit-limit").is_none(),
            "an admission under no known limit names none"
        );
        let bad = answer_bad_input(&BadInput("x".into()), Mode::Nginx);
        assert_eq!(
            (bad.status(), &bad.headers()[STATUS]),
            (StatusCode::FORBIDDEN, &HeaderValue::from_static("400"))
        );
    }
}
