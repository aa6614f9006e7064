//! The pool of Redis Cluster connections.
//!
//! Why not deadpool-redis's cluster pool: it builds its cluster client from URLs alone, and
//! the redis crate takes a private CA or a client certificate for Cluster only through
//! `ClusterClientBuilder::certs` (the TLS settings of a seed URL are not used for the nodes
//! it discovers). This manager takes the built client, so both plain and TLS set-ups go
//! through the same pool.
//!
//! The connections' node connections are [`NodeConn`]s, which follow an `ASK` redirect
//! without a gap between `ASKING` and the command (see there).

use super::node_conn::NodeConn;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::cluster::ClusterClient;
use redis::RedisError;

/// A connection to the whole Cluster.
pub(super) type ClusterConnection = redis::cluster_async::ClusterConnection<NodeConn>;

/// Makes Cluster connections from one client, and checks a pooled one with `PING` before it
/// is handed out again.
pub(super) struct ClusterManager {
    client: ClusterClient,
}

impl ClusterManager {
    /// A manager for connections of `client`.
    pub(super) fn new(client: ClusterClient) -> Self {
        ClusterManager { client }
    }
}

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<ClusterConnection, RedisError> {
        self.client.get_async_generic_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        let pong: String = redis::cmd("PING").query_async(conn).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RecycleError::message(format!("PING answered `{pong}`")))
        }
    }
}

/// A pool of Cluster connections.
pub(super) type ClusterPool = managed::Pool<ClusterManager>;

/// A Cluster connection checked out of its pool.
pub(super) type Pooled = managed::Object<ClusterManager>;
