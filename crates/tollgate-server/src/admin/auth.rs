//! Authentication of every management route: `Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>`
//! or an AWS Signature V4 made with `TOLLGATE_ADMIN_ACCESS_KEY_ID` /
//! `TOLLGATE_ADMIN_SECRET_ACCESS_KEY` (what the AWS CLI and SDKs send).
//!
//! With neither configured the management API is closed (403) unless the operator started
//! the server with `--admin-unauthenticated`: forgetting to set a secret must not leave the
//! key store open. Health, metrics and `/openapi.json` are outside this layer.

use super::error::AdminError;
use super::sigv4::{self, Credentials, SignedRequest};
use super::{AdminSettings, AdminState, MAX_BODY_BYTES};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tracing::debug;

/// Who may call the management API.
#[derive(Clone, Default)]
pub struct AdminAuth {
    token_hash: Option<[u8; 32]>,
    sigv4: Option<Credentials>,
    unauthenticated: bool,
}

impl AdminAuth {
    /// From the settings; an access key id without its secret (or the reverse) is an error.
    pub fn from_settings(s: &AdminSettings) -> anyhow::Result<Self> {
        let sigv4 = match (&s.admin_access_key_id, &s.admin_secret_access_key) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some(Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
            }),
            (None, None) => None,
            _ => anyhow::bail!(
                "TOLLGATE_ADMIN_ACCESS_KEY_ID and TOLLGATE_ADMIN_SECRET_ACCESS_KEY must be set together"
            ),
        };
        Ok(AdminAuth {
            token_hash: s
                .admin_token
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| Sha256::digest(t.as_bytes()).into()),
            sigv4,
            unauthenticated: s.admin_unauthenticated,
        })
    }

    /// Whether any credential is configured.
    pub fn has_credentials(&self) -> bool {
        self.token_hash.is_some() || self.sigv4.is_some()
    }

    /// Whether the API is open to anyone.
    pub fn is_open(&self) -> bool {
        !self.has_credentials() && self.unauthenticated
    }

    fn token_matches(&self, token: &str) -> bool {
        // Compare digests so the comparison time says nothing about the token.
        let Some(want) = &self.token_hash else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        want.iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

fn now_s() -> i64 {
    super::now_s()
}

/// The middleware: lets the request through or answers 401/403.
pub async fn require(State(state): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    match authenticate(&state.auth, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => {
            debug!(error = %e, "management call refused");
            e.into_response()
        }
    }
}

async fn authenticate(auth: &AdminAuth, req: Request) -> Result<Request, AdminError> {
    if auth.is_open() {
        return Ok(req);
    }
    if !auth.has_credentials() {
        return Err(AdminError::Forbidden(
            "the management API is closed: set TOLLGATE_ADMIN_TOKEN or TOLLGATE_ADMIN_ACCESS_KEY_ID and TOLLGATE_ADMIN_SECRET_ACCESS_KEY (or start with --admin-unauthenticated)".into(),
        ));
    }
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Some(header) = header else {
        return Err(AdminError::Unauthorized(
            "missing credentials: send Authorization: Bearer <token> or sign the request with AWS Signature V4".into(),
        ));
    };
    if let Some(token) = header.strip_prefix("Bearer ") {
        return if auth.token_matches(token.trim()) {
            Ok(req)
        } else {
            Err(AdminError::Unauthorized("invalid bearer token".into()))
        };
    }
    if sigv4::is_sigv4(&header) {
        let Some(creds) = &auth.sigv4 else {
            return Err(AdminError::Unauthorized(
                "AWS Signature V4 is not enabled on this server (no TOLLGATE_ADMIN_ACCESS_KEY_ID)"
                    .into(),
            ));
        };
        // The signature covers the body, so read it here and hand it on.
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|e| AdminError::bad(format!("cannot read the request body: {e}")))?;
        sigv4::verify(
            creds,
            &SignedRequest {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                raw_query: parts.uri.query(),
                headers: &parts.headers,
                body: &bytes,
            },
            now_s(),
        )
        .map_err(|e| AdminError::Unauthorized(e.to_string()))?;
        return Ok(Request::from_parts(parts, Body::from(bytes)));
    }
    Err(AdminError::Unauthorized(
        "unsupported Authorization scheme: use Bearer or AWS4-HMAC-SHA256".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn settings(token: Option<&str>, open: bool) -> AdminSettings {
        AdminSettings {
            admin_token: token.map(String::from),
            admin_unauthenticated: open,
            ..AdminSettings::default()
        }
    }

    async fn status(auth: &AdminAuth, authorization: Option<&str>) -> Result<(), StatusCode> {
        let mut b = Request::builder().uri("/usageplans");
        if let Some(a) = authorization {
            b = b.header(AUTHORIZATION, a);
        }
        let req = b.body(Body::empty()).unwrap();
        authenticate(auth, req)
            .await
            .map(drop)
            .map_err(|e| e.status_and_type().0)
    }

    /// Closed without credentials, open only on request, and tokens compared exactly.
    #[tokio::test]
    async fn policies() {
        let closed = AdminAuth::from_settings(&settings(None, false)).unwrap();
        assert_eq!(status(&closed, None).await, Err(StatusCode::FORBIDDEN));
        let open = AdminAuth::from_settings(&settings(None, true)).unwrap();
        assert_eq!(status(&open, None).await, Ok(()));
        let token = AdminAuth::from_settings(&settings(Some("s3cret"), true)).unwrap();
        assert_eq!(status(&token, None).await, Err(StatusCode::UNAUTHORIZED));
        assert_eq!(status(&token, Some("Bearer s3cret")).await, Ok(()));
        assert_eq!(
            status(&token, Some("Bearer s3cre")).await,
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(&token, Some("Basic eDp5")).await,
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(&token, Some("AWS4-HMAC-SHA256 Credential=x")).await,
            Err(StatusCode::UNAUTHORIZED)
        );
        let half = AdminSettings {
            admin_access_key_id: Some("AKID".into()),
            ..AdminSettings::default()
        };
        assert!(AdminAuth::from_settings(&half).is_err());
    }
}
