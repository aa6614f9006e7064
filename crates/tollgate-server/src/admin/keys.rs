//! `/apikeys`: create (or import, with `mode=import`), list, read, update (PATCH) and delete
//! API keys. A key's value is returned when it is created; later only if the server keeps
//! values (`--keep-key-values`) and the caller asks with `includeValue(s)=true`.

use super::error::{AdminError, ErrorBody};
use super::model::{
    key_to_dto, ApiKeyDto, ApiKeyIds, ApiKeys, CreateApiKeyRequest, CreatedApiKeys, PatchRequest,
};
use super::request::{json_body, paginate, path, Params};
use super::{import, new_id, new_key_value, now_s, patch, AdminState};
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use tollgate_core::apikey::{validate_key_value, ApiKey, KeyHash};
use tollgate_store::catalog::{CatalogRecords, Change, KeyRecord};
use tracing::{instrument, Span};

/// AWS's message for an unknown key.
pub fn key_not_found(id: &str) -> AdminError {
    AdminError::not_found(format!("Invalid API Key identifier specified: {id}"))
}

/// The 400 for a key name that is given but empty, from create and PATCH alike.
pub fn empty_name() -> AdminError {
    AdminError::bad(
        "name must not be empty (leave it out at creation to name the key after its id)",
    )
}

/// The key `id`, or 404.
pub fn find<'a>(records: &'a CatalogRecords, id: &str) -> Result<&'a KeyRecord, AdminError> {
    records.keys.get(id).ok_or_else(|| key_not_found(id))
}

/// A new key record with a generated id.
pub fn new_record(
    name: Option<String>,
    value: &str,
    enabled: bool,
    description: Option<String>,
    customer_id: Option<String>,
    tags: std::collections::BTreeMap<String, String>,
    keep_value: bool,
) -> Result<KeyRecord, AdminError> {
    validate_key_value(value)?;
    let id = new_id();
    let now = now_s();
    Ok(KeyRecord {
        key: ApiKey {
            name: name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| id.clone()),
            id,
            description,
            customer_id,
            enabled,
            value_hash: KeyHash::of(value),
            tags,
        },
        value: keep_value.then(|| value.to_string()),
        created_s: now,
        updated_s: now,
    })
}

/// Creates an API key, or with `mode=import&format=csv` imports keys from CSV.
#[utoipa::path(post, path = "/apikeys", tag = "API keys",
    params(("mode" = Option<String>, Query, pattern = "^import$", description = "`import` to import CSV (see ImportApiKeys)"),
           ("format" = Option<String>, Query, pattern = "^csv$", description = "`csv` (with mode=import)"),
           ("failonwarnings" = Option<bool>, Query, description = "with mode=import: refuse the whole file if any row is bad")),
    request_body(content = CreateApiKeyRequest, description = "JSON key, or with mode=import a CSV file with the columns Name, Key, Description, Enabled, UsagePlanIds"),
    responses((status = 201, body = CreatedApiKeys, description = "the key, or with mode=import the ids imported"),
              (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[instrument(skip_all, fields(key_id, mode))]
pub async fn create_or_import(
    State(s): State<Arc<AdminState>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let params = Params::from_query(q)?;
    match params.get("mode") {
        Some("import") => {
            Span::current().record("mode", "import");
            let ids: ApiKeyIds = import::import(&s, &params, &body).await?;
            Ok((StatusCode::CREATED, Json(ids)).into_response())
        }
        Some(other) if !other.is_empty() => Err(AdminError::bad(format!(
            "mode must be import, got `{other}`"
        ))),
        _ => {
            let req: CreateApiKeyRequest = json_body(&body)?;
            // AWS makes the name optional, and a key without one is named after its id; a
            // name given but blank is refused, as PATCH refuses it, rather than silently
            // replaced by the id.
            if req.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                return Err(empty_name());
            }
            let value = req.value.clone().unwrap_or_else(new_key_value);
            let record = new_record(
                req.name,
                &value,
                req.enabled.unwrap_or(false),
                req.description,
                req.customer_id,
                req.tags.unwrap_or_default(),
                s.keep_key_values,
            )?;
            Span::current().record("key_id", record.key.id.as_str());
            s.mutate(|r| {
                if r.keys.contains_key(&record.key.id) {
                    return Err(AdminError::Conflict("API key id exists; retry".into()));
                }
                // Checked here, not left to catalog validation, whose message names both
                // clashing keys, one of them this refused key's id that never exists.
                if let Some(other) = r
                    .keys
                    .values()
                    .find(|k| k.key.value_hash == record.key.value_hash)
                {
                    return Err(AdminError::Conflict(format!(
                        "API key `{}` already has the same value",
                        other.key.id
                    )));
                }
                Ok((vec![Change::PutKey(record.clone())], ()))
            })
            .await?;
            let mut dto = key_to_dto(&record, false);
            // Shown once, at creation.
            dto.value = Some(value);
            Ok((StatusCode::CREATED, Json(dto)).into_response())
        }
    }
}

/// Lists API keys, filtered by name prefix (`name`) and customer id.
#[utoipa::path(get, path = "/apikeys", tag = "API keys",
    params(("name" = Option<String>, Query, description = "name prefix (AWS nameQuery)"),
           ("customerId" = Option<String>, Query),
           ("includeValues" = Option<bool>, Query, description = "include kept values"),
           ("position" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = ApiKeys), (status = 400, body = ErrorBody)))]
