//! End-to-end tests of the management API through the real binary: auth, every endpoint's
//! validation errors, the CRUD flow enforced by checks, CSV import, usage and its export,
//! two instances sharing one Redis, restarts, `tollgate apply` and the OpenAPI document.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;
use tollgate_proto::v1::Verdict;
use tollgate_testkit::RedisServer;

const API: &str = "calc";
const STAGE: &str = "prod";

fn plan_body(name: &str, limit: i64) -> String {
    json!({"name": name, "quota": {"limit": limit, "period": "DAY"},
           "apiStages": [{"apiId": API, "stage": STAGE}]})
    .to_string()
}

/// Creates a plan, a key with `value` and the membership; returns (plan id, key id).
fn seed(t: &Tollgate, value: &str, limit: i64) -> (String, String) {
    let plan = t.admin("POST", "/usageplans", &plan_body("p", limit));
    assert_eq!(plan.status, 201, "{}", plan.body);
    let key = t.admin(
        "POST",
        "/apikeys",
        &json!({"name": "k", "value": value, "enabled": true}).to_string(),
    );
    assert_eq!(key.status, 201, "{}", key.body);
    let (pid, kid) = (
        plan.json()["id"].as_str().unwrap().to_string(),
        key.json()["id"].as_str().unwrap().to_string(),
    );
    let pk = t.admin(
        "POST",
        &format!("/usageplans/{pid}/keys"),
        &json!({"keyId": kid, "keyType": "API_KEY"}).to_string(),
    );
    assert_eq!(pk.status, 201, "{}", pk.body);
    (pid, kid)
}

async fn verdict(t: &Tollgate, key: &str) -> Verdict {
    check(&mut t.client().await, stage_request(key, API, STAGE))
        .await
        .verdict()
}

fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let d = tollgate_core::calendar::civil_from_days(days);
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// Management routes need the bearer token (401 otherwise, with AWS's error header);
/// without any credential configured they are closed (403) unless explicitly opened;
/// health and the OpenAPI document stay open.
#[tokio::test]
async fn auth_policies() {
    let t = Tollgate::start_admin(&[], &[]);
    let r = t.http("GET", "/usageplans", &[], "");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-amzn-ErrorType"), Some("UnauthorizedException"));
    assert!(r.message().contains("Bearer"), "{}", r.body);
    let r = t.http(
        "GET",
        "/usageplans",
        &[("Authorization", "Bearer wrong")],
        "",
    );
    assert_eq!(r.status, 401);
    assert_eq!(t.admin("GET", "/usageplans", "").status, 200);
    // A SigV4 header on a server without an access key pair is refused.
    let r = t.http("GET", "/apikeys", &[("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"), ("X-Amz-Date", "20260101T000000Z")], "");
    assert_eq!(r.status, 401);
    assert_eq!(t.http("GET", "/healthz", &[], "").status, 200);
    assert_eq!(t.http("GET", "/openapi.json", &[], "").status, 200);
    drop(t);

    let closed = Tollgate::start(&[]);
    let r = closed.http("GET", "/usageplans", &[], "");
    assert_eq!(r.status, 403);
    assert!(r.message().contains("TOLLGATE_ADMIN_TOKEN"), "{}", r.body);
    drop(closed);

    let open = Tollgate::start(&["--admin-unauthenticated"]);
    assert_eq!(open.http("GET", "/usageplans", &[], "").status, 200);
    drop(open);

    // A signed request with a bad signature is refused by a server that has a key pair.
    let sig = Tollgate::start_with_env(
        &[],
        &[
            ("TOLLGATE_ADMIN_ACCESS_KEY_ID", "AKIDTEST"),
            ("TOLLGATE_ADMIN_SECRET_ACCESS_KEY", "secret-secret"),
        ],
    );
    let r = sig.http("GET", "/apikeys", &[("Authorization", &format!("AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=host;x-amz-date, Signature={}", "0".repeat(64))), ("X-Amz-Date", "20260101T000000Z")], "");
    assert_eq!(r.status, 401, "{}", r.body);
}

