//! `rediss://` (TLS) with AUTH against a real redis-server listening on a TLS port, with
//! certificates made for the test by the `openssl` command line: self-signed, or signed by a
//! private CA, with and without a client certificate.

use std::path::Path;
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::quota::QuotaLimit;
use tollgate_store::{RedisConfig, RedisMode, RedisStore, RedisTlsFiles, Store, StoreError};
use tollgate_testkit::{
    private_pki, self_signed, RedisCluster, RedisSentinel, RedisServer, TlsFiles,
};

fn quota_batch() -> LimitBatch {
    quota_batch_for("p:tls")
}

/// A quota of 2 a day on `tag`.
fn quota_batch_for(tag: &str) -> LimitBatch {
    LimitBatch {
        tag: tag.into(),
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
    self_signed(dir.path()).unwrap();
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

/// A redis-server with the private CA's server certificate on a TLS port (the plain port is
/// the harness's), asking clients for a certificate when `auth_clients`; and that port.
fn private_tls_server(dir: &Path, auth_clients: bool) -> (RedisServer, u16) {
    let server = RedisServer::start_tls(
        &server_files(dir),
        &[
            "--tls-auth-clients",
            if auth_clients { "yes" } else { "no" },
            "--requirepass",
            "tls-s3cret",
        ],
    )
    .unwrap();
    let port = server.tls_port().expect("a TLS port");
    (server, port)
}

fn tls_store(url: String, tls: RedisTlsFiles) -> Result<RedisStore, StoreError> {
    let mut cfg = RedisConfig::new(RedisMode::Standalone, vec![url]);
    cfg.tls = tls;
    RedisStore::new(&cfg)
}

/// With the private CA's file, a server whose certificate it signed is reached and verified,
/// host name included; without it, or with another CA, the handshake is refused with an
/// error that names the certificate.
#[tokio::test]
async fn private_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    private_pki(dir.path()).unwrap();
    let (_server, port) = private_tls_server(dir.path(), false);
    let url = format!("rediss://:tls-s3cret@127.0.0.1:{port}/");
    let ca = RedisTlsFiles {
        ca_file: Some(dir.path().join("ca.pem")),
        ..Default::default()
    };

    let store = tls_store(url.clone(), ca.clone()).unwrap();
    assert!(store.check(&quota_batch()).await.unwrap().admitted);
    assert!(store.check(&quota_batch()).await.unwrap().admitted);
    assert!(
        !store.check(&quota_batch()).await.unwrap().admitted,
        "state is kept over TLS"
    );

    let public_roots = tls_store(url.clone(), RedisTlsFiles::default()).unwrap();
    let e = public_roots.ping().await.unwrap_err().to_string();
    assert!(
        e.contains("UnknownIssuer") && e.contains("--redis-tls-ca-file"),
        "without the CA file the server is not trusted, and the error says what to do: {e}"
    );
    let other = RedisTlsFiles {
        ca_file: Some(dir.path().join("other-ca.pem")),
        ..Default::default()
    };
    let e = tls_store(url, other)
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("UnknownIssuer"),
        "another CA is not trusted: {e}"
    );

    // The certificate names 127.0.0.1 only: a CA file does not turn host names off.
    let by_name = format!("rediss://:tls-s3cret@localhost:{port}/");
    let e = tls_store(by_name, ca)
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not valid for name \"localhost\""),
        "host names are verified: {e}"
    );
}

/// A server with `tls-auth-clients yes` refuses a client without a certificate, and takes
/// the one the private CA signed.
#[tokio::test]
async fn client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    private_pki(dir.path()).unwrap();
    let (_server, port) = private_tls_server(dir.path(), true);
    let url = format!("rediss://:tls-s3cret@127.0.0.1:{port}/");
    let ca_only = RedisTlsFiles {
        ca_file: Some(dir.path().join("ca.pem")),
        ..Default::default()
    };
    let anonymous = tls_store(url.clone(), ca_only.clone()).unwrap();
    let e = anonymous.ping().await.unwrap_err().to_string();
    assert!(
        e.contains("CertificateRequired"),
        "a client without a certificate is refused: {e}"
    );

    let mutual = RedisTlsFiles {
        cert_file: Some(dir.path().join("client.pem")),
        key_file: Some(dir.path().join("client.key")),
        ..ca_only
    };
    let store = tls_store(url, mutual).unwrap();
    store.ping().await.unwrap();
    assert!(store.check(&quota_batch()).await.unwrap().admitted);
}

