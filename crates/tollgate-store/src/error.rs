//! Errors of the limit stores.

use std::path::Path;
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
    /// The store is configured wrongly (bad URL, unknown mode), or refuses tollgate's
    /// credentials or TLS settings.
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
        classify(e, None)
    }
}

/// `e` as the store's error. `ca_file`, the private CA given for `rediss://`, is named when a
/// server's certificate is not trusted.
///
/// A server that refuses tollgate itself (its credentials, its ACL permissions, its TLS
/// certificate, or trusts none of the server's) answers the same way to every retry until an
/// operator changes a setting: that is [`StoreError::Config`], worded to say which setting,
/// rather than "unavailable" (which would be retried and read as an outage) or "protocol"
/// (which reads as a bug in tollgate).
pub(crate) fn classify(e: ::redis::RedisError, ca_file: Option<&Path>) -> StoreError {
    let text = e.to_string();
    if refuses_credentials(&e, &text) {
        return StoreError::Config(format!(
            "Redis refused tollgate's credentials ({text}); check the user and password in the Redis URL (redis://[user]:password@host:port), or for the master found through Sentinel --redis-sentinel-master-username and --redis-sentinel-master-password"
        ));
    }
    if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoPerm) {
        return StoreError::Config(format!(
            "the Redis user may not run a command tollgate needs ({text}); grant it in the server's ACL"
        ));
    }
    if text.contains("invalid peer certificate") {
        let why = match ca_file {
            Some(path) if text.contains("UnknownIssuer") => format!(
                "it is not signed by a CA in the Redis TLS CA file `{}` (--redis-tls-ca-file)",
                path.display()
            ),
            Some(path) => format!(
                "checked against the Redis TLS CA file `{}` (--redis-tls-ca-file)",
                path.display()
            ),
            None if text.contains("UnknownIssuer") => "it is not signed by a CA tollgate trusts; give a private CA's PEM file with --redis-tls-ca-file".into(),
            None => "checked against the public CAs".into(),
        };
        return StoreError::Config(format!(
            "the Redis server's TLS certificate is not trusted ({text}): {why}"
        ));
    }
    if text.contains("received fatal alert") {
        return StoreError::Config(format!(
            "the Redis server refused the TLS handshake ({text}); if it asks for a client certificate, give one with --redis-tls-cert-file and --redis-tls-key-file"
        ));
    }
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
        StoreError::Unavailable(text)
    } else {
        StoreError::Protocol(text)
    }
}

/// Whether the server refused to authenticate tollgate: no password given to a server that
/// needs one (`NOAUTH Authentication required`), a wrong user or password (`WRONGPASS`, which
/// the redis crate reports as its own "authentication failed" while connecting), or a password
/// given to a server that has none. A command too long for a client not yet authenticated
/// (a check's script call) is cut off as `Protocol error: unauthenticated multibulk length`.
/// The cluster client passes on only the text of the error of its first connections, hence
/// the look at the text too.
fn refuses_credentials(e: &::redis::RedisError, text: &str) -> bool {
    e.kind() == ::redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
        || [
            "NOAUTH",
            "WRONGPASS",
            "Authentication required",
            "authentication failed",
            "without any password configured",
            "unauthenticated multibulk",
            "unauthenticated bulk",
        ]
        .iter()
        .any(|m| text.contains(m))
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

    /// A server that refuses tollgate's credentials, ACL user or TLS certificate is a
    /// configuration error saying which setting to look at, not transient; when a CA file was
    /// given, an untrusted certificate names it.
    #[test]
    fn refusals_are_configuration_errors() {
        let refusals = [
            RedisError::from((
                ErrorKind::AuthenticationFailed,
                "Password authentication failed",
            )),
            RedisError::from((
                ErrorKind::Io,
                "Failed to create initial connections",
                "AuthenticationFailed: Password authentication failed".to_string(),
            )),
            RedisError::from((
                ErrorKind::Server(::redis::ServerErrorKind::NoPerm),
                "this user has no permissions to run the 'evalsha' command",
            )),
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "invalid peer certificate: UnknownIssuer",
            )),
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "received fatal alert: CertificateRequired",
            )),
        ];
        for e in refusals {
            let shown = e.to_string();
            let e = classify(e, None);
            assert!(matches!(e, StoreError::Config(_)), "{shown}: {e:?}");
            assert!(!e.is_transient());
        }
        let untrusted = || {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "invalid peer certificate: UnknownIssuer",
            ))
        };
        let named = classify(untrusted(), Some(Path::new("/etc/tollgate/ca.pem"))).to_string();
        assert!(named.contains("`/etc/tollgate/ca.pem`"), "{named}");
        let hinted = classify(untrusted(), None).to_string();
        assert!(hinted.contains("--redis-tls-ca-file"), "{hinted}");
    }
}