/// Every endpoint answers bad input with 400 BadRequestException, unknown ids with 404
/// NotFoundException and clashes with 409 ConflictException, each with a useful message.
#[tokio::test]
async fn validation_errors_of_every_endpoint() {
    let t = Tollgate::start_admin(&[], &[]);
    let (pid, kid) = seed(&t, "validation-key-0123456789", 5);
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        // usage plans
        ("POST", "/usageplans".into(), json!({"name": "x", "quota": {"limit": 5, "period": "DAILY"}}).to_string(), 400, "quota.period must be DAY, WEEK or MONTH"),
        ("POST", "/usageplans".into(), json!({"name": "x", "quota": {"limit": -5, "period": "DAY"}}).to_string(), 400, "quota.limit must be at least 0"),
        ("POST", "/usageplans".into(), json!({"name": "x", "quota": {"limit": 5, "period": "DAY", "offset": 5}}).to_string(), 400, "quota.offset"),
        // Quotas the Redis script cannot count exactly (above 2^52) are refused on every store.
        ("POST", "/usageplans".into(), json!({"name": "x", "quota": {"limit": i64::MAX, "period": "DAY"}}).to_string(), 400, "quota.limit: must be at most 4503599627370496"),
        ("POST", "/usageplans".into(), json!({"name": "x", "quota": {"limit": 4_503_599_627_370_497_i64, "period": "DAY"}}).to_string(), 400, "got 4503599627370497"),
        ("POST", "/usageplans".into(), json!({"name": "x", "throttle": {"rateLimit": 0, "burstLimit": 5}}).to_string(), 400, "throttle.rateLimit"),
        ("POST", "/usageplans".into(), json!({"name": "x", "throttle": {"rateLimit": 5}}).to_string(), 400, "both rateLimit and burstLimit"),
        ("POST", "/usageplans".into(), json!({"quota": {"limit": 5, "period": "DAY"}}).to_string(), 400, "name is required"),
        ("POST", "/usageplans".into(), json!({"name": "x", "apiStages": [{"apiId": "a"}]}).to_string(), 400, "apiStages[0].stage is required"),
        ("POST", "/usageplans".into(), json!({"name": 5}).to_string(), 400, "name: invalid type"),
        ("POST", "/usageplans".into(), "{not json".into(), 400, "malformed JSON"),
        ("GET", "/usageplans/nope".into(), String::new(), 404, "Invalid Usage Plan ID"),
        ("DELETE", "/usageplans/nope".into(), String::new(), 404, "Invalid Usage Plan ID"),
        ("PATCH", "/usageplans/nope".into(), json!({"patchOperations": []}).to_string(), 404, "Invalid Usage Plan ID"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "replace", "path": "/quota/lmit", "value": "3"}]}).to_string(), 400, "not supported"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "move", "path": "/name", "value": "3"}]}).to_string(), 400, "use add, remove or replace"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "replace", "path": "/quota/limit", "value": "lots"}]}).to_string(), 400, "must be an integer"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "replace", "path": "/quota/period", "value": "YEAR"}]}).to_string(), 400, "quota.period"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "replace", "path": "/quota/limit", "value": "9007199254740993"}]}).to_string(), 400, "quota.limit: must be at most 4503599627370496"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "replace", "path": "/quota/offset", "value": "-1"}]}).to_string(), 400, "quota.offset must be at least 0, got -1"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "add", "path": "/apiStages", "value": "nocolon"}]}).to_string(), 400, "apiId:stage"),
        ("PATCH", format!("/usageplans/{pid}"), json!({"patchOperations": [{"op": "replace", "path": "/apiStages/x:y/throttle/~1a/GET/rateLimit", "value": "1"}]}).to_string(), 404, "no API stage x:y"),
        ("GET", "/usageplans?limit=0".into(), String::new(), 400, "limit must be a number"),
        // API keys
        ("POST", "/apikeys".into(), json!({"name": "short", "value": "too-short"}).to_string(), 400, "20 to 128"),
        // A blank name is refused at creation as PATCH refuses it; an absent one is fine.
        ("POST", "/apikeys".into(), json!({"name": ""}).to_string(), 400, "name must not be empty"),
        ("POST", "/apikeys".into(), json!({"name": "  "}).to_string(), 400, "name must not be empty"),
        ("PATCH", format!("/apikeys/{kid}"), json!({"patchOperations": [{"op": "replace", "path": "/name", "value": ""}]}).to_string(), 400, "name must not be empty"),
        ("POST", "/apikeys".into(), json!({"name": "dup", "value": "validation-key-0123456789"}).to_string(), 409, "same value"),
        ("POST", "/apikeys?mode=export".into(), String::new(), 400, "mode must be import"),
        ("GET", "/apikeys/nope".into(), String::new(), 404, "Invalid API Key identifier"),
        ("DELETE", "/apikeys/nope".into(), String::new(), 404, "Invalid API Key identifier"),
        ("GET", "/apikeys?includeValues=maybe".into(), String::new(), 400, "true or false"),
        ("PATCH", format!("/apikeys/{kid}"), json!({"patchOperations": [{"op": "replace", "path": "/enabled", "value": "maybe"}]}).to_string(), 400, "true or false"),
        ("PATCH", format!("/apikeys/{kid}"), json!({"patchOperations": [{"op": "replace", "path": "/stages", "value": "x"}]}).to_string(), 400, "not supported"),
        ("PATCH", format!("/apikeys/{kid}"), json!({"patchOperations": [{"op": "replace", "path": "/name"}]}).to_string(), 400, "value is required"),
        // plan keys
        ("POST", format!("/usageplans/{pid}/keys"), json!({"keyType": "API_KEY"}).to_string(), 400, "keyId is required"),
        ("POST", format!("/usageplans/{pid}/keys"), json!({"keyId": kid, "keyType": "JWT"}).to_string(), 400, "keyType must be API_KEY"),
        ("POST", format!("/usageplans/{pid}/keys"), json!({"keyId": "nope", "keyType": "API_KEY"}).to_string(), 404, "Invalid API Key identifier"),
        ("POST", "/usageplans/nope/keys".into(), json!({"keyId": kid, "keyType": "API_KEY"}).to_string(), 404, "Invalid Usage Plan ID"),
        ("POST", format!("/usageplans/{pid}/keys"), json!({"keyId": kid, "keyType": "API_KEY"}).to_string(), 409, "already in usage plan"),
        ("GET", format!("/usageplans/{pid}/keys/nope"), String::new(), 404, "not in usage plan"),
        ("DELETE", format!("/usageplans/{pid}/keys/nope"), String::new(), 404, "not in usage plan"),
        // usage
        ("GET", format!("/usageplans/{pid}/usage?endDate=2026-01-01"), String::new(), 400, "startDate is required"),
        ("GET", format!("/usageplans/{pid}/usage?startDate=2026-02-30&endDate=2026-03-01"), String::new(), 400, "startDate must be a date"),
        ("GET", format!("/usageplans/{pid}/usage?startDate=2026-03-01&endDate=2026-02-01"), String::new(), 400, "endDate must not be before"),
        ("GET", format!("/usageplans/{pid}/usage?startDate=2024-01-01&endDate=2026-01-01"), String::new(), 400, "at most 366 days"),
        ("GET", format!("/usageplans/{pid}/usage?startDate=2026-01-01&endDate=2026-01-02&keyId=nope"), String::new(), 404, "Invalid API Key identifier"),
        ("GET", "/usageplans/nope/usage?startDate=2026-01-01&endDate=2026-01-02".into(), String::new(), 404, "Invalid Usage Plan ID"),
        ("GET", format!("/usageplans/{pid}/usage/export?startDate=2026-01-01&endDate=2026-01-02&format=xml"), String::new(), 400, "format must be json or csv"),
        ("PATCH", format!("/usageplans/{pid}/keys/{kid}/usage"), json!({"patchOperations": [{"op": "replace", "path": "/used", "value": "1"}]}).to_string(), 400, "only replace /remaining"),
        ("PATCH", format!("/usageplans/{pid}/keys/{kid}/usage"), json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": "-1"}]}).to_string(), 400, "whole number"),
        ("PATCH", format!("/usageplans/{pid}/keys/{kid}/usage"), json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": "4503599627370497"}]}).to_string(), 400, "from 0 to 4503599627370496"),
        ("PATCH", format!("/usageplans/{pid}/keys/{kid}/usage"), json!({"patchOperations": []}).to_string(), 400, "exactly one operation"),
        ("PATCH", format!("/usageplans/{pid}/keys/nope/usage"), json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": "1"}]}).to_string(), 404, "Invalid API Key identifier"),
        ("PATCH", format!("/usageplans/nope/keys/{kid}/usage"), json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": "1"}]}).to_string(), 404, "Invalid Usage Plan ID"),
    ];
    // A duplicate value names only the key that has it, not the refused key's would-be id.
    let r = t.admin(
        "POST",
        "/apikeys",
        &json!({"name": "dup", "value": "validation-key-0123456789"}).to_string(),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.message(),
        format!("API key `{kid}` already has the same value")
    );
    // Without a name (optional, as in AWS) a key is named after its id.
    let r = t.admin("POST", "/apikeys", "{}");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["name"], r.json()["id"]);
    for (method, path, body, status, want) in cases {
        let r = t.admin(method, &path, &body);
        assert_eq!(r.status, status, "{method} {path} {body}: {}", r.body);
        let kind = match status {
            400 => "BadRequestException",
            404 => "NotFoundException",
            _ => "ConflictException",
        };
        assert_eq!(r.header("x-amzn-ErrorType"), Some(kind), "{method} {path}");
        assert!(
            r.message().contains(want),
            "{method} {path} {body}: `{}` lacks `{want}`",
            r.message()
        );
    }
    // A key already in another plan of the same API stage: 409, both through the plan's
    // keys and through adding the stage to a plan that holds the key.
    let other = t
        .admin("POST", "/usageplans", &plan_body("other", 9))
        .json();
    let other_id = other["id"].as_str().unwrap();
    let r = t.admin(
        "POST",
        &format!("/usageplans/{other_id}/keys"),
        &json!({"keyId": kid, "keyType": "API_KEY"}).to_string(),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("share stage calc:prod"), "{}", r.body);
    let bare = t
        .admin("POST", "/usageplans", &json!({"name": "bare"}).to_string())
        .json();
    let bare_id = bare["id"].as_str().unwrap();
    assert_eq!(
        t.admin(
            "POST",
            &format!("/usageplans/{bare_id}/keys"),
            &json!({"keyId": kid, "keyType": "API_KEY"}).to_string()
        )
        .status,
        201
    );
    let r = t.admin(
        "PATCH",
        &format!("/usageplans/{bare_id}"),
        &json!({"patchOperations": [{"op": "add", "path": "/apiStages", "value": "calc:prod"}]})
            .to_string(),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    // UpdateUsage on a plan without a quota.
    let r = t.admin(
        "PATCH",
        &format!("/usageplans/{bare_id}/keys/{kid}/usage"),
        &json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": "1"}]})
            .to_string(),
    );
    assert_eq!(r.status, 400);
    assert!(r.message().contains("has no quota"), "{}", r.body);
    assert!(!t.log().contains("panicked"), "{}", t.log());
}

/// Unknown paths (404) and methods a path lacks (405) answer like every other error:
/// `{"message"}` with the exception in `x-amzn-ErrorType`; 405 keeps its `Allow` header, and
/// a wrong method without credentials is still refused as unauthenticated.
#[tokio::test]
async fn unknown_routes_and_methods_have_the_error_shape() {
    let t = Tollgate::start_admin(&[], &[]);
    let r = t.admin("GET", "/usageplans/", "");
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.header("x-amzn-ErrorType"), Some("NotFoundException"));
    assert_eq!(r.message(), "no resource at /usageplans/");
    let r = t.admin("PUT", "/usageplans", "{}");
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("MethodNotAllowedException")
    );
    assert_eq!(r.header("allow"), Some("GET,HEAD,POST"));
    assert_eq!(r.message(), "PUT is not allowed on /usageplans");
    let r = t.admin("POST", "/openapi.json", "{}");
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.message(), "POST is not allowed on /openapi.json");
    let r = t.http("PUT", "/usageplans", &[], "{}");
    assert_eq!(r.status, 401, "{}", r.body);
}

