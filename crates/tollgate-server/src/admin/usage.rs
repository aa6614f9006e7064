//! Usage of a plan's keys per day (`GET /usageplans/{id}/usage`), its export as JSON or CSV
//! (`GET /usageplans/{id}/usage/export`), and UpdateUsage
//! (`PATCH /usageplans/{id}/keys/{keyId}/usage`, `replace /remaining`).
//!
//! `used` is what the check script recorded for the day. `remaining` is the quota left at
//! the end of that day: for the current period it is the stored remaining plus what was used
//! after that day, for past periods the period's limit less what was used up to that day,
//! and for days still to come what is left now (or the full limit in a later period).
//! Operator grants show in the current period only. A plan without a quota has no
//! `remaining` (null in JSON, empty in CSV).

use super::error::{AdminError, ErrorBody};
use super::model::{PatchRequest, UsageDto};
use super::plans;
use super::request::{json_body, paginate, path, Params};
use super::{keys, AdminState};
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_core::batch::{Limit, LimitBatch, LimitKind};
use tollgate_core::calendar::{civil_from_days, days_from_civil, window, SECONDS_PER_DAY};
use tollgate_core::catalog::{batch_tag, QUOTA_LIMIT_NAME};
use tollgate_core::plan::UsagePlan;
use tollgate_core::quota::MAX_QUOTA;
use tollgate_store::catalog::Change;
use tollgate_store::Store;
use tracing::{info, instrument, Span};

/// Longest report, in days.
pub const MAX_RANGE_DAYS: i64 = 366;

/// Parses `YYYY-MM-DD` into days since 1970-01-01.
pub fn parse_date(field: &str, s: &str) -> Result<i64, AdminError> {
    let bad = || AdminError::bad(format!("{field} must be a date YYYY-MM-DD, got `{s}`"));
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    // Digits only: `str::parse` also takes a sign, so `2026-11-+1` read as the 1st.
    let digits = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return Err(bad());
    }
    let num = |p: &str| p.parse::<i64>().map_err(|_| bad());
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    let days = days_from_civil(y, m, d);
    let back = civil_from_days(days);
    if (back.year, back.month, back.day) != (y, m, d) {
        return Err(bad());
    }
    Ok(days)
}

