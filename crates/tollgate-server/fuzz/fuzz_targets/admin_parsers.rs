//! Drives the small pure parsers of the management API and the check adapters directly:
//! `request_path::resource_of_target` (the resource of a proxy's forwarded target),
//! SigV4 verification (`admin::sigv4::verify`) on arbitrary methods, paths, queries and
//! headers, the date parsing of usage reports, and PATCH application to the seed plan
//! and key.
//!
//! Why: the router target reaches these too, but only through requests the HTTP types
//! accept; calling them directly lets the fuzzer spend its time inside them.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tollgate_server::admin::model::PatchOperation;
use tollgate_server::admin::sigv4::{self, Credentials, SignedRequest};

#[derive(Arbitrary, Debug)]
enum Input {
    Target(String),
    SigV4 {
        method: String,
        path: String,
        query: Option<String>,
        headers: Vec<(u8, String)>,
        body: Vec<u8>,
        now_s: i64,
    },
    Date(String),
    PatchPlan(Vec<(Option<String>, Option<String>, Option<String>)>),
    PatchKey(Vec<(Option<String>, Option<String>, Option<String>)>),
}

const HEADERS: [&str; 5] = [
    "authorization",
    "x-amz-date",
    "host",
    "x-amz-content-sha256",
    "content-type",
];

fn ops(v: &[(Option<String>, Option<String>, Option<String>)]) -> Vec<PatchOperation> {
    v.iter()
        .map(|(op, path, value)| PatchOperation {
            op: op.clone(),
            path: path.clone(),
            value: value.clone(),
            from: None,
        })
        .collect()
}

fn seed_plan() -> tollgate_server::admin::model::CreateUsagePlanRequest {
    let json = r#"{"name":"p","throttle":{"rateLimit":10,"burstLimit":20},
        "quota":{"limit":1000,"period":"MONTH","offset":10},
        "apiStages":[{"apiId":"a","stage":"s","throttle":{"/x/GET":{"rateLimit":2,"burstLimit":4}}}]}"#;
    serde_json::from_str(json).expect("the seed plan parses")
}

fuzz_target!(|data: &[u8]| {
    let u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary_take_rest(u) else {
        return;
    };
    match input {
        Input::Target(t) => {
            let r = tollgate_server::request_path::resource_of_target(&t);
            assert!(!r.contains('?') || t.contains("%3F") || t.contains("%3f"));
        }
        Input::SigV4 {
            method,
            path,
            query,
            headers,
            body,
            now_s,
        } => {
            let mut map = axum::http::HeaderMap::new();
            for (n, v) in headers {
                if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
                    map.append(HEADERS[usize::from(n) % HEADERS.len()], v);
                }
            }
            let creds = Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            };
            let _ = sigv4::verify(
                &creds,
                &SignedRequest {
                    method: &method,
                    raw_path: &path,
                    raw_query: query.as_deref(),
                    headers: &map,
                    body: &body,
                },
                now_s,
            );
        }
        Input::Date(s) => {
            if let Ok(days) = tollgate_server::admin::usage::parse_date("startDate", &s) {
                assert_eq!(tollgate_server::admin::usage::format_date(days), s);
            }
        }
        Input::PatchPlan(v) => {
            let mut plan = seed_plan();
            let _ = tollgate_server::admin::patch::patch_plan(&mut plan, &ops(&v));
        }
        Input::PatchKey(v) => {
            let Ok(mut key) = tollgate_server::admin::keys::new_record(
                Some("k".into()),
                "demo-testApikey-0123456789abcdef",
                true,
                None,
                None,
                Default::default(),
                false,
            ) else {
                return;
            };
            let _ = tollgate_server::admin::patch::patch_key(&mut key, &ops(&v));
        }
    }
});