/// Records made through the API are enforced at once: a plan's quota, a PATCHed limit, a
/// disabled key, a deleted membership and a deleted key; lists paginate.
#[tokio::test]
async fn crud_flow_is_enforced() {
    let t = Tollgate::start_admin(&[], &[]);
    let value = "crud-flow-key-0123456789";
    let (pid, kid) = seed(&t, value, 2);
    assert_eq!(verdict(&t, value).await, Verdict::Ok);
    assert_eq!(verdict(&t, value).await, Verdict::Ok);
    assert_eq!(verdict(&t, value).await, Verdict::QuotaExceeded);
    let r = t.admin("PATCH", &format!("/usageplans/{pid}"), &json!({"patchOperations": [
        {"op": "replace", "path": "/quota/limit", "value": "3"},
        {"op": "replace", "path": "/throttle/rateLimit", "value": "100"},
        {"op": "replace", "path": "/throttle/burstLimit", "value": "50"},
        {"op": "replace", "path": "/apiStages/calc:prod/throttle/~1slow/GET/rateLimit", "value": "1"},
        {"op": "replace", "path": "/apiStages/calc:prod/throttle/~1slow/GET/burstLimit", "value": "1"},
        {"op": "replace", "path": "/name", "value": "renamed"}]}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let plan = r.json();
    assert_eq!(
        (plan["name"].as_str(), plan["quota"]["limit"].as_i64()),
        (Some("renamed"), Some(3))
    );
    assert_eq!(
        plan["apiStages"][0]["throttle"]["/slow/GET"]["burstLimit"],
        1
    );
    assert_eq!(
        verdict(&t, value).await,
        Verdict::Ok,
        "the raised limit applies at once"
    );
    let got = t.admin("GET", &format!("/usageplans/{pid}"), "").json();
    assert_eq!(got, plan);
    assert_eq!(
        t.admin("GET", &format!("/usageplans?keyId={kid}"), "")
            .json()["item"][0]["id"],
        pid.as_str()
    );
    assert_eq!(
        t.admin("GET", "/usageplans?keyId=nope", "").json()["item"],
        json!([])
    );
    let r = t.admin(
        "PATCH",
        &format!("/apikeys/{kid}"),
        &json!({"patchOperations": [
        {"op": "replace", "path": "/enabled", "value": "false"},
        {"op": "replace", "path": "/description", "value": "off"}]})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json()["enabled"].as_bool(), r.json().get("value")),
        (Some(false), None)
    );
    assert_eq!(verdict(&t, value).await, Verdict::KeyDisabled);
    t.admin(
        "PATCH",
        &format!("/apikeys/{kid}"),
        &json!({"patchOperations": [{"op": "replace", "path": "/enabled", "value": "true"}]})
            .to_string(),
    );
    let keys = t
        .admin("GET", &format!("/usageplans/{pid}/keys"), "")
        .json();
    assert_eq!(
        (
            keys["item"][0]["id"].as_str(),
            keys["item"][0]["type"].as_str()
        ),
        (Some(kid.as_str()), Some("API_KEY"))
    );
    assert_eq!(
        t.admin("GET", &format!("/usageplans/{pid}/keys/{kid}"), "")
            .status,
        200
    );
    assert_eq!(
        t.admin("DELETE", &format!("/usageplans/{pid}/keys/{kid}"), "")
            .status,
        202
    );
    assert_eq!(verdict(&t, value).await, Verdict::KeyNotSubscribed);
    assert_eq!(
        t.admin("DELETE", &format!("/apikeys/{kid}"), "").status,
        202
    );
    assert_eq!(verdict(&t, value).await, Verdict::KeyInvalid);
    assert_eq!(
        t.admin("DELETE", &format!("/usageplans/{pid}"), "").status,
        202
    );
    // Pagination over five keys, two at a time.
    for i in 0..5 {
        let r = t.admin(
            "POST",
            "/apikeys",
            &json!({"name": format!("page{i}")}).to_string(),
        );
        assert_eq!(r.status, 201);
        assert_eq!(
            r.json()["value"].as_str().map(str::len),
            Some(40),
            "generated value"
        );
        assert_eq!(
            r.json()["enabled"],
            false,
            "disabled unless asked, as in AWS"
        );
    }
    let (mut seen, mut position) = (Vec::new(), None::<String>);
    loop {
        let path = match &position {
            Some(p) => format!("/apikeys?limit=2&position={p}"),
            None => "/apikeys?limit=2".to_string(),
        };
        let page = t.admin("GET", &path, "").json();
        let items = page["item"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|k| k["name"].as_str().unwrap().to_string()),
        );
        match page["position"].as_str() {
            Some(p) => position = Some(p.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["page0", "page1", "page2", "page3", "page4"]);
    assert_eq!(
        t.admin("GET", "/apikeys?name=page3", "").json()["item"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!t.log().contains(value), "a key value reached the log");
}

/// CSV import: columns in any order and case; with failonwarnings a bad row refuses the
/// whole file, without it the good rows are imported and each bad row is a warning.
#[tokio::test]
async fn csv_import_with_and_without_failonwarnings() {
    let t = Tollgate::start_admin(&[], &[]);
    let (pid, _) = seed(&t, "existing-key-0123456789", 5);
    let csv = format!(
        "key,Name,enabled,UsagePlanIds,Description\n\
         imported-one-0123456789,one,true,{pid},first\n\
         short,two,true,{pid},too short\n\
         imported-three-0123456789,three,TRUE,nope,unknown plan\n\
         existing-key-0123456789,four,true,,duplicate\n\
         imported-five-0123456789,five,sometimes,,bad flag\n\
         imported-six-0123456789,six,false,,disabled\n"
    );
    let import = |fail: bool| {
        t.http(
            "POST",
            &format!("/apikeys?mode=import&format=csv&failonwarnings={fail}"),
            &[
                ("Authorization", &format!("Bearer {ADMIN_TOKEN}")),
                ("Content-Type", "text/csv"),
            ],
            &csv,
        )
    };
    let before = t.admin("GET", "/apikeys", "").json()["item"]
        .as_array()
        .unwrap()
        .len();
    let r = import(true);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.header("x-amzn-ErrorType"), Some("BadRequestException"));
    for line in ["line 3", "line 4", "line 5", "line 6"] {
        assert!(r.message().contains(line), "{} lacks {line}", r.message());
    }
    assert!(
        !r.body.contains("existing-key-0123456789"),
        "values are not echoed"
    );
    assert_eq!(
        t.admin("GET", "/apikeys", "").json()["item"]
            .as_array()
            .unwrap()
            .len(),
        before,
        "nothing imported"
    );
    let r = import(false);
    assert_eq!(r.status, 201, "{}", r.body);
    let body = r.json();
    assert_eq!(body["ids"].as_array().unwrap().len(), 2, "{body}");
    let warnings: Vec<&str> = body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings[0].starts_with("line 3") && warnings[0].contains("20 to 128"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("unknown usage plan `nope`"),
        "{warnings:?}"
    );
    assert!(warnings[2].contains("exists already"), "{warnings:?}");
    assert!(
        warnings[3].contains("Enabled must be true or false"),
        "{warnings:?}"
    );
    assert_eq!(verdict(&t, "imported-one-0123456789").await, Verdict::Ok);
    assert_eq!(
        verdict(&t, "imported-six-0123456789").await,
        Verdict::KeyDisabled
    );
    let r = t.http(
        "POST",
        "/apikeys?mode=import&format=csv",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        "Name,Secret\nx,y\n",
    );
    assert_eq!(r.status, 400);
    assert!(r.message().contains("unknown CSV column"), "{}", r.body);
    let r = t.http(
        "POST",
        "/apikeys?mode=import",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        "Key\nx\n",
    );
    assert!(r.message().contains("format is required"), "{}", r.body);
}

/// Usage per day in AWS's shape, UpdateUsage granting more calls, and the JSON and CSV export.
#[tokio::test]
async fn usage_update_usage_and_export() {
    let cfg = seed_config();
    let t = Tollgate::start_admin(&["--config", cfg.to_str().unwrap()], &[]);
    let mut c = t.client().await;
    for _ in 0..5 {
        assert_eq!(
            check(&mut c, seed_request(TEST_KEY)).await.verdict(),
            Verdict::Ok
        );
    }
    let day = today();
    let q = format!("startDate={day}&endDate={day}");
    let u = t
        .admin("GET", &format!("/usageplans/demo-usage-plan/usage?{q}"), "")
        .json();
    assert_eq!(u["usagePlanId"], "demo-usage-plan");
    assert_eq!(u["values"]["testApikey"], json!([[5, 0]]), "{u}");
    let r = t.admin(
        "PATCH",
        "/usageplans/demo-usage-plan/keys/testApikey/usage",
        &json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": "3"}]})
            .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["values"]["testApikey"], json!([[5, 3]]));
    for i in 0..3 {
        assert_eq!(
            check(&mut c, seed_request(TEST_KEY)).await.verdict(),
            Verdict::Ok,
            "granted call {i}"
        );
    }
    assert_eq!(
        check(&mut c, seed_request(TEST_KEY)).await.verdict(),
        Verdict::QuotaExceeded
    );
    let json_export = t
        .admin(
            "GET",
            &format!("/usageplans/demo-usage-plan/usage/export?{q}"),
            "",
        )
        .json();
    assert_eq!(json_export["values"]["testApikey"], json!([[8, 0]]));
    let r = t.admin(
        "GET",
        &format!("/usageplans/demo-usage-plan/usage/export?{q}&format=csv"),
        "",
    );
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        r.body,
        format!("keyId,keyName,date,used,remaining\ntestApikey,testApikey,{day},8,0\n")
    );
    // Days long past or far ahead are answered from a bounded read: no use, full quota.
    let u = t
        .admin(
            "GET",
            "/usageplans/demo-usage-plan/usage?startDate=0001-01-01&endDate=0001-01-02",
            "",
        )
        .json();
    assert_eq!(u["values"]["testApikey"], json!([[0, 5], [0, 5]]), "{u}");
    let u = t
        .admin(
            "GET",
            "/usageplans/demo-usage-plan/usage?startDate=9999-12-30&endDate=9999-12-31",
            "",
        )
        .json();
    assert_eq!(u["values"]["testApikey"], json!([[0, 5], [0, 5]]), "{u}");
    // A plan without usage yet reports zeros with the full quota remaining.
    let u = t
        .admin(
            "GET",
            &format!("/usageplans/premium-usage-plan/usage?{q}&keyId=premiumApikey"),
            "",
        )
        .json();
    assert_eq!(u["values"]["premiumApikey"], json!([[0, 1_000_000]]));
    // A key that is not in the plan has no usage in it: GetUsage and its export answer 404,
    // as UpdateUsage does for the same pair, with the same message.
    for path in [
        format!("/usageplans/premium-usage-plan/usage?{q}&keyId=testApikey"),
        format!("/usageplans/premium-usage-plan/usage/export?{q}&keyId=testApikey"),
        format!("/usageplans/premium-usage-plan/usage/export?{q}&keyId=testApikey&format=csv"),
    ] {
        let r = t.admin("GET", &path, "");
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.header("x-amzn-ErrorType"), Some("NotFoundException"));
        assert_eq!(
            r.message(),
            "API key testApikey is not in usage plan premium-usage-plan"
        );
    }
    let r = t.admin(
        "PATCH",
        "/usageplans/premium-usage-plan/keys/testApikey/usage",
        &json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": "1"}]})
            .to_string(),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        r.message(),
        "API key testApikey is not in usage plan premium-usage-plan"
    );
}

