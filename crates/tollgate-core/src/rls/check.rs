//! One `ShouldRateLimit` request: planned into store batches by [`plan`], answered from the
//! store's outcome by [`decide`].
//!
//! Each request descriptor becomes at most one [`BatchPart`]:
//! - a descriptor that carries an API key entry (`api_key` unless configured otherwise) is
//!   resolved through the [`Catalog`] to the key's usage plan, and its part is the plan's
//!   throttle and quota under the plan's hash tag, exactly what `CheckQuota` would check. The
//!   API and stage come from the descriptor's `tollgate_api` and `tollgate_stage` entries;
//!   without both, a key in exactly one plan uses that plan. Its `path` (query string
//!   dropped) and `method` entries select a per-method throttle. Such a descriptor is never
//!   matched against the domain's tree: its value is a secret and must not end up in a
//!   counter's name.
//! - any other descriptor is matched against the domain ([`RlsRegistry::lookup`], or
//!   [`RlsRegistry::lookup_override`] when it carries its own `limit`), `replaces` is
//!   applied across the request, and a limited rule's part is one counter under the tag
//!   `rls:<state name>`.
//!
//! The request is then checked all-or-nothing ([`crate::batch::evaluate_all`]): it is
//! OVER_LIMIT if any descriptor not in shadow mode is over, and then nothing is consumed on
//! any descriptor (envoyproxy/ratelimit would still count the others). A key that does not
//! resolve (empty, unknown, disabled, not subscribed) makes its descriptor OVER_LIMIT
//! without a counter: an RLS answer cannot say 403, and letting an unknown key through would
//! let anyone skip its plan. Use ext_authz for proper 403s.
//!
//! `hits_addend`, as Envoy defines it: the request's value applies to every descriptor, 0
//! meaning 1 (proto3 cannot tell an unset field from 0, and Envoy sends 0 for "one hit"); a
//! descriptor's own `hits_addend` (a wrapper, so an explicit 0 is visible) overrides it, and
//! 0 there reads the counter without consuming, answering as a hit of 1 would.

use crate::batch::MultiOutcome;
use crate::batch::{BatchOutcome, BatchPart, Limit, LimitBatch, LimitKind, LimitStatus};
use crate::calendar::QuotaPeriod;
use crate::catalog::{Catalog, ResolvedCheck, QUOTA_LIMIT_NAME, THROTTLE_LIMIT_NAME};
use crate::check::{CheckRequest, Verdict, MAX_COST};
use crate::headers::{RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET, RETRY_AFTER};
use crate::rls::{apply_replaces, MatchedRule, RlsRegistry, RlsUnit};
use std::fmt::Write;
use thiserror::Error;

/// The default name of the descriptor entry that carries an API key.
pub const DEFAULT_API_KEY_ENTRY: &str = "api_key";
/// The entry of an API-key descriptor naming the API.
pub const API_ENTRY: &str = "tollgate_api";
/// The entry of an API-key descriptor naming the stage.
pub const STAGE_ENTRY: &str = "tollgate_stage";
/// The entry of an API-key descriptor naming the request path (for per-method throttles).
pub const PATH_ENTRY: &str = "path";
/// The entry of an API-key descriptor naming the HTTP method (for per-method throttles).
pub const METHOD_ENTRY: &str = "method";
/// Prefix of the hash tag of an RLS counter (see the store's `keys` module).
pub const RLS_TAG_PREFIX: &str = "rls:";

/// A `ShouldRateLimit` request, as the adapter read it off the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RlsRequest {
    /// The domain.
    pub domain: String,
    /// The descriptors, in request order.
    pub descriptors: Vec<RlsRequestDescriptor>,
    /// The request-level `hits_addend` as sent; 0 means 1.
    pub hits_addend: u32,
}

/// One request descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RlsRequestDescriptor {
    /// `(key, value)` entries, in order.
    pub entries: Vec<(String, String)>,
    /// The descriptor's own limit, applied instead of the config's.
    pub limit: Option<RlsLimitOverride>,
    /// The descriptor's own `hits_addend`, overriding the request's; 0 reads only.
    pub hits_addend: Option<u64>,
}

/// A descriptor's `limit` override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlsLimitOverride {
    /// Requests per unit.
    pub requests_per_unit: u32,
    /// The unit.
    pub unit: RlsUnit,
}

