//! The check methods' own unary path: `CheckQuota`, Envoy RLS `ShouldRateLimit` and Envoy
//! ext_authz `Check` are answered here, in a tower layer in front of tonic's router, and
//! every other gRPC method (health, reflection, and unknown ones) goes on to the router.
//!
//! Why: a check's own work (plan resolution, limiter, one Redis script) was about a quarter
//! of the instructions tollgate spent per `CheckQuota`; tonic's generic unary machinery
//! (path routing through axum, the streaming decoder, the encoding body and its wrappers)
//! was about another quarter (loadtest/callgrind.sh). For a unary call all of that
//! reduces to: gather one length-prefixed message, decode it, call the same service
//! method tonic would call, and answer with one length-prefixed message and a
//! `grpc-status: 0` trailer. The service implementations are shared, so the semantics
//! are one; what stays with tonic's server around this layer (connection handling,
//! `grpc-timeout`, error recovery) applies to both paths.
//!
//! Wire rules kept as tonic keeps them: a message larger than 4 MiB is refused with
//! OUT_OF_RANGE, a `grpc-encoding` other than identity with UNIMPLEMENTED (no compression
//! is enabled), a compressed frame, a body with no message and a message that does not
//! decode with INTERNAL (and, stricter than tonic, a body with more than one message);
//! errors are sent as trailers-only responses.

use super::ext_authz::ExtAuthzApi;
use super::quota::QuotaApi;
use super::rls::RlsApi;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use http_body_util::{BodyExt, Limited};
use prost::bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_proto::v1::quota_service_server::QuotaService;
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

/// The largest request message accepted, as tonic's default.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

const CHECK_QUOTA: &str = "/tollgate.v1.QuotaService/CheckQuota";
const SHOULD_RATE_LIMIT: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
const EXT_AUTHZ_CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The services the hot path answers.
pub struct CheckServices {
    /// `tollgate.v1.QuotaService`.
    pub quota: Arc<QuotaApi>,
    /// `envoy.service.ratelimit.v3.RateLimitService`.
    pub rls: Arc<RlsApi>,
    /// `envoy.service.auth.v3.Authorization`.
    pub ext_authz: Arc<ExtAuthzApi>,
}

/// A tower layer putting [`HotPath`] in front of a gRPC router.
#[derive(Clone)]
pub struct HotPathLayer {
    services: Arc<CheckServices>,
}

impl HotPathLayer {
    /// The layer for these services.
    pub fn new(services: CheckServices) -> Self {
        HotPathLayer {
            services: Arc::new(services),
        }
    }
}

impl<S> tower_layer::Layer<S> for HotPathLayer {
    type Service = HotPath<S>;

    fn layer(&self, inner: S) -> HotPath<S> {
        HotPath {
            inner,
            services: self.services.clone(),
        }
    }
}

/// Answers the check methods itself and hands every other request to `inner`.
#[derive(Clone)]
pub struct HotPath<S> {
    inner: S,
    services: Arc<CheckServices>,
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> tower_service::Service<http::Request<Body>> for HotPath<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = futures_util::future::Either<BoxedResponse<S::Error>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        use futures_util::future::Either;
        let services = self.services.clone();
        Either::Left(match req.uri().path() {
            CHECK_QUOTA => answered(unary(req, move |m| async move {
                services.quota.check_quota(m).await
            })),
            SHOULD_RATE_LIMIT => answered(unary(req, move |m| async move {
                services.rls.should_rate_limit(m).await
            })),
            EXT_AUTHZ_CHECK => answered(unary(req, move |m| async move {
                services.ext_authz.check(m).await
            })),
            _ => return Either::Right(self.inner.call(req)),
        })
    }
}

/// A hot-path answer as the service's future: it always has a response (errors are gRPC
/// statuses in it), so it never fails.
fn answered<E>(
    response: impl Future<Output = http::Response<Body>> + Send + 'static,
) -> BoxedResponse<E> {
    Box::pin(async move { Ok(response.await) })
}

/// One unary call: the request's single message in, `method`'s answer out.
async fn unary<Req, Resp, F, Fut>(req: http::Request<Body>, method: F) -> http::Response<Body>
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let (mut parts, body) = req.into_parts();
    let answer = match read_message::<Req>(&parts.headers, body).await {
        // Metadata and extensions go along as tonic would pass them; the caller's trace, when
        // the check is traced, is in the extensions.
        Ok(message) => {
            let sampled = crate::telemetry::check_sampling(&parts.headers, &mut parts.extensions);
            let metadata = MetadataMap::from_headers(parts.headers);
            let call = method(Request::from_parts(metadata, parts.extensions, message));
            crate::telemetry::in_check_scope(sampled, call).await
        }
        Err(status) => Err(status),
    };
    match answer {
        Ok(response) => message_response(response.get_ref()),
        Err(status) => status.into_http(),
    }
}

