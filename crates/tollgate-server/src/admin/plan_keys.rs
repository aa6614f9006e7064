//! `/usageplans/{usageplanId}/keys`: put API keys into a plan, list them, take them out.
//! A key may be in several plans but in only one per API stage (409 otherwise).

use super::error::{AdminError, ErrorBody};
use super::keys::{self, key_not_found};
use super::model::{plan_key_to_dto, CreateUsagePlanKeyRequest, UsagePlanKeyDto, UsagePlanKeys};
use super::plans;
use super::request::{json_body, paginate, path, Params};
use super::AdminState;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;
use tollgate_store::catalog::{CatalogRecords, Change};
use tracing::{instrument, Span};

fn member(r: &CatalogRecords, plan_id: &str, key_id: &str) -> Result<(), AdminError> {
    plans::find(r, plan_id)?;
    if r.members
        .contains(&(plan_id.to_string(), key_id.to_string()))
    {
        Ok(())
    } else {
        Err(AdminError::not_found(format!(
            "Invalid API Key identifier specified: {key_id} is not in usage plan {plan_id}"
        )))
    }
}

/// Puts an API key into a usage plan.
#[utoipa::path(post, path = "/usageplans/{usageplanId}/keys", tag = "usage plan keys",
    params(("usageplanId" = String, Path)), request_body = CreateUsagePlanKeyRequest,
    responses((status = 201, body = UsagePlanKeyDto), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id, key_id))]
pub async fn create(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<UsagePlanKeyDto>), AdminError> {
    let plan_id = path(p)?;
    Span::current().record("plan_id", plan_id.as_str());
    let req: CreateUsagePlanKeyRequest = json_body(&body)?;
    let key_id = req
        .key_id
        .filter(|k| !k.is_empty())
        .ok_or_else(|| AdminError::bad("keyId is required"))?;
    Span::current().record("key_id", key_id.as_str());
    match req.key_type.as_deref() {
        Some("API_KEY") => {}
        Some(other) => {
            return Err(AdminError::bad(format!(
                "keyType must be API_KEY, got `{other}`"
            )))
        }
        None => return Err(AdminError::bad("keyType is required (API_KEY)")),
    }
    let (_, dto) = s
        .mutate(|r| {
            plans::find(r, &plan_id)?;
            let key = keys::find(r, &key_id)?;
            if r.members.contains(&(plan_id.clone(), key_id.clone())) {
                return Err(AdminError::Conflict(format!(
                    "API key {key_id} is already in usage plan {plan_id}"
                )));
            }
            let change = Change::AddMember {
                plan_id: plan_id.clone(),
                key_id: key_id.clone(),
            };
            Ok((vec![change], plan_key_to_dto(key)))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Lists the keys of a usage plan, optionally by name prefix.
#[utoipa::path(get, path = "/usageplans/{usageplanId}/keys", tag = "usage plan keys",
    params(("usageplanId" = String, Path), ("name" = Option<String>, Query, description = "name prefix"),
           ("position" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = UsagePlanKeys), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id))]
pub async fn list(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<UsagePlanKeys>, AdminError> {
    let plan_id = path(p)?;
    Span::current().record("plan_id", plan_id.as_str());
    let params = Params::from_query(q)?;
    let records = s.sync.records();
    plans::find(&records, &plan_id)?;
    let name = params.get("name").or(params.get("nameQuery")).unwrap_or("");
    let items = records
        .keys_of_plan(&plan_id)
        .filter_map(|k| records.keys.get(k))
        .filter(|k| k.key.name.starts_with(name))
        .map(|k| (k.key.id.clone(), plan_key_to_dto(k)))
        .collect();
    let (item, position) = paginate(items, &params)?;
    Ok(Json(UsagePlanKeys { item, position }))
}

/// Reads one key of a usage plan.
#[utoipa::path(get, path = "/usageplans/{usageplanId}/keys/{keyId}", tag = "usage plan keys",
    params(("usageplanId" = String, Path), ("keyId" = String, Path)),
    responses((status = 200, body = UsagePlanKeyDto), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id, key_id))]
pub async fn get(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<UsagePlanKeyDto>, AdminError> {
    let (plan_id, key_id) = path(p)?;
    Span::current().record("plan_id", plan_id.as_str());
    Span::current().record("key_id", key_id.as_str());
    let records = s.sync.records();
    member(&records, &plan_id, &key_id)?;
    let key = records
        .keys
        .get(&key_id)
        .ok_or_else(|| key_not_found(&key_id))?;
    Ok(Json(plan_key_to_dto(key)))
}

/// Takes a key out of a usage plan.
#[utoipa::path(delete, path = "/usageplans/{usageplanId}/keys/{keyId}", tag = "usage plan keys",
    params(("usageplanId" = String, Path), ("keyId" = String, Path)),
    responses((status = 202), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id, key_id))]
pub async fn delete(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, AdminError> {
    let (plan_id, key_id) = path(p)?;
    Span::current().record("plan_id", plan_id.as_str());
    Span::current().record("key_id", key_id.as_str());
    s.mutate(|r| {
        member(r, &plan_id, &key_id)?;
        Ok((
            vec![Change::RemoveMember {
                plan_id: plan_id.clone(),
                key_id: key_id.clone(),
            }],
            (),
        ))
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}