/// Which rate-limit headers an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RlsHeaders {
    /// None.
    #[default]
    Off,
    /// Envoy's `x-ratelimit-limit`, `-remaining`, `-reset` (its `DRAFT_VERSION_03` format).
    XRateLimit,
    /// The IETF `RateLimit-Limit`, `-Remaining`, `-Reset`, and `Retry-After` when over.
    RateLimit,
}

/// How requests are planned and answered; fixed for a running service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlsOptions {
    /// The descriptor entry key that carries an API key.
    pub api_key_entry: String,
    /// Global shadow mode: count and report, never answer OVER_LIMIT.
    pub shadow_mode: bool,
    /// Days of per-day usage kept for API keys checked through RLS; `None` keeps none.
    pub usage_retention_days: Option<u32>,
    /// Which headers answers carry.
    pub headers: RlsHeaders,
}

impl Default for RlsOptions {
    fn default() -> Self {
        RlsOptions {
            api_key_entry: DEFAULT_API_KEY_ENTRY.to_owned(),
            shadow_mode: false,
            usage_retention_days: None,
            headers: RlsHeaders::Off,
        }
    }
}

/// A request that cannot be planned: the client sent something malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{at}: {reason}")]
pub struct RlsRequestError {
    /// Where: `hits_addend` or `descriptors[i]`.
    pub at: String,
    /// What is wrong.
    pub reason: String,
}

/// What one descriptor turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum DescriptorPlan {
    /// No limit applies: unknown domain, no rule, an unlimited rule (kept for its stats), or
    /// a rule replaced by another.
    NoLimit {
        /// The unlimited rule that matched, if that is why.
        unlimited: Option<MatchedRule>,
    },
    /// An RLS rule, counted as part `part`.
    Rule {
        /// Index into [`RlsPlan::parts`].
        part: usize,
        /// The rule and its counter.
        matched: MatchedRule,
    },
    /// A usage plan resolved from an API key, counted as part `part`.
    Plan {
        /// Index into [`RlsPlan::parts`].
        part: usize,
        /// The plan and its limits.
        resolved: ResolvedCheck,
    },
    /// An API key that does not resolve.
    Refused {
        /// Why.
        verdict: Verdict,
    },
}

/// A planned request: the parts for the store, and what each descriptor became.
#[derive(Debug, Clone, PartialEq)]
pub struct RlsPlan {
    /// Batches to check together, all-or-nothing.
    pub parts: Vec<BatchPart>,
    /// One plan per request descriptor, in order.
    pub descriptors: Vec<DescriptorPlan>,
    /// Whether a refused key already decides the request: the parts are then reads (cost
    /// 0), so that the other descriptors still report their state and consume nothing.
    pub refused: bool,
    /// Global shadow mode, carried to [`decide`].
    shadow_mode: bool,
    /// Which headers to answer with, carried to [`decide`].
    headers: RlsHeaders,
}

/// The limit a status reports, as Envoy's `RateLimit` message has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlsCurrentLimit {
    /// The rule's name, or `<plan id>:throttle` / `<plan id>:quota` for a usage plan.
    pub name: String,
    /// Requests per unit.
    pub requests_per_unit: u32,
    /// The unit.
    pub unit: RlsUnit,
}

/// The answer for one descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RlsDescriptorStatus {
    /// The code Envoy sees: over the limit and not in shadow mode.
    pub over_limit: bool,
    /// Over its limit, whether or not shadow mode let it through (for stats).
    pub would_be_over: bool,
    /// Whether shadow mode applies to it.
    pub shadow: bool,
    /// The limit, if one applies.
    pub current_limit: Option<RlsCurrentLimit>,
    /// Units left.
    pub limit_remaining: u64,
    /// The most units the limit holds (a throttle's burst, a quota's limit in force): the
    /// IETF `RateLimit-Limit`. Envoy's `requests_per_unit` is a rate, and for a usage plan's
    /// throttle the remaining count can exceed it by the burst.
    pub limit_units: u64,
    /// Over its limit by a cost no wait lets pass (above a throttle's burst or a quota's
    /// limit per period): the IETF headers then name no `Retry-After` (see `crate::headers`).
    pub no_wait_passes: bool,
    /// When over, the time until a hit could pass; else until the limit is fully back (a
    /// throttle) or its period ends (a quota). `None` without a limit.
    pub until_reset_us: Option<u64>,
    /// The envoyproxy/ratelimit stats key of a matched rule.
    pub stats_key: Option<String>,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RlsDecision {
    /// OVER_LIMIT overall: some descriptor is.
    pub over_limit: bool,
    /// One status per request descriptor, in order.
    pub statuses: Vec<RlsDescriptorStatus>,
    /// Headers for the client's response, as the options ask.
    pub headers: Vec<(String, String)>,
}

