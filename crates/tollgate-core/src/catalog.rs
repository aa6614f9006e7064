//! The validated set of plans and keys, and the resolver from a check to its limits.
//!
//! A [`Catalog`] is an immutable snapshot: servers build a new one when records change and
//! swap it in, so a check never sees half an update.

use crate::apikey::{ApiKey, KeyHash};
use crate::batch::{Limit, LimitBatch, LimitKind};
use crate::calendar::QuotaPeriod;
use crate::check::{CheckRequest, Verdict};
use crate::plan::{validate_id, UsagePlan};
use crate::CoreError;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Name of a plan's quota state within its batch tag (see [`batch_tag`]).
pub const QUOTA_LIMIT_NAME: &str = "q";
/// Name of a plan's own throttle state within its batch tag.
pub const THROTTLE_LIMIT_NAME: &str = "t";

/// The hash tag under which the limit state of key `key_id` in plan `plan_id` is kept.
pub fn batch_tag(plan_id: &str, key_id: &str) -> String {
    // By hand rather than format!: this runs on every check.
    let mut tag = String::with_capacity(plan_id.len() + key_id.len() + 1);
    tag.push_str(plan_id);
    tag.push(':');
    tag.push_str(key_id);
    tag
}

/// Plans, keys and which key is in which plan.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    plans: HashMap<String, Arc<UsagePlan>>,
    keys_by_hash: HashMap<KeyHash, Arc<ApiKey>>,
    keys_by_id: HashMap<String, Arc<ApiKey>>,
    plans_of_key: HashMap<String, Vec<Arc<UsagePlan>>>,
}

/// The throttle that applies to a resolved check.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedThrottle {
    /// Requests per second as configured.
    pub rate_limit: f64,
    /// Burst as configured.
    pub burst_limit: u64,
    /// The `"/resource/METHOD"` override that applied, if not the plan throttle.
    pub resource_method: Option<String>,
    /// Index of the throttle in the batch.
    pub index: usize,
}

/// The quota that applies to a resolved check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedQuota {
    /// The period counted over.
    pub period: QuotaPeriod,
    /// Index of the quota in the batch.
    pub index: usize,
}

/// A check resolved to a plan and the limits to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCheck {
    /// The plan that applies.
    pub plan_id: String,
    /// The key's id.
    pub key_id: String,
    /// Limits to evaluate all-or-nothing.
    pub batch: LimitBatch,
    /// The throttle in the batch, if any.
    pub throttle: Option<AppliedThrottle>,
    /// The quota in the batch, if any.
    pub quota: Option<AppliedQuota>,
}

impl Catalog {
    /// Builds a catalog, checking every record and every reference.
    ///
    /// `subscriptions` pairs key ids with plan ids. A key may be in several plans but in at
    /// most one per (api, stage), since a check must resolve to one plan.
    pub fn new(
        plans: Vec<UsagePlan>,
        keys: Vec<ApiKey>,
        subscriptions: &[(String, String)],
    ) -> Result<Self, CoreError> {
        let mut c = Catalog::default();
        for p in plans {
            p.validate()
                .map_err(|e| in_record("usage plan", &p.id, e))?;
            let id = p.id.clone();
            if c.plans.insert(id.clone(), Arc::new(p)).is_some() {
                return Err(CoreError::Conflict(format!(
                    "usage plan id `{id}` is used twice"
                )));
            }
        }
        for k in keys {
            validate_id("id", &k.id).map_err(|e| in_record("API key", &k.id, e))?;
            let k = Arc::new(k);
            if c.keys_by_id.insert(k.id.clone(), k.clone()).is_some() {
                return Err(CoreError::Conflict(format!(
                    "API key id `{}` is used twice",
                    k.id
                )));
            }
            if let Some(other) = c.keys_by_hash.insert(k.value_hash, k.clone()) {
                return Err(CoreError::Conflict(format!(
                    "API keys `{}` and `{}` have the same value",
                    other.id, k.id
                )));
            }
        }
        for (key_id, plan_id) in subscriptions {
            if !c.keys_by_id.contains_key(key_id) {
                return Err(CoreError::UnknownReference {
                    field: format!("usage plan `{plan_id}` keys"),
                    kind: "API key",
                    id: key_id.clone(),
                });
            }
            let plan =
                c.plans
                    .get(plan_id)
                    .cloned()
                    .ok_or_else(|| CoreError::UnknownReference {
                        field: format!("API key `{key_id}` usagePlanIds"),
                        kind: "usage plan",
                        id: plan_id.clone(),
                    })?;
            let list = c.plans_of_key.entry(key_id.clone()).or_default();
            if list.iter().any(|p| p.id == plan.id) {
                continue;
            }
            for other in list.iter() {
                if let Some(s) = plan
                    .api_stages
                    .iter()
                    .find(|s| other.stage(&s.api_id, &s.stage).is_some())
                {
                    return Err(CoreError::Conflict(format!(
                        "API key `{key_id}` is in usage plans `{}` and `{}`, which share stage {}:{}; a key may be in one plan per stage",
                        other.id, plan.id, s.api_id, s.stage
                    )));
                }
            }
            list.push(plan);
        }
        Ok(c)
    }