/// Bad TLS files stop the store from being built, with a message naming the file and the
/// fault: unreadable, not PEM, a key that is not the certificate's, or TLS files with a
/// redis:// URL.
#[test]
fn bad_tls_files_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    private_pki(dir.path()).unwrap();
    let url = "rediss://127.0.0.1:1/".to_string();
    let p = |f: &str| Some(dir.path().join(f));
    let refused = |url: &str, tls: RedisTlsFiles| match tls_store(url.to_string(), tls) {
        Ok(_) => panic!("built a store with bad TLS files"),
        Err(e) => e.to_string(),
    };

    let e = refused(
        &url,
        RedisTlsFiles {
            ca_file: p("missing.pem"),
            ..Default::default()
        },
    );
    assert!(
        e.contains("cannot read the Redis TLS CA file") && e.contains("missing.pem"),
        "{e}"
    );

    // A key where a certificate belongs: PEM, but no certificate in it.
    let e = refused(
        &url,
        RedisTlsFiles {
            ca_file: p("ca.key"),
            ..Default::default()
        },
    );
    assert!(e.contains("holds no PEM certificate"), "{e}");

    let e = refused(
        &url,
        RedisTlsFiles {
            cert_file: p("client.pem"),
            key_file: p("client.csr"),
            ..Default::default()
        },
    );
    assert!(e.contains("holds no PEM private key"), "{e}");

    let e = refused(
        &url,
        RedisTlsFiles {
            cert_file: p("client.pem"),
            key_file: p("server.key"),
            ..Default::default()
        },
    );
    assert!(e.contains("is not the key of the certificate"), "{e}");

    let e = refused(
        "redis://127.0.0.1:1/",
        RedisTlsFiles {
            ca_file: p("ca.pem"),
            ..Default::default()
        },
    );
    assert!(e.contains("not a rediss:// (TLS) URL"), "{e}");

    // The good files are accepted.
    tls_store(
        url,
        RedisTlsFiles {
            ca_file: p("ca.pem"),
            cert_file: p("client.pem"),
            key_file: p("client.key"),
        },
    )
    .unwrap();
}

