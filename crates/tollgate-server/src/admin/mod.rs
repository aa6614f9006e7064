//! The management API: usage plans, API keys and usage over REST, shaped like AWS API
//! Gateway's so the AWS SDKs and CLI work against it with a custom endpoint.
//!
//! Module map (one job per file):
//! - [`auth`]: bearer token and AWS SigV4 authentication of every management route.
//! - [`sigv4`]: the SigV4 verification itself.
//! - [`error`]: the one mapping of errors to HTTP status, `x-amzn-ErrorType` and `{"message"}`.
//! - [`model`]: AWS's wire shapes and their conversion to records.
//! - [`request`]: JSON bodies, query parameters and pagination.
//! - [`patch`]: PATCH operations on plans and keys.
//! - [`plans`]: the `/usageplans` routes.
//! - [`keys`]: the `/apikeys` routes.
//! - [`import`]: `POST /apikeys?mode=import&format=csv`.
//! - [`plan_keys`]: the `/usageplans/{id}/keys` routes.
//! - [`usage`]: `/usageplans/{id}/usage`, its export, and UpdateUsage.
//! - [`openapi`]: the OpenAPI document, generated from the handlers, at `/openapi.json`.
//!
//! Records go through [`CatalogSync::mutate`]: each change is validated against the whole
//! catalog and committed atomically to the shared store, then every instance reloads.

pub mod auth;
pub mod error;
pub mod import;
pub mod keys;
pub mod model;
pub mod openapi;
pub mod patch;
pub mod plan_keys;
pub mod plans;
pub mod request;
pub mod sigv4;
pub mod usage;

use crate::catalog_sync::{CatalogSync, MutateError};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch as patch_route};
use axum::Router;
use clap::Args;
use error::AdminError;
use rand::distr::{Alphanumeric, SampleString};
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_store::catalog::{CatalogRecords, Change};
use tollgate_store::Store;

/// Largest request body of the management API (CSV imports included).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Settings of the management API, part of `tollgate serve`.
#[derive(Clone, Default, Args)]
pub struct AdminSettings {
    /// Bearer token for the management API (`Authorization: Bearer <token>`). Prefer the
    /// environment variable over the flag, which other users can see in `ps`.
    #[arg(
        long,
        env = "TOLLGATE_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Access key id accepted in AWS Signature V4 requests (AWS CLI and SDKs).
    #[arg(long, env = "TOLLGATE_ADMIN_ACCESS_KEY_ID", value_name = "ID")]
    pub admin_access_key_id: Option<String>,
    /// Secret access key of that id. Prefer the environment variable.
    #[arg(
        long,
        env = "TOLLGATE_ADMIN_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub admin_secret_access_key: Option<String>,
    /// Serve the management API without authentication when no credentials are set. Without
    /// this, and without credentials, every management call is refused with 403.
    #[arg(long, env = "TOLLGATE_ADMIN_UNAUTHENTICATED")]
    pub admin_unauthenticated: bool,
    /// Keep API key values (not only their SHA-256) so they can be read back later with
    /// includeValues. Off by default: a value is shown once, at creation.
    #[arg(long, env = "TOLLGATE_KEEP_KEY_VALUES")]
    pub keep_key_values: bool,
}

// Secrets stay out of logs.
impl fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminSettings")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("admin_access_key_id", &self.admin_access_key_id)
            .field(
                "admin_secret_access_key",
                &self.admin_secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("admin_unauthenticated", &self.admin_unauthenticated)
            .field("keep_key_values", &self.keep_key_values)
            .finish()
    }
}

/// What every management handler works with.
pub struct AdminState {
    /// The shared records.
    pub sync: Arc<CatalogSync>,
    /// Limit state, for usage reports and grants.
    pub store: Arc<dyn Store>,
    /// Who may call.
    pub auth: auth::AdminAuth,
    /// Whether key values are kept.
    pub keep_key_values: bool,
}

impl AdminState {
    /// Validates and commits the changes `f` derives from the current records.
    pub async fn mutate<T>(
        &self,
        f: impl Fn(&CatalogRecords) -> Result<(Vec<Change>, T), AdminError>,
    ) -> Result<(Arc<CatalogRecords>, T), AdminError> {
        self.sync
            .mutate(f, |next| {
                next.to_catalog().map(drop).map_err(AdminError::from)
            })
            .await
            .map_err(|e| match e {
                MutateError::Refused(e) => e,
                MutateError::Store(e) => AdminError::from(e),
                MutateError::Contended => {
                    AdminError::Conflict("the records changed concurrently too often; retry".into())
                }
            })
    }
}

/// Unix seconds now.
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A new record id: 10 lower-case letters and digits, as AWS makes them.
pub fn new_id() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 10)
        .to_ascii_lowercase()
}

/// A new API key value: 40 letters and digits.
pub fn new_key_value() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// The management routes (authenticated) and `/openapi.json` (open).
pub fn router(state: Arc<AdminState>) -> Router {
    let api = Router::new()
        .route("/usageplans", get(plans::list).post(plans::create))
        .route(
            "/usageplans/{usageplanId}",
            get(plans::get).patch(plans::update).delete(plans::delete),
        )
        .route(
            "/usageplans/{usageplanId}/keys",
            get(plan_keys::list).post(plan_keys::create),
        )
        .route(
            "/usageplans/{usageplanId}/keys/{keyId}",
            get(plan_keys::get).delete(plan_keys::delete),
        )
        .route(
            "/usageplans/{usageplanId}/keys/{keyId}/usage",
            patch_route(usage::update),
        )
        .route("/usageplans/{usageplanId}/usage", get(usage::get))
        .route("/usageplans/{usageplanId}/usage/export", get(usage::export))
        .route("/apikeys", get(keys::list).post(keys::create_or_import))
        .route(
            "/apikeys/{api_Key}",
            get(keys::get).patch(keys::update).delete(keys::delete),
        )
        // Before the auth layer, so a wrong method without credentials still gets 401.
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    api.route("/openapi.json", get(openapi::serve))
        .method_not_allowed_fallback(error::method_not_allowed)
}