    /// A plan by id.
    pub fn plan(&self, id: &str) -> Option<&Arc<UsagePlan>> {
        self.plans.get(id)
    }

    /// A key by id.
    pub fn key(&self, id: &str) -> Option<&Arc<ApiKey>> {
        self.keys_by_id.get(id)
    }

    /// All plans.
    pub fn plans(&self) -> impl Iterator<Item = &Arc<UsagePlan>> {
        self.plans.values()
    }

    /// All keys.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<ApiKey>> {
        self.keys_by_id.values()
    }

    /// The plans a key is in.
    pub fn plans_of_key(&self, key_id: &str) -> &[Arc<UsagePlan>] {
        self.plans_of_key.get(key_id).map_or(&[], Vec::as_slice)
    }

    /// Resolves a check to its plan and limits, or to the verdict that refuses it.
    ///
    /// With empty `api_id` and `stage`, a key in exactly one plan resolves to that plan, so a
    /// proxy that knows nothing of stages can still ask.
    pub fn resolve(
        &self,
        req: &CheckRequest,
        usage_retention_days: Option<u32>,
    ) -> Result<ResolvedCheck, Verdict> {
        if req.api_key.is_empty() {
            return Err(Verdict::KeyMissing);
        }
        let key = self
            .keys_by_hash
            .get(&KeyHash::of(&req.api_key))
            .ok_or(Verdict::KeyInvalid)?;
        if !key.enabled {
            return Err(Verdict::KeyDisabled);
        }
        let plans = self.plans_of_key(&key.id);
        let (plan, stage) = if req.api_id.is_empty() && req.stage.is_empty() {
            match plans {
                [only] => (only, None),
                _ => return Err(Verdict::KeyNotSubscribed),
            }
        } else {
            plans
                .iter()
                .find_map(|p| p.stage(&req.api_id, &req.stage).map(|s| (p, Some(s))))
                .ok_or(Verdict::KeyNotSubscribed)?
        };

        let mut limits = Vec::with_capacity(2);
        // Most stages have no per-method throttles: build the lookup keys only when one
        // could match (this runs on every check).
        let override_throttle = stage.filter(|s| !s.throttle.is_empty()).and_then(|s| {
            let method = req.method.to_ascii_uppercase();
            [
                format!("{}/{}", req.resource, method),
                format!("{}/*", req.resource),
                format!("/*/{method}"),
                "/*/*".to_string(),
            ]
            .into_iter()
            .find_map(|k| s.throttle.get(&k).map(|t| (k, *t)))
            .map(|(k, t)| (s, k, t))
        });
        let throttle = match (override_throttle, plan.throttle) {
            (Some((s, k, t)), _) => Some((
                Cow::Owned(format!("t:{}:{}:{}", s.api_id, s.stage, k)),
                t,
                Some(k),
            )),
            (None, Some(t)) => Some((Cow::Borrowed(THROTTLE_LIMIT_NAME), t, None)),
            (None, None) => None,
        };
        let mut applied_throttle = None;
        if let Some((name, t, resource_method)) = throttle {
            // Validated when the catalog was built, so this cannot fail here.
            if let Ok(g) = t.gcra() {
                applied_throttle = Some(AppliedThrottle {
                    rate_limit: t.rate_limit,
                    burst_limit: t.burst_limit,
                    resource_method,
                    index: limits.len(),
                });
                limits.push(Limit {
                    name,
                    kind: LimitKind::Throttle(g),
                });
            }
        }
        let mut applied_quota = None;
        if let Some(q) = plan.quota_limit() {
            applied_quota = Some(AppliedQuota {
                period: q.period,
                index: limits.len(),
            });
            limits.push(Limit {
                name: Cow::Borrowed(QUOTA_LIMIT_NAME),
                kind: LimitKind::Quota(q),
            });
        }
        Ok(ResolvedCheck {
            plan_id: plan.id.clone(),
            key_id: key.id.clone(),
            batch: LimitBatch {
                tag: batch_tag(&plan.id, &key.id),
                limits,
                cost: req.cost,
                usage_retention_days,
            },
            throttle: applied_throttle,
            quota: applied_quota,
        })
    }
}

