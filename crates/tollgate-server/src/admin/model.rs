//! The wire shapes of the management API: AWS API Gateway's field names and types, so the
//! AWS SDKs parse them unchanged, and the conversions to and from the core records.
//!
//! Request numbers are read as signed or floating values and range-checked here, so that a
//! negative limit gets "quota.limit must be at least 0, got -5" rather than a parser error.

use super::error::AdminError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::plan::{ApiStage, Quota, Throttle, UsagePlan};
use tollgate_store::catalog::{KeyRecord, PlanRecord};
use utoipa::ToSchema;

/// A throttle: steady rate and burst (`ThrottleSettings`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleSettings {
    /// Requests that may pass at once from idle. Its bounds are stated by the document's
    /// `Bounds` modifier, from the constants that enforce them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64, required = true)]
    pub burst_limit: Option<i64>,
    /// Requests per second (fractional allowed); bounds as for `burst_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = f64, required = true)]
    pub rate_limit: Option<f64>,
}

/// A quota: requests per calendar period (`QuotaSettings`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSettings {
    /// Requests allowed per period, at most 2^52 (`tollgate_core::quota::MAX_QUOTA`). Its
    /// bounds are stated by the document's `Bounds` modifier, from that constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64, required = true)]
    pub limit: Option<i64>,
    /// Requests subtracted from the limit in the first period (below the limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// `DAY`, `WEEK` or `MONTH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true, pattern = "^(DAY|WEEK|MONTH)$")]
    pub period: Option<String>,
}

/// An API stage a plan applies to, with per-method throttles (`ApiStage`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiStageDto {
    /// The API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true, min_length = 1)]
    pub api_id: Option<String>,
    /// The stage of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true, min_length = 1)]
    pub stage: Option<String>,
    /// Per-method throttles keyed by `"/resource/METHOD"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<BTreeMap<String, ThrottleSettings>>,
}

/// The body of `POST /usageplans`, and the editable form of a plan that PATCH works on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUsagePlanRequest {
    /// Display name (required).
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Where the plan applies.
    #[serde(default)]
    pub api_stages: Option<Vec<ApiStageDto>>,
    /// Plan-wide throttle per key.
    #[serde(default)]
    pub throttle: Option<ThrottleSettings>,
    /// Plan-wide quota per key.
    #[serde(default)]
    pub quota: Option<QuotaSettings>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// A usage plan (`UsagePlan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsagePlanDto {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the plan applies.
    pub api_stages: Vec<ApiStageDto>,
    /// Plan-wide throttle per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleSettings>,
    /// Plan-wide quota per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSettings>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A page of usage plans (`UsagePlans`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsagePlans {
    /// The plans of this page.
    pub item: Vec<UsagePlanDto>,
    /// Pass as `position` to get the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// The body of `POST /apikeys`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    /// Display name; when absent, the key is named after its id. Must not be blank.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether callers may use the key; false when absent, as in AWS.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Accepted for compatibility; ids are always distinct.
    #[serde(default)]
    pub generate_distinct_id: Option<bool>,
    /// The value (20 to 128 printable characters); generated (40 characters) when absent.
    #[serde(default)]
    #[schema(value_type = String, min_length = 20, max_length = 128, pattern = "^[\\x21-\\x7e]+$")]
    pub value: Option<String>,
    /// The customer (AWS Marketplace customer id).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

// The value is a secret.
impl std::fmt::Debug for ApiKeyDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyDto")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// An API key (`ApiKey`). `value` is present at creation, and later only when the server
/// keeps values (`--keep-key-values`) and the caller asks for it.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDto {
    /// Identifier (what usage reports are keyed by).
    pub id: String,
    /// The secret value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Display name.
    pub name: String,
    /// The customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether callers may use it.
    pub enabled: bool,
    /// Unix seconds.
    pub created_date: i64,
    /// Unix seconds.
    pub last_updated_date: i64,
    /// Always empty: stages are bound through usage plans.
    pub stage_keys: Vec<String>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A page of API keys (`ApiKeys`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeys {
    /// The keys of this page.
    pub item: Vec<ApiKeyDto>,
    /// Pass as `position` to get the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Always empty.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The answer to a CSV import (`ApiKeyIds`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyIds {
    /// Ids of the keys created, in row order.
    pub ids: Vec<String>,
    /// One line per row that was skipped, naming the row and the reason.
    pub warnings: Vec<String>,
}

/// What `POST /apikeys` answers (documentation only): the key, or with `mode=import` the
/// ids of the keys imported. One 201 with either shape, since a document holds one response
/// per status.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CreatedApiKeys {
    /// A key created from JSON.
    Key(ApiKeyDto),
    /// Keys imported from CSV.
    Import(ApiKeyIds),
}

