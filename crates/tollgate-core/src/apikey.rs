//! API keys and the SHA-256 form their values are kept in.
//!
//! A key's value is a bearer secret: only its hash is stored, and lookups hash the value a
//! client sent. Values are 20 to 128 printable ASCII characters, as AWS API Gateway takes.

use crate::CoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Shortest accepted key value.
pub const MIN_KEY_LEN: usize = 20;
/// Longest accepted key value.
pub const MAX_KEY_LEN: usize = 128;

/// The SHA-256 of a key value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Hashes a key value.
    pub fn of(value: &str) -> Self {
        KeyHash(Sha256::digest(value.as_bytes()).into())
    }

    /// Lower-case hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the lower- or upper-case hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(KeyHash(out))
    }
}

// The hash is not secret, but a short form keeps logs readable.
impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..12])
    }
}

/// Checks a key value's length and characters.
pub fn validate_key_value(value: &str) -> Result<(), CoreError> {
    let n = value.chars().count();
    if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&n) {
        return Err(CoreError::invalid(
            "value",
            format!(
                "an API key value must be {MIN_KEY_LEN} to {MAX_KEY_LEN} characters long, got {n}"
            ),
        ));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(CoreError::invalid(
            "value",
            "an API key value may hold printable ASCII characters only, no spaces",
        ));
    }
    Ok(())
}

/// An API key record. It never holds the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Unique id (what usage reports are keyed by).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The customer this key was issued to (AWS Marketplace customer id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Disabled keys are refused with 403.
    pub enabled: bool,
    /// SHA-256 of the value.
    #[serde(with = "hash_hex")]
    pub value_hash: KeyHash,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

mod hash_hex {
    use super::KeyHash;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &KeyHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyHash, D::Error> {
        let s = String::deserialize(d)?;
        KeyHash::from_hex(&s).ok_or_else(|| D::Error::custom("valueHash must be 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash is SHA-256 and round-trips through hex.
    #[test]
    fn hash_is_sha256() {
        let h = KeyHash::of("abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("zz"), None);
    }

    /// Short, long and non-printable values are refused.
    #[test]
    fn value_rules() {
        assert!(validate_key_value("short").is_err());
        assert!(validate_key_value(&"x".repeat(129)).is_err());
        assert!(validate_key_value("has a space in it, twenty+").is_err());
        assert!(validate_key_value("abcdefghijklmnopqrst").is_ok());
    }
}
