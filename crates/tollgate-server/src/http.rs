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
use axum::routing::{any, get, post, MethodRouter};
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
            traced(post(check::handler).layer(DefaultBodyLimit::max(check::MAX_BODY_BYTES))),
        )
        .route("/v1/auth", traced(any(auth_request::handler)))
        .route("/metrics", get(crate::metrics::serve))
        // Unknown paths and wrong methods get the documented error shape, not an empty body;
        // this is the one catch-all fallback of the HTTP port (the admin routes merge in).
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::no_route)
        .with_state(limiter)
}

/// A check route, which decides its trace sampling first when spans are exported; without
/// them it is left as it is, so an HTTP check pays nothing for tracing.
fn traced(route: MethodRouter<Arc<Limiter>>) -> MethodRouter<Arc<Limiter>> {
    if crate::telemetry::exporting() {
        route.layer(middleware::from_fn(sampled_check))
    } else {
        route
    }
}

/// Answers one HTTP check under its trace sampling decision, made before its span exists.
async fn sampled_check(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let sampled = crate::telemetry::check_sampling(&parts.headers, &mut parts.extensions);
    let run = next.run(Request::from_parts(parts, body));
    crate::telemetry::in_check_scope(sampled, run).await
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
