//! What every handler reads from a request, with AWS-style 400s for anything malformed:
//! JSON bodies (the error names the field path), query parameters, booleans, pagination.

use super::error::AdminError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use serde::de::DeserializeOwned;

/// Parses a JSON object body; an empty body reads as `{}`.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    // serde reads a struct from a JSON array too, field by field in order, so `[]` would
    // pass as `{}`: every body of this API is an object, and anything else is refused.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AdminError::bad("malformed JSON body: expected an object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." || inner.is_syntax() || inner.is_eof() {
            AdminError::bad(format!("malformed JSON body: {inner}"))
        } else {
            AdminError::bad(format!("{at}: {inner}"))
        }
    })
}

/// The query parameters of a request, in order.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// From axum's extractor, turning a malformed query into a 400.
    pub fn from_query(
        q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Self, AdminError> {
        q.map(|Query(v)| Params(v))
            .map_err(|e| AdminError::bad(format!("malformed query string: {e}")))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, which must be there.
    pub fn require(&self, name: &str) -> Result<&str, AdminError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AdminError::bad(format!("the query parameter {name} is required")))
    }

    /// A boolean parameter: `true` or `false` in any case; `default` when absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, AdminError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(AdminError::bad(format!(
                "{name} must be true or false, got `{v}`"
            ))),
        }
    }
}

/// Path parameters, turning a malformed path into a 400.
pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, AdminError> {
    p.map(|Path(v)| v)
        .map_err(|e| AdminError::bad(format!("malformed path: {e}")))
}

/// Default page size, as AWS.
pub const DEFAULT_LIMIT: usize = 25;
/// Largest page size, as AWS.
pub const MAX_LIMIT: usize = 500;

/// One page of `items` (sorted by their id) after `position`, and the next position.
///
/// A position is the id of the first item of the next page; ids are unique and sorted, so
/// pages stay stable while records are added or removed elsewhere.
pub fn paginate<T>(
    items: Vec<(String, T)>,
    params: &Params,
) -> Result<(Vec<T>, Option<String>), AdminError> {
    let limit = match params.get("limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                AdminError::bad(format!(
                    "limit must be a number from 1 to {MAX_LIMIT}, got `{v}`"
                ))
            })?,
    };
    let position = params.get("position").filter(|p| !p.is_empty());
    let mut rest = items
        .into_iter()
        .filter(|(id, _)| position.is_none_or(|p| id.as_str() >= p))
        .peekable();
    let mut page = Vec::with_capacity(limit.min(64));
    while page.len() < limit {
        match rest.next() {
            Some((_, item)) => page.push(item),
            None => break,
        }
    }
    let next = rest.peek().map(|(id, _)| id.clone());
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// Pages follow each other without gaps or repeats, and bad limits are refused.
    #[test]
    fn pagination() {
        let items: Vec<(String, u32)> = (0..7).map(|i| (format!("id{i}"), i)).collect();
        let (p1, next) = paginate(items.clone(), &params(&[("limit", "3")])).unwrap();
        assert_eq!(p1, vec![0, 1, 2]);
        let next = next.unwrap();
        let (p2, next) = paginate(
            items.clone(),
            &params(&[("limit", "3"), ("position", &next)]),
        )
        .unwrap();
        assert_eq!(p2, vec![3, 4, 5]);
        let (p3, next) = paginate(
            items.clone(),
            &params(&[("limit", "3"), ("position", &next.unwrap())]),
        )
        .unwrap();
        assert_eq!((p3, next), (vec![6], None));
        for bad in ["0", "501", "x", "-1"] {
            assert!(
                paginate(items.clone(), &params(&[("limit", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    /// Bodies: empty reads as {}, errors name the field.
    #[test]
    fn bodies() {
        #[derive(serde::Deserialize, Debug)]
        struct B {
            #[allow(dead_code)]
            n: Option<u32>,
        }
        assert!(json_body::<B>(b"").is_ok());
        let e = json_body::<B>(br#"{"n":"x"}"#).unwrap_err().to_string();
        assert!(e.starts_with("n: "), "{e}");
        assert!(json_body::<B>(b"{")
            .unwrap_err()
            .to_string()
            .contains("malformed JSON"));
        for not_an_object in [&b"[]"[..], b" [7]", b"null", b"3", b"\"n\""] {
            let e = json_body::<B>(not_an_object).unwrap_err().to_string();
            assert!(e.contains("expected an object"), "{e}");
        }
        assert!(params(&[("f", "TRUE")]).flag("f", false).unwrap());
        assert!(params(&[("f", "yes")]).flag("f", false).is_err());
    }
}