impl RlsDecision {
    /// The answer when nothing can be counted and the policy is to let requests through.
    pub fn allow_all(descriptors: usize) -> Self {
        RlsDecision {
            over_limit: false,
            statuses: vec![RlsDescriptorStatus::default(); descriptors],
            headers: Vec::new(),
        }
    }
}

/// Plans `req` against the domains of `registry` and the keys of `catalog`.
pub fn plan(
    registry: &RlsRegistry,
    catalog: &Catalog,
    req: &RlsRequest,
    opts: &RlsOptions,
) -> Result<RlsPlan, RlsRequestError> {
    let request_cost = u64::from(req.hits_addend.max(1));
    if request_cost > MAX_COST {
        return Err(RlsRequestError {
            at: "hits_addend".into(),
            reason: format!("must be at most {MAX_COST}, got {request_cost}"),
        });
    }
    let mut matches: Vec<Option<MatchedRule>> = Vec::with_capacity(req.descriptors.len());
    let mut keyed: Vec<Option<Result<ResolvedCheck, Verdict>>> =
        Vec::with_capacity(req.descriptors.len());
    let mut costs = Vec::with_capacity(req.descriptors.len());
    for (index, d) in req.descriptors.iter().enumerate() {
        let invalid = |reason: String| RlsRequestError {
            at: format!("descriptors[{index}]"),
            reason,
        };
        let cost = d.hits_addend.unwrap_or(request_cost);
        if cost > MAX_COST {
            return Err(invalid(format!(
                "hits_addend must be at most {MAX_COST}, got {cost}"
            )));
        }
        costs.push(cost);
        if d.entries.is_empty() {
            return Err(invalid("a descriptor needs at least one entry".into()));
        }
        if d.entries.iter().any(|(k, _)| *k == opts.api_key_entry) {
            if d.limit.is_some() {
                return Err(invalid(format!(
                    "a descriptor with an `{}` entry takes its limits from the key's usage plan and cannot carry a limit override",
                    opts.api_key_entry
                )));
            }
            let check = key_check(&d.entries, &opts.api_key_entry, cost).map_err(invalid)?;
            keyed.push(Some(catalog.resolve(&check, opts.usage_retention_days)));
            matches.push(None);
            continue;
        }
        keyed.push(None);
        let entries: Vec<(&str, &str)> = d
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let m = match d.limit {
            Some(o) => registry
                .lookup_override(&req.domain, &entries, o.requests_per_unit, o.unit)
                .map_err(|e| invalid(e.to_string()))?,
            None => registry.lookup(&req.domain, &entries),
        };
        matches.push(m);
    }
    apply_replaces(&mut matches);

    let mut parts = Vec::new();
    let mut descriptors = Vec::with_capacity(req.descriptors.len());
    let mut refused = false;
    for ((m, k), cost) in matches.into_iter().zip(keyed).zip(costs) {
        let d = match (m, k) {
            (_, Some(Ok(resolved))) => {
                let mut batch = resolved.batch.clone();
                batch.cost = cost;
                parts.push(BatchPart {
                    batch,
                    shadow: opts.shadow_mode,
                });
                DescriptorPlan::Plan {
                    part: parts.len() - 1,
                    resolved,
                }
            }
            (_, Some(Err(verdict))) => {
                refused |= !opts.shadow_mode;
                DescriptorPlan::Refused { verdict }
            }
            (Some(matched), None) => match matched.limit_kind() {
                Some(kind) => {
                    parts.push(BatchPart {
                        batch: rule_batch(&matched, kind, cost),
                        shadow: opts.shadow_mode || matched.rule.shadow_mode(),
                    });
                    DescriptorPlan::Rule {
                        part: parts.len() - 1,
                        matched,
                    }
                }
                None => DescriptorPlan::NoLimit {
                    unlimited: Some(matched),
                },
            },
            (None, None) => DescriptorPlan::NoLimit { unlimited: None },
        };
        descriptors.push(d);
    }
    if refused {
        parts.iter_mut().for_each(|p| p.batch.cost = 0);
    }
    Ok(RlsPlan {
        parts,
        descriptors,
        refused,
        shadow_mode: opts.shadow_mode,
        headers: opts.headers,
    })
}