/// The one length-prefixed message of a unary request body, decoded.
async fn read_message<M: Message + Default>(
    headers: &http::HeaderMap,
    body: Body,
) -> Result<M, Status> {
    if let Some(encoding) = headers.get("grpc-encoding") {
        if encoding.as_bytes() != b"identity" {
            return Err(Status::unimplemented(format!(
                "Content is compressed with `{}` which isn't supported",
                String::from_utf8_lossy(encoding.as_bytes())
            )));
        }
    }
    // The frame header (5 bytes) rides on top of the message limit.
    let body = Limited::new(body, MAX_REQUEST_BYTES + 5)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Status::out_of_range(format!(
                    "request message larger than {MAX_REQUEST_BYTES} bytes"
                ))
            } else {
                Status::internal(format!("cannot read the request: {e}"))
            }
        })?
        .to_bytes();
    decode_frame(&body)
}

/// Decodes a body holding exactly one uncompressed gRPC message frame.
fn decode_frame<M: Message + Default>(body: &[u8]) -> Result<M, Status> {
    let Some((&compressed, rest)) = body.split_first() else {
        return Err(Status::internal("Missing request message."));
    };
    let Some((len, message)) = rest.split_first_chunk::<4>() else {
        return Err(Status::internal("the request's message frame is cut short"));
    };
    let len = u32::from_be_bytes(*len) as usize;
    if compressed != 0 {
        return Err(Status::internal(
            "the request message is compressed, and no compression is enabled",
        ));
    }
    if len > MAX_REQUEST_BYTES {
        return Err(Status::out_of_range(format!(
            "request message of {len} bytes is larger than {MAX_REQUEST_BYTES}"
        )));
    }
    match message.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(Status::internal(format!(
            "the request's message frame says {len} bytes but carries {}",
            message.len()
        ))),
        std::cmp::Ordering::Greater => Err(Status::internal(
            "a unary request carries more than one message",
        )),
        std::cmp::Ordering::Equal => M::decode(message)
            .map_err(|e| Status::internal(format!("cannot decode the request message: {e}"))),
    }
}

