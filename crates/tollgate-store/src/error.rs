//! Errors of the limit stores.

use thiserror::Error;

/// Why a store could not answer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store could not be reached or dropped the connection.
    #[error("limit store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer within the configured timeout.
    #[error("limit store did not answer within {0} ms")]
    Timeout(u64),
    /// The store answered something this code does not understand (a bug or a version skew).
    #[error("unexpected answer from the limit store: {0}")]
    Protocol(String),
    /// The store is configured wrongly (bad URL, unknown mode).
    #[error("limit store configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}

impl From<::redis::RedisError> for StoreError {
    fn from(e: ::redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_cluster_error()
            // The cluster client answers this while it has no connection to the node of a
            // slot (nodes restarting, a topology being rebuilt), and a replica answers
            // READONLY to a write during a failover: both pass.
            || matches!(
                e.kind(),
                ::redis::ErrorKind::ClusterConnectionNotFound
                    | ::redis::ErrorKind::Server(::redis::ServerErrorKind::ReadOnly)
                    | ::redis::ErrorKind::Server(::redis::ServerErrorKind::BusyLoading)
                    | ::redis::ErrorKind::Server(::redis::ServerErrorKind::TryAgain)
                    | ::redis::ErrorKind::Server(::redis::ServerErrorKind::ClusterDown)
                    | ::redis::ErrorKind::Server(::redis::ServerErrorKind::MasterDown)
            )
        {
            StoreError::Unavailable(with_hint(e.to_string()))
        } else {
            StoreError::Protocol(e.to_string())
        }
    }
}

/// rustls names a server certificate from an unknown CA only as `UnknownIssuer`; the usual
/// cause is a private CA that tollgate was not given, so the message says how to give it.
fn with_hint(message: String) -> String {
    if message.contains("UnknownIssuer") {
        format!(
            "{message} (the server's certificate is not signed by a CA tollgate trusts; give a private CA's PEM file with --redis-tls-ca-file)"
        )
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::redis::{ErrorKind, RedisError};

    /// What a Redis Cluster or Sentinel set-up answers while it recovers is transient (and
    /// counted as `unavailable`), not a protocol error that would page someone about a bug.
    #[test]
    fn topology_changes_are_transient() {
        let no_node =
            RedisError::from((ErrorKind::ClusterConnectionNotFound, "No connections found"));
        let replica = RedisError::from((
            ErrorKind::Server(::redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        for e in [no_node, replica] {
            let shown = e.to_string();
            let e = StoreError::from(e);
            assert!(matches!(e, StoreError::Unavailable(_)), "{shown}: {e:?}");
            assert!(e.is_transient());
        }
        let bad = StoreError::from(RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "not a number",
        )));
        assert!(!bad.is_transient());
    }
}
