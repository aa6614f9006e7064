//! `tollgate.v1.QuotaService/CheckQuota`: translates the request into a core check and the
//! decision back. Verdicts, including refusals, are answers (gRPC OK); only malformed
//! requests get a gRPC error (`INVALID_ARGUMENT`).

use crate::limiter::Limiter;
use crate::metrics::protocol;
use std::sync::Arc;
use tollgate_core::calendar::QuotaPeriod;
use tollgate_core::check::{checked_cost, CheckRequest, Decision, Verdict};
use tollgate_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::instrument;

/// Longest accepted resource path; longer is certainly not a real route.
const MAX_RESOURCE_LEN: usize = 2_048;
/// Longest accepted API id, stage or method.
const MAX_NAME_LEN: usize = 256;

/// The QuotaService implementation.
pub struct QuotaApi {
    limiter: Arc<Limiter>,
}

impl QuotaApi {
    /// A service answering from `limiter`.
    pub fn new(limiter: Arc<Limiter>) -> Self {
        QuotaApi { limiter }
    }
}

/// Checks field sizes and turns the wire request into a core request.
pub fn to_core(req: pb::CheckQuotaRequest) -> Result<CheckRequest, Status> {
    for (name, value, max) in [
        ("api_id", &req.api_id, MAX_NAME_LEN),
        ("stage", &req.stage, MAX_NAME_LEN),
        ("method", &req.method, MAX_NAME_LEN),
        ("resource", &req.resource, MAX_RESOURCE_LEN),
        ("api_key", &req.api_key, MAX_RESOURCE_LEN),
    ] {
        if value.len() > max {
            return Err(Status::invalid_argument(format!(
                "{name} is {} bytes long; at most {max} are accepted",
                value.len()
            )));
        }
    }
    let cost = checked_cost(req.cost.map(u64::from))
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(CheckRequest {
        api_key: req.api_key,
        api_id: req.api_id,
        stage: req.stage,
        resource: req.resource,
        method: req.method,
        cost,
    })
}

/// The wire verdict of a core verdict.
pub fn verdict_to_pb(v: Verdict) -> pb::Verdict {
    match v {
        Verdict::Ok => pb::Verdict::Ok,
        Verdict::Throttled => pb::Verdict::Throttled,
        Verdict::QuotaExceeded => pb::Verdict::QuotaExceeded,
        Verdict::KeyMissing => pb::Verdict::KeyMissing,
        Verdict::KeyInvalid => pb::Verdict::KeyInvalid,
        Verdict::KeyDisabled => pb::Verdict::KeyDisabled,
        Verdict::KeyNotSubscribed => pb::Verdict::KeyNotSubscribed,
        Verdict::Unavailable => pb::Verdict::Unavailable,
    }
}

fn period_to_pb(p: QuotaPeriod) -> pb::QuotaPeriod {
    match p {
        QuotaPeriod::Day => pb::QuotaPeriod::Day,
        QuotaPeriod::Week => pb::QuotaPeriod::Week,
        QuotaPeriod::Month => pb::QuotaPeriod::Month,
        QuotaPeriod::Year => pb::QuotaPeriod::Unspecified,
    }
}

/// The wire response of a decision.
pub fn to_pb(d: Decision) -> pb::CheckQuotaResponse {
    pb::CheckQuotaResponse {
        verdict: verdict_to_pb(d.verdict) as i32,
        http_status: u32::from(d.verdict.http_status()),
        message: d.verdict.message().to_string(),
        usage_plan_id: d.plan_id.unwrap_or_default(),
        key_id: d.key_id.unwrap_or_default(),
        throttle: d.throttle.map(|t| pb::ThrottleStatus {
            rate_limit: t.rate_limit,
            burst_limit: t.burst_limit,
            remaining: t.remaining,
            retry_after_ms: t.retry_after_ms,
            reset_after_ms: t.reset_after_ms,
            resource_method: t.resource_method.unwrap_or_default(),
        }),
        quota: d.quota.map(|q| pb::QuotaStatus {
            limit: q.limit,
            used: q.used,
            remaining: q.remaining,
            period: period_to_pb(q.period) as i32,
            resets_at: Some(prost_types::Timestamp {
                seconds: q.resets_at_ms.div_euclid(1_000),
                nanos: (q.resets_at_ms.rem_euclid(1_000) * 1_000_000) as i32,
            }),
            reset_after_ms: q.reset_after_ms,
        }),
        headers: d
            .headers
            .into_iter()
            .map(|h| pb::Header {
                name: h.name.to_string(),
                value: h.value,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::quota_service_server::QuotaService for QuotaApi {
    // Check spans are at debug level: a span per check at info costs measurable throughput
    // on the hot path (RUST_LOG=tollgate_server=debug shows them).
    #[instrument(
        name = "CheckQuota",
        level = "debug",
        skip_all,
        fields(api_id, stage, method, plan_id, key_id, verdict)
    )]
    async fn check_quota(
        &self,
        request: Request<pb::CheckQuotaRequest>,
    ) -> Result<Response<pb::CheckQuotaResponse>, Status> {
        crate::telemetry::follow_caller(request.extensions().get());
        let req = to_core(request.into_inner())?;
        let decision = self.limiter.check_for(protocol::GRPC, &req).await;
        Ok(Response::new(to_pb(decision)))
    }
}
