//! `rediss://` (TLS) with AUTH against a real redis-server listening on a TLS port, with a
//! certificate made for the test by the `openssl` command line.

use std::path::Path;
use std::process::Command;
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::{RedisConfig, RedisMode, RedisStore, Store};
use tollgate_testkit::RedisServer;

fn self_signed(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl is needed for this test (apt-get install openssl)");
    assert!(
        status.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

fn quota_batch() -> LimitBatch {
    LimitBatch {
        tag: "p:tls".into(),
        limits: vec![Limit {
            name: "q".into(),
            kind: LimitKind::Quota(QuotaLimit {
                limit: 2,
                period: QuotaPeriod::Day,
                offset: 0,
                anchor_s: 0,
            }),
        }],
        cost: 1,
        usage_retention_days: None,
    }
}

/// A TLS URL with a password reaches Redis over TLS; `#insecure` is needed for a self-signed
/// certificate, and without it the certificate is verified (and refused).
#[tokio::test]
async fn rediss_with_auth() {
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path());
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let server = RedisServer::start_with_args(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-ca-cert-file",
        cert.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "tls-s3cret",
    ])
    .unwrap();
    let url = format!("rediss://:tls-s3cret@127.0.0.1:{tls_port}/#insecure");
    let store = RedisStore::new(&RedisConfig::new(RedisMode::Standalone, vec![url])).unwrap();
    assert!(store.check(&quota_batch()).await.unwrap().admitted);
    assert!(store.check(&quota_batch()).await.unwrap().admitted);
    assert!(
        !store.check(&quota_batch()).await.unwrap().admitted,
        "state is kept over TLS"
    );

    let verified = format!("rediss://:tls-s3cret@127.0.0.1:{tls_port}/");
    let strict = RedisStore::new(&RedisConfig::new(RedisMode::Standalone, vec![verified])).unwrap();
    assert!(
        strict.ping().await.is_err(),
        "a self-signed certificate is refused without #insecure"
    );
    let wrong = format!("rediss://:wrong@127.0.0.1:{tls_port}/#insecure");
    let wrong = RedisStore::new(&RedisConfig::new(RedisMode::Standalone, vec![wrong])).unwrap();
    assert!(wrong.ping().await.is_err(), "a wrong password is refused");
    drop(server);
}
