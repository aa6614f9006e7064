//! From the request target a proxy forwards (nginx's `$request_uri`, Envoy's `:path`) to the
//! resource a plan's per-method throttles name.
//!
//! Proxies forward the target as the client sent it: percent-encoded, with its query. Plans
//! name resources decoded (`/café`, as `POST /v1/check` and `CheckQuota` take them), so a
//! throttle on `/café/GET` must apply whichever front end asked and however the client
//! spelled the escapes (`%C3%A9` or `%c3%a9`). An escaped `/` (`%2F`) stays as it is:
//! decoding it would move a segment boundary, and `/a%2Fb` is not the resource `/a/b`. A
//! target that does not decode to UTF-8 is kept as sent; it then matches no named resource
//! and gets the stage's or plan's throttle, as any unknown path does.

use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// The resource path of a forwarded request target: query and fragment dropped, escapes
/// decoded except `%2F`.
pub fn resource_of_target(target: &str) -> Cow<'_, str> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match percent_decode_str(segment).decode_utf8() {
            Ok(decoded) if !decoded.contains('/') => out.push_str(&decoded),
            Ok(_) => out.push_str(segment),
            Err(_) => return Cow::Borrowed(path),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::resource_of_target;

    /// Escapes decode in either case; query and fragment go; plain paths pass untouched.
    #[test]
    fn decodes_escapes_and_drops_the_query() {
        assert_eq!(resource_of_target("/caf%C3%A9?x=1"), "/café");
        assert_eq!(resource_of_target("/caf%c3%a9#top"), "/café");
        assert_eq!(resource_of_target("/a%20b/c"), "/a b/c");
        assert_eq!(
            resource_of_target("/usageplanOffering?a=%41"),
            "/usageplanOffering"
        );
        assert_eq!(resource_of_target(""), "");
    }

    /// An escaped slash keeps its segment whole; bytes that are not UTF-8 keep the target.
    #[test]
    fn keeps_what_must_not_decode() {
        assert_eq!(resource_of_target("/a%2Fb/c%20d"), "/a%2Fb/c d");
        assert_eq!(resource_of_target("/a%2fb"), "/a%2fb");
        assert_eq!(resource_of_target("/bad%FF/x%41"), "/bad%FF/x%41");
        assert_eq!(resource_of_target("/trailing%"), "/trailing%");
        assert_eq!(resource_of_target("/half%4"), "/half%4");
    }
}
