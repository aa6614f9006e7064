//! The seed flow driven by the official AWS SDK for Python (boto3), with SigV4 credentials
//! configured on the server: `tests/python/seed_flow.py` creates the key, the plan with a
//! quota of 5 per DAY and the plan key; five checks pass and the sixth gets 429; get_usage
//! shows 5 used and 0 remaining; update_usage grants 3 more and three more checks pass.
//!
//! Python 3 with boto3, grpcio and grpcio-tools is required (`.ci/run` installs them from
//! `tests/python/requirements.txt`); without them this test fails and says what to install.

mod support;

use std::path::Path;
use std::process::Command;
use support::Tollgate;
use tollgate_testkit::RedisServer;

const ACCESS_KEY_ID: &str = "AKIDTOLLGATETEST";
const SECRET: &str = "tollgate/test+secret/0123456789abcdef";

fn require_python() {
    support::python::require_python_modules(&["boto3", "grpc", "grpc_tools"]);
}

/// The seed flow with boto3's apigateway client against tollgate on Redis.
#[test]
fn boto3_seed_flow() {
    require_python();
    let redis = RedisServer::start().unwrap();
    let t = Tollgate::start_with_env(
        &["--redis-url", &redis.url()],
        &[
            ("TOLLGATE_ADMIN_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("TOLLGATE_ADMIN_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(manifest.join("tests/python/seed_flow.py"))
        .arg(format!("http://127.0.0.1:{}", t.http_port))
        .arg(format!("127.0.0.1:{}", t.grpc_port))
        .arg(manifest.join("../../proto"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("seed flow: OK"),
        "seed_flow.py failed ({}):\n{stdout}\n{stderr}\ntollgate log:\n{}",
        out.status,
        t.log()
    );
    assert!(!t.log().contains(SECRET), "the secret reached the log");
}
