//! The HTTP server: `/healthz` for load balancers and orchestrators, `/metrics` for
//! Prometheus, and the HTTP checks for proxies other than Envoy: `POST /v1/check`
//! ([`check`]) and `/v1/auth` for nginx `auth_request` ([`auth_request`]).

pub mod auth_request;
pub mod check;

use crate::admin::error;
use crate::limiter::Limiter;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The HTTP routes.
pub fn router(limiter: Arc<Limiter>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/v1/check",
            post(check::handler)
                .layer(DefaultBodyLimit::max(check::MAX_BODY_BYTES))
                .layer(middleware::from_fn(sampled_check)),
        )
        .route(
            "/v1/auth",
            any(auth_request::handler).layer(middleware::from_fn(sampled_check)),
        )
        .route("/metrics", get(crate::metrics::serve))
        // Unknown paths and wrong methods get the documented error shape, not an empty body;
        // this is the one catch-all fallback of the HTTP port (the admin routes merge in).
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::no_route)
        .with_state(limiter)
}

/// Answers one HTTP check under its trace sampling decision, made before its span exists.
async fn sampled_check(request: Request, next: Next) -> Response {
    let sampled = crate::telemetry::check_sampling(request.headers());
    crate::telemetry::in_check_scope(sampled, next.run(request)).await
}

/// 200 when the limit store answers, so the instance can take checks; 503 otherwise.
async fn healthz(State(limiter): State<Arc<Limiter>>) -> (StatusCode, &'static str) {
    match limiter.store().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "limit store unavailable\n"),
    }
}

/// Serves HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
