//! Usage plans: a throttle, a quota and the API stages they apply to.
//!
//! Field names follow AWS API Gateway (`rateLimit`, `burstLimit`, `apiStages`, ...) so one
//! shape serves the YAML config and the management API.

use crate::calendar::QuotaPeriod;
use crate::gcra::GcraLimit;
use crate::quota::{QuotaLimit, MAX_QUOTA};
use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest accepted id of a plan, key or API.
pub const MAX_ID_LEN: usize = 128;

/// Latest accepted quota start: 9999-12-31T23:59:59Z. The calendar math finds the anchor's
/// period on every check with an offset, and near `i64::MAX` seconds its arithmetic would
/// overflow; no real plan starts its quota after this.
pub const MAX_QUOTA_START_S: i64 = 253_402_300_799;

/// Checks that `id` is usable as a record id and inside a Redis hash tag.
pub fn validate_id(field: &str, id: &str) -> Result<(), CoreError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(CoreError::invalid(
            field,
            format!("must be 1 to {MAX_ID_LEN} characters long"),
        ));
    }
    // Braces would break the Redis hash tag; ':' separates tag parts.
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(CoreError::invalid(
            field,
            format!("`{id}` contains `{c}`; use letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(())
}

/// A throttle: steady rate and burst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Throttle {
    /// Requests per second, fractional allowed.
    pub rate_limit: f64,
    /// Requests that may pass at once from idle.
    pub burst_limit: u64,
}

impl Throttle {
    /// The GCRA limit enforcing this throttle.
    pub fn gcra(&self) -> Result<GcraLimit, CoreError> {
        GcraLimit::per_second(self.rate_limit, self.burst_limit)
    }
}

/// A quota: units per calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    /// Units allowed per period.
    pub limit: u64,
    /// `DAY`, `WEEK` or `MONTH`.
    pub period: QuotaPeriod,
    /// Units subtracted from the limit in the plan's first period.
    #[serde(default)]
    pub offset: u64,
}

/// An API stage a plan applies to, with optional per-method throttles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiStage {
    /// The API.
    pub api_id: String,
    /// The stage of it.
    pub stage: String,
    /// Per-method throttles keyed by `"/resource/METHOD"`; each replaces the plan throttle.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttle: BTreeMap<String, Throttle>,
}

/// HTTP methods accepted in a per-method throttle key.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "*",
];

/// Splits `"/resource/METHOD"` into its resource path and method.
pub fn split_resource_method(key: &str) -> Option<(&str, &str)> {
    let (resource, method) = key.rsplit_once('/')?;
    (resource.starts_with('/') && METHODS.contains(&method)).then_some((resource, method))
}

/// A usage plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsagePlan {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Plan-wide throttle per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Plan-wide quota per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Where the plan applies.
    #[serde(default)]
    pub api_stages: Vec<ApiStage>,
    /// Unix second at which the quota took effect; its period is the "first period" of the
    /// offset. Set by whoever creates the plan.
    #[serde(default)]
    pub quota_start_s: i64,
}

