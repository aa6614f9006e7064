//! AWS Signature Version 4 verification, so the AWS CLI and SDKs can call the management API
//! with an access key pair configured on the server.
//!
//! The server recomputes the signature the client must have made and compares it in constant
//! time (HMAC-SHA256 from the `hmac` and `sha2` crates; no hand-written crypto):
//!
//! 1. canonical request = method, canonical URI, canonical query, canonical headers, signed
//!    header names, hex SHA-256 of the body as received;
//! 2. string to sign = `AWS4-HMAC-SHA256`, `X-Amz-Date`, credential scope
//!    (`date/region/service/aws4_request`), hex SHA-256 of the canonical request;
//! 3. signing key = HMAC chain `"AWS4" + secret` → date → region → service → `aws4_request`.
//!
//! The canonical URI follows the AWS SDKs for every service but S3: the path as sent, with
//! dot segments and empty segments removed, then percent-encoded once more (so `%20` becomes
//! `%2520`). Query parameters are decoded and re-encoded strictly, then sorted. Any region
//! and service name in the scope is accepted: the signature still proves the caller holds
//! the secret. Only the `Authorization` header form is accepted (no presigned URLs), the
//! body is always hashed (no `UNSIGNED-PAYLOAD`), and `X-Amz-Date` must be within
//! [`MAX_SKEW_S`] of the server's clock.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use tollgate_core::calendar::days_from_civil;

/// Largest accepted difference between `X-Amz-Date` and the server's clock, as AWS allows.
pub const MAX_SKEW_S: i64 = 15 * 60;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

/// An access key pair the server accepts.
#[derive(Clone)]
pub struct Credentials {
    /// The public part, e.g. `AKIDEXAMPLE`.
    pub access_key_id: String,
    /// The secret part; never logged.
    pub secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The parts of an HTTP request a signature covers.
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path exactly as sent, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string exactly as sent, without `?`.
    pub raw_query: Option<&'a str>,
    /// Every header.
    pub headers: &'a axum::http::HeaderMap,
    /// The body as received.
    pub body: &'a [u8],
}

/// Why a signature was refused. The messages are safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The `Authorization` header or a signed header is malformed or missing.
    #[error("malformed AWS Signature V4: {0}")]
    Malformed(String),
    /// The access key id is not the configured one.
    #[error("the security token included in the request is invalid: unknown access key id")]
    UnknownAccessKey,
    /// `X-Amz-Date` is too far from the server's clock.
    #[error("signature expired or not yet valid: X-Amz-Date {0} is more than 15 minutes from the server's time")]
    Skew(String),
    /// The recomputed signature differs.
    #[error("the request signature we calculated does not match the signature you provided; check your AWS secret access key and signing method")]
    Mismatch,
}

/// The fields of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, PartialEq, Eq)]
struct AuthHeader<'a> {
    access_key_id: &'a str,
    /// `date/region/service/aws4_request`.
    scope: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Whether an `Authorization` header value claims SigV4.
pub fn is_sigv4(authorization: &str) -> bool {
    authorization.starts_with(ALGORITHM)
}

fn parse_auth_header(value: &str) -> Result<AuthHeader<'_>, SigV4Error> {
    let bad = |m: &str| SigV4Error::Malformed(m.to_string());
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| bad("the Authorization header must start with AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(bad(&format!("unexpected Authorization component `{part}`"))),
        }
    }
    let credential = credential.ok_or_else(|| bad("Credential= is missing"))?;
    let signed = signed.ok_or_else(|| bad("SignedHeaders= is missing"))?;
    let signature = signature.ok_or_else(|| bad("Signature= is missing"))?;
    let (access_key_id, scope) = credential.split_once('/').ok_or_else(|| {
        bad("Credential must be <access key id>/<date>/<region>/<service>/aws4_request")
    })?;
    let parts: Vec<&str> = scope.split('/').collect();
    let [date, region, service, "aws4_request"] = parts[..] else {
        return Err(bad(
            "Credential must be <access key id>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("Signature must be 64 hex digits"));
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(bad("SignedHeaders holds an empty name"));
    }
    Ok(AuthHeader {
        access_key_id,
        scope,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + sec)
}

/// Percent-encodes every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a malformed escape is kept as is, as the SDKs do).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Removes `.`, `..` and empty segments, keeping a leading and trailing `/`.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = String::from("/");
    p.push_str(&out.join("/"));
    if path.ends_with('/') && !out.is_empty() {
        p.push('/');
    }
    p
}

fn canonical_query(raw: Option<&str>) -> String {
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |x: &str| uri_encode(&String::from_utf8_lossy(&percent_decode(x)), false);
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(values: Vec<String>) -> String {
    values
        .iter()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(",")
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical request of `req` for the given signed headers (step 1 above).
fn canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[&str],
) -> Result<String, SigV4Error> {
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::Malformed(format!(
                "signed header `{name}` is not in the request"
            )));
        }
        headers.push_str(&format!("{name}:{}\n", canonical_header_value(values)));
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(&normalize_path(req.raw_path), true),
        canonical_query(req.raw_query),
        headers,
        signed_headers.join(";"),
        hex_sha256(req.body)
    ))
}