/// `YYYY-MM-DD` of a day.
pub fn format_date(days: i64) -> String {
    let d = civil_from_days(days);
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

fn day_id(days: i64) -> String {
    let d = civil_from_days(days);
    format!("{:04}{:02}{:02}", d.year, d.month, d.day)
}

/// `[used, remaining]` per day of `start..=end` for key `key_id` in `plan`.
pub async fn key_usage(
    store: &dyn Store,
    plan: &UsagePlan,
    key_id: &str,
    start: i64,
    end: i64,
) -> Result<Vec<[Option<i64>; 2]>, AdminError> {
    let tag = batch_tag(&plan.id, key_id);
    let Some(q) = plan.quota_limit() else {
        let days: Vec<String> = (start..=end).map(day_id).collect();
        let used = store.daily_usage(&tag, &days).await?;
        return Ok(used.into_iter().map(|u| [Some(u as i64), None]).collect());
    };
    // A cost-0 check reads the quota state with the store's clock and writes nothing.
    let peek = LimitBatch {
        tag: tag.clone(),
        limits: vec![Limit {
            name: QUOTA_LIMIT_NAME.into(),
            kind: LimitKind::Quota(q.clone()),
        }],
        cost: 0,
        usage_retention_days: None,
    };
    let outcome = store.check(&peek).await?;
    let remaining_now = outcome.statuses.first().map_or(0, |s| s.remaining) as i64;
    let now_s = outcome.now_us.div_euclid(1_000_000);
    let today = now_s.div_euclid(SECONDS_PER_DAY);
    let current = window(q.period, now_s);
    // Fetch from the start of the first day's period, so cumulative use is known, and up
    // to today only if the range reaches into the current period (whose remaining is
    // counted back from today). Either way the span stays within the range plus a period.
    let from = window(q.period, start * SECONDS_PER_DAY).start_s / SECONDS_PER_DAY;
    let to = if end >= current.start_s / SECONDS_PER_DAY {
        end.max(today)
    } else {
        end
    };
    let days: Vec<String> = (from..=to).map(day_id).collect();
    let used = store.daily_usage(&tag, &days).await?;
    let used_on = |d: i64| {
        usize::try_from(d - from)
            .ok()
            .and_then(|i| used.get(i))
            .map_or(0, |u| *u as i64)
    };
    let mut out = Vec::with_capacity((end - start + 1) as usize);
    for d in start..=end {
        let w = window(q.period, d * SECONDS_PER_DAY);
        let limit = q.effective_limit(&w) as i64;
        let remaining = if w.id == current.id {
            if d >= today {
                remaining_now
            } else {
                remaining_now + (d + 1..=today).map(used_on).sum::<i64>()
            }
        } else if d > today {
            limit
        } else {
            let first = (w.start_s / SECONDS_PER_DAY).max(from);
            (limit - (first..=d).map(used_on).sum::<i64>()).max(0)
        };
        out.push([Some(used_on(d)), Some(remaining)]);
    }
    Ok(out)
}

/// The 404 of a usage call naming a key that is not in the plan.
fn not_in_plan(key_id: &str, plan_id: &str) -> AdminError {
    AdminError::not_found(format!("API key {key_id} is not in usage plan {plan_id}"))
}

struct Report {
    plan: Arc<tollgate_store::catalog::PlanRecord>,
    start: i64,
    end: i64,
    /// `(key id, key name)` of the keys reported.
    keys: Vec<(String, String)>,
    position: Option<String>,
}

fn report(
    s: &AdminState,
    plan_id: &str,
    params: &Params,
    paged: bool,
) -> Result<Report, AdminError> {
    let start = parse_date("startDate", params.require("startDate")?)?;
    let end = parse_date("endDate", params.require("endDate")?)?;
    if end < start {
        return Err(AdminError::bad("endDate must not be before startDate"));
    }
    if end - start >= MAX_RANGE_DAYS {
        return Err(AdminError::bad(format!(
            "a usage report covers at most {MAX_RANGE_DAYS} days"
        )));
    }
    let records = s.sync.records();
    let plan = Arc::new(plans::find(&records, plan_id)?.clone());
    let name_of = |id: &str| records.keys.get(id).map(|k| k.key.name.clone());
    let mut ids: Vec<(String, String)> = match params.get("keyId").filter(|k| !k.is_empty()) {
        // A key outside the plan has no quota in it: reporting one would make up usage, and
        // UpdateUsage refuses the same pair, so both answer 404 alike.
        Some(k) => {
            let name = name_of(k).ok_or_else(|| keys::key_not_found(k))?;
            if !records
                .members
                .contains(&(plan_id.to_string(), k.to_string()))
            {
                return Err(not_in_plan(k, plan_id));
            }
            vec![(k.to_string(), name)]
        }
        None => records
            .keys_of_plan(plan_id)
            .map(|k| (k.to_string(), name_of(k).unwrap_or_default()))
            .collect(),
    };
    ids.sort();
    let (keys, position) = if paged {
        paginate(
            ids.into_iter()
                .map(|(id, n)| (id.clone(), (id, n)))
                .collect(),
            params,
        )?
    } else {
        (ids, None)
    };
    Ok(Report {
        plan,
        start,
        end,
        keys,
        position,
    })
}

async fn values(
    s: &AdminState,
    r: &Report,
) -> Result<BTreeMap<String, Vec<[Option<i64>; 2]>>, AdminError> {
    let mut out = BTreeMap::new();
    for (id, _) in &r.keys {
        out.insert(
            id.clone(),
            key_usage(&*s.store, &r.plan.plan, id, r.start, r.end).await?,
        );
    }
    Ok(out)
}

/// Usage of a plan's keys per day.
#[utoipa::path(get, path = "/usageplans/{usageplanId}/usage", tag = "usage",
    params(("usageplanId" = String, Path),
           ("startDate" = String, Query, format = Date, description = "first day, YYYY-MM-DD (UTC)"),
           ("endDate" = String, Query, format = Date, description = "last day, YYYY-MM-DD (UTC)"),
           ("keyId" = Option<String>, Query, description = "only this key"),
           ("position" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "keys per page")),
    responses((status = 200, body = UsageDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id))]