impl UsagePlan {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate_id("id", &self.id)?;
        if !(0..=MAX_QUOTA_START_S).contains(&self.quota_start_s) {
            return Err(CoreError::invalid(
                "quotaStartS",
                format!(
                    "must be a Unix second from 0 to {MAX_QUOTA_START_S} (9999-12-31T23:59:59Z), got {}",
                    self.quota_start_s
                ),
            ));
        }
        if let Some(t) = &self.throttle {
            t.gcra().map_err(|e| prefix("throttle", e))?;
        }
        if let Some(q) = &self.quota {
            if q.limit > MAX_QUOTA {
                return Err(CoreError::invalid(
                    "quota.limit",
                    format!(
                        "must be at most {MAX_QUOTA} (2^52, the largest quota enforced exactly on every store), got {}",
                        q.limit
                    ),
                ));
            }
            if q.period == QuotaPeriod::Year {
                return Err(CoreError::invalid(
                    "quota.period",
                    "must be DAY, WEEK or MONTH",
                ));
            }
            if q.offset > 0 && q.offset >= q.limit {
                return Err(CoreError::invalid(
                    "quota.offset",
                    format!("must be below quota.limit ({}), got {}", q.limit, q.offset),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.api_stages.iter().enumerate() {
            let at = format!("apiStages[{i}]");
            if s.api_id.is_empty() || s.stage.is_empty() {
                return Err(CoreError::invalid(at, "apiId and stage must not be empty"));
            }
            if !seen.insert((&s.api_id, &s.stage)) {
                return Err(CoreError::invalid(
                    at,
                    format!("stage {}:{} is listed twice", s.api_id, s.stage),
                ));
            }
            for (key, t) in &s.throttle {
                if split_resource_method(key).is_none() {
                    return Err(CoreError::invalid(
                        format!("{at}.throttle.{key}"),
                        "must look like \"/resource/METHOD\" (e.g. \"/pets/GET\", \"/*/*\")",
                    ));
                }
                t.gcra()
                    .map_err(|e| prefix(&format!("{at}.throttle.{key}"), e))?;
            }
        }
        Ok(())
    }

    /// The quota as a core limit, anchored at the plan's quota start.
    pub fn quota_limit(&self) -> Option<QuotaLimit> {
        self.quota.map(|q| QuotaLimit {
            limit: q.limit,
            period: q.period,
            offset: q.offset,
            anchor_s: self.quota_start_s,
        })
    }

    /// The stage `(api_id, stage)` of this plan, if it has one.
    pub fn stage(&self, api_id: &str, stage: &str) -> Option<&ApiStage> {
        self.api_stages
            .iter()
            .find(|s| s.api_id == api_id && s.stage == stage)
    }
}

fn prefix(at: &str, e: CoreError) -> CoreError {
    e.rename_field(|field| format!("{at}.{field}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> UsagePlan {
        UsagePlan {
            id: "p1".into(),
            name: "p".into(),
            description: None,
            throttle: Some(Throttle {
                rate_limit: 10.0,
                burst_limit: 20,
            }),
            quota: Some(Quota {
                limit: 5,
                period: QuotaPeriod::Day,
                offset: 0,
            }),
            api_stages: vec![],
            quota_start_s: 0,
        }
    }

    /// Each invalid field is named in the error.
    #[test]
    fn validation_names_the_field() {
        let mut p = plan();
        p.throttle = Some(Throttle {
            rate_limit: -1.0,
            burst_limit: 1,
        });
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("throttle.rateLimit"));
        let mut p = plan();
        p.quota = Some(Quota {
            limit: 5,
            period: QuotaPeriod::Day,
            offset: 5,
        });
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("quota.offset"));
        let mut p = plan();
        p.id = "a{b}".into();
        assert!(p.validate().is_err());
        let mut p = plan();
        p.api_stages.push(ApiStage {
            api_id: "a".into(),
            stage: "s".into(),
            throttle: [(
                "pets/GET".to_string(),
                Throttle {
                    rate_limit: 1.0,
                    burst_limit: 1,
                },
            )]
            .into(),
        });
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("/resource/METHOD"));
    }

    /// A quota limit above 2^52 is refused: the Redis script could not count it exactly.
    #[test]
    fn quota_limit_is_bounded() {
        let mut p = plan();
        p.quota = Some(Quota {
            limit: MAX_QUOTA,
            period: QuotaPeriod::Day,
            offset: MAX_QUOTA - 1,
        });
        assert_eq!(p.validate(), Ok(()));
        for limit in [MAX_QUOTA + 1, 1 << 53, i64::MAX as u64, u64::MAX] {
            p.quota = Some(Quota {
                limit,
                period: QuotaPeriod::Month,
                offset: 0,
            });
            let e = p.validate().unwrap_err().to_string();
            assert!(
                e.starts_with("quota.limit: must be at most 4503599627370496"),
                "{e}"
            );
            assert!(e.ends_with(&format!("got {limit}")), "{e}");
        }
    }

    /// A quota start outside 1970..=9999 is refused, naming the field: with an offset, every
    /// check finds the start's calendar period, which overflowed near `i64::MAX` (found by
    /// the core_limits fuzz target).
    #[test]
    fn quota_start_is_bounded() {
        let mut p = plan();
        p.quota = Some(Quota {
            limit: 5,
            period: QuotaPeriod::Month,
            offset: 1,
        });
        for ok in [0, 1_780_000_000, MAX_QUOTA_START_S] {
            p.quota_start_s = ok;
            assert_eq!(p.validate(), Ok(()));
        }
        for bad in [MAX_QUOTA_START_S + 1, i64::MAX, -1, i64::MIN] {
            p.quota_start_s = bad;
            let e = p.validate().unwrap_err().to_string();
            assert!(e.starts_with("quotaStartS: must be a Unix second"), "{e}");
            assert!(e.ends_with(&format!("got {bad}")), "{e}");
        }
    }

    /// Method keys split at the last slash and need a known method.
    #[test]
    fn resource_method_keys() {
        assert_eq!(
            split_resource_method("/pets/{id}/GET"),
            Some(("/pets/{id}", "GET"))
        );
        assert_eq!(split_resource_method("/*/*"), Some(("/*", "*")));
        assert_eq!(split_resource_method("/pets/FETCH"), None);
    }
}
