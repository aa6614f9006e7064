//! Wiring: build the store, the catalog and the limiter from the settings, bind both
//! servers, and run them until the shutdown future resolves.

use crate::admin::{self, AdminState};
use crate::catalog_sync::CatalogSync;
use crate::cli::ServeSettings;
use crate::limiter::Limiter;
use crate::{bootstrap, config, console, grpc, http, rls_config};
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tollgate_core::catalog::Catalog;
use tollgate_store::{
    CatalogStore, MemoryStore, RedisConfig, RedisMode, RedisStore, RedisTlsFiles, Store, StoreError,
};
use tracing::{info, warn};

/// Builds the limit store the settings ask for.
pub fn build_store(s: &ServeSettings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(build_stores(s)?.0)
}

/// Builds the limit store and the record store the settings ask for: one backend, seen
/// through both traits.
pub fn build_stores(s: &ServeSettings) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn CatalogStore>)> {
    let Some(urls) = s
        .redis
        .redis_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    else {
        let store = Arc::new(MemoryStore::new());
        return Ok((store.clone(), store));
    };
    let mode: RedisMode = s.redis.redis_mode.parse()?;
    let mut cfg = RedisConfig::new(
        mode,
        urls.split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
    );
    cfg.sentinel_master = s.redis.redis_sentinel_master.clone();
    cfg.sentinel_master_username = s.redis.redis_sentinel_master_username.clone();
    cfg.sentinel_master_password = s.redis.redis_sentinel_master_password.clone();
    cfg.tls = RedisTlsFiles {
        ca_file: s.redis.redis_tls_ca_file.clone(),
        cert_file: s.redis.redis_tls_cert_file.clone(),
        key_file: s.redis.redis_tls_key_file.clone(),
    };
    cfg.pool_size = match s.redis_pool_size {
        Some(n) => usize::from(n),
        None => RedisConfig::default_pool_size(mode, request_threads()),
    };
    cfg.timeout = Duration::from_millis(s.redis_timeout_ms);
    let store = Arc::new(RedisStore::new(&cfg)?);
    Ok((store.clone(), store))
}

/// How many threads serve requests: the workers of the runtime `main` built from
/// `--worker-threads`, asked rather than worked out again from the flag.
fn request_threads() -> usize {
    tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers())
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Every route of the HTTP port: check, auth_request, health and metrics, the management
/// API and the console. `serve` and the http_router fuzz target both build the port here,
/// so what is fuzzed is what is served.
pub fn http_routes(limiter: Arc<Limiter>, admin: Arc<AdminState>) -> axum::Router {
    http::router(limiter)
        .merge(admin::router(admin))
        .merge(console::router())
}

/// Runs tollgate until `shutdown` resolves.
pub async fn serve(
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let catalog = match &settings.config {
        Some(path) => config::load(path, now_s())?,
        None => Catalog::default(),
    };
    let (store, records) = build_stores(&settings)?;
    let admin_auth = admin::auth::AdminAuth::from_settings(&settings.admin)?;
    info!(
        backend = store.backend(),
        plans = catalog.plans().count(),
        keys = catalog.keys().count(),
        "starting"
    );
    match store.ping().await {
        Ok(()) => {}
        // Redis answered and refused tollgate (its credentials, ACL user or TLS settings):
        // no wait mends that, and every check would fail, so stop and say why.
        Err(e @ StoreError::Config(_)) => {
            return Err(anyhow::Error::new(e).context("the limit store refused tollgate"))
        }
        // Not fatal: the store may come up later; checks follow the failure mode meanwhile.
        Err(e) => warn!(error = %e, "limit store not reachable yet"),
    }
    let limiter = Limiter::new(
        catalog,
        store.clone(),
        settings.failure_mode,
        settings.usage_retention_days,
    )
    .with_rls_options(settings.rls_options());
    // Envoy rate-limit domains: a broken directory stops the start, as there is nothing to
    // keep; later it is watched, and a broken change keeps what was loaded.
    let rls_watch = match &settings.rls_config {
        Some(dir) => {
            let (files, registry) = rls_config::load(dir)
                .with_context(|| format!("rate-limit config directory {}", dir.display()))?;
            rls_config::loaded(&registry, dir);
            limiter.set_rls_registry(registry);
            Some((dir.clone(), files))
        }
        None => None,
    };
    let limiter = Arc::new(limiter);
    // The shared records replace the file's catalog once they are loaded.
    let sync = Arc::new(CatalogSync::new(records, limiter.clone()));
    bootstrap::at_start(
        sync.clone(),
        settings.config.clone(),
        settings.admin.keep_key_values,
    )
    .await?;
    if admin_auth.is_open() {
        warn!("the management API is open to anyone (--admin-unauthenticated)");
    } else if !admin_auth.has_credentials() {
        info!("the management API is closed: no TOLLGATE_ADMIN_TOKEN or TOLLGATE_ADMIN_ACCESS_KEY_ID set");
    }
    let admin = Arc::new(AdminState {
        sync: sync.clone(),
        store,
        auth: admin_auth,
        keep_key_values: settings.admin.keep_key_values,
    });
    let grpc_listener = TcpListener::bind(settings.grpc_addr)
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", settings.grpc_addr))?;
    let http_listener = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", settings.http_addr))?;
    info!(grpc = %grpc_listener.local_addr()?, http = %http_listener.local_addr()?, "listening");

    // One shutdown signal fanned out to both servers.
    let (tx, rx) = watch::channel(false);
    let mut stopping = rx.clone();
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    if let Some((dir, files)) = rls_watch {
        let every = Duration::from_millis(settings.rls_reload_interval_ms);
        let stop = wait(rx.clone());
        tokio::spawn(rls_config::watch(dir, limiter.clone(), every, files, stop));
    }
    let grpc_task = tokio::spawn(grpc::serve(
        grpc_listener,
        limiter.clone(),
        grpc::EnvoyOptions {
            ext_authz_api_key_header: settings.ext_authz_api_key_header.clone(),
        },
        tonic_health::server::health_reporter(),
        wait(rx.clone()),
    ));
    tokio::spawn(sync.run(wait(rx.clone())));
    let http_task = tokio::spawn(http::serve(
        http_listener,
        http_routes(limiter, admin),
        wait(rx),
    ));
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let servers = async { tokio::join!(grpc_task, http_task) };
    tokio::pin!(servers);
    // Both servers drain their connections once told to stop, and a connection ends only
    // when its client finishes a request or goes away: one that never does (an idle HTTP/2
    // connection, headers half sent) would hold the process until SIGKILL. So the drain
    // gets `grace`, then the servers are dropped with whatever is still open.
    let (g, h) = tokio::select! {
        done = &mut servers => done,
        _ = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => {
            warn!(grace_ms = settings.shutdown_grace_ms, "connections still open after the shutdown grace period; stopping without them");
            return Ok(());
        }
    };
    g.context("gRPC server task")??;
    h.context("HTTP server task")??;
    info!("stopped");
    Ok(())
}
