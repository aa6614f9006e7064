//! A lean gRPC unary caller on one HTTP/2 connection (the `h2` crate), so that the load
//! generator's own cost per call stays well under the server's it measures.
//!
//! tonic's client passes every call through a tower buffer (a queue and a worker task),
//! spawns a task to stream each request body and encodes the message on every call. On the
//! two-core machine the benchmark runs on, with tollgate and Redis on the same cores, that
//! made the load generator the largest user of CPU in the open-loop run (74 % of a core
//! against tollgate's 53 % at 14 000 calls/s), and every cycle it took came out of the
//! latency it was measuring. Here a request is framed once, when the load is built, and a
//! call is one HEADERS frame and one DATA frame with END_STREAM written from the caller's
//! own task; the reply is checked as a gRPC client must (HTTP status, message framing, and
//! `grpc-status` in the trailers or in a trailers-only reply) before its message is handed
//! back. The ceiling's Redis calls are prepared once in the same way.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Uri};
use thiserror::Error;
use tokio::net::TcpStream;

/// Why a call, or the connection it needs, failed.
#[derive(Debug, Error)]
pub enum CallError {
    /// The address is not `http://host:port`.
    #[error("`{0}` is not an http://host:port address")]
    Address(String),
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// HTTP/2 failed: handshake, stream or connection.
    #[error("HTTP/2 failed")]
    Http2(#[from] h2::Error),
    /// The request could not be built.
    #[error("the request could not be built")]
    Request(#[from] http::Error),
    /// The server answered with an HTTP status other than 200.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The server answered with a gRPC status other than OK.
    #[error("gRPC status {code}: {message}")]
    Status {
        /// `grpc-status`.
        code: String,
        /// `grpc-message`.
        message: String,
    },
    /// The reply had no `grpc-status` at all.
    #[error("reply without grpc-status")]
    NoStatus,
    /// The reply body was not exactly one uncompressed length-prefixed message.
    #[error("reply body is not one gRPC message ({0})")]
    Framing(&'static str),
}

/// A request message with gRPC's length prefix, built once and sent many times.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0); // not compressed
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer with the exact capacity reserved cannot fail.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

/// One HTTP/2 connection to a gRPC server; clones share it.
#[derive(Clone)]
pub struct UnaryChannel {
    send: h2::client::SendRequest<Bytes>,
    base: Uri,
}

impl UnaryChannel {
    /// Connects to `addr` (`http://host:port`) over plain-text HTTP/2 with TCP_NODELAY, and
    /// drives the connection on a task of the current runtime.
    pub async fn connect(addr: &str) -> Result<Self, CallError> {
        let base: Uri = addr
            .parse()
            .map_err(|_| CallError::Address(addr.to_string()))?;
        let authority = match (base.scheme_str(), base.authority()) {
            (Some("http"), Some(a)) if a.port().is_some() => a.to_string(),
            _ => return Err(CallError::Address(addr.to_string())),
        };
        let connect = |source| CallError::Connect {
            addr: authority.clone(),
            source,
        };
        let tcp = TcpStream::connect(authority.as_str())
            .await
            .map_err(connect)?;
        tcp.set_nodelay(true).map_err(connect)?;
        let (send, connection) = h2::client::Builder::new()
            // Replies are small; a large window keeps WINDOW_UPDATE frames rare.
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            .handshake(tcp)
            .await?;
        tokio::spawn(async move {
            // The connection ends with the last clone of the channel or with an error, which
            // the calls in flight then report themselves.
            let _ = connection.await;
        });
        Ok(UnaryChannel { send, base })
    }

    /// The absolute URI of `path` (`/package.Service/Method`) on this channel's server.
    pub fn method(&self, path: &str) -> Result<Uri, CallError> {
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = Some(
            path.parse()
                .map_err(|_| CallError::Address(path.to_string()))?,
        );
        Uri::from_parts(parts).map_err(|e| CallError::Request(e.into()))
    }

    /// Calls `method` (from [`UnaryChannel::method`]) with `body` (from [`frame`]) and
    /// returns the reply's message, unprefixed. Waits for a stream if the server's limit on
    /// concurrent streams is reached. No deadline of its own, as with tonic's client before:
    /// the runs are bounded as a whole.
    pub async fn call(&self, method: &Uri, body: Bytes) -> Result<Bytes, CallError> {
        let mut send = self.send.clone().ready().await?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(method.clone())
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(body, true)?;
        let response = response.await?;
        if response.status() != http::StatusCode::OK {
            return Err(CallError::HttpStatus(response.status().as_u16()));
        }
        let (head, mut recv) = response.into_parts();
        // A trailers-only reply carries grpc-status in its headers and has no body.
        if head.headers.contains_key("grpc-status") {
            grpc_status(&head.headers)?;
            return Err(CallError::Framing("a trailers-only reply with status 0"));
        }
        let mut message = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            message.extend_from_slice(&chunk);
        }
        match recv.trailers().await? {
            Some(trailers) => grpc_status(&trailers)?,
            None => return Err(CallError::NoStatus),
        }
        unframe(message.freeze())
    }
}

/// OK when `headers` carry `grpc-status: 0`.
fn grpc_status(headers: &HeaderMap) -> Result<(), CallError> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match text("grpc-status") {
        Some(code) if code == "0" => Ok(()),
        Some(code) => Err(CallError::Status {
            code,
            message: text("grpc-message").unwrap_or_default(),
        }),
        None => Err(CallError::NoStatus),
    }
}

/// The one message in a reply body.
fn unframe(mut body: Bytes) -> Result<Bytes, CallError> {
    if body.len() < 5 {
        return Err(CallError::Framing("shorter than the 5-byte prefix"));
    }
    if body.get_u8() != 0 {
        return Err(CallError::Framing("compressed, which was not asked for"));
    }
    let len = body.get_u32() as usize;
    if body.len() != len {
        return Err(CallError::Framing("length prefix does not match the body"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_message_unframes_to_itself() {
        let message = tollgate_proto::v1::CheckQuotaRequest {
            api_key: "k-1".into(),
            stage: "prod".into(),
            ..Default::default()
        };
        let framed = frame(&message);
        assert_eq!(framed[0], 0);
        assert_eq!(framed.len(), 5 + prost::Message::encoded_len(&message));
        let inner = unframe(framed).expect("one message");
        let back: tollgate_proto::v1::CheckQuotaRequest =
            prost::Message::decode(inner).expect("decodes");
        assert_eq!(back, message);
    }

    #[test]
    fn bad_framing_is_refused() {
        for (body, why) in [
            (&b"\0\0\0"[..], "short"),
            (&b"\x01\0\0\0\0"[..], "compressed"),
            (&b"\0\0\0\0\x02a"[..], "length"),
        ] {
            assert!(
                matches!(
                    unframe(Bytes::from_static(body)),
                    Err(CallError::Framing(_))
                ),
                "{why}"
            );
        }
    }

    #[test]
    fn status_other_than_zero_is_an_error() {
        let mut h = HeaderMap::new();
        assert!(matches!(grpc_status(&h), Err(CallError::NoStatus)));
        h.insert("grpc-status", "0".parse().expect("header"));
        assert!(grpc_status(&h).is_ok());
        h.insert("grpc-status", "14".parse().expect("header"));
        h.insert("grpc-message", "down".parse().expect("header"));
        match grpc_status(&h) {
            Err(CallError::Status { code, message }) => {
                assert_eq!((code.as_str(), message.as_str()), ("14", "down"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_http_host_port_addresses_connect() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for addr in [
            "127.0.0.1:1",
            "https://127.0.0.1:1",
            "http://127.0.0.1",
            "nonsense",
        ] {
            let r = rt.block_on(UnaryChannel::connect(addr));
            assert!(matches!(r, Err(CallError::Address(_))), "{addr}");
        }
    }
}
