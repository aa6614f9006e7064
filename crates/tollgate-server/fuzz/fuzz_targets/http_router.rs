//! Drives the whole HTTP port in process: the management API (bearer, SigV4 and
//! unauthenticated calls), `POST /v1/check`, `/v1/auth`, `/healthz`, `/metrics` and the
//! console's files under `/console`, built by `app::http_routes` as `app::serve` builds
//! them, over the memory store with the seed scenario applied.
//!
//! Why: every byte of these requests comes from outside the service. The target asserts
//! that no sequence of requests panics and that none is answered with a 5xx: the memory
//! store cannot fail, so a 5xx can only mean that a malformed request hit a bug.
//!
//! Each input is a short sequence of requests against a fresh app, so a crash replays the
//! same way; `{id}` in a path stands for the last `id` a response returned, which lets a
//! create be followed by a patch, a usage call or a delete of what it made.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use tollgate_server::admin::auth::AdminAuth;
use tollgate_server::admin::{self, AdminSettings, AdminState};
use tollgate_server::catalog_sync::CatalogSync;
use tollgate_server::cli::FailureMode;
use tollgate_server::config::{self, ConfigFile};
use tollgate_server::limiter::Limiter;
use tollgate_store::catalog::{CatalogRecords, Change};
use tollgate_store::{CatalogStore, MemoryStore};
use tower_service::Service;

const SEED: &str = include_str!("../../../../examples/calculator/tollgate.yaml");
const TOKEN: &str = "fuzz-admin-token";
const ACCESS_KEY_ID: &str = "AKIDFUZZ";
const SECRET: &str = "fuzz-secret-access-key";
const PLAN_IDS: [&str; 2] = ["demo-usage-plan", "premium-usage-plan"];
const KEY_IDS: [&str; 2] = ["testApikey", "premiumApikey"];
const KEY_VALUES: [&str; 2] = [
    "demo-testApikey-0123456789abcdef",
    "demo-premiumApikey-0123456789abcdef",
];

struct Shared {
    runtime: tokio::runtime::Runtime,
    seed: ConfigFile,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the fuzz target"),
        seed: config::parse_file("tollgate.yaml", SEED).expect("the seed file parses"),
    })
}

/// A fresh app on the memory store with the seed scenario applied.
async fn app(seed: &ConfigFile, open: bool) -> axum::Router {
    let store = Arc::new(MemoryStore::new());
    let now = admin::now_s();
    let (changes, _) =
        tollgate_server::bootstrap::changes_for(&CatalogRecords::default(), seed, false, now);
    commit(&*store, &changes).await;
    let limiter = Arc::new(Limiter::new(
        Default::default(),
        store.clone(),
        FailureMode::Deny,
        7,
    ));
    let sync = Arc::new(CatalogSync::new(store.clone(), limiter.clone()));
    sync.reload().await.expect("the memory store loads");
    let settings = if open {
        AdminSettings {
            admin_unauthenticated: true,
            ..AdminSettings::default()
        }
    } else {
        AdminSettings {
            admin_token: Some(TOKEN.into()),
            admin_access_key_id: Some(ACCESS_KEY_ID.into()),
            admin_secret_access_key: Some(SECRET.into()),
            ..AdminSettings::default()
        }
    };
    let admin = Arc::new(AdminState {
        sync,
        store,
        auth: AdminAuth::from_settings(&settings).expect("valid admin settings"),
        keep_key_values: open,
    });
    tollgate_server::app::http_routes(limiter, admin)
}

async fn commit(store: &dyn CatalogStore, changes: &[Change]) {
    store
        .commit(0, changes)
        .await
        .expect("the memory store commits the seed");
}