/// The check an API-key descriptor asks for.
fn key_check(
    entries: &[(String, String)],
    key_entry: &str,
    cost: u64,
) -> Result<CheckRequest, String> {
    let mut check = CheckRequest {
        api_key: String::new(),
        api_id: String::new(),
        stage: String::new(),
        resource: String::new(),
        method: String::new(),
        cost,
    };
    let mut seen_key = false;
    for (k, v) in entries {
        let slot = if k == key_entry {
            if seen_key {
                return Err(format!("the `{key_entry}` entry is given twice"));
            }
            seen_key = true;
            &mut check.api_key
        } else if k == API_ENTRY {
            &mut check.api_id
        } else if k == STAGE_ENTRY {
            &mut check.stage
        } else if k == PATH_ENTRY {
            &mut check.resource
        } else if k == METHOD_ENTRY {
            &mut check.method
        } else {
            continue;
        };
        v.clone_into(slot);
    }
    if let Some(q) = check.resource.find('?') {
        check.resource.truncate(q);
    }
    Ok(check)
}

/// The one-counter batch of a limited rule.
fn rule_batch(m: &MatchedRule, kind: LimitKind, cost: u64) -> LimitBatch {
    let name = match kind {
        LimitKind::Throttle(_) => THROTTLE_LIMIT_NAME,
        LimitKind::Quota(_) => QUOTA_LIMIT_NAME,
    };
    LimitBatch {
        tag: format!("{RLS_TAG_PREFIX}{}", m.state_name),
        limits: vec![Limit {
            name: name.into(),
            kind,
        }],
        cost,
        usage_retention_days: None,
    }
}

/// Answers a planned request from the store's outcome of its parts.
///
/// `outcome` must hold one outcome per part (it is ignored when there are no parts).
pub fn decide(plan: &RlsPlan, outcome: &MultiOutcome) -> RlsDecision {
    let empty = BatchOutcome {
        admitted: true,
        now_us: outcome.now_us,
        statuses: Vec::new(),
    };
    let part_of = |i: usize| outcome.parts.get(i).unwrap_or(&empty);
    let statuses: Vec<RlsDescriptorStatus> = plan
        .descriptors
        .iter()
        .map(|d| match d {
            DescriptorPlan::NoLimit { unlimited } => RlsDescriptorStatus {
                stats_key: unlimited.as_ref().map(|m| m.stats_key.clone()),
                ..RlsDescriptorStatus::default()
            },
            DescriptorPlan::Refused { .. } => RlsDescriptorStatus {
                over_limit: !plan.shadow_mode,
                would_be_over: true,
                shadow: plan.shadow_mode,
                ..RlsDescriptorStatus::default()
            },
            DescriptorPlan::Rule { part, matched } => {
                let p = &plan.parts[*part];
                let o = part_of(*part);
                // The store reports a part that admitted in a refused request as it stands
                // (nothing consumed), so its status is shown as is.
                let shown = o.statuses.first().copied();
                rule_status(matched, p.shadow, o.admitted, shown)
            }
            DescriptorPlan::Plan { part, resolved } => {
                let p = &plan.parts[*part];
                let o = part_of(*part);
                plan_status(resolved, p.shadow, o)
            }
        })
        .collect();
    let over_limit = statuses.iter().any(|s| s.over_limit);
    let headers = response_headers(plan.headers, &statuses, over_limit);
    RlsDecision {
        over_limit,
        statuses,
        headers,
    }
}

