//! Drives the two YAML loaders an operator hands files to: the plans-and-keys file
//! (`config::parse_file` then `config::build`, what `serve --config`, `check-config` and
//! `apply` run) and the Envoy rate-limit config directory (`rls_config::build`, what
//! `--rls-config` loads and hot-reloads). When the plans file is accepted, every key it
//! names is checked once in every stage of its plans on the memory store, so values the
//! validator lets through reach the limit math as a running service would use them.
//!
//! Why: a config that loads must not crash the first check, and a broken one must be
//! refused with an error, not a panic, because a hot reload runs inside the service.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tollgate_core::check::CheckRequest;
use tollgate_server::cli::FailureMode;
use tollgate_server::limiter::Limiter;
use tollgate_store::MemoryStore;

/// A fixed clock keeps a crash replayable.
const NOW_S: i64 = 1_780_000_000;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the fuzz target")
    })
}

fn plans_file(text: &str) {
    let Ok(file) = tollgate_server::config::parse_file("fuzz.yaml", text) else {
        return;
    };
    let Ok(catalog) = tollgate_server::config::build("fuzz.yaml", file.clone(), NOW_S) else {
        return;
    };
    let limiter = Limiter::new(catalog, Arc::new(MemoryStore::new()), FailureMode::Deny, 7);
    let mut checks = Vec::new();
    for k in file.api_keys.iter().take(4) {
        for plan in file
            .usage_plans
            .iter()
            .filter(|p| k.usage_plan_ids.contains(&p.id))
            .take(4)
        {
            for s in plan.api_stages.iter().take(4) {
                let resource = s
                    .throttle
                    .keys()
                    .next()
                    .and_then(|r| tollgate_core::plan::split_resource_method(r))
                    .map(|(r, m)| (r.to_string(), m.to_string()))
                    .unwrap_or_else(|| ("/".into(), "GET".into()));
                checks.push(CheckRequest {
                    api_key: k.value.clone(),
                    api_id: s.api_id.clone(),
                    stage: s.stage.clone(),
                    resource: resource.0,
                    method: resource.1,
                    cost: 1,
                });
            }
        }
    }
    runtime().block_on(async {
        for c in &checks {
            let d = limiter.check(c).await;
            assert_ne!(
                d.http_status(),
                503,
                "the memory store cannot be unavailable"
            );
        }
    });
}

fn rls_file(text: &str) {
    let files = vec![("fuzz.yaml".to_string(), text.to_string())];
    let _ = tollgate_server::rls_config::build(&files);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if which & 1 == 0 {
        plans_file(text);
    } else {
        rls_file(text);
    }
});
