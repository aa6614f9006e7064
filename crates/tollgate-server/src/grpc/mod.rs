//! The gRPC server: `tollgate.v1.QuotaService`, `grpc.health.v1.Health` and server
//! reflection, on one port.

pub mod quota;

use crate::limiter::Limiter;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tollgate_proto::v1::quota_service_server::QuotaServiceServer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

/// Serves gRPC on `listener` until `shutdown` resolves, then drains calls in flight.
pub async fn serve(
    listener: TcpListener,
    limiter: Arc<Limiter>,
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
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tollgate_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(QuotaServiceServer::new(quota::QuotaApi::new(limiter)))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
