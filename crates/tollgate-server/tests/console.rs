//! The operator console as a real tollgate serves it, without a browser: the page and every
//! file it loads (followed through the scripts' imports) with their types and security
//! headers, revalidation, 404 for unknown files and GET/HEAD only.

mod support;

use std::collections::BTreeSet;
use support::http::HttpResponse;
use support::*;

/// The headers every console answer must carry.
fn assert_security_headers(r: &HttpResponse, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for want in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(
            directives.contains(&want),
            "{what}: CSP lacks {want}: {csp}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: CSP allows inline code: {csp}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

/// The same-origin files a text refers to: `src="…"` and `href="…"` in HTML, module
/// imports (`from "./x.js"`, `import "./x.js"`) in scripts, resolved against `base`.
fn references(text: &str, base: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let quoted = |rest: &str| -> Option<String> {
        let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        Some(rest[1..].split(q).next()?.to_string())
    };
    for marker in ["src=", "href=", "from ", "import "] {
        for (at, _) in text.match_indices(marker) {
            let Some(target) = quoted(text[at + marker.len()..].trim_start()) else {
                continue;
            };
            if target.starts_with('#') || target.contains("://") || target.is_empty() {
                continue;
            }
            let path = if target.starts_with('/') {
                target
            } else {
                let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{}", target.trim_start_matches("./"))
            };
            out.insert(path);
        }
    }
    out
}

/// The media type a console file must be served with, from its extension.
fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        other => panic!("{path}: unexpected kind of file {other:?}"),
    }
}

/// `/console` and `/console/` serve the page with the policy and nosniff; every file it
/// references, and every module those import, is served with its own type and the headers.
#[test]
fn page_and_every_file_it_loads() {
    let t = Tollgate::start(&[]);
    for path in ["/console", "/console/"] {
        let r = t.http("GET", path, &[], "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_security_headers(&r, path);
        assert!(r.body.contains("<!doctype html>"), "{path}: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        assert!(r.header("etag").is_some(), "{path}: no ETag");
    }

    let page = t.http("GET", "/console/", &[], "").body;
    let mut todo: Vec<String> = references(&page, "/console/").into_iter().collect();
    assert!(
        todo.iter().any(|p| p.ends_with(".js")) && todo.iter().any(|p| p.ends_with(".css")),
        "the page loads no script or no style sheet: {todo:?}"
    );
    let mut seen = BTreeSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        assert!(
            path.starts_with("/console/"),
            "{path}: the console loads a file from outside /console/"
        );
        let r = t.http("GET", &path, &[], "");
        assert_eq!(
            r.status, 200,
            "{path} (referenced by the console): {}",
            r.body
        );
        assert_eq!(
            r.header("content-type"),
            Some(expected_type(&path)),
            "{path}"
        );
        assert_security_headers(&r, &path);
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        if path.ends_with(".js") {
            todo.extend(references(&r.body, &path));
        }
    }
    // The entry script imports the views, which import the shared modules.
    for module in [
        "/console/app.js",
        "/console/api.js",
        "/console/dom.js",
        "/console/chart.js",
    ] {
        assert!(
            seen.contains(module),
            "{module} not reached from the page: {seen:?}"
        );
    }
}

/// A file is revalidated by its ETag: the same tag answers 304 without a body, another 200.
#[test]
fn revalidation_by_etag() {
    let t = Tollgate::start(&[]);
    let first = t.http("GET", "/console/app.js", &[], "");
    let etag = first.header("etag").expect("ETag").to_string();
    let again = t.http("GET", "/console/app.js", &[("If-None-Match", &etag)], "");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty(), "{:?}", again.body);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_security_headers(&again, "304");
    let other = t.http(
        "GET",
        "/console/app.js",
        &[("If-None-Match", "\"not-this-one\"")],
        "",
    );
    assert_eq!(other.status, 200);
    assert_eq!(other.body, first.body);
    // Each file has its own tag.
    let css = t.http("GET", "/console/console.css", &[], "");
    assert_ne!(css.header("etag"), Some(etag.as_str()));
}

/// Unknown files under /console answer 404 in the port's error shape, with the headers;
/// paths that only look like console files are not served from elsewhere.
#[test]
fn unknown_paths_404() {
    let t = Tollgate::start(&[]);
    for path in [
        "/console/nope.js",
        "/console/app.js/",
        "/console/assets/app.js",
        "/console/../Cargo.toml",
        "/console/%2e%2e/Cargo.toml",
        "/console/mod.rs",
        "/consolex",
        "/console/index.htm",
    ] {
        let r = t.http("GET", path, &[], "");
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(r.message().contains("no "), "{path}: {}", r.body);
        if path.starts_with("/console/") {
            assert_security_headers(&r, path);
            assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        }
    }
}

/// HEAD answers as GET without a body; every other method is 405 with `Allow: GET,HEAD`.
#[test]
fn get_and_head_only() {
    let t = Tollgate::start(&[]);
    for path in ["/console", "/console/", "/console/app.js"] {
        let get = t.http("GET", path, &[], "");
        let head = t.http("HEAD", path, &[], "");
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD has a body");
        assert_eq!(head.header("content-type"), get.header("content-type"));
        assert_eq!(head.header("etag"), get.header("etag"));
        assert_security_headers(&head, path);
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let r = t.http(method, path, &[("Content-Type", "text/plain")], "x");
            assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
            let allow = r.header("allow").unwrap_or_default().to_string();
            let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
            allowed.sort_unstable();
            assert_eq!(allowed, ["GET", "HEAD"], "{method} {path}");
        }
    }
}

/// The pages are public, the data is not: the console loads without credentials while the
/// API it calls still refuses a call without the token.
#[test]
fn pages_need_no_token_but_the_api_does() {
    let t = Tollgate::start_admin(&[], &[]);
    assert_eq!(t.http("GET", "/console/", &[], "").status, 200);
    assert_eq!(t.http("GET", "/console/app.js", &[], "").status, 200);
    assert_eq!(t.http("GET", "/usageplans", &[], "").status, 401);
    assert_eq!(t.admin("GET", "/usageplans", "").status, 200);
}
