//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`: a drop-in for
//! envoyproxy/ratelimit. Translates the request into a core [`RlsRequest`] and the decision
//! back; matching is core's, counting the store's, deciding the limiter's.
//!
//! Odd rules of the mapping, and why:
//! - the request's `hits_addend` is passed on as sent (0 included): core reads 0 as 1, since
//!   proto3 cannot tell an unset field from 0 and Envoy sends 0 for "one hit";
//! - a descriptor's `hits_addend` is a wrapper, so an explicit 0 arrives as `Some(0)`, which
//!   core reads as "read without consuming";
//! - an override `limit` with unit `UNKNOWN`, or `is_negative_hits` (giving units back, which
//!   would let any caller refill any counter), is refused as INVALID_ARGUMENT rather than
//!   half-honoured;
//! - the store being down answers OK with no limits under `--failure-mode allow`, and
//!   UNAVAILABLE under `deny`, which Envoy's `failure_mode_deny` turns into a refusal.

use crate::limiter::{Limiter, RlsCheckError};
use crate::metrics::{metrics, observe_rls, RlsOutcome};
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::r#type::v3::RateLimitUnit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration;
use std::sync::Arc;
use std::time::Instant;
use tollgate_core::rls::check::{
    RlsDecision, RlsDescriptorStatus, RlsLimitOverride, RlsRequest, RlsRequestDescriptor,
};
use tollgate_core::rls::RlsUnit;
use tonic::{Request, Response, Status};
use tracing::{instrument, Span};

/// Longest accepted domain, entry key or entry value.
const MAX_FIELD_LEN: usize = 4_096;
/// Most descriptors accepted in one request.
const MAX_DESCRIPTORS: usize = 64;
/// Most entries accepted in one descriptor.
const MAX_ENTRIES: usize = 32;

/// The RateLimitService implementation.
pub struct RlsApi {
    limiter: Arc<Limiter>,
}

impl RlsApi {
    /// A service answering from `limiter`.
    pub fn new(limiter: Arc<Limiter>) -> Self {
        RlsApi { limiter }
    }
}

/// Checks sizes and turns the wire request into a core request.
pub fn to_core(req: RateLimitRequest) -> Result<RlsRequest, Status> {
    if req.domain.is_empty() {
        return Err(Status::invalid_argument("domain must not be empty"));
    }
    if req.domain.len() > MAX_FIELD_LEN {
        return Err(Status::invalid_argument(format!(
            "domain is {} bytes long; at most {MAX_FIELD_LEN} are accepted",
            req.domain.len()
        )));
    }
    if req.descriptors.is_empty() {
        return Err(Status::invalid_argument("descriptors must not be empty"));
    }
    if req.descriptors.len() > MAX_DESCRIPTORS {
        return Err(Status::invalid_argument(format!(
            "{} descriptors sent; at most {MAX_DESCRIPTORS} are accepted",
            req.descriptors.len()
        )));
    }
    let descriptors = req
        .descriptors
        .into_iter()
        .enumerate()
        .map(|(i, d)| descriptor(i, d))
        .collect::<Result<_, _>>()?;
    Ok(RlsRequest {
        domain: req.domain,
        descriptors,
        hits_addend: req.hits_addend,
    })
}

fn descriptor(i: usize, d: RateLimitDescriptor) -> Result<RlsRequestDescriptor, Status> {
    let invalid = |what: String| Status::invalid_argument(format!("descriptors[{i}]: {what}"));
    if d.entries.len() > MAX_ENTRIES {
        return Err(invalid(format!(
            "{} entries sent; at most {MAX_ENTRIES} are accepted",
            d.entries.len()
        )));
    }
    if d.is_negative_hits {
        return Err(invalid(
            "is_negative_hits is not supported: tollgate does not let clients give units back"
                .into(),
        ));
    }
    let mut entries = Vec::with_capacity(d.entries.len());
    for (j, e) in d.entries.into_iter().enumerate() {
        if e.key.is_empty() {
            return Err(invalid(format!("entries[{j}].key must not be empty")));
        }
        if e.key.len() > MAX_FIELD_LEN || e.value.len() > MAX_FIELD_LEN {
            return Err(invalid(format!(
                "entries[{j}] is longer than {MAX_FIELD_LEN} bytes"
            )));
        }
        entries.push((e.key, e.value));
    }
    let limit = d
        .limit
        .map(|l| {
            let unit = match RateLimitUnit::try_from(l.unit) {
                Ok(RateLimitUnit::Second) => RlsUnit::Second,
                Ok(RateLimitUnit::Minute) => RlsUnit::Minute,
                Ok(RateLimitUnit::Hour) => RlsUnit::Hour,
                Ok(RateLimitUnit::Day) => RlsUnit::Day,
                Ok(RateLimitUnit::Month) => RlsUnit::Month,
                Ok(RateLimitUnit::Year) => RlsUnit::Year,
                Ok(RateLimitUnit::Unknown) | Err(_) => {
                    return Err(invalid(format!(
                        "limit.unit {} is not a unit (SECOND, MINUTE, HOUR, DAY, MONTH or YEAR)",
                        l.unit
                    )))
                }
            };
            Ok(RlsLimitOverride {
                requests_per_unit: l.requests_per_unit,
                unit,
            })
        })
        .transpose()?;
    Ok(RlsRequestDescriptor {
        entries,
        limit,
        hits_addend: d.hits_addend.map(|h| h.value),
    })
}

