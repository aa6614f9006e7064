//! The operator console: a small web UI for usage plans, API keys and usage at `/console`.
//!
//! The files in `assets/` (HTML, CSS and plain ES modules, no build step) are embedded in
//! the binary and served as they are. The pages hold no data and need no credentials: the
//! script asks for the admin token and does everything through the management API, so the
//! console can do exactly what the API lets its caller do, and no more.
//!
//! Every answer carries a Content-Security-Policy that allows scripts, styles and requests
//! from this origin only, no inline code, no framing, and Trusted Types with no policy, so a
//! record name that looks like markup can never run even if a script wrote it as HTML.
//! Files are served with `Cache-Control: no-cache` and an `ETag` of their content: a browser
//! revalidates each load (a 304 costs a few bytes) and never runs a stale script against a
//! newer page after an upgrade.

use crate::admin::error::{self, AdminError};
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The policy every console answer carries.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
    require-trusted-types-for 'script'; trusted-types 'none'";

/// One embedded file.
struct Asset {
    /// Its path under `/console/`.
    path: &'static str,
    body: &'static [u8],
}

/// The page every console URL without a file name gets.
const INDEX: &str = "index.html";

/// The table of embedded files from their names under `assets/`.
macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        [$(Asset {
            path: $name,
            body: include_bytes!(concat!("assets/", $name)),
        }),*]
    };
}

/// Every file of the console. `index.html` names the entry script and the style sheet, and
/// the scripts import each other; `tests/console.rs` follows those references and fails on
/// one that is not here.
const ASSETS: &[Asset] = &assets![
    "index.html",
    "console.css",
    "icon.svg",
    "app.js",
    "api.js",
    "dom.js",
    "ui.js",
    "chart.js",
    "plans.js",
    "plan.js",
    "keys.js",
];

/// The media type of a console file, from its extension. ES modules are refused by browsers
/// under any type but JavaScript's, and `nosniff` makes the other types binding too.
fn content_type(path: &str) -> Option<&'static str> {
    let (_, ext) = path.rsplit_once('.')?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

/// Strong validators of the files, in `ASSETS` order: a quoted prefix of the SHA-256 of
/// the content, computed once.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.body);
            let tag = format!("\"{}\"", hex::encode(&digest[..16]));
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\""))
        })
        .collect()
});

/// The console routes: the page at `/console` and `/console/`, the files under `/console/`.
/// GET and HEAD only; other methods get the port's 405 and unknown files its 404.
pub fn router() -> Router {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/{*file}", get(file))
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::map_response(security_headers))
}

async fn index(headers: HeaderMap) -> Response {
    serve(INDEX, &headers)
}

async fn file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let found = ASSETS
        .iter()
        .zip(ETAGS.iter())
        .find(|(a, _)| a.path == path);
    let Some((asset, etag)) = found else {
        return AdminError::not_found(format!("no console file at /console/{path}"))
            .into_response();
    };
    let Some(kind) = content_type(asset.path) else {
        return AdminError::not_found(format!("no console file at /console/{path}"))
            .into_response();
    };
    let fresh = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == etag.as_bytes()
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(CONTENT_TYPE, kind)], asset.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(ETAG, etag.clone());
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Adds the console's security headers to every answer under `/console`, errors included.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !response.status().is_success() && response.status() != StatusCode::NOT_MODIFIED {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every embedded file has a known type, and the validators are distinct.
    #[test]
    fn every_file_has_a_type() {
        for a in ASSETS {
            assert!(content_type(a.path).is_some(), "{}", a.path);
        }
        let mut tags: Vec<_> = ETAGS.iter().collect();
        tags.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }

    /// Whether `html` holds an attribute such as `onclick=` or `onerror =`.
    fn has_event_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].trim_start().starts_with('=')
        })
    }

    /// The files write no markup from strings and hold no inline code or style, which the
    /// policy would block: the DOM is built with createElement and textContent only.
    #[test]
    fn no_markup_sinks_and_nothing_inline() {
        for a in ASSETS {
            let text = std::str::from_utf8(a.body).expect("console files are UTF-8");
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute(\"style\"",
                "setAttribute('style'",
            ] {
                assert!(!text.contains(sink), "{} uses {sink}", a.path);
            }
            if a.path.ends_with(".html") || a.path.ends_with(".svg") {
                assert!(!text.contains("style="), "{} has a style attribute", a.path);
                assert!(!text.contains("<style"), "{} has a style element", a.path);
                assert!(
                    !has_event_attribute(text),
                    "{} has an event attribute",
                    a.path
                );
                for script in text.split("<script").skip(1) {
                    let tag = script.split('>').next().unwrap_or_default();
                    assert!(tag.contains("src="), "{} has an inline script", a.path);
                }
            }
        }
    }
}
