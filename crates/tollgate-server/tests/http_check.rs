//! End-to-end tests of the HTTP checks, `POST /v1/check` and `/v1/auth`, through the real
//! binary.

mod support;

use support::http::{request, HttpResponse};
use support::*;

fn seed_body(key: &str) -> String {
    format!(
        r#"{{"apiKey":"{key}","apiId":"demo-API-usage-plan","stage":"usage-plan-test","resource":"/usageplanOffering","method":"POST"}}"#
    )
}

fn post(t: &Tollgate, body: &str) -> HttpResponse {
    request(
        t.http_port,
        "POST",
        "/v1/check",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// The seed scenario over HTTP: five OKs with the quota counting down, then
/// QUOTA_EXCEEDED with Retry-After — each answered 200 with the verdict in the body and
/// the limit headers on the response.
#[test]
fn seed_scenario_over_http() {
    let cfg = seed_config();
    let t = Tollgate::start(&["--config", cfg.to_str().unwrap()]);
    for i in 0..5u64 {
        let r = post(&t, &seed_body(TEST_KEY));
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["verdict"], "OK");
        assert_eq!(
            (v["httpStatus"].as_u64(), v["message"].as_str()),
            (Some(200), Some("OK"))
        );
        assert_eq!(v["usagePlanId"], "demo-usage-plan");
        assert_eq!(v["keyId"], "testApikey");
        assert!(v["throttle"].is_null());
        let q = &v["quota"];
        assert_eq!(
            (q["limit"].as_u64(), q["used"].as_u64()),
            (Some(5), Some(i + 1))
        );
        assert_eq!(q["remaining"].as_u64(), Some(4 - i));
        assert_eq!(q["period"], "DAY");
        assert!(
            q["resetsAt"].as_str().unwrap().ends_with("T00:00:00Z"),
            "{q}"
        );
        assert_eq!(r.header("RateLimit-Limit"), Some("5"));
        assert_eq!(
            r.header("RateLimit-Remaining"),
            Some((4 - i).to_string().as_str())
        );
    }
    let r = post(&t, &seed_body(TEST_KEY));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["verdict"], "QUOTA_EXCEEDED");
    assert_eq!(
        (v["httpStatus"].as_u64(), v["message"].as_str()),
        (Some(429), Some("Limit Exceeded"))
    );
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 86_400);
    assert!(v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == "Retry-After" && h["value"] == retry.to_string().as_str()));

    // Refusals by key are verdicts too; snake_case names work as in proto3 JSON.
    let r = post(
        &t,
        r#"{"api_key":"no-such-key-0123456789abcdef","api_id":"demo-API-usage-plan","stage":"usage-plan-test"}"#,
    );
    assert_eq!(
        (r.status, r.json()["verdict"].as_str()),
        (200, Some("KEY_INVALID"))
    );
    let r = post(&t, "{}");
    assert_eq!(r.json()["verdict"], "KEY_MISSING");
    assert_eq!(r.json()["httpStatus"], 403);
    // Cost 0 reads the throttle-free plan without consuming.
    let r = post(
        &t,
        r#"{"apiKey":"demo-premiumApikey-0123456789abcdef","apiId":"demo-API-usage-plan","stage":"usage-plan-test","resource":"/usageplanOffering","method":"DELETE","cost":0}"#,
    );
    let v = r.json();
    assert_eq!(v["verdict"], "OK");
    assert_eq!(v["throttle"]["resourceMethod"], "/usageplanOffering/DELETE");
    assert_eq!(v["quota"]["used"], 0);
}

/// Malformed JSON, wrong types, unknown fields, huge costs and oversized bodies get 400
/// (413) with a JSON error naming the problem, and the server keeps serving.
#[test]
fn bad_requests_get_400() {
    let t = Tollgate::start(&["--config", seed_config().to_str().unwrap()]);
    let cases = [
        ("", "empty"),
        ("{\"apiKey\":", "invalid JSON"),
        ("[]", "JSON object"),
        (r#"{"apiKey": 42}"#, "apiKey: invalid type"),
        (r#"{"cost": "1"}"#, "cost: invalid type"),
        (r#"{"cost": -3}"#, "cost: invalid value"),
        (r#"{"cost": 5000000}"#, "at most 1000000"),
        (r#"{"cost": 18446744073709551616}"#, "cost:"),
        (r#"{"apiKeyy": "x"}"#, "unknown field `apiKeyy`"),
    ];
    for (body, want) in cases {
        let r = post(&t, body);
        assert_eq!(r.status, 400, "{body}: {r:?}");
        let v = r.json();
        assert_eq!(v["code"], "INVALID_ARGUMENT");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
    }
    let huge = format!(r#"{{"resource":"{}"}}"#, "x".repeat(100_000));
    let r = post(&t, &huge);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["code"], "PAYLOAD_TOO_LARGE");
    // Wrong methods and unknown paths answer in the documented error shape, not empty.
    let r = request(t.http_port, "GET", "/v1/check", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("MethodNotAllowedException")
    );
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.json()["message"], "GET is not allowed on /v1/check");
    let r = request(t.http_port, "POST", "/healthz", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["message"], "POST is not allowed on /healthz");
    let r = request(t.http_port, "POST", "/v1/chek", &[], b"{}");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-amzn-ErrorType"), Some("NotFoundException"));
    assert_eq!(r.json()["message"], "no resource at /v1/chek");
    assert_eq!(post(&t, &seed_body(TEST_KEY)).json()["verdict"], "OK");
}

/// `/v1/auth` in nginx mode: 200 with the limit headers and the key and plan ids when
/// allowed, 403 with the client's status in X-Tollgate-Status when refused; in direct mode
/// the real status and the AWS body.
#[test]
fn auth_request_endpoint() {
    let t = Tollgate::start(&["--config", seed_config().to_str().unwrap()]);
    let auth = |key: &str, query: &str| {
        request(
            t.http_port,
            "GET",
            &format!("/v1/auth?api=demo-API-usage-plan&stage=usage-plan-test{query}"),
            &[
                ("X-API-Key", key),
                ("X-Original-URI", "/usageplanOffering?x=1"),
                ("X-Original-Method", "POST"),
            ],
            b"",
        )
    };
    let r = auth(TEST_KEY, "&cost=4");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("X-Tollgate-Status"), Some("200"));
    assert_eq!(r.header("X-Tollgate-Key-Id"), Some("testApikey"));
    assert_eq!(r.header("X-Tollgate-Plan-Id"), Some("demo-usage-plan"));
    assert_eq!(r.header("RateLimit-Remaining"), Some("1"));
    let r = auth(TEST_KEY, "&cost=2");
    assert_eq!(r.status, 403);
    assert_eq!(r.header("X-Tollgate-Status"), Some("429"));
    assert_eq!(r.header("X-Tollgate-Verdict"), Some("QUOTA_EXCEEDED"));
    assert_eq!(r.header("X-Tollgate-Message"), Some("Limit Exceeded"));
    assert!(r.header("Retry-After").is_some());
    let r = auth(TEST_KEY, "&cost=2&mode=direct");
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["message"], "Limit Exceeded");
    let r = auth("", "");
    assert_eq!(
        (r.status, r.header("X-Tollgate-Status")),
        (403, Some("403"))
    );
    assert_eq!(r.header("X-Tollgate-Verdict"), Some("KEY_MISSING"));
    let r = auth(TEST_KEY, "&cost=lots");
    assert_eq!(
        (r.status, r.header("X-Tollgate-Status")),
        (403, Some("400"))
    );
    let r = auth(&"k".repeat(3_000), "&mode=direct");
    assert_eq!(r.status, 400, "{r:?}");
}