fn in_record(kind: &str, id: &str, e: CoreError) -> CoreError {
    e.rename_field(|field| format!("{kind} `{id}`: {field}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ApiStage, Quota, Throttle};

    fn key(id: &str, value: &str, enabled: bool) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: id.into(),
            description: None,
            customer_id: None,
            enabled,
            value_hash: KeyHash::of(value),
            tags: Default::default(),
        }
    }

    fn plan(id: &str, stage: &str) -> UsagePlan {
        UsagePlan {
            id: id.into(),
            name: id.into(),
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
            api_stages: vec![ApiStage {
                api_id: "api".into(),
                stage: stage.into(),
                throttle: [(
                    "/pets/GET".to_string(),
                    Throttle {
                        rate_limit: 1.0,
                        burst_limit: 2,
                    },
                )]
                .into(),
            }],
            quota_start_s: 0,
        }
    }

    fn req(key: &str, stage: &str, resource: &str, method: &str) -> CheckRequest {
        CheckRequest {
            api_key: key.into(),
            api_id: "api".into(),
            stage: stage.into(),
            resource: resource.into(),
            method: method.into(),
            cost: 1,
        }
    }

    fn catalog() -> Catalog {
        Catalog::new(
            vec![plan("p1", "prod"), plan("p2", "beta")],
            vec![
                key("k1", "value-of-key-one-0000", true),
                key("k2", "value-of-key-two-0000", false),
            ],
            &[("k1".into(), "p1".into()), ("k2".into(), "p1".into())],
        )
        .unwrap()
    }

    /// Each refusal maps to its verdict.
    #[test]
    fn refusals() {
        let c = catalog();
        assert_eq!(
            c.resolve(&req("", "prod", "/", "GET"), None).unwrap_err(),
            Verdict::KeyMissing
        );
        assert_eq!(
            c.resolve(&req("nope-nope-nope-nope-nope", "prod", "/", "GET"), None)
                .unwrap_err(),
            Verdict::KeyInvalid
        );
        assert_eq!(
            c.resolve(&req("value-of-key-two-0000", "prod", "/", "GET"), None)
                .unwrap_err(),
            Verdict::KeyDisabled
        );
        assert_eq!(
            c.resolve(&req("value-of-key-one-0000", "beta", "/", "GET"), None)
                .unwrap_err(),
            Verdict::KeyNotSubscribed
        );
    }

    /// A per-method throttle replaces the plan throttle, and the quota always applies.
    #[test]
    fn method_override_replaces_plan_throttle() {
        let c = catalog();
        let r = c
            .resolve(&req("value-of-key-one-0000", "prod", "/pets", "get"), None)
            .unwrap();
        assert_eq!(r.batch.tag, "p1:k1");
        assert_eq!(r.batch.limits.len(), 2);
        assert_eq!(r.batch.limits[0].name, "t:api:prod:/pets/GET");
        assert_eq!(r.throttle.as_ref().unwrap().burst_limit, 2);
        let r = c
            .resolve(&req("value-of-key-one-0000", "prod", "/pets", "POST"), None)
            .unwrap();
        assert_eq!(r.batch.limits[0].name, "t");
        assert_eq!(r.quota.unwrap().index, 1);
    }

    /// A key in two plans sharing a stage, and references to unknown records, are refused.
    #[test]
    fn conflicts_and_unknown_references() {
        let err = Catalog::new(
            vec![plan("p1", "prod"), plan("p2", "prod")],
            vec![key("k1", "value-of-key-one-0000", true)],
            &[("k1".into(), "p1".into()), ("k1".into(), "p2".into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("share stage api:prod"), "{err}");
        let err = Catalog::new(
            vec![],
            vec![key("k1", "value-of-key-one-0000", true)],
            &[("k1".into(), "nope".into())],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown usage plan `nope`"),
            "{err}"
        );
        let err = Catalog::new(
            vec![],
            vec![
                key("k1", "same-value-same-value", true),
                key("k2", "same-value-same-value", true),
            ],
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("same value"), "{err}");
    }
}