/// A 200 response carrying `message` as one frame, then `grpc-status: 0`.
fn message_response(message: &impl Message) -> http::Response<Body> {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Cannot fail: the buffer was sized from encoded_len.
    let _ = message.encode(&mut buf);
    let mut response = http::Response::new(Body::new(OneMessage {
        message: Some(buf.freeze()),
        trailers_sent: false,
    }));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A response body of one data frame followed by the OK trailers.
struct OneMessage {
    message: Option<Bytes>,
    trailers_sent: bool,
}

impl http_body::Body for OneMessage {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(message))));
        }
        if self.trailers_sent {
            return Poll::Ready(None);
        }
        self.trailers_sent = true;
        let mut trailers = http::HeaderMap::with_capacity(1);
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailureMode;
    use crate::limiter::Limiter;
    use envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;
    use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
    use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
    use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
    use tollgate_core::catalog::Catalog;
    use tollgate_proto::v1::quota_service_server::QuotaServiceServer;
    use tollgate_proto::v1::CheckQuotaRequest;
    use tollgate_store::MemoryStore;
    use tower_service::Service;

    /// Calls `svc` with one gRPC request; returns its grpc-status (from the headers of a
    /// trailers-only answer, or from the trailers) and its body bytes.
    async fn call<S>(svc: S, path: &str, message: &[u8]) -> (String, Bytes)
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>>,
        S::Error: std::fmt::Debug,
    {
        call_encoded(svc, path, message, "identity").await
    }

    async fn call_encoded<S>(
        mut svc: S,
        path: &str,
        message: &[u8],
        encoding: &str,
    ) -> (String, Bytes)
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>>,
        S::Error: std::fmt::Debug,
    {
        let body = frame(0, message.len() as u32, message);
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://tollgate{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-encoding", encoding)
            .body(Body::new(http_body_util::Full::new(Bytes::from(body))))
            .unwrap();
        futures_util::future::poll_fn(|cx| svc.poll_ready(cx))
            .await
            .unwrap();
        let resp = svc.call(req).await.unwrap();
        assert_eq!(resp.status(), http::StatusCode::OK);
        let in_headers = resp.headers().get("grpc-status").cloned();
        let collected = resp.into_body().collect().await.unwrap();
        let status = in_headers
            .or_else(|| {
                collected
                    .trailers()
                    .and_then(|t| t.get("grpc-status").cloned())
            })
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, collected.to_bytes())
    }

    /// The hot path gives the answer tonic's generated server gives, byte for byte, for
    /// a check that is answered and for one that is refused as invalid; other methods go
    /// on to the router behind it.
    #[tokio::test]
    async fn answers_as_tonics_router_does() {
        let limiter = Arc::new(Limiter::new(
            Catalog::default(),
            Arc::new(MemoryStore::new()),
            FailureMode::Deny,
            7,
        ));
        let services = CheckServices {
            quota: Arc::new(QuotaApi::new(limiter.clone())),
            rls: Arc::new(RlsApi::new(limiter.clone())),
            ext_authz: Arc::new(ExtAuthzApi::new(limiter, "x-api-key")),
        };
        let router = QuotaServiceServer::from_arc(services.quota.clone());
        let rls_router = RateLimitServiceServer::from_arc(services.rls.clone());
        let authz_router = AuthorizationServer::from_arc(services.ext_authz.clone());
        // In front of an empty router, so an answer can only have come from the hot path.
        let hot = tower_layer::Layer::layer(
            &HotPathLayer::new(services),
            tonic::service::Routes::default(),
        );
        let answered = CheckQuotaRequest {
            api_key: "no-such-key".into(),
            api_id: "a".into(),
            stage: "prod".into(),
            ..Default::default()
        };
        let invalid = CheckQuotaRequest {
            api_key: "k".repeat(5_000),
            ..Default::default()
        };
        for (request, want) in [(answered, "0"), (invalid, "3")] {
            let bytes = request.encode_to_vec();
            let ours = call(hot.clone(), CHECK_QUOTA, &bytes).await;
            let tonics = call(router.clone(), CHECK_QUOTA, &bytes).await;
            assert_eq!(ours, tonics);
            assert_eq!(ours.0, want);
        }
        // A compressed request, which neither path has a codec for.
        let bytes = CheckQuotaRequest::default().encode_to_vec();
        let ours = call_encoded(hot.clone(), CHECK_QUOTA, &bytes, "gzip").await;
        assert_eq!(
            ours,
            call_encoded(router, CHECK_QUOTA, &bytes, "gzip").await
        );
        assert_eq!(ours.0, "12");
        let rls = RateLimitRequest {
            domain: "nowhere".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let ours = call(hot.clone(), SHOULD_RATE_LIMIT, &rls).await;
        assert_eq!(ours, call(rls_router, SHOULD_RATE_LIMIT, &rls).await);
        let authz = CheckRequest::default().encode_to_vec();
        let ours = call(hot.clone(), EXT_AUTHZ_CHECK, &authz).await;
        assert_eq!(ours, call(authz_router, EXT_AUTHZ_CHECK, &authz).await);
        // The empty router answers UNIMPLEMENTED to whatever the hot path hands on.
        let (status, _) = call(hot, "/tollgate.v1.QuotaService/Nope", &[]).await;
        assert_eq!(status, "12");
    }

    fn frame(compressed: u8, declared: u32, message: &[u8]) -> Vec<u8> {
        let mut b = vec![compressed];
        b.extend_from_slice(&declared.to_be_bytes());
        b.extend_from_slice(message);
        b
    }

    #[test]
    fn decodes_exactly_one_message() {
        let req = CheckQuotaRequest {
            api_key: "k".into(),
            api_id: "a".into(),
            ..Default::default()
        };
        let bytes = req.encode_to_vec();
        let got: CheckQuotaRequest = decode_frame(&frame(0, bytes.len() as u32, &bytes)).unwrap();
        assert_eq!(got, req);
        // An empty message is a valid (all-default) request.
        let got: CheckQuotaRequest = decode_frame(&frame(0, 0, &[])).unwrap();
        assert_eq!(got, CheckQuotaRequest::default());
    }

    #[test]
    fn refuses_malformed_frames_with_the_code_tonic_uses() {
        let bytes = CheckQuotaRequest::default().encode_to_vec();
        let cases: Vec<(Vec<u8>, tonic::Code)> = vec![
            (vec![], tonic::Code::Internal),
            (vec![0, 0, 0], tonic::Code::Internal),
            (frame(0, 10, b"abc"), tonic::Code::Internal),
            (frame(0, 1, b"ab"), tonic::Code::Internal),
            (frame(1, bytes.len() as u32, &bytes), tonic::Code::Internal),
            (frame(0, u32::MAX, b""), tonic::Code::OutOfRange),
            (frame(0, 2, &[0xff, 0xff]), tonic::Code::Internal),
        ];
        for (body, code) in cases {
            let got = decode_frame::<CheckQuotaRequest>(&body).unwrap_err();
            assert_eq!(got.code(), code, "{body:?}: {got:?}");
        }
    }

    #[tokio::test]
    async fn answers_one_frame_then_ok_trailers() {
        let resp = message_response(&CheckQuotaRequest {
            api_key: "x".into(),
            ..Default::default()
        });
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers["grpc-status"], "0");
        let body = collected.to_bytes();
        let back: CheckQuotaRequest = decode_frame(&body).unwrap();
        assert_eq!(back.api_key, "x");
    }
}
