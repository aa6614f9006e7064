//! `deploy/envoy/envoy.yaml` parses and is consistent with itself and with tollgate: every
//! cluster a filter or route names exists, the filters call tollgate's gRPC port over HTTP/2,
//! the rate-limit domain it names is defined by a file tollgate loads, and the API, stage and
//! descriptor entries it sends are the ones tollgate reads.

mod support;

use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::Path;
use tollgate_core::rls::check::{API_ENTRY, DEFAULT_API_KEY_ENTRY, STAGE_ENTRY};
use tollgate_server::grpc::ext_authz::{API_EXTENSION, STAGE_EXTENSION};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/envoy");

fn envoy() -> Value {
    let path = Path::new(DEPLOY).join("envoy.yaml");
    let text = std::fs::read_to_string(&path).expect("read envoy.yaml");
    serde_norway::from_str(&text).expect("envoy.yaml is YAML")
}

/// Every value under a key named `name`, anywhere in the tree.
fn all<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                if k.as_str() == Some(name) {
                    out.push(child);
                }
                all(child, name, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| all(c, name, out)),
        Value::Tagged(t) => all(&t.value, name, out),
        _ => {}
    }
}

fn strings(v: &Value, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    all(v, name, &mut found);
    found
        .into_iter()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

fn ports(v: &Value) -> Vec<u64> {
    let mut found = Vec::new();
    all(v, "port_value", &mut found);
    found.into_iter().filter_map(Value::as_u64).collect()
}

fn cluster<'a>(config: &'a Value, name: &str) -> &'a Value {
    config["static_resources"]["clusters"]
        .as_sequence()
        .and_then(|cs| cs.iter().find(|c| c["name"].as_str() == Some(name)))
        .unwrap_or_else(|| panic!("no cluster `{name}`"))
}

fn http_filter<'a>(config: &'a Value, name: &str) -> &'a Value {
    let mut filters = Vec::new();
    all(config, "http_filters", &mut filters);
    filters
        .iter()
        .filter_map(|f| f.as_sequence())
        .flatten()
        .find(|f| f["name"].as_str() == Some(name))
        .map(|f| &f["typed_config"])
        .unwrap_or_else(|| panic!("no http filter `{name}`"))
}

/// Every cluster named anywhere (routes, filters, load assignments) is defined, and every
/// defined cluster is used.
#[test]
fn every_named_cluster_exists() {
    let config = envoy();
    let defined: BTreeSet<String> = config["static_resources"]["clusters"]
        .as_sequence()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        defined,
        BTreeSet::from(["calculator", "jaeger", "tollgate"].map(str::to_owned))
    );
    let mut named: BTreeSet<String> = strings(&config, "cluster_name").into_iter().collect();
    named.extend(strings(&config, "cluster"));
    assert!(!named.is_empty());
    for n in &named {
        assert!(
            defined.contains(n),
            "cluster `{n}` is named but not defined"
        );
    }
    assert_eq!(&named, &defined, "every cluster is used");
}

