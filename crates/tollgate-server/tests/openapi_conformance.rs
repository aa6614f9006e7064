//! The management API against its own OpenAPI document, driven by an independent
//! property-based client (schemathesis, from `tests/python/requirements.txt`). It generates
//! requests from `/openapi.json`, valid and invalid, including sequences that create,
//! read and delete records, and checks every answer:
//! - no 5xx;
//! - every status code, content type, header and body is one the document gives;
//! - a request without credentials is refused;
//! - a deleted record is gone;
//! - methods a path lacks get 405.
//!
//! Two of its checks are left out, because the document cannot say what they need:
//! - `positive_data_acceptance` would need rules across fields, such as a quota offset below
//!   the limit, a report of at most 366 days, or which patch paths each resource has.
//! - `negative_data_rejection`: the API reads an empty query value (`limit=`) as absent, as
//!   AWS's does, where an OpenAPI integer cannot be empty.
//!
//! `ensure_resource_availability` is also left out: it takes the 404 for an unknown API key
//! in `POST /usageplans/{id}/keys` for a missing plan.
//!
//! The seed is fixed, so a run repeats. A failure prints schemathesis's report, with a curl
//! command that reproduces each finding.

mod support;

use std::process::Command;
use support::Tollgate;
use tollgate_testkit::RedisServer;

const TOKEN: &str = "openapi-conformance-token";

#[test]
fn management_api_conforms_to_its_document() {
    support::python::require_python_modules(&["schemathesis"]);
    let redis = RedisServer::start().unwrap();
    let t = Tollgate::start_with_env(
        &["--redis-url", &redis.url()],
        &[("TOLLGATE_ADMIN_TOKEN", TOKEN)],
    );
    // Its example database and any files go to a directory of this test's own.
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .current_dir(scratch.path())
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("http://127.0.0.1:{}/openapi.json", t.http_port))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", "all"])
        .args([
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection,ensure_resource_availability",
        ])
        .args([
            "--max-examples",
            "25",
            "--seed",
            "20261205",
            "--workers",
            "1",
        ])
        .args(["--generation-database", "none", "--no-color"])
        .output()
        .expect("run python3 -m schemathesis.cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found the API and its document apart ({}):\n{stdout}\n{stderr}\ntollgate log:\n{}",
        out.status,
        t.log()
    );
    // A run that tested nothing would also exit 0.
    assert!(
        stdout.contains("Tested: 17"),
        "not every operation was tested:\n{stdout}"
    );
    assert!(!t.log().contains("panicked"), "{}", t.log());
}