/// One JSON-Patch-like operation (`PatchOperation`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct PatchOperation {
    /// `add`, `remove` or `replace`.
    #[schema(value_type = String, required = true, pattern = "^(add|remove|replace)$")]
    pub op: Option<String>,
    /// The field, e.g. `/quota/limit`.
    #[schema(value_type = String, required = true, pattern = "^/")]
    pub path: Option<String>,
    /// The new value, always a string.
    #[serde(default)]
    pub value: Option<String>,
    /// Unused.
    #[serde(default)]
    pub from: Option<String>,
}

/// The body of every PATCH.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchRequest {
    /// Applied in order; all or none take effect.
    #[serde(default)]
    pub patch_operations: Vec<PatchOperation>,
}

/// The body of `POST /usageplans/{usageplanId}/keys`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUsagePlanKeyRequest {
    /// The API key's id.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1)]
    pub key_id: Option<String>,
    /// Must be `API_KEY`.
    #[serde(default)]
    #[schema(value_type = String, required = true, pattern = "^API_KEY$")]
    pub key_type: Option<String>,
}

/// A key in a plan (`UsagePlanKey`).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct UsagePlanKeyDto {
    /// The API key's id.
    pub id: String,
    /// Always `API_KEY`.
    #[serde(rename = "type")]
    pub key_type: String,
    /// The value, only when the server keeps values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The API key's name.
    pub name: String,
}

/// A page of plan keys (`UsagePlanKeys`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UsagePlanKeys {
    /// The keys of this page.
    pub item: Vec<UsagePlanKeyDto>,
    /// Pass as `position` to get the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// Usage of a plan's keys per day (`Usage`). botocore calls `values` `items`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageDto {
    /// The plan.
    pub usage_plan_id: String,
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, `YYYY-MM-DD`.
    pub end_date: String,
    /// Pass as `position` to get the next page of keys; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Per API key id, one `[used, remaining]` pair per day from `startDate` to `endDate`;
    /// `remaining` is null for a plan without a quota.
    #[schema(value_type = BTreeMap<String, Vec<Vec<Option<i64>>>>)]
    pub values: BTreeMap<String, Vec<[Option<i64>; 2]>>,
}

fn non_negative(field: &str, v: i64) -> Result<u64, AdminError> {
    u64::try_from(v).map_err(|_| AdminError::bad(format!("{field} must be at least 0, got {v}")))
}

/// Parses `DAY`, `WEEK` or `MONTH`.
pub fn parse_period(field: &str, s: &str) -> Result<QuotaPeriod, AdminError> {
    match s {
        "DAY" => Ok(QuotaPeriod::Day),
        "WEEK" => Ok(QuotaPeriod::Week),
        "MONTH" => Ok(QuotaPeriod::Month),
        other => Err(AdminError::bad(format!(
            "{field} must be DAY, WEEK or MONTH, got `{other}`"
        ))),
    }
}

fn throttle_from(field: &str, t: &ThrottleSettings) -> Result<Throttle, AdminError> {
    let (Some(rate), Some(burst)) = (t.rate_limit, t.burst_limit) else {
        return Err(AdminError::bad(format!(
            "{field} needs both rateLimit and burstLimit"
        )));
    };
    Ok(Throttle {
        rate_limit: rate,
        burst_limit: non_negative(&format!("{field}.burstLimit"), burst)?,
    })
}

fn throttle_to(t: &Throttle) -> ThrottleSettings {
    ThrottleSettings {
        burst_limit: Some(i64::try_from(t.burst_limit).unwrap_or(i64::MAX)),
        rate_limit: Some(t.rate_limit),
    }
}

/// Builds and validates a core plan from its wire form.
pub fn plan_from_request(
    id: &str,
    req: &CreateUsagePlanRequest,
    quota_start_s: i64,
) -> Result<PlanRecord, AdminError> {
    let name = req
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| AdminError::bad("name is required"))?;
    let throttle = req
        .throttle
        .as_ref()
        .map(|t| throttle_from("throttle", t))
        .transpose()?;
    let quota = match &req.quota {
        None => None,
        Some(q) => {
            let limit = q
                .limit
                .ok_or_else(|| AdminError::bad("quota.limit is required"))?;
            let period = q
                .period
                .as_deref()
                .ok_or_else(|| AdminError::bad("quota.period is required"))?;
            Some(Quota {
                limit: non_negative("quota.limit", limit)?,
                period: parse_period("quota.period", period)?,
                offset: non_negative("quota.offset", q.offset.unwrap_or(0))?,
            })
        }
    };
    let mut api_stages = Vec::new();
    for (i, s) in req.api_stages.iter().flatten().enumerate() {
        let at = format!("apiStages[{i}]");
        let api_id = s
            .api_id
            .clone()
            .ok_or_else(|| AdminError::bad(format!("{at}.apiId is required")))?;
        let stage = s
            .stage
            .clone()
            .ok_or_else(|| AdminError::bad(format!("{at}.stage is required")))?;
        let mut throttle = BTreeMap::new();
        for (k, t) in s.throttle.iter().flatten() {
            throttle.insert(k.clone(), throttle_from(&format!("{at}.throttle.{k}"), t)?);
        }
        api_stages.push(ApiStage {
            api_id,
            stage,
            throttle,
        });
    }
    let plan = UsagePlan {
        id: id.to_string(),
        name,
        description: req.description.clone(),
        throttle,
        quota,
        api_stages,
        quota_start_s,
    };
    plan.validate()?;
    Ok(PlanRecord {
        plan,
        tags: req.tags.clone().unwrap_or_default(),
    })
}