fn unit_to_pb(u: RlsUnit) -> Unit {
    match u {
        RlsUnit::Second => Unit::Second,
        RlsUnit::Minute => Unit::Minute,
        RlsUnit::Hour => Unit::Hour,
        RlsUnit::Day => Unit::Day,
        RlsUnit::Week => Unit::Week,
        RlsUnit::Month => Unit::Month,
        RlsUnit::Year => Unit::Year,
    }
}

fn status_to_pb(s: &RlsDescriptorStatus) -> DescriptorStatus {
    DescriptorStatus {
        code: if s.over_limit {
            Code::OverLimit
        } else {
            Code::Ok
        } as i32,
        current_limit: s.current_limit.as_ref().map(|l| RateLimit {
            name: l.name.clone(),
            requests_per_unit: l.requests_per_unit,
            unit: unit_to_pb(l.unit) as i32,
        }),
        limit_remaining: u32::try_from(s.limit_remaining).unwrap_or(u32::MAX),
        duration_until_reset: s.until_reset_us.map(|us| Duration {
            seconds: i64::try_from(us / 1_000_000).unwrap_or(i64::MAX),
            nanos: ((us % 1_000_000) * 1_000) as i32,
        }),
        quota: None,
    }
}

/// The wire response of a decision.
pub fn to_pb(d: &RlsDecision) -> RateLimitResponse {
    RateLimitResponse {
        overall_code: if d.over_limit {
            Code::OverLimit
        } else {
            Code::Ok
        } as i32,
        statuses: d.statuses.iter().map(status_to_pb).collect(),
        response_headers_to_add: d
            .headers
            .iter()
            .map(|(k, v)| HeaderValue {
                key: k.clone(),
                value: v.clone(),
                raw_value: Vec::new(),
            })
            .collect(),
        ..RateLimitResponse::default()
    }
}

/// Counts the decision in the per-rule stats, as envoyproxy/ratelimit names them (the
/// overall code is [`observe_rls`]'s).
fn record(d: &RlsDecision) {
    let m = metrics();
    for s in &d.statuses {
        let Some(rule) = s.stats_key.as_deref() else {
            continue;
        };
        m.rls_rule_checks.with_label_values(&[rule]).inc();
        if s.over_limit {
            m.rls_rule_over_limit.with_label_values(&[rule]).inc();
        } else if s.would_be_over && s.shadow {
            m.rls_rule_shadow_mode.with_label_values(&[rule]).inc();
        }
    }
}

#[tonic::async_trait]
impl RateLimitService for RlsApi {
    #[instrument(
        name = "ShouldRateLimit",
        level = "debug",
        skip_all,
        fields(domain, descriptors, overall_code)
    )]
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let started = Instant::now();
        crate::telemetry::follow_caller(request.extensions().get());
        let req = to_core(request.into_inner())?;
        let span = Span::current();
        span.record("domain", req.domain.as_str());
        span.record("descriptors", req.descriptors.len());
        let decision = match self.limiter.check_rls(&req).await {
            Ok(d) => d,
            Err(RlsCheckError::Invalid(e)) => {
                return Err(Status::invalid_argument(e.to_string()));
            }
            Err(RlsCheckError::Unavailable(e)) => {
                observe_rls(RlsOutcome::Unavailable, started);
                span.record("overall_code", "UNAVAILABLE");
                return Err(Status::unavailable(e.to_string()));
            }
        };
        record(&decision);
        observe_rls(
            if decision.over_limit {
                RlsOutcome::OverLimit
            } else {
                RlsOutcome::Ok
            },
            started,
        );
        span.record(
            "overall_code",
            if decision.over_limit {
                "OVER_LIMIT"
            } else {
                "OK"
            },
        );
        Ok(Response::new(to_pb(&decision)))
    }
}