#[derive(Arbitrary, Debug)]
enum MethodChoice {
    Get,
    Post,
    Patch,
    Delete,
    Put,
    Head,
    Options,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Ident {
    Plan(u8),
    Key(u8),
    Last,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum PathChoice {
    Plans,
    Plan(Ident),
    PlanKeys(Ident),
    PlanKey(Ident, Ident),
    PlanKeyUsage(Ident, Ident),
    PlanUsage(Ident),
    PlanUsageExport(Ident),
    Keys,
    Key(Ident),
    Check,
    Auth,
    Healthz,
    Metrics,
    OpenApi,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum AuthChoice {
    None,
    Bearer,
    WrongBearer(String),
    SigV4 { date_shift_s: i16 },
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum JsonLeaf {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    KeyValue(u8),
    PlanId(u8),
    KeyId(u8),
    Period(u8),
}

impl JsonLeaf {
    fn value(&self) -> Value {
        match self {
            JsonLeaf::Null => Value::Null,
            JsonLeaf::Bool(b) => json!(b),
            JsonLeaf::Int(i) => json!(i),
            JsonLeaf::UInt(u) => json!(u),
            JsonLeaf::Float(f) => json!(f),
            JsonLeaf::Str(s) => json!(s),
            JsonLeaf::KeyValue(i) => json!(KEY_VALUES[usize::from(*i) % 2]),
            JsonLeaf::PlanId(i) => json!(PLAN_IDS[usize::from(*i) % 2]),
            JsonLeaf::KeyId(i) => json!(KEY_IDS[usize::from(*i) % 2]),
            JsonLeaf::Period(i) => {
                let p = ["DAY", "WEEK", "MONTH", "day", "YEAR"][usize::from(*i) % 5];
                json!(p)
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct PatchOp {
    op: u8,
    path: PatchPath,
    value: Option<JsonLeaf>,
    from: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum PatchPath {
    Known(u8),
    Raw(String),
}

const PATCH_PATHS: [&str; 16] = [
    "/name",
    "/description",
    "/throttle/rateLimit",
    "/throttle/burstLimit",
    "/quota/limit",
    "/quota/period",
    "/quota/offset",
    "/apiStages",
    "/apiStages/demo-API-usage-plan:usage-plan-test/throttle",
    "/apiStages/demo-API-usage-plan:usage-plan-test/throttle/~1usageplanOffering~1GET/rateLimit",
    "/apiStages/demo-API-usage-plan:usage-plan-test/throttle/~1usageplanOffering~1GET/burstLimit",
    "/enabled",
    "/customerId",
    "/tags/team",
    "/productCode",
    "/remaining",
];

/// An API stage of a plan body: api id, stage, and per-method throttles.
type StageSpec = (String, String, Vec<(String, JsonLeaf, JsonLeaf)>);

#[derive(Arbitrary, Debug)]
enum BodyChoice {
    Empty,
    Raw(Vec<u8>),
    /// A JSON object of named fields: whichever create or check body the route takes.
    Object(Vec<(u8, JsonLeaf)>),
    Plan {
        throttle: Option<(JsonLeaf, JsonLeaf)>,
        quota: Option<(JsonLeaf, JsonLeaf, Option<JsonLeaf>)>,
        stages: Vec<StageSpec>,
    },
    Patch(Vec<PatchOp>),
    /// UpdateUsage's one operation.
    Remaining(Val),
    Csv(Vec<Vec<String>>),
}

const FIELDS: [&str; 24] = [
    "name",
    "description",
    "value",
    "enabled",
    "customerId",
    "generateDistinctId",
    "stageKeys",
    "tags",
    "keyId",
    "keyType",
    "apiKey",
    "apiId",
    "stage",
    "resource",
    "method",
    "cost",
    "api_key",
    "api_id",
    "throttle",
    "quota",
    "apiStages",
    "productCode",
    "patchOperations",
    "id",
];

fn body_bytes(b: &BodyChoice) -> Vec<u8> {
    match b {
        BodyChoice::Empty => Vec::new(),
        BodyChoice::Raw(v) => v.clone(),
        BodyChoice::Object(fields) => {
            let map: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(k, v)| {
                    (
                        FIELDS[usize::from(*k) % FIELDS.len()].to_string(),
                        v.value(),
                    )
                })
                .collect();
            Value::Object(map).to_string().into_bytes()
        }
        BodyChoice::Plan {
            throttle,
            quota,
            stages,
        } => {
            let mut plan = json!({"name": "fuzz-plan"});
            if let Some((r, b)) = throttle {
                plan["throttle"] = json!({"rateLimit": r.value(), "burstLimit": b.value()});
            }
            if let Some((l, p, o)) = quota {
                let mut q = json!({"limit": l.value(), "period": p.value()});
                if let Some(o) = o {
                    q["offset"] = o.value();
                }
                plan["quota"] = q;
            }
            plan["apiStages"] = stages
                .iter()
                .map(|(api, stage, th)| {
                    let t: serde_json::Map<String, Value> = th
                        .iter()
                        .map(|(k, r, b)| {
                            (
                                k.clone(),
                                json!({"rateLimit": r.value(), "burstLimit": b.value()}),
                            )
                        })
                        .collect();
                    json!({"apiId": api, "stage": stage, "throttle": t})
                })
                .collect();
            plan.to_string().into_bytes()
        }
        BodyChoice::Patch(ops) => {
            let ops: Vec<Value> = ops
                .iter()
                .map(|o| {
                    let op =
                        ["replace", "add", "remove", "copy", "move", "test"][usize::from(o.op) % 6];
                    let path = match &o.path {
                        PatchPath::Known(i) => {
                            PATCH_PATHS[usize::from(*i) % PATCH_PATHS.len()].to_string()
                        }
                        PatchPath::Raw(s) => s.clone(),
                    };
                    let mut v = json!({ "op": op, "path": path });
                    if let Some(val) = &o.value {
                        // PATCH values are strings on the wire, as AWS sends them.
                        v["value"] = match val.value() {
                            Value::String(s) => Value::String(s),
                            other => Value::String(other.to_string()),
                        };
                    }
                    if let Some(f) = &o.from {
                        v["from"] = json!(f);
                    }
                    v
                })
                .collect();
            json!({ "patchOperations": ops }).to_string().into_bytes()
        }
        BodyChoice::Remaining(v) => json!({"patchOperations": [
            {"op": "replace", "path": "/remaining", "value": v.s()}
        ]})
        .to_string()
        .into_bytes(),
        BodyChoice::Csv(rows) => {
            let mut out = String::from("Name,Key,Description,Enabled,UsagePlanIds\n");
            for r in rows {
                out.push_str(&r.join(","));
                out.push('\n');
            }
            out.into_bytes()
        }
    }
}

/// A query parameter or header value: the ones the routes look for, or anything.
#[derive(Arbitrary, Debug)]
enum Val {
    KeyValue(u8),
    PlanId(u8),
    KeyId(u8),
    Api,
    Stage,
    /// A `YYYY-MM-DD` date of any digits.
    Date {
        y: u16,
        m: u8,
        d: u8,
    },
    /// Today, shifted by some days.
    Today(i16),
    Int(i64),
    Bool(bool),
    Raw(String),
}

impl Val {
    fn s(&self) -> String {
        match self {
            Val::KeyValue(i) => KEY_VALUES[usize::from(*i) % 2].into(),
            Val::PlanId(i) => PLAN_IDS[usize::from(*i) % 2].into(),
            Val::KeyId(i) => KEY_IDS[usize::from(*i) % 2].into(),
            Val::Api => "demo-API-usage-plan".into(),
            Val::Stage => "usage-plan-test".into(),
            Val::Date { y, m, d } => format!("{:04}-{:02}-{:02}", y % 10_000, m % 100, d % 100),
            Val::Today(shift) => {
                let days = admin::now_s().div_euclid(86_400) + i64::from(*shift);
                tollgate_server::admin::usage::format_date(days)
            }
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Raw(s) => s.clone(),
        }
    }
}

const PARAMS: [&str; 17] = [
    "startDate",
    "endDate",
    "keyId",
    "position",
    "limit",
    "mode",
    "format",
    "failonwarnings",
    "includeValues",
    "includeValue",
    "nameQuery",
    "customerId",
    "api",
    "stage",
    "cost",
    "keyType",
    "name",
];

#[derive(Arbitrary, Debug)]
struct Req {
    method: MethodChoice,
    path: PathChoice,
    query: Vec<(u8, Val)>,
    raw_query: Option<String>,
    /// `startDate` and `endDate` together, as every usage report needs both.
    dates: Option<(Val, Val)>,
    headers: Vec<(u8, Val)>,
    body: BodyChoice,
    auth: AuthChoice,
}

const HEADERS: [&str; 12] = [
    "x-api-key",
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-tollgate-api",
    "x-tollgate-stage",
    "x-tollgate-cost",
    "x-tollgate-mode",
    "content-type",
    "x-amz-date",
    "x-amz-content-sha256",
];

#[derive(Arbitrary, Debug)]
struct Input {
    open: bool,
    requests: Vec<Req>,
}

fn ident(i: &Ident, last: &str) -> String {
    match i {
        Ident::Plan(n) => PLAN_IDS[usize::from(*n) % 2].into(),
        Ident::Key(n) => KEY_IDS[usize::from(*n) % 2].into(),
        Ident::Last => last.into(),
        Ident::Raw(s) => s.clone(),
    }
}

fn path_of(p: &PathChoice, last: &str) -> String {
    let i = |x: &Ident| ident(x, last);
    match p {
        PathChoice::Plans => "/usageplans".into(),
        PathChoice::Plan(a) => format!("/usageplans/{}", i(a)),
        PathChoice::PlanKeys(a) => format!("/usageplans/{}/keys", i(a)),
        PathChoice::PlanKey(a, b) => format!("/usageplans/{}/keys/{}", i(a), i(b)),
        PathChoice::PlanKeyUsage(a, b) => format!("/usageplans/{}/keys/{}/usage", i(a), i(b)),
        PathChoice::PlanUsage(a) => format!("/usageplans/{}/usage", i(a)),
        PathChoice::PlanUsageExport(a) => format!("/usageplans/{}/usage/export", i(a)),
        PathChoice::Keys => "/apikeys".into(),
        PathChoice::Key(a) => format!("/apikeys/{}", i(a)),
        PathChoice::Check => "/v1/check".into(),
        PathChoice::Auth => "/v1/auth".into(),
        PathChoice::Healthz => "/healthz".into(),
        PathChoice::Metrics => "/metrics".into(),
        PathChoice::OpenApi => "/openapi.json".into(),
        PathChoice::Raw(s) => s.clone(),
    }
}

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A SigV4 `Authorization` header for the request, signed with the server's secret so the
/// request reaches the handlers through the SigV4 path; its canonical form is made as the
/// AWS SDKs make it (path and query taken as they are sent).
fn sign(method: &str, uri: &http::Uri, amz_date: &str, body: &[u8]) -> String {
    let enc = |s: &str, slash: bool| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (slash && b == b'/') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let mut query: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (enc(k, false), enc(v, false))
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let canonical = format!(
        "{method}\n{}\n{}\nhost:tollgate\nx-amz-date:{amz_date}\n\nhost;x-amz-date\n{}",
        enc(uri.path(), true),
        query.join("&"),
        hex_sha256(body)
    );
    let date = &amz_date[..8];
    let scope = format!("{date}/us-east-1/apigateway/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical.as_bytes())
    );
    let k = hmac(format!("AWS4{SECRET}").as_bytes(), date.as_bytes());
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"apigateway");
    let k = hmac(&k, b"aws4_request");
    let sig = hex::encode(hmac(&k, to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, SignedHeaders=host;x-amz-date, Signature={sig}")
}

fn amz_date(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let d = tollgate_core::calendar::civil_from_days(days);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        d.year,
        d.month,
        d.day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn request(r: &Req, last: &str) -> Option<http::Request<Body>> {
    let method = match &r.method {
        MethodChoice::Get => "GET",
        MethodChoice::Post => "POST",
        MethodChoice::Patch => "PATCH",
        MethodChoice::Delete => "DELETE",
        MethodChoice::Put => "PUT",
        MethodChoice::Head => "HEAD",
        MethodChoice::Options => "OPTIONS",
        MethodChoice::Other(s) => s.as_str(),
    };
    let method = http::Method::from_bytes(method.as_bytes()).ok()?;
    let mut target = path_of(&r.path, last);
    let mut query: Vec<String> = r
        .query
        .iter()
        .map(|(k, v)| format!("{}={}", PARAMS[usize::from(*k) % PARAMS.len()], v.s()))
        .collect();
    if let Some((start, end)) = &r.dates {
        query.push(format!("startDate={}&endDate={}", start.s(), end.s()));
    }
    query.extend(r.raw_query.clone());
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query.join("&"));
    }
    let uri: http::Uri = target.parse().ok()?;
    uri.path_and_query()?;
    let body = body_bytes(&r.body);
    let mut b = http::Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .header("host", "tollgate");
    for (name, value) in &r.headers {
        let value = http::HeaderValue::from_str(&value.s()).ok()?;
        b = b.header(HEADERS[usize::from(*name) % HEADERS.len()], value);
    }
    match &r.auth {
        AuthChoice::None => {}
        AuthChoice::Bearer => b = b.header("authorization", format!("Bearer {TOKEN}")),
        AuthChoice::WrongBearer(t) => {
            b = b.header(
                "authorization",
                http::HeaderValue::from_str(&format!("Bearer {t}")).ok()?,
            )
        }
        AuthChoice::SigV4 { date_shift_s } => {
            // Mostly within the 15 minutes of skew the server allows, sometimes just past.
            let date = amz_date(admin::now_s() + i64::from(*date_shift_s % 1_000));
            let auth = sign(method.as_str(), &uri, &date, &body);
            b = b.header("x-amz-date", date).header("authorization", auth);
        }
        AuthChoice::Raw(s) => b = b.header("authorization", http::HeaderValue::from_str(s).ok()?),
    }
    b.body(Body::from(body)).ok()
}

/// The `id` of a JSON response, if it has one, for `{id}`-style follow-ups.
fn id_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = v.get("id").or_else(|| v.get("ids")?.get(0))?;
    Some(id.as_str()?.to_string())
}

/// With `TOLLGATE_FUZZ_TRACE` set, every request and its status go to stderr, to see what
/// a corpus reaches (`http_router corpus/http_router -runs=0 2>&1 | grep trace:`).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("TOLLGATE_FUZZ_TRACE").is_some())
}

fn run(data: &[u8]) {
    let u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary_take_rest(u) else {
        return;
    };
    if input.requests.is_empty() || input.requests.len() > 6 {
        return;
    }
    let s = shared();
    s.runtime.block_on(async {
        let mut app = app(&s.seed, input.open).await;
        let mut last = String::new();
        for r in &input.requests {
            let Some(req) = request(r, &last) else {
                continue;
            };
            let auth = match &r.auth {
                AuthChoice::None => "none",
                AuthChoice::Bearer => "bearer",
                AuthChoice::WrongBearer(_) => "wrong-bearer",
                AuthChoice::SigV4 { .. } => "sigv4",
                AuthChoice::Raw(_) => "raw",
            };
            let mode = if input.open { "open" } else { "closed" };
            let shown = format!("{} {} ({mode}, {auth})", req.method(), req.uri());
            let resp = app.call(req).await.expect("the router is infallible");
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .expect("a response body reads")
                .to_bytes();
            if trace() {
                eprintln!("trace: {shown} -> {status}");
            }
            assert!(
                !status.is_server_error(),
                "{shown} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            if let Some(id) = id_of(&body) {
                last = id;
            }
        }
    });
}

fuzz_target!(|data: &[u8]| run(data));