/// The editable wire form of a stored plan (what PATCH operations change).
pub fn plan_to_request(p: &PlanRecord) -> CreateUsagePlanRequest {
    let dto = plan_to_dto(p);
    CreateUsagePlanRequest {
        name: Some(dto.name),
        description: dto.description,
        api_stages: Some(dto.api_stages),
        throttle: dto.throttle,
        quota: dto.quota,
        tags: Some(dto.tags),
    }
}

/// The wire form of a stored plan.
pub fn plan_to_dto(p: &PlanRecord) -> UsagePlanDto {
    let plan = &p.plan;
    UsagePlanDto {
        id: plan.id.clone(),
        name: plan.name.clone(),
        description: plan.description.clone(),
        api_stages: plan
            .api_stages
            .iter()
            .map(|s| ApiStageDto {
                api_id: Some(s.api_id.clone()),
                stage: Some(s.stage.clone()),
                throttle: (!s.throttle.is_empty()).then(|| {
                    s.throttle
                        .iter()
                        .map(|(k, t)| (k.clone(), throttle_to(t)))
                        .collect()
                }),
            })
            .collect(),
        throttle: plan.throttle.as_ref().map(throttle_to),
        quota: plan.quota.map(|q| QuotaSettings {
            limit: Some(i64::try_from(q.limit).unwrap_or(i64::MAX)),
            offset: Some(i64::try_from(q.offset).unwrap_or(i64::MAX)),
            period: Some(q.period.as_str().to_string()),
        }),
        tags: p.tags.clone(),
    }
}

/// The wire form of a stored key; `with_value` adds the value if it is kept.
pub fn key_to_dto(k: &KeyRecord, with_value: bool) -> ApiKeyDto {
    ApiKeyDto {
        id: k.key.id.clone(),
        value: if with_value { k.value.clone() } else { None },
        name: k.key.name.clone(),
        customer_id: k.key.customer_id.clone(),
        description: k.key.description.clone(),
        enabled: k.key.enabled,
        created_date: k.created_s,
        last_updated_date: k.updated_s,
        stage_keys: Vec::new(),
        tags: k.key.tags.clone(),
    }
}

/// The plan-key form of a stored key.
pub fn plan_key_to_dto(k: &KeyRecord) -> UsagePlanKeyDto {
    UsagePlanKeyDto {
        id: k.key.id.clone(),
        key_type: "API_KEY".to_string(),
        value: k.value.clone(),
        name: k.key.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan survives the round trip wire → record → wire.
    #[test]
    fn plan_round_trip() {
        let req: CreateUsagePlanRequest = serde_json::from_str(
            r#"{"name":"p","throttle":{"rateLimit":10,"burstLimit":20},
                "quota":{"limit":5,"period":"DAY"},
                "apiStages":[{"apiId":"a","stage":"s","throttle":{"/x/GET":{"rateLimit":1,"burstLimit":2}}}]}"#,
        )
        .unwrap();
        let rec = plan_from_request("id1", &req, 7).unwrap();
        assert_eq!(rec.plan.quota_start_s, 7);
        let back = plan_to_request(&rec);
        assert_eq!(plan_from_request("id1", &back, 7).unwrap(), rec);
        let json = serde_json::to_value(plan_to_dto(&rec)).unwrap();
        assert_eq!(json["quota"]["period"], "DAY");
        assert_eq!(json["apiStages"][0]["throttle"]["/x/GET"]["burstLimit"], 2);
    }

    /// Each invalid field gets a 400 naming it.
    #[test]
    fn plan_validation_names_fields() {
        let bad = |json: &str| {
            let req: CreateUsagePlanRequest = serde_json::from_str(json).unwrap();
            plan_from_request("id1", &req, 0).unwrap_err().to_string()
        };
        assert!(bad(r#"{}"#).contains("name is required"));
        assert!(bad(r#"{"name":"p","quota":{"limit":-5,"period":"DAY"}}"#)
            .contains("quota.limit must be at least 0"));
        assert!(bad(r#"{"name":"p","quota":{"limit":5,"period":"YEAR"}}"#)
            .contains("quota.period must be DAY, WEEK or MONTH"));
        assert!(bad(r#"{"name":"p","throttle":{"rateLimit":1}}"#).contains("throttle needs both"));
        assert!(
            bad(r#"{"name":"p","throttle":{"rateLimit":0,"burstLimit":1}}"#)
                .contains("throttle.rateLimit")
        );
        assert!(bad(r#"{"name":"p","apiStages":[{"apiId":"a"}]}"#)
            .contains("apiStages[0].stage is required"));
    }
}