fn rule_status(
    m: &MatchedRule,
    shadow: bool,
    admitted: bool,
    shown: Option<LimitStatus>,
) -> RlsDescriptorStatus {
    let over = !admitted;
    RlsDescriptorStatus {
        over_limit: over && !shadow,
        would_be_over: over,
        shadow,
        current_limit: m.rule.unit().map(|unit| RlsCurrentLimit {
            name: m.name().unwrap_or_default().to_owned(),
            requests_per_unit: m.rule.requests_per_unit(),
            unit,
        }),
        limit_remaining: shown.map_or(0, |s| s.remaining),
        limit_units: shown.map_or(0, |s| s.limit),
        no_wait_passes: over && shown.is_some_and(|s| s.no_wait_passes()),
        until_reset_us: shown.map(|s| s.wait_us()),
        stats_key: Some(m.stats_key.clone()),
    }
}

fn plan_status(resolved: &ResolvedCheck, shadow: bool, o: &BatchOutcome) -> RlsDescriptorStatus {
    let statuses = &o.statuses;
    // As the headers of a check: the limit that denied, else the one closest to running out.
    let shown = match o.denied_by() {
        Some(i) => Some(i),
        None => statuses
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.remaining)
            .map(|(i, _)| i),
    };
    let current_limit = shown.and_then(|i| {
        if let Some(t) = resolved.throttle.as_ref().filter(|t| t.index == i) {
            let (requests_per_unit, unit) = throttle_as_rate(t.rate_limit);
            return Some(RlsCurrentLimit {
                name: format!("{}:throttle", resolved.plan_id),
                requests_per_unit,
                unit,
            });
        }
        let q = resolved.quota.filter(|q| q.index == i)?;
        let s = statuses.get(i)?;
        Some(RlsCurrentLimit {
            name: format!("{}:quota", resolved.plan_id),
            requests_per_unit: u32::try_from(s.limit).unwrap_or(u32::MAX),
            unit: match q.period {
                QuotaPeriod::Day => RlsUnit::Day,
                QuotaPeriod::Week => RlsUnit::Week,
                QuotaPeriod::Month => RlsUnit::Month,
                QuotaPeriod::Year => RlsUnit::Year,
            },
        })
    });
    let shown = shown.and_then(|i| statuses.get(i));
    let over = !o.admitted;
    RlsDescriptorStatus {
        over_limit: over && !shadow,
        would_be_over: over,
        shadow,
        current_limit,
        limit_remaining: shown.map_or(0, |s| s.remaining),
        limit_units: shown.map_or(0, |s| s.limit),
        no_wait_passes: over && shown.is_some_and(|s| s.no_wait_passes()),
        until_reset_us: shown.map(|s| s.wait_us()),
        stats_key: None,
    }
}

/// A plan's throttle rate as Envoy's whole requests per unit: per second from 1/s up, else
/// per minute, else per hour (rounded, at least 1). The burst has no place in Envoy's
/// message; the remaining count and reset time carry it.
pub fn throttle_as_rate(rate_per_second: f64) -> (u32, RlsUnit) {
    let whole = |x: f64| x.round().clamp(1.0, f64::from(u32::MAX)) as u32;
    if rate_per_second >= 1.0 {
        (whole(rate_per_second), RlsUnit::Second)
    } else if rate_per_second * 60.0 >= 1.0 {
        (whole(rate_per_second * 60.0), RlsUnit::Minute)
    } else {
        (whole(rate_per_second * 3600.0), RlsUnit::Hour)
    }
}

/// The length of a unit in seconds, as Envoy's rate-limit headers count it (a month is 30
/// days and a year 365, whatever the calendar says).
pub fn header_window_s(unit: RlsUnit) -> u64 {
    match unit {
        RlsUnit::Second => 1,
        RlsUnit::Minute => 60,
        RlsUnit::Hour => 3_600,
        RlsUnit::Day => 86_400,
        RlsUnit::Week => 7 * 86_400,
        RlsUnit::Month => 30 * 86_400,
        RlsUnit::Year => 365 * 86_400,
    }
}