pub async fn get(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<UsageDto>, AdminError> {
    let plan_id = path(p)?;
    Span::current().record("plan_id", plan_id.as_str());
    let params = Params::from_query(q)?;
    let r = report(&s, &plan_id, &params, true)?;
    Ok(Json(UsageDto {
        usage_plan_id: plan_id,
        start_date: format_date(r.start),
        end_date: format_date(r.end),
        values: values(&s, &r).await?,
        position: r.position,
    }))
}

/// Exports a plan's usage as JSON (the GetUsage shape, every key) or CSV
/// (`keyId,keyName,date,used,remaining`).
#[utoipa::path(get, path = "/usageplans/{usageplanId}/usage/export", tag = "usage",
    params(("usageplanId" = String, Path),
           ("startDate" = String, Query, format = Date), ("endDate" = String, Query, format = Date),
           ("keyId" = Option<String>, Query),
           ("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "json (default) or csv")),
    responses((status = 200, description = "JSON with format=json (the default), CSV with format=csv",
               content((UsageDto = "application/json"), (String = "text/csv"))),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id, format))]
pub async fn export(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, AdminError> {
    let plan_id = path(p)?;
    Span::current().record("plan_id", plan_id.as_str());
    let params = Params::from_query(q)?;
    let format = params.get("format").unwrap_or("json").to_ascii_lowercase();
    Span::current().record("format", format.as_str());
    if format != "json" && format != "csv" {
        return Err(AdminError::bad(format!(
            "format must be json or csv, got `{format}`"
        )));
    }
    let r = report(&s, &plan_id, &params, false)?;
    let values = values(&s, &r).await?;
    let (start, end) = (format_date(r.start), format_date(r.end));
    if format == "json" {
        return Ok(Json(UsageDto {
            usage_plan_id: plan_id,
            start_date: start,
            end_date: end,
            position: None,
            values,
        })
        .into_response());
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| AdminError::bad(format!("cannot write CSV: {e}"));
    w.write_record(["keyId", "keyName", "date", "used", "remaining"])
        .map_err(csv_error)?;
    for (id, name) in &r.keys {
        for (i, [used, remaining]) in values.get(id).into_iter().flatten().enumerate() {
            let cell = |v: &Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
            w.write_record([
                id.as_str(),
                name.as_str(),
                &format_date(r.start + i as i64),
                &cell(used),
                &cell(remaining),
            ])
            .map_err(csv_error)?;
        }
    }
    let body = w
        .into_inner()
        .map_err(|e| AdminError::bad(format!("cannot write CSV: {e}")))?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"usage-{plan_id}-{start}-{end}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Sets the remaining quota of a key for the current period (`replace /remaining`).
#[utoipa::path(patch, path = "/usageplans/{usageplanId}/keys/{keyId}/usage", tag = "usage",
    params(("usageplanId" = String, Path), ("keyId" = String, Path)), request_body = PatchRequest,
    responses((status = 200, body = UsageDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip_all, fields(plan_id, key_id))]
pub async fn update(
    State(s): State<Arc<AdminState>>,
    p: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Result<Json<UsageDto>, AdminError> {
    let (plan_id, key_id) = path(p)?;
    Span::current().record("plan_id", plan_id.as_str());
    Span::current().record("key_id", key_id.as_str());
    let req: PatchRequest = json_body(&body)?;
    let [op] = req.patch_operations.as_slice() else {
        return Err(AdminError::bad(
            "patchOperations must hold exactly one operation: replace /remaining",
        ));
    };
    if op.op.as_deref() != Some("replace") || op.path.as_deref() != Some("/remaining") {
        return Err(AdminError::bad(format!(
            "only replace /remaining is supported, got {} {}",
            op.op.as_deref().unwrap_or("<no op>"),
            op.path.as_deref().unwrap_or("<no path>")
        )));
    }
    let raw = op.value.as_deref().unwrap_or("");
    let remaining: u64 = raw
        .trim()
        .parse()
        .ok()
        .filter(|n| *n <= MAX_QUOTA)
        .ok_or_else(|| {
            AdminError::bad(format!(
                "the value of /remaining must be a whole number from 0 to {MAX_QUOTA}, got `{raw}`"
            ))
        })?;
    let records = s.sync.records();
    let plan = plans::find(&records, &plan_id)?;
    keys::find(&records, &key_id)?;
    if !records.members.contains(&(plan_id.clone(), key_id.clone())) {
        return Err(not_in_plan(&key_id, &plan_id));
    }
    let quota = plan
        .plan
        .quota_limit()
        .ok_or_else(|| AdminError::bad(format!("usage plan {plan_id} has no quota to update")))?;
    let tag = batch_tag(&plan_id, &key_id);
    let update = s.store.set_quota_remaining(&tag, &quota, remaining).await?;
    info!(remaining, period = %update.state.period_id, "quota remaining set");
    // Instances may hold this key as "out of quota until the period ends" in their local
    // deny caches. Re-committing the unchanged plan bumps the catalog version, so every
    // instance reloads and drops its cached denials at once.
    s.mutate(|records| {
        let plan = plans::find(records, &plan_id)?;
        Ok((vec![Change::PutPlan(plan.clone())], ()))
    })
    .await?;
    let today = update
        .now_us
        .div_euclid(1_000_000)
        .div_euclid(SECONDS_PER_DAY);
    let day = key_usage(&*s.store, &plan.plan, &key_id, today, today).await?;
    Ok(Json(UsageDto {
        usage_plan_id: plan_id,
        start_date: format_date(today),
        end_date: format_date(today),
        position: None,
        values: [(key_id, day)].into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates parse strictly and round-trip.
    #[test]
    fn dates() {
        let d = parse_date("startDate", "2026-11-26").unwrap();
        assert_eq!(format_date(d), "2026-11-26");
        assert_eq!(day_id(d), "20261126");
        for bad in [
            "2026-02-30",
            "2026-11-26T00:00",
            "26-11-2026",
            "2026/11/26",
            "",
            "2026-1-01",
            "2121-11-+1",
            "+202-11-01",
            "2026-+1-01",
        ] {
            assert!(parse_date("startDate", bad).is_err(), "{bad}");
        }
    }
}
