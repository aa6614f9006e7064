//! The gRPC server: `tollgate.v1.QuotaService`, `grpc.health.v1.Health` and server
//! reflection, on one port; with Envoy's `envoy.service.ratelimit.v3.RateLimitService`
//! ([`rls`]) and `envoy.service.auth.v3.Authorization` ([`ext_authz`]) beside them. The
//! three check methods are answered by [`hot_path`], a layer in front of tonic's router.

pub mod ext_authz;
pub mod hot_path;
pub mod quota;
pub mod rls;

use crate::limiter::Limiter;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tollgate_proto::v1::quota_service_server::QuotaServiceServer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

/// Settings of the Envoy services that are not check semantics (those live in the limiter).
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// The request header ext_authz reads the API key from.
    pub ext_authz_api_key_header: String,
}

/// Serves gRPC on `listener` until `shutdown` resolves, then drains calls in flight.
pub async fn serve(
    listener: TcpListener,
    limiter: Arc<Limiter>,
    envoy: EnvoyOptions,
    health: (
        HealthReporter,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (reporter, health_service) = health;
    reporter
        .set_serving::<QuotaServiceServer<quota::QuotaApi>>()
        .await;
    reporter
        .set_serving::<RateLimitServiceServer<rls::RlsApi>>()
        .await;
    reporter
        .set_serving::<AuthorizationServer<ext_authz::ExtAuthzApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tollgate_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Each of the three check services has one method, and the hot path answers it, so
    // they are not in tonic's router; health lists them by type, reflection by descriptor.
    let checks = hot_path::CheckServices {
        quota: Arc::new(quota::QuotaApi::new(limiter.clone())),
        rls: Arc::new(rls::RlsApi::new(limiter.clone())),
        ext_authz: Arc::new(ext_authz::ExtAuthzApi::new(
            limiter,
            &envoy.ext_authz_api_key_header,
        )),
    };
    Server::builder()
        .layer(hot_path::HotPathLayer::new(checks))
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