/// The response headers of an answer.
///
/// `XRateLimit` follows Envoy's own `DRAFT_VERSION_03` rendering: the descriptor with the
/// fewest remaining gives `x-ratelimit-remaining` and `x-ratelimit-reset`, and
/// `x-ratelimit-limit` is its limit followed by every limit's quota policy
/// (`10, 10;w=1, 1000;w=3600;name="per-user"`). `RateLimit` gives the IETF fields for the
/// descriptor that is over, else the one with the fewest remaining, and `Retry-After` when
/// over. No limit, no headers.
fn response_headers(
    mode: RlsHeaders,
    statuses: &[RlsDescriptorStatus],
    over_limit: bool,
) -> Vec<(String, String)> {
    let limited = || statuses.iter().filter(|s| s.current_limit.is_some());
    let reset_s = |s: &RlsDescriptorStatus| s.until_reset_us.unwrap_or(0).div_ceil(1_000_000);
    match mode {
        RlsHeaders::Off => Vec::new(),
        RlsHeaders::XRateLimit => {
            let Some(min) = limited().min_by_key(|s| s.limit_remaining) else {
                return Vec::new();
            };
            let mut limit = min
                .current_limit
                .as_ref()
                .map_or(0, |l| l.requests_per_unit)
                .to_string();
            for l in limited().filter_map(|s| s.current_limit.as_ref()) {
                let _ = write!(
                    limit,
                    ", {};w={}",
                    l.requests_per_unit,
                    header_window_s(l.unit)
                );
                if !l.name.is_empty() {
                    let _ = write!(limit, ";name=\"{}\"", l.name);
                }
            }
            vec![
                ("x-ratelimit-limit".to_owned(), limit),
                (
                    "x-ratelimit-remaining".to_owned(),
                    min.limit_remaining.to_string(),
                ),
                ("x-ratelimit-reset".to_owned(), reset_s(min).to_string()),
            ]
        }
        RlsHeaders::RateLimit => {
            let shown = limited()
                .find(|s| s.over_limit)
                .or_else(|| limited().min_by_key(|s| s.limit_remaining));
            let Some(s) = shown else {
                return Vec::new();
            };
            let mut h = vec![
                (RATELIMIT_LIMIT.to_owned(), s.limit_units.to_string()),
                (
                    RATELIMIT_REMAINING.to_owned(),
                    s.limit_remaining.to_string(),
                ),
                (RATELIMIT_RESET.to_owned(), reset_s(s).to_string()),
            ];
            if over_limit && !s.no_wait_passes {
                h.push((RETRY_AFTER.to_owned(), reset_s(s).max(1).to_string()));
            }
            h
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apikey::{ApiKey, KeyHash};
    use crate::batch::evaluate_all;
    use crate::plan::{ApiStage, Quota, Throttle, UsagePlan};
    use crate::rls::testutil::{parse, STOREFRONT};
    use std::collections::HashMap;

    const KEY: &str = "value-of-key-one-0000";

    fn registry() -> RlsRegistry {
        RlsRegistry::from_configs([("storefront.yaml", parse(STOREFRONT))]).unwrap()
    }

    fn catalog() -> Catalog {
        let plan = UsagePlan {
            id: "p1".into(),
            name: "p1".into(),
            description: None,
            throttle: Some(Throttle {
                rate_limit: 10.0,
                burst_limit: 20,
            }),
            quota: Some(Quota {
                limit: 3,
                period: QuotaPeriod::Day,
                offset: 0,
            }),
            api_stages: vec![ApiStage {
                api_id: "api".into(),
                stage: "prod".into(),
                throttle: Default::default(),
            }],
            quota_start_s: 0,
        };
        let key = ApiKey {
            id: "k1".into(),
            name: "k1".into(),
            description: None,
            customer_id: None,
            enabled: true,
            value_hash: KeyHash::of(KEY),
            tags: Default::default(),
        };
        Catalog::new(vec![plan], vec![key], &[("k1".into(), "p1".into())]).unwrap()
    }

    fn desc(entries: &[(&str, &str)]) -> RlsRequestDescriptor {
        RlsRequestDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn req(descriptors: Vec<RlsRequestDescriptor>) -> RlsRequest {
        RlsRequest {
            domain: "storefront".into(),
            descriptors,
            hits_addend: 0,
        }
    }

    /// A tiny in-memory store: evaluate_all over a map, applying the writes.
    #[derive(Default)]
    struct Mem(HashMap<(String, String), crate::batch::StoredValue>);

    impl Mem {
        fn run(&mut self, p: &RlsPlan) -> RlsDecision {
            let e = evaluate_all(&p.parts, 1_800_000_000_000_000, |t, n| {
                self.0.get(&(t.to_owned(), n.to_owned())).cloned()
            });
            for (part, writes) in p.parts.iter().zip(&e.writes) {
                for w in writes {
                    if let crate::batch::StateWrite::Set { name, value, .. } = w {
                        self.0
                            .insert((part.batch.tag.clone(), name.clone()), value.clone());
                    }
                }
            }
            decide(p, &e.outcome)
        }
    }

    /// Unknown domains and unmatched descriptors are OK with no limit and no store part.
    #[test]
    fn unknown_and_unmatched_are_ok() {
        let mut r = req(vec![desc(&[("nothing", "here")])]);
        let p = plan(&registry(), &catalog(), &r, &RlsOptions::default()).unwrap();
        assert!(p.parts.is_empty());
        r.domain = "nope".into();
        let p = plan(&registry(), &catalog(), &r, &RlsOptions::default()).unwrap();
        let d = Mem::default().run(&p);
        assert!(!d.over_limit && d.statuses[0].current_limit.is_none());
    }

    /// A rule's counter lives under `rls:<state name>`, one limit named by its kind.
    #[test]
    fn rule_parts_are_tagged_by_state_name() {
        let r = req(vec![desc(&[("remote_address", "10.0.0.1")])]);
        let p = plan(&registry(), &catalog(), &r, &RlsOptions::default()).unwrap();
        assert_eq!(
            p.parts[0].batch.tag,
            "rls:storefront:remote_address=10.0.0.1@minute"
        );
        assert_eq!(p.parts[0].batch.limits[0].name, "t");
        assert_eq!(p.parts[0].batch.cost, 1);
    }

    /// A request over on one descriptor consumes nothing on the other, whose status shows
    /// its untouched remaining.
    #[test]
    fn over_on_one_consumes_nothing_elsewhere() {
        let mut mem = Mem::default();
        let ip = desc(&[("remote_address", "10.0.0.1")]);
        let mut heavy = desc(&[("path", "/checkout")]);
        heavy.hits_addend = Some(5);
        let p = plan(
            &registry(),
            &catalog(),
            &req(vec![ip.clone(), heavy.clone()]),
            &RlsOptions::default(),
        )
        .unwrap();
        let d = mem.run(&p);
        assert!(!d.over_limit);
        assert_eq!(d.statuses[0].limit_remaining, 599);
        let d = mem.run(&p);
        assert!(d.over_limit && d.statuses[1].over_limit && !d.statuses[0].over_limit);
        assert_eq!(d.statuses[0].limit_remaining, 599, "nothing consumed");
        let d = mem.run(
            &plan(
                &registry(),
                &catalog(),
                &req(vec![ip]),
                &RlsOptions::default(),
            )
            .unwrap(),
        );
        assert_eq!(d.statuses[0].limit_remaining, 598);
    }

    /// An API-key descriptor resolves to the key's plan; an unknown key is over.
    #[test]
    fn api_key_descriptors() {
        let mut mem = Mem::default();
        let r = req(vec![desc(&[
            ("api_key", KEY),
            (API_ENTRY, "api"),
            (STAGE_ENTRY, "prod"),
            (PATH_ENTRY, "/x?y=1"),
        ])]);
        let p = plan(&registry(), &catalog(), &r, &RlsOptions::default()).unwrap();
        assert_eq!(p.parts[0].batch.tag, "p1:k1");
        for remaining in [2, 1, 0] {
            let d = mem.run(&p);
            assert!(!d.over_limit);
            assert_eq!(d.statuses[0].limit_remaining, remaining);
            let l = d.statuses[0].current_limit.as_ref().unwrap();
            assert_eq!((l.name.as_str(), l.unit), ("p1:quota", RlsUnit::Day));
        }
        assert!(mem.run(&p).over_limit);
        let r = req(vec![desc(&[("api_key", "nope-nope-nope-nope-nope")])]);
        let p = plan(&registry(), &catalog(), &r, &RlsOptions::default()).unwrap();
        assert!(
            p.refused
                && matches!(
                    p.descriptors[0],
                    DescriptorPlan::Refused {
                        verdict: Verdict::KeyInvalid
                    }
                )
        );
        let shadow = RlsOptions {
            shadow_mode: true,
            ..RlsOptions::default()
        };
        let p = plan(&registry(), &catalog(), &r, &shadow).unwrap();
        assert!(!Mem::default().run(&p).over_limit);
    }

    /// Malformed descriptors are refused with their index.
    #[test]
    fn malformed_requests() {
        let mut big = desc(&[("remote_address", "x")]);
        big.hits_addend = Some(MAX_COST + 1);
        let err = plan(
            &registry(),
            &catalog(),
            &req(vec![desc(&[("a", "b")]), big]),
            &RlsOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.at, "descriptors[1]");
        let mut r = req(vec![desc(&[("a", "b")])]);
        r.hits_addend = u32::MAX;
        let err = plan(&registry(), &catalog(), &r, &RlsOptions::default()).unwrap_err();
        assert!(err.to_string().starts_with("hits_addend: "), "{err}");
        let err = plan(
            &registry(),
            &catalog(),
            &req(vec![desc(&[])]),
            &RlsOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("at least one entry"), "{err}");
        let mut o = desc(&[("k", "v")]);
        o.limit = Some(RlsLimitOverride {
            requests_per_unit: 0,
            unit: RlsUnit::Second,
        });
        let err = plan(
            &registry(),
            &catalog(),
            &req(vec![o]),
            &RlsOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("requests_per_unit"), "{err}");
    }

    /// Both header flavours, as Envoy and the IETF draft render them.
    #[test]
    fn headers() {
        let r = req(vec![
            desc(&[("remote_address", "10.0.0.1")]),
            desc(&[("path", "/checkout")]),
        ]);
        let mut opts = RlsOptions {
            headers: RlsHeaders::XRateLimit,
            ..RlsOptions::default()
        };
        let p = plan(&registry(), &catalog(), &r, &opts).unwrap();
        let d = Mem::default().run(&p);
        assert_eq!(
            d.headers,
            vec![
                (
                    "x-ratelimit-limit".to_string(),
                    "5, 600;w=60, 5;w=1;name=\"checkout-any\"".to_string()
                ),
                ("x-ratelimit-remaining".to_string(), "4".to_string()),
                ("x-ratelimit-reset".to_string(), "1".to_string()),
            ]
        );
        opts.headers = RlsHeaders::RateLimit;
        let p = plan(&registry(), &catalog(), &r, &opts).unwrap();
        let d = Mem::default().run(&p);
        assert_eq!(
            d.headers[0],
            ("RateLimit-Limit".to_string(), "5".to_string())
        );
        assert_eq!(d.headers.len(), 3);
    }

    /// Over the limit, the IETF headers name a Retry-After; over it by a cost no wait lets
    /// pass (hits_addend above the burst of 5), none, since a retry must fail again.
    #[test]
    fn retry_after_only_where_a_wait_helps() {
        let opts = RlsOptions {
            headers: RlsHeaders::RateLimit,
            ..RlsOptions::default()
        };
        let retry_after = |d: &RlsDecision| {
            d.headers
                .iter()
                .find(|(n, _)| n == RETRY_AFTER)
                .map(|(_, v)| v.clone())
        };
        let mut mem = Mem::default();
        let mut heavy = desc(&[("path", "/checkout")]);
        heavy.hits_addend = Some(5);
        let p = plan(&registry(), &catalog(), &req(vec![heavy.clone()]), &opts).unwrap();
        assert!(!mem.run(&p).over_limit, "the burst of 5 at once");
        let d = mem.run(&p);
        assert!(d.over_limit && !d.statuses[0].no_wait_passes);
        assert_eq!(retry_after(&d).as_deref(), Some("1"));
        heavy.hits_addend = Some(6);
        let p = plan(&registry(), &catalog(), &req(vec![heavy]), &opts).unwrap();
        let d = Mem::default().run(&p);
        assert!(d.over_limit && d.statuses[0].no_wait_passes);
        assert_eq!(retry_after(&d), None);
    }

    /// Plan throttles are shown in Envoy's whole units.
    #[test]
    fn throttle_rates() {
        assert_eq!(throttle_as_rate(10.0), (10, RlsUnit::Second));
        assert_eq!(throttle_as_rate(0.5), (30, RlsUnit::Minute));
        assert_eq!(throttle_as_rate(0.0001), (1, RlsUnit::Hour));
    }
}
