//! The deployment files (Dockerfile, docker-compose.yml, deploy/{nginx,prometheus,grafana,
//! k8s,helm}/, the demo backend), checked without Docker, Kubernetes or Helm: each test runs
//! one check of `tests/python/test_deploy.py`, whose docstring says what it checks. They parse
//! every file, and hold the files to one another and to tollgate's own contract (ports and
//! /healthz from `src/cli.rs`); the demo backend is started and called for real.
//!
//! Python 3 with PyYAML is required (`pip install -r
//! crates/tollgate-server/tests/python/requirements.txt`, which `.ci/run` does): without them
//! these tests fail, saying so.

mod support;

use std::path::Path;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_deploy.py");
fn require_python() {
    support::python::require_python_modules(&["yaml"]);
}

/// Runs one check of test_deploy.py and fails with its report if it fails.
fn check(name: &str) {
    require_python();
    assert!(Path::new(SCRIPT).is_file(), "{SCRIPT} is missing");
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(name)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(out.status.success(), "{name} failed:\n{stderr}{stdout}");
}

/// Every check in test_deploy.py has a test here, so none is silently left unrun.
#[test]
fn every_python_check_runs() {
    require_python();
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg("--list")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    let mut ours: Vec<String> = CHECKS.iter().map(|s| s.to_string()).collect();
    ours.sort();
    assert_eq!(
        listed_sorted, ours,
        "test_deploy.py's checks and CHECKS in deploy_files.rs differ: add a #[test] for each new check"
    );
}

/// One `#[test]` per check, and `CHECKS`, their names.
macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// The checks of test_deploy.py that have a test here.
        const CHECKS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[doc = concat!("Runs `", stringify!($name), "` of tests/python/test_deploy.py.")]
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

checks!(
    test_compose_parses,
    test_compose_mounted_files_exist,
    test_compose_depends_on,
    test_compose_published_ports,
    test_compose_tollgate_instances,
    test_compose_proxies_wait_for_their_upstreams,
    test_nginx_compose_upstreams,
    test_nginx_compose_config_is_the_tested_one,
    test_envoy_upstreams,
    test_prometheus_targets,
    test_prometheus_alerts,
    test_grafana_provisioning,
    test_grafana_dashboard,
    test_dockerfile,
    test_dockerfile_healthcheck_runs,
    test_backend_answers,
    test_k8s_manifests_parse,
    test_k8s_tollgate_deployment,
    test_k8s_services_pdb_hpa,
    test_k8s_configmap_is_the_seed,
    test_helm_chart_files,
    test_helm_values_referenced_exist,
    test_helm_template_syntax,
    test_helm_values_match_the_contract,
);