/// The signing key of `secret` in `auth`'s scope (step 3 above).
fn signing_key(secret: &str, auth: &AuthHeader<'_>) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Verifies the SigV4 `Authorization` header of `req` against `creds` at `now_s`.
pub fn verify(creds: &Credentials, req: &SignedRequest<'_>, now_s: i64) -> Result<(), SigV4Error> {
    let authorization = req
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SigV4Error::Malformed("no Authorization header".into()))?;
    let auth = parse_auth_header(authorization)?;
    if auth.access_key_id != creds.access_key_id {
        return Err(SigV4Error::UnknownAccessKey);
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(SigV4Error::Malformed(format!(
                "SignedHeaders must include `{required}`"
            )));
        }
    }
    let amz_date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SigV4Error::Malformed("X-Amz-Date header is missing".into()))?;
    let t = parse_amz_date(amz_date).ok_or_else(|| {
        SigV4Error::Malformed(format!("X-Amz-Date `{amz_date}` is not YYYYMMDDTHHMMSSZ"))
    })?;
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(SigV4Error::Malformed(
            "the credential scope's date is not the date of X-Amz-Date".into(),
        ));
    }
    if (now_s - t).abs() > MAX_SKEW_S {
        return Err(SigV4Error::Skew(amz_date.to_string()));
    }
    if let Some(claimed) = req.headers.get("x-amz-content-sha256") {
        if claimed.as_bytes() != hex_sha256(req.body).as_bytes() {
            return Err(SigV4Error::Malformed(
                "X-Amz-Content-Sha256 must be the hex SHA-256 of the body (unsigned payloads are not accepted)".into(),
            ));
        }
    }
    let canonical = canonical_request(req, &auth.signed_headers)?;
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        auth.scope,
        hex_sha256(canonical.as_bytes())
    );
    let provided = hex::decode(auth.signature).map_err(|_| SigV4Error::Mismatch)?;
    let k_signing = signing_key(&creds.secret_access_key, &auth);
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(&k_signing).map_err(|_| SigV4Error::Mismatch)?;
    mac.update(string_to_sign.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&provided)
        .map_err(|_| SigV4Error::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    const DATE: &str = "20150830T123600Z";

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    fn now() -> i64 {
        parse_amz_date(DATE).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn auth(scope: &str, signed: &str, sig: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}/aws4_request, SignedHeaders={signed}, Signature={sig}")
    }

    fn check(
        method: &str,
        path: &str,
        query: Option<&str>,
        h: &HeaderMap,
        body: &[u8],
    ) -> Result<(), SigV4Error> {
        verify(
            &creds(),
            &SignedRequest {
                method,
                raw_path: path,
                raw_query: query,
                headers: h,
                body,
            },
            now(),
        )
    }

    /// AWS's own SigV4 test suite, `get-vanilla`.
    #[test]
    fn aws_suite_get_vanilla() {
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", DATE),
            (
                "authorization",
                &auth(
                    "20150830/us-east-1/service",
                    "host;x-amz-date",
                    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ),
            ),
        ]);
        assert_eq!(check("GET", "/", None, &h, b""), Ok(()));
    }

    /// AWS's own SigV4 test suite, `get-vanilla-query-order-key-case`: parameters are sorted.
    #[test]
    fn aws_suite_query_order() {
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", DATE),
            (
                "authorization",
                &auth(
                    "20150830/us-east-1/service",
                    "host;x-amz-date",
                    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
                ),
            ),
        ]);
        assert_eq!(
            check("GET", "/", Some("Param2=value2&Param1=value1"), &h, b""),
            Ok(())
        );
    }

    /// Signed by botocore (the AWS SDK for Python): a POST with a JSON body and a signed
    /// content-type, as `aws apigateway create-usage-plan` sends it.
    #[test]
    fn botocore_post_with_body() {
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("content-type", "application/json"),
            ("x-amz-date", DATE),
            (
                "authorization",
                &auth(
                    "20150830/us-east-1/apigateway",
                    "content-type;host;x-amz-date",
                    "5f62b535be3524e4eb4b3587fedf553dcfcdc8854e24c77af53825daec3dbc50",
                ),
            ),
        ]);
        assert_eq!(
            check("POST", "/usageplans", None, &h, br#"{"name":"demo"}"#),
            Ok(())
        );
        // The same signature over another body does not verify.
        assert_eq!(
            check("POST", "/usageplans", None, &h, br#"{"name":"demo2"}"#),
            Err(SigV4Error::Mismatch)
        );
    }

    /// Signed by botocore: a query string and another region.
    #[test]
    fn botocore_query_and_region() {
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-amz-date", DATE),
            (
                "authorization",
                &auth(
                    "20150830/eu-west-1/apigateway",
                    "host;x-amz-date",
                    "c6371d81cf094079fdb01e564984414e92e5741a0cf43c4ea2c63b42f74106b0",
                ),
            ),
        ]);
        let q = "keyId=k1&startDate=2026-11-01&endDate=2026-11-26";
        assert_eq!(
            check("GET", "/usageplans/abc/usage", Some(q), &h, b""),
            Ok(())
        );
        assert_eq!(
            check(
                "GET",
                "/usageplans/abc/usage",
                Some("keyId=k2&startDate=2026-11-01&endDate=2026-11-26"),
                &h,
                b""
            ),
            Err(SigV4Error::Mismatch)
        );
    }

    /// Signed by botocore: an escaped path is encoded once more in the canonical URI.
    #[test]
    fn botocore_escaped_path() {
        let h = headers(&[
            ("host", "localhost"),
            ("x-amz-date", DATE),
            (
                "authorization",
                &auth(
                    "20150830/us-east-1/apigateway",
                    "host;x-amz-date",
                    "3efbfc381b6e2e3bd5caacea71a3f34d8824a0dbf6beb1bb340296e1827d9429",
                ),
            ),
        ]);
        assert_eq!(
            check(
                "PATCH",
                "/apikeys/my%20key",
                None,
                &h,
                br#"{"patchOperations":[]}"#
            ),
            Ok(())
        );
    }

    /// Wrong key id, stale date, a missing signed header and a bad secret are each refused.
    #[test]
    fn refusals() {
        let good = auth(
            "20150830/us-east-1/service",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", DATE),
            ("authorization", &good),
        ]);
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: None,
            headers: &h,
            body: b"",
        };
        assert_eq!(verify(&creds(), &req, now() + MAX_SKEW_S), Ok(()));
        assert!(matches!(
            verify(&creds(), &req, now() + MAX_SKEW_S + 1),
            Err(SigV4Error::Skew(_))
        ));
        assert!(matches!(
            verify(&creds(), &req, now() - MAX_SKEW_S - 1),
            Err(SigV4Error::Skew(_))
        ));
        let other = Credentials {
            secret_access_key: "another-secret".into(),
            ..creds()
        };
        assert_eq!(verify(&other, &req, now()), Err(SigV4Error::Mismatch));
        let other = Credentials {
            access_key_id: "AKIDOTHER".into(),
            ..creds()
        };
        assert_eq!(
            verify(&other, &req, now()),
            Err(SigV4Error::UnknownAccessKey)
        );
        let no_host = headers(&[("x-amz-date", DATE), ("authorization", &good)]);
        assert!(matches!(
            check("GET", "/", None, &no_host, b""),
            Err(SigV4Error::Malformed(_))
        ));
        let unsigned_date = auth(
            "20150830/us-east-1/service",
            "host",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", DATE),
            ("authorization", &unsigned_date),
        ]);
        assert!(matches!(
            check("GET", "/", None, &h, b""),
            Err(SigV4Error::Malformed(_))
        ));
        for garbage in ["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=x", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz"] {
            let h = headers(&[("host", "h"), ("x-amz-date", DATE), ("authorization", garbage)]);
            assert!(matches!(check("GET", "/", None, &h, b""), Err(SigV4Error::Malformed(_))), "{garbage}");
        }
    }

    /// Building blocks: dates, encoding, paths and query canonicalisation.
    #[test]
    fn building_blocks() {
        assert_eq!(parse_amz_date("19700101T000001Z"), Some(1));
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
        assert_eq!(uri_encode("a b/~%", true), "a%20b/~%25");
        assert_eq!(normalize_path("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(canonical_query(Some("b=2&a=x%20y&c")), "a=x%20y&b=2&c=");
        assert_eq!(percent_decode("%41%4"), b"A%4");
        assert_eq!(percent_decode("%é1"), "%é1".as_bytes());
    }
}