/// `#insecure` turns every certificate check off and a CA file asks for them against that
/// CA: together they are a contradiction, refused at start in every topology with a message
/// naming both, rather than a CA file silently ignored.
#[test]
fn insecure_with_a_ca_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    private_pki(dir.path()).unwrap();
    let ca = dir.path().join("ca.pem");
    for mode in [
        RedisMode::Standalone,
        RedisMode::Cluster,
        RedisMode::Sentinel,
    ] {
        let mut cfg = RedisConfig::new(
            mode,
            vec!["rediss://:s3cret@127.0.0.1:1/#insecure".to_string()],
        );
        cfg.tls.ca_file = Some(ca.clone());
        let e = match RedisStore::new(&cfg) {
            Ok(_) => panic!("{mode:?}: #insecure with a CA file was accepted"),
            Err(e) => e,
        };
        let shown = e.to_string();
        assert!(matches!(e, StoreError::Config(_)), "{mode:?}: {e:?}");
        assert!(shown.contains("#insecure"), "{shown}");
        assert!(shown.contains(&ca.display().to_string()), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    // A client certificate alone does not ask for the server's to be checked: allowed.
    let mut cfg = RedisConfig::new(
        RedisMode::Standalone,
        vec!["rediss://127.0.0.1:1/#insecure".to_string()],
    );
    cfg.tls.cert_file = Some(dir.path().join("client.pem"));
    cfg.tls.key_file = Some(dir.path().join("client.key"));
    RedisStore::new(&cfg).unwrap();
}

/// Sentinel over TLS: the sentinel and the master it names both have certificates from the
/// private CA and a password each; the store reaches both over TLS with the CA file and a
/// client certificate, and authenticates to the master with the master's own password.
#[tokio::test]
async fn sentinel_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    private_pki(dir.path()).unwrap();
    let (master, master_tls_port) = private_tls_server(dir.path(), true);
    let sentinel_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = |f: &str| dir.path().join(f).display().to_string();
    let _sentinel = RedisSentinel::start(
        dir.path(),
        &format!(
            "port 0\nbind 127.0.0.1\ndir {dir}\ntls-port {sentinel_port}\n\
             tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {ca}\n\
             tls-auth-clients yes\ntls-replication yes\nrequirepass sentinel-s3cret\n\
             sentinel monitor mymaster 127.0.0.1 {master_tls_port} 1\n\
             sentinel auth-pass mymaster tls-s3cret\n",
            dir = dir.path().display(),
            cert = path("server.pem"),
            key = path("server.key"),
            ca = path("ca.pem"),
        ),
    )
    .expect("redis-server --sentinel");

    let mut cfg = RedisConfig::new(
        RedisMode::Sentinel,
        vec![format!(
            "rediss://:sentinel-s3cret@127.0.0.1:{sentinel_port}/"
        )],
    );
    cfg.sentinel_master_password = Some("tls-s3cret".into());
    cfg.tls = RedisTlsFiles {
        ca_file: Some(dir.path().join("ca.pem")),
        cert_file: Some(dir.path().join("client.pem")),
        key_file: Some(dir.path().join("client.key")),
    };
    let store = RedisStore::new(&cfg).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(e) = store.ping().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the master was never reached through the sentinel: {e}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(store.check(&quota_batch()).await.unwrap().admitted);
    assert!(store.check(&quota_batch()).await.unwrap().admitted);
    assert!(!store.check(&quota_batch()).await.unwrap().admitted);

    // The counts are on the master (read through its plain port).
    let mut c = redis::Client::open(format!("redis://:tls-s3cret@127.0.0.1:{}/", master.port()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let n: i64 = redis::cmd("HGET")
        .arg("tg:{p:tls}:q")
        .arg("n")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

/// The private CA's server certificate, key and CA file in `dir`, as the testkit takes them.
fn server_files(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
        ca_file: dir.join("ca.pem"),
    }
}

fn cluster_store(cluster: &RedisCluster, ca_file: &Path) -> RedisStore {
    let mut cfg = RedisConfig::new(RedisMode::Cluster, cluster.tls_urls());
    cfg.tls.ca_file = Some(ca_file.to_path_buf());
    cfg.timeout = std::time::Duration::from_secs(2);
    RedisStore::new(&cfg).unwrap()
}

/// Redis Cluster over TLS: nodes whose certificates the private CA signed, speaking TLS to
/// each other too. With the CA file, the store reaches every master (the seeds, and the
/// nodes `CLUSTER SLOTS` names by their TLS ports), keeps state there, and subscribes to
/// catalog changes over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_over_tls() {
    use futures_util::StreamExt;
    use tollgate_store::catalog::{Change, Commit, PlanRecord};
    use tollgate_store::CatalogStore;
    let dir = tempfile::tempdir().unwrap();
    private_pki(dir.path()).unwrap();
    let cluster = RedisCluster::start_tls(3, &server_files(dir.path())).unwrap();
    let store = cluster_store(&cluster, &dir.path().join("ca.pem"));
    store.ping().await.unwrap();
    for k in 0..30 {
        let batch = quota_batch_for(&format!("p:tls{k}"));
        assert!(store.check(&batch).await.unwrap().admitted);
        assert!(store.check(&batch).await.unwrap().admitted);
        assert!(!store.check(&batch).await.unwrap().admitted, "key {k}");
    }
    for node in 0..3 {
        let keyspace = cluster.info(node, "keyspace").unwrap();
        assert!(
            keyspace.contains("db0:keys="),
            "node {node} holds no key: {keyspace}"
        );
    }
    let mut changes = store
        .subscribe()
        .await
        .expect("catalog changes are subscribed over TLS with the CA file");
    let plan = tollgate_core::plan::UsagePlan {
        id: "p1".into(),
        name: "p1".into(),
        description: None,
        throttle: None,
        quota: None,
        api_stages: vec![],
        quota_start_s: 0,
    };
    let put = [Change::PutPlan(PlanRecord {
        plan,
        tags: Default::default(),
    })];
    assert_eq!(store.commit(0, &put).await.unwrap(), Commit::Applied(1));
    let version = tokio::time::timeout(std::time::Duration::from_secs(2), changes.next()).await;
    assert_eq!(
        version.unwrap(),
        Some(1),
        "the commit was notified over TLS"
    );
}

/// A TLS cluster whose certificates the given CA did not sign is refused at the first call
/// (the start-up ping) with a configuration error that names the CA file, not retried as
/// "unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_with_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    private_pki(dir.path()).unwrap();
    let cluster = RedisCluster::start_tls(3, &server_files(dir.path())).unwrap();
    let other = dir.path().join("other-ca.pem");
    let e = cluster_store(&cluster, &other).ping().await.unwrap_err();
    let shown = e.to_string();
    assert!(matches!(e, StoreError::Config(_)), "{e:?}");
    assert!(!e.is_transient());
    assert!(shown.contains(&other.display().to_string()), "{shown}");
}
