//! `/usageplans`: create, list, read, update (PATCH) and delete usage plans.

use super::error::{AdminError, ErrorBody};
use super::model::{
    plan_from_request, plan_to_dto, plan_to_request, CreateUsagePlanRequest, PatchRequest,
    UsagePlanDto, UsagePlans,
};
use super::request::{json_body, paginate, path, Params};
use super::{new_id, now_s, patch, AdminState};
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;
use tollgate_store::catalog::{CatalogRecords, Change, PlanRecord};
use tracing::{instrument, Span};

/// AWS's message for an unknown plan.
pub fn plan_not_found(id: &str) -> AdminError {
    AdminError::not_found(format!("Invalid Usage Plan ID specified: {id}"))
}

/// The plan `id`, or 404.
pub fn find<'a>(records: &'a CatalogRecords, id: &str) -> Result<&'a PlanRecord, AdminError> {
    records.plans.get(id).ok_or_else(|| plan_not_found(id))
}

/// Creates a usage plan.
#[utoipa::path(post, path = "/usageplans", tag = "usage plans",
    request_body = CreateUsagePlanRequest,
    responses((status = 201, body = UsagePlanDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id))]
pub async fn create(
    State(s): State<Arc<AdminState>>,
    body: Bytes,
) -> Result<(StatusCode, Json<UsagePlanDto>), AdminError> {
    let req: CreateUsagePlanRequest = json_body(&body)?;
    let id = new_id();
    Span::current().record("plan_id", id.as_str());
    let record = plan_from_request(&id, &req, now_s())?;
    let (_, dto) = s
        .mutate(|r| {
            if r.plans.contains_key(&id) {
                return Err(AdminError::Conflict(format!(
                    "usage plan id {id} exists; retry"
                )));
            }
            Ok((vec![Change::PutPlan(record.clone())], plan_to_dto(&record)))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Lists usage plans, optionally only those holding API key `keyId`.
#[utoipa::path(get, path = "/usageplans", tag = "usage plans",
    params(("keyId" = Option<String>, Query, description = "only plans holding this key"),
           ("position" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = UsagePlans), (status = 400, body = ErrorBody)))]
#[instrument(skip_all)]
pub async fn list(
    State(s): State<Arc<AdminState>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<UsagePlans>, AdminError> {
    let params = Params::from_query(q)?;
    let records = s.sync.records();
    let key_id = params.get("keyId").filter(|k| !k.is_empty());
    let items = records
        .plans
        .values()
        .filter(|p| {
            key_id.is_none_or(|k| {
                records
                    .members
                    .contains(&(p.plan.id.clone(), k.to_string()))
            })
        })
        .map(|p| (p.plan.id.clone(), plan_to_dto(p)))
        .collect();
    let (item, position) = paginate(items, &params)?;
    Ok(Json(UsagePlans { item, position }))
}

/// Reads one usage plan.
#[utoipa::path(get, path = "/usageplans/{usageplanId}", tag = "usage plans",
    params(("usageplanId" = String, Path)),
    responses((status = 200, body = UsagePlanDto), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id))]
pub async fn get(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<UsagePlanDto>, AdminError> {
    let id = path(p)?;
    Span::current().record("plan_id", id.as_str());
    let records = s.sync.records();
    Ok(Json(plan_to_dto(find(&records, &id)?)))
}

/// Changes a usage plan with patch operations.
#[utoipa::path(patch, path = "/usageplans/{usageplanId}", tag = "usage plans",
    params(("usageplanId" = String, Path)), request_body = PatchRequest,
    responses((status = 200, body = UsagePlanDto), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id))]
pub async fn update(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<UsagePlanDto>, AdminError> {
    let id = path(p)?;
    Span::current().record("plan_id", id.as_str());
    let req: PatchRequest = json_body(&body)?;
    let now = now_s();
    let (_, dto) = s
        .mutate(|r| {
            let old = find(r, &id)?;
            let mut edit = plan_to_request(old);
            patch::patch_plan(&mut edit, &req.patch_operations)?;
            // The offset's "first period" stays the one the quota started in.
            let start = if old.plan.quota.is_some() {
                old.plan.quota_start_s
            } else {
                now
            };
            let new = plan_from_request(&id, &edit, start)?;
            let dto = plan_to_dto(&new);
            Ok((vec![Change::PutPlan(new)], dto))
        })
        .await?;
    Ok(Json(dto))
}

/// Deletes a usage plan and its key memberships.
#[utoipa::path(delete, path = "/usageplans/{usageplanId}", tag = "usage plans",
    params(("usageplanId" = String, Path)),
    responses((status = 202), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id))]
pub async fn delete(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, AdminError> {
    let id = path(p)?;
    Span::current().record("plan_id", id.as_str());
    s.mutate(|r| {
        find(r, &id)?;
        let mut changes: Vec<Change> = r
            .keys_of_plan(&id)
            .map(|k| Change::RemoveMember {
                plan_id: id.clone(),
                key_id: k.to_string(),
            })
            .collect();
        changes.push(Change::DeletePlan(id.clone()));
        Ok((changes, ()))
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}