#[instrument(skip_all)]
pub async fn list(
    State(s): State<Arc<AdminState>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ApiKeys>, AdminError> {
    let params = Params::from_query(q)?;
    let with_values = params.flag("includeValues", false)?;
    let name = params.get("name").or(params.get("nameQuery")).unwrap_or("");
    let customer = params.get("customerId").filter(|c| !c.is_empty());
    let records = s.sync.records();
    let items = records
        .keys
        .values()
        .filter(|k| k.key.name.starts_with(name))
        .filter(|k| customer.is_none_or(|c| k.key.customer_id.as_deref() == Some(c)))
        .map(|k| (k.key.id.clone(), key_to_dto(k, with_values)))
        .collect();
    let (item, position) = paginate(items, &params)?;
    Ok(Json(ApiKeys {
        item,
        position,
        warnings: Vec::new(),
    }))
}

/// Reads one API key.
#[utoipa::path(get, path = "/apikeys/{api_Key}", tag = "API keys",
    params(("api_Key" = String, Path, description = "the key's id"),
           ("includeValue" = Option<bool>, Query, description = "include the kept value")),
    responses((status = 200, body = ApiKeyDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(key_id))]
pub async fn get(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ApiKeyDto>, AdminError> {
    let id = path(p)?;
    Span::current().record("key_id", id.as_str());
    let with_value = Params::from_query(q)?.flag("includeValue", false)?;
    let records = s.sync.records();
    Ok(Json(key_to_dto(find(&records, &id)?, with_value)))
}

/// Changes an API key's name, description, enabled flag or customer id.
#[utoipa::path(patch, path = "/apikeys/{api_Key}", tag = "API keys",
    params(("api_Key" = String, Path)), request_body = PatchRequest,
    responses((status = 200, body = ApiKeyDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(key_id))]
pub async fn update(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<ApiKeyDto>, AdminError> {
    let id = path(p)?;
    Span::current().record("key_id", id.as_str());
    let req: PatchRequest = json_body(&body)?;
    let now = now_s();
    let (_, dto) = s
        .mutate(|r| {
            let mut k = find(r, &id)?.clone();
            patch::patch_key(&mut k, &req.patch_operations)?;
            k.updated_s = now;
            let dto = key_to_dto(&k, false);
            Ok((vec![Change::PutKey(k)], dto))
        })
        .await?;
    Ok(Json(dto))
}

/// Deletes an API key and takes it out of every plan.
#[utoipa::path(delete, path = "/apikeys/{api_Key}", tag = "API keys",
    params(("api_Key" = String, Path)),
    responses((status = 202), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(key_id))]
pub async fn delete(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, AdminError> {
    let id = path(p)?;
    Span::current().record("key_id", id.as_str());
    s.mutate(|r| {
        find(r, &id)?;
        let mut changes: Vec<Change> = r
            .plans_of_key(&id)
            .map(|p| Change::RemoveMember {
                plan_id: p.to_string(),
                key_id: id.clone(),
            })
            .collect();
        changes.push(Change::DeleteKey(id.clone()));
        Ok((changes, ()))
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}
