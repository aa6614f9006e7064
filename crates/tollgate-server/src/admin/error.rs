//! The one place that maps management API errors to an HTTP status and AWS's error body.
//!
//! API Gateway answers errors with `{"message": "..."}` and names the exception in the
//! `x-amzn-ErrorType` header; botocore and the other SDKs read that header to raise the
//! right exception class (`BadRequestException`, `NotFoundException`, ...), so both are
//! set on every error.

use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tollgate_core::CoreError;
use tollgate_store::StoreError;
use tracing::warn;

/// Why a management call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request is malformed or a value is out of range (400).
    #[error("{0}")]
    BadRequest(String),
    /// A record named in the request does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with existing records (409).
    #[error("{0}")]
    Conflict(String),
    /// No or wrong credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The management API is closed: no credentials are configured (403).
    #[error("{0}")]
    Forbidden(String),
    /// The record store could not be reached (503; retrying later may help).
    #[error("{0}")]
    Unavailable(String),
    /// The path exists but does not take this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
}

impl AdminError {
    /// The HTTP status and the AWS exception name.
    pub fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequestException"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFoundException"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "ConflictException"),
            AdminError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UnauthorizedException"),
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "AccessDeniedException"),
            AdminError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
            ),
            AdminError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowedException")
            }
        }
    }

    /// Shorthand for [`AdminError::BadRequest`].
    pub fn bad(message: impl Into<String>) -> Self {
        AdminError::BadRequest(message.into())
    }

    /// Shorthand for [`AdminError::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        AdminError::NotFound(message.into())
    }
}

/// The answer to a path no route serves (the HTTP router's fallback): the same error shape as
/// every other answer, rather than axum's empty 404, so clients and SDKs parse it alike.
pub async fn no_route(uri: Uri) -> AdminError {
    AdminError::not_found(format!("no resource at {}", uri.path()))
}

/// The answer to a method a path does not take (each router's method-not-allowed fallback);
/// axum still adds the `Allow` header.
pub async fn method_not_allowed(method: Method, uri: Uri) -> AdminError {
    AdminError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

impl From<CoreError> for AdminError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::InvalidField { .. } => AdminError::BadRequest(e.to_string()),
            CoreError::UnknownReference { .. } => AdminError::NotFound(e.to_string()),
            CoreError::Conflict(_) => AdminError::Conflict(e.to_string()),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        warn!(error = %e, transient = e.is_transient(), "record store failed");
        AdminError::Unavailable(format!("the record store is unavailable, retry later: {e}"))
    }
}

/// AWS's error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub message: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_type();
        let mut resp = (
            status,
            Json(ErrorBody {
                message: self.to_string(),
            }),
        )
            .into_response();
        resp.headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each error carries its status and the exception name botocore maps to a class.
    #[test]
    fn status_and_header() {
        let r = AdminError::not_found("Invalid API Key identifier specified").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["x-amzn-ErrorType"], "NotFoundException");
        let r = AdminError::MethodNotAllowed("PUT".into()).into_response();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()["x-amzn-ErrorType"], "MethodNotAllowedException");
        let r = AdminError::from(CoreError::Conflict("dup".into())).into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(
            AdminError::from(CoreError::invalid("quota.limit", "bad"))
                .status_and_type()
                .1,
            "BadRequestException"
        );
    }
}