/// Both filters call the tollgate cluster, which targets tollgate's gRPC port 8081 over
/// HTTP/2 and health-checks a service tollgate serves.
#[test]
fn filters_call_tollgate_grpc_over_http2() {
    let config = envoy();
    let authz = http_filter(&config, "envoy.filters.http.ext_authz");
    assert_eq!(
        authz["grpc_service"]["envoy_grpc"]["cluster_name"].as_str(),
        Some("tollgate")
    );
    assert_eq!(authz["transport_api_version"].as_str(), Some("V3"));
    let rls = http_filter(&config, "envoy.filters.http.ratelimit");
    assert_eq!(
        rls["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"].as_str(),
        Some("tollgate")
    );
    assert_eq!(
        rls["rate_limit_service"]["transport_api_version"].as_str(),
        Some("V3")
    );
    let tollgate = cluster(&config, "tollgate");
    assert_eq!(ports(&tollgate["load_assignment"]), [8081]);
    let http2 = &tollgate["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]
        ["http2_protocol_options"];
    assert!(http2.is_mapping(), "the tollgate cluster speaks HTTP/2");
    let health = strings(tollgate, "service_name");
    assert_eq!(health, ["envoy.service.ratelimit.v3.RateLimitService"]);
}

/// Envoy's own ports do not clash with each other or with tollgate's (8080, 8081).
#[test]
fn ports_are_distinct() {
    let config = envoy();
    let admin = ports(&config["admin"]);
    let listeners = ports(&config["static_resources"]["listeners"]);
    assert_eq!(
        (admin.as_slice(), listeners.as_slice()),
        ([9901].as_slice(), [10000].as_slice())
    );
    assert_eq!(
        ports(&cluster(&config, "calculator")["load_assignment"]),
        [8000]
    );
    for p in admin.iter().chain(&listeners) {
        assert!(![8080, 8081].contains(p), "port {p} is tollgate's");
    }
}

/// The rate-limit domain the filter names is defined in `deploy/envoy/ratelimit/`, which
/// tollgate's own loader accepts, and every descriptor key the routes send is one it matches
/// or one tollgate reads for usage plans.
#[test]
fn ratelimit_domain_and_descriptors_match() {
    let config = envoy();
    let rls = http_filter(&config, "envoy.filters.http.ratelimit");
    let domain = rls["domain"].as_str().expect("domain");
    let (_, registry) =
        tollgate_server::rls_config::load(&Path::new(DEPLOY).join("ratelimit")).expect("load");
    assert!(
        registry.get(domain).is_some(),
        "domain `{domain}` is defined"
    );
    let mut keys: BTreeSet<String> = strings(&config, "descriptor_key").into_iter().collect();
    let mut remote = Vec::new();
    all(&config, "remote_address", &mut remote);
    if !remote.is_empty() {
        keys.insert("remote_address".into());
    }
    let plan_keys = [DEFAULT_API_KEY_ENTRY, API_ENTRY, STAGE_ENTRY, "method"];
    for k in &keys {
        let matched = registry.lookup(domain, &[(k.as_str(), "/usageplanOffering")]);
        assert!(
            matched.is_some() || plan_keys.contains(&k.as_str()),
            "descriptor key `{k}` matches nothing in `{domain}` and is no usage-plan entry"
        );
    }
    assert!(keys.contains(DEFAULT_API_KEY_ENTRY) && keys.contains(API_ENTRY));
}

/// The API and stage the routes name (ext_authz context extensions and RLS generic keys) are
/// a stage of a seed plan that the seed keys are in.
#[test]
fn api_stage_exists_in_the_seed_scenario() {
    let config = envoy();
    let mut ext = Vec::new();
    all(&config, "context_extensions", &mut ext);
    assert_eq!(ext.len(), 1);
    let api = ext[0][API_EXTENSION].as_str().expect("tollgate_api");
    let stage = ext[0][STAGE_EXTENSION].as_str().expect("tollgate_stage");
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/calculator/tollgate.yaml");
    let catalog = tollgate_server::config::load(&seed, 0).expect("seed config");
    for key in ["testApikey", "premiumApikey"] {
        assert!(
            catalog
                .plans_of_key(key)
                .iter()
                .any(|p| p.stage(api, stage).is_some()),
            "{key} has a plan for {api}:{stage}"
        );
    }
    let mut generic = Vec::new();
    all(&config, "generic_key", &mut generic);
    let values: Vec<(String, String)> = generic
        .iter()
        .map(|g| {
            (
                g["descriptor_key"].as_str().unwrap_or_default().to_owned(),
                g["descriptor_value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            (API_ENTRY.to_string(), api.to_string()),
            (STAGE_ENTRY.to_string(), stage.to_string())
        ]
    );
}

/// The file parses into Envoy's own Bootstrap message, every extension's typed_config
/// resolved (grpcio-tools stubs of Envoy's protos; every field name and enum checked).
#[test]
fn parses_as_an_envoy_bootstrap() {
    let stubs = support::python::stubs();
    let out = std::process::Command::new("python3")
        .arg(Path::new(support::python::PYTHON_DIR).join("envoy_config_check.py"))
        .arg(stubs)
        .arg(Path::new(DEPLOY).join("envoy.yaml"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
