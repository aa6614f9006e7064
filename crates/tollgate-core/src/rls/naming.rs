//! Names derived from a match: the counter's state name, and the stats key the original
//! service would report the limit under.
//!
//! **State name** — which counter a request counts against. As in envoyproxy/ratelimit, the
//! counter is identified by the domain and every `(key, value)` of the request descriptor,
//! so each distinct value of a key-only or wildcard entry (say, each `remote_address`) gets
//! its own counter; an entry matched by a `share_threshold` wildcard counts under the pattern
//! instead, so all its values share one. The unit is appended, so a config that changes a
//! limit from per-second to per-day starts a fresh counter rather than reading a throttle's
//! state as a quota's. Format:
//!
//! ```text
//! <domain>:<key>=<value>:<key>=<value>…@<unit>        e.g. shop:remote_address=10.0.0.1@minute
//! <domain>:<key>=<prefix>*…@<unit>                     (a shared wildcard entry)
//! <domain>:#<sha256 hex>@<unit>                        (longer than MAX_STATE_NAME_LEN)
//! ```
//!
//! Every byte of domain, keys and values outside `[A-Za-z0-9_.-]` is percent-encoded
//! (`%2F`), so a name never holds braces (it is safe after a Redis hash tag), glob
//! characters, spaces or separators of its own, and distinct inputs give distinct names. A
//! raw `*` therefore marks a shared pattern, and a literal `*` in a value reads `%2A`. An
//! unlimited rule is named with `@unlimited`.
//!
//! **Stats key** — the original's metric name for the limit (`domain.key_value.key`), raw;
//! the server sanitises it for its metrics backend.

use crate::rls::unit::RlsUnit;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// Names longer than this are replaced by a hash of themselves.
pub const MAX_STATE_NAME_LEN: usize = 256;

/// The longest escaped domain kept readable in a hashed name.
const MAX_HASHED_DOMAIN_LEN: usize = 64;

/// What a request entry contributes to a state name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameValue<'a> {
    /// The request's own value.
    Concrete(&'a str),
    /// A `share_threshold` wildcard's prefix: every matching value shares the counter.
    SharedPrefix(&'a str),
}

/// The state name of a counter; see the module documentation for the format.
pub(crate) fn state_name<'a>(
    domain: &str,
    entries: impl IntoIterator<Item = (&'a str, NameValue<'a>)>,
    unit: Option<RlsUnit>,
) -> String {
    let mut body = escape(domain);
    for (key, value) in entries {
        body.push(':');
        escape_into(&mut body, key);
        body.push('=');
        match value {
            NameValue::Concrete(v) => escape_into(&mut body, v),
            NameValue::SharedPrefix(p) => {
                escape_into(&mut body, p);
                body.push('*');
            }
        }
    }
    let unit = unit.map_or("unlimited", RlsUnit::as_str);
    if body.len() + 1 + unit.len() <= MAX_STATE_NAME_LEN {
        return format!("{body}@{unit}");
    }
    hashed(domain, &body, unit)
}

fn hashed(domain: &str, body: &str, unit: &str) -> String {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    let domain = escape(domain);
    if domain.len() <= MAX_HASHED_DOMAIN_LEN {
        format!("{domain}:#{digest}@{unit}")
    } else {
        format!("#{digest}@{unit}")
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Percent-encodes every byte outside `[A-Za-z0-9_.-]`.
fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Appends `.key` or `.key_value` (the value only when not empty) to a stats key.
pub(crate) fn push_stats_part(out: &mut String, key: &str, value: &str) {
    out.push('.');
    out.push_str(key);
    if !value.is_empty() {
        out.push('_');
        out.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format is pinned: domain, escaped pairs, unit.
    #[test]
    fn format_is_pinned() {
        let name = state_name(
            "shop",
            [
                ("remote_address", NameValue::Concrete("10.0.0.1")),
                ("path", NameValue::Concrete("/v1/{id}")),
            ],
            Some(RlsUnit::Minute),
        );
        assert_eq!(
            name,
            "shop:remote_address=10.0.0.1:path=%2Fv1%2F%7Bid%7D@minute"
        );
        let shared = state_name(
            "shop",
            [("path", NameValue::SharedPrefix("/a"))],
            Some(RlsUnit::Day),
        );
        assert_eq!(shared, "shop:path=%2Fa*@day");
        let literal = state_name("shop", [("path", NameValue::Concrete("/a*"))], None);
        assert_eq!(literal, "shop:path=%2Fa%2A@unlimited");
    }

    /// Odd characters never leave braces, spaces or separators in a name.
    #[test]
    fn escapes_odd_characters() {
        let name = state_name(
            "d {x}",
            [("k:=@", NameValue::Concrete("ü \n#%"))],
            Some(RlsUnit::Second),
        );
        assert_eq!(name, "d%20%7Bx%7D:k%3A%3D%40=%C3%BC%20%0A%23%25@second");
        assert!(!name.contains(['{', '}', ' ']));
    }

    /// A name over the maximum becomes a stable hash that keeps a short domain readable.
    #[test]
    fn long_names_are_hashed() {
        let long = "v".repeat(MAX_STATE_NAME_LEN);
        let a = state_name(
            "shop",
            [("k", NameValue::Concrete(&long))],
            Some(RlsUnit::Hour),
        );
        let b = state_name(
            "shop",
            [("k", NameValue::Concrete(&long))],
            Some(RlsUnit::Hour),
        );
        assert_eq!(a, b);
        assert!(a.starts_with("shop:#") && a.ends_with("@hour"), "{a}");
        assert_eq!(a.len(), "shop:#".len() + 64 + "@hour".len());
        let other = state_name(
            "shop",
            [("k", NameValue::Concrete(&long[1..]))],
            Some(RlsUnit::Hour),
        );
        assert_ne!(a, other);
        let huge = state_name(&long, [], Some(RlsUnit::Hour));
        assert!(huge.starts_with('#'));
    }
}