/// The largest quota the API accepts (2^52) is counted exactly on Redis, whose script works in
/// doubles: each call takes exactly one unit, and a full grant on top is exact too.
#[tokio::test]
async fn largest_quota_is_exact_on_redis() {
    const MAX: u64 = tollgate_core::quota::MAX_QUOTA;
    let redis = RedisServer::start().unwrap();
    let t = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    let key = "largest-quota-key-0123456789";
    let (pid, kid) = seed(&t, key, MAX as i64);
    let plan = t.admin("GET", &format!("/usageplans/{pid}"), "").json();
    assert_eq!(plan["quota"]["limit"], MAX, "{plan}");
    let mut c = t.client().await;
    for used in 1..=3 {
        let r = check(&mut c, stage_request(key, API, STAGE)).await;
        assert_eq!(r.verdict(), Verdict::Ok);
        let q = r.quota.unwrap();
        assert_eq!((q.limit, q.used, q.remaining), (MAX, used, MAX - used));
    }
    let r = t.admin(
        "PATCH",
        &format!("/usageplans/{pid}/keys/{kid}/usage"),
        &json!({"patchOperations": [{"op": "replace", "path": "/remaining", "value": MAX.to_string()}]})
            .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = check(&mut c, stage_request(key, API, STAGE)).await;
    assert_eq!(r.verdict(), Verdict::Ok);
    assert_eq!(r.quota.unwrap().remaining, MAX - 1);
}

/// Two instances on one Redis share the records: a key created through A works on B, and
/// once A disables it, B answers 403 within one second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_disable_key_within_one_second() {
    let redis = RedisServer::start().unwrap();
    let a = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    let b = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    let value = "shared-key-0123456789abc";
    let (_, kid) = seed(&a, value, 1000);
    let deadline = Instant::now() + Duration::from_secs(1);
    while verdict(&b, value).await != Verdict::Ok {
        assert!(
            Instant::now() < deadline,
            "B never saw the key created through A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = a.admin(
        "PATCH",
        &format!("/apikeys/{kid}"),
        &json!({"patchOperations": [{"op": "replace", "path": "/enabled", "value": "false"}]})
            .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let disabled_at = Instant::now();
    loop {
        let v = verdict(&b, value).await;
        if v == Verdict::KeyDisabled {
            break;
        }
        assert_eq!(v, Verdict::Ok);
        assert!(
            disabled_at.elapsed() < Duration::from_secs(1),
            "B still admits the key after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let check_http = b.admin("GET", &format!("/apikeys/{kid}"), "").json();
    assert_eq!(check_http["enabled"], false);
}

/// Plans, keys, memberships and usage live in Redis and survive a restart of tollgate.
#[tokio::test]
async fn records_and_usage_survive_restart() {
    let redis = RedisServer::start().unwrap();
    let t = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    let value = "restart-key-0123456789ab";
    let (pid, kid) = seed(&t, value, 5);
    for _ in 0..2 {
        assert_eq!(verdict(&t, value).await, Verdict::Ok);
    }
    let plan_before = t.admin("GET", &format!("/usageplans/{pid}"), "").json();
    drop(t);
    let t = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    assert_eq!(
        t.admin("GET", &format!("/usageplans/{pid}"), "").json(),
        plan_before
    );
    assert_eq!(
        t.admin("GET", &format!("/apikeys/{kid}"), "").json()["name"],
        "k"
    );
    let day = today();
    let u = t
        .admin(
            "GET",
            &format!("/usageplans/{pid}/usage?startDate={day}&endDate={day}"),
            "",
        )
        .json();
    assert_eq!(u["values"][kid.as_str()], json!([[2, 3]]), "{u}");
    assert_eq!(
        verdict(&t, value).await,
        Verdict::Ok,
        "the key still works after the restart"
    );
}

/// Redis restarting without its data leaves the running instances holding the records:
/// they write them back, so management writes go on working (not a 409 "changed
/// concurrently" on every write, as before) and an instance started afterwards serves the
/// same plans and keys instead of an empty catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_come_back_after_redis_loses_its_data() {
    let mut redis = RedisServer::start().unwrap();
    let a = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    let b = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    let value = "lost-data-key-0123456789";
    let (pid, kid) = seed(&a, value, 1000);
    let deadline = Instant::now() + Duration::from_secs(2);
    while verdict(&b, value).await != Verdict::Ok {
        assert!(Instant::now() < deadline, "B never saw the key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.restart().unwrap();
    // Both instances find the older catalog within their one-second poll; a write finds
    // it at once. Either way the write must succeed, on each instance. The first call on a
    // connection the restart broke may answer 503 (retry later), as any outage does.
    for (name, t) in [("A", &a), ("B", &b)] {
        let body = json!({"patchOperations": [
            {"op": "replace", "path": "/description", "value": format!("after loss, {name}")}
        ]})
        .to_string();
        let deadline = Instant::now() + Duration::from_secs(5);
        let r = loop {
            let r = t.admin("PATCH", &format!("/usageplans/{pid}"), &body);
            if r.status != 503 || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(verdict(t, value).await, Verdict::Ok, "{name}");
    }
    let c = Tollgate::start_admin(&["--redis-url", &redis.url()], &[]);
    let plan = c.admin("GET", &format!("/usageplans/{pid}"), "");
    assert_eq!(
        plan.status, 200,
        "the new instance lists the plan: {}",
        plan.body
    );
    assert_eq!(plan.json()["description"], "after loss, B");
    assert_eq!(
        c.admin("GET", &format!("/apikeys/{kid}"), "").json()["name"],
        "k"
    );
    assert_eq!(
        verdict(&c, value).await,
        Verdict::Ok,
        "the new instance admits the key"
    );
    assert!(
        a.log().contains("lost data") || b.log().contains("lost data"),
        "the restore is logged"
    );
}

/// `tollgate apply -f FILE` writes the file to the shared Redis idempotently; an instance
/// started without --config then serves it, and `serve --config` re-applying it changes
/// nothing.
#[tokio::test]
async fn apply_subcommand_is_idempotent() {
    let redis = RedisServer::start().unwrap();
    let seed = seed_config();
    let apply = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "apply",
                "-f",
                seed.to_str().unwrap(),
                "--redis-url",
                &redis.url(),
            ])
            .env_remove("TOLLGATE_REDIS_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = apply();
    assert!(
        first.contains("usage plans: 2 created") && first.contains("API keys: 2 created"),
        "{first}"
    );
    assert!(first.contains("catalog version 1"), "{first}");
    let second = apply();
    assert!(
        second.contains("0 created, 0 updated") && second.contains("catalog version 1"),
        "{second}"
    );
    let t = Tollgate::start_admin(
        &[
            "--redis-url",
            &redis.url(),
            "--config",
            seed.to_str().unwrap(),
        ],
        &[],
    );
    let mut c = t.client().await;
    assert_eq!(
        check(&mut c, seed_request(TEST_KEY)).await.verdict(),
        Verdict::Ok
    );
    assert!(
        apply().contains("catalog version 1"),
        "serve --config changed nothing"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["apply", "-f", seed.to_str().unwrap()])
        .env_remove("TOLLGATE_REDIS_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--redis-url"));
}

/// With --keep-key-values a key's value can be read back; without, never after creation.
/// No key value ever reaches the log.
#[tokio::test]
async fn key_values_only_when_kept() {
    let kept = Tollgate::start_admin(&["--keep-key-values"], &[]);
    let (_, kid) = seed(&kept, "kept-value-0123456789ab", 5);
    let k = kept
        .admin("GET", &format!("/apikeys/{kid}?includeValue=true"), "")
        .json();
    assert_eq!(k["value"], "kept-value-0123456789ab");
    assert!(kept
        .admin("GET", &format!("/apikeys/{kid}"), "")
        .json()
        .get("value")
        .is_none());
    let list = kept.admin("GET", "/apikeys?includeValues=true", "").json();
    assert_eq!(list["item"][0]["value"], "kept-value-0123456789ab");
    let not_kept = Tollgate::start_admin(&[], &[]);
    let (_, kid) = seed(&not_kept, "secret-value-0123456789ab", 5);
    let k = not_kept
        .admin("GET", &format!("/apikeys/{kid}?includeValue=true"), "")
        .json();
    assert!(k.get("value").is_none(), "{k}");
    for t in [&kept, &not_kept] {
        let log = t.log();
        assert!(!log.contains("value-0123456789ab"), "{log}");
    }
}

/// `/openapi.json` is served without credentials and describes every management route.
#[tokio::test]
async fn openapi_document_is_served() {
    let t = Tollgate::start(&[]);
    let r = t.http("GET", "/openapi.json", &[], "");
    assert_eq!(r.status, 200);
    let doc: Value = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/usageplans",
        "/apikeys",
        "/usageplans/{usageplanId}/usage",
        "/usageplans/{usageplanId}/keys/{keyId}/usage",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
}
