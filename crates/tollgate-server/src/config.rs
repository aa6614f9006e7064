//! The YAML file of usage plans and API keys, validated into a core [`Catalog`].
//!
//! Every error names the file, the place (a field path such as `usagePlans[1].quota.period`,
//! with line and column where the YAML parser knows them) and what is wrong. Key values are
//! never echoed back.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;
use tollgate_core::apikey::{validate_key_value, ApiKey, KeyHash};
use tollgate_core::catalog::Catalog;
use tollgate_core::plan::{validate_id, UsagePlan};

/// Why a configuration file was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("{path}: {at}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Field path where parsing failed.
        at: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is out of range, or records contradict each other.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, naming the record and field.
        message: String,
    },
}

/// The file's top level.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    /// Usage plans.
    #[serde(default)]
    pub usage_plans: Vec<UsagePlan>,
    /// API keys.
    #[serde(default)]
    pub api_keys: Vec<ApiKeySpec>,
}

/// An API key as written in the file: with its value, which is hashed on load.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeySpec {
    /// Id; defaults to the name.
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// The secret value clients send (20 to 128 characters).
    pub value: String,
    /// Disabled keys get 403.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Free text.
    pub description: Option<String>,
    /// Customer id.
    pub customer_id: Option<String>,
    /// Plans the key is in.
    #[serde(default)]
    pub usage_plan_ids: Vec<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

// Never print key values.
impl std::fmt::Debug for ApiKeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeySpec")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn enabled_by_default() -> bool {
    true
}

/// Reads and validates the file at `path`. `now_s` stamps plans that set no quota start.
pub fn load(path: &Path, now_s: i64) -> Result<Catalog, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&shown, &text, now_s)
}

/// Validates the YAML `text` of the file `path`.
pub fn parse(path: &str, text: &str, now_s: i64) -> Result<Catalog, ConfigError> {
    build(path, parse_file(path, text)?, now_s)
}

/// Reads the file at `path` into its records, checking its shape but not its values.
pub fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_file(&shown, &text)
}

/// Parses the YAML `text` of the file `path` into its records, checking its shape.
pub fn parse_file(path: &str, text: &str) -> Result<ConfigFile, ConfigError> {
    Ok(if text.trim().is_empty() {
        ConfigFile::default()
    } else {
        let de = serde_norway::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let at = match e.path().to_string().as_str() {
                "." => "top level".to_string(),
                p => p.to_string(),
            };
            // The YAML parser puts the path it knows in front of its own message; the error
            // names the path already, so it is said once.
            let message = e.into_inner().to_string();
            let message = message
                .strip_prefix(&format!("{at}: "))
                .map_or(message.clone(), str::to_string);
            ConfigError::Parse {
                path: path.to_string(),
                at,
                message,
            }
        })?
    })
}

/// Validates `file` (of `path`, for messages) into a catalog.
pub fn build(path: &str, file: ConfigFile, now_s: i64) -> Result<Catalog, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_string(),
        message,
    };
    let mut plans = Vec::with_capacity(file.usage_plans.len());
    for (i, mut p) in file.usage_plans.into_iter().enumerate() {
        p.validate()
            .map_err(|e| invalid(format!("usagePlans[{i}] (`{}`): {e}", p.id)))?;
        if p.quota_start_s == 0 {
            p.quota_start_s = now_s;
        }
        if p.name.is_empty() {
            p.name = p.id.clone();
        }
        plans.push(p);
    }
    let mut keys = Vec::with_capacity(file.api_keys.len());
    let mut subscriptions = Vec::new();
    for (i, k) in file.api_keys.into_iter().enumerate() {
        let id = k.id.clone().unwrap_or_else(|| k.name.clone());
        validate_id("id", &id).map_err(|e| invalid(format!("apiKeys[{i}] (`{}`): {e}", k.name)))?;
        validate_key_value(&k.value)
            .map_err(|e| invalid(format!("apiKeys[{i}] (`{}`): {e}", k.name)))?;
        subscriptions.extend(k.usage_plan_ids.iter().map(|p| (id.clone(), p.clone())));
        keys.push(ApiKey {
            id,
            name: k.name,
            description: k.description,
            customer_id: k.customer_id,
            enabled: k.enabled,
            value_hash: KeyHash::of(&k.value),
            tags: k.tags,
        });
    }
    Catalog::new(plans, keys, &subscriptions).map_err(|e| invalid(e.to_string()))
}

/// Validates `path` and describes what it defines (for `tollgate check-config`).
pub fn check_file(path: &Path) -> anyhow::Result<String> {
    let catalog = load(path, 0)?;
    let mut plans: Vec<_> = catalog.plans().map(|p| p.id.clone()).collect();
    plans.sort();
    Ok(format!(
        "{}: OK, {} usage plan(s) [{}], {} API key(s)",
        path.display(),
        plans.len(),
        plans.join(", "),
        catalog.keys().count()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse("t.yaml", text, 0).unwrap_err().to_string()
    }

    /// Malformed YAML names the file and the line.
    #[test]
    fn malformed_yaml() {
        let e = err("usagePlans: [\n  {id: a\n");
        assert!(e.starts_with("t.yaml: "), "{e}");
        assert!(e.contains("line"), "{e}");
    }

    /// A wrong value names the field path.
    #[test]
    fn wrong_value_names_field() {
        let e = err("usagePlans:\n  - id: p\n    quota: {limit: 5, period: DAILY}\n");
        assert!(e.contains("usagePlans[0].quota.period"), "{e}");
        assert!(e.contains("DAY"), "{e}");
        let e = err("usagePlans:\n  - id: p\n    quota: {limit: -5, period: DAY}\n");
        assert!(e.contains("usagePlans[0].quota.limit"), "{e}");
        let e = err("usagePlans:\n  - id: p\n    thottle: {rateLimit: 1, burstLimit: 1}\n");
        assert!(e.contains("thottle"), "{e}");
    }

    /// A parse error names its field path once (the YAML parser's message carries the path
    /// too), with the line and column.
    #[test]
    fn parse_error_names_the_path_once() {
        let e = err("apiKeys:\n  - name: k\n");
        assert_eq!(
            e,
            "t.yaml: apiKeys[0]: missing field `value` at line 2 column 5"
        );
        let e = err("usagePlans:\n  - id: p\n    quota: {limit: 5, period: DAILY}\n");
        assert_eq!(e.matches("usagePlans[0].quota.period").count(), 1, "{e}");
    }

    /// Out-of-range values and unknown plans are refused with the record named; the key value
    /// is never echoed.
    #[test]
    fn invalid_records() {
        let e = err("usagePlans:\n  - id: p\n    throttle: {rateLimit: 0, burstLimit: 1}\n");
        assert!(e.contains("usagePlans[0] (`p`): throttle.rateLimit"), "{e}");
        let e = err("apiKeys:\n  - name: k\n    value: short-secret\n");
        assert!(
            e.contains("apiKeys[0] (`k`): value") && !e.contains("short-secret"),
            "{e}"
        );
        let e = err("apiKeys:\n  - name: k\n    value: abcdefghijklmnopqrstuvwxyz\n    usagePlanIds: [nope]\n");
        assert!(e.contains("unknown usage plan `nope`"), "{e}");
    }

    /// A plan whose `quotaStartS` is out of range is refused when the file loads, not at the
    /// first check: its offset period once overflowed the calendar math (the config_yaml
    /// fuzz target's input, minimised).
    #[test]
    fn quota_start_out_of_range_is_refused() {
        let e = err("usagePlans:\n  - id: p\n    quotaStartS: 9223372036854775807\n    quota: {limit: 5, period: DAY, offset: 1}\n");
        assert!(
            e.contains("usagePlans[0] (`p`): quotaStartS: must be a Unix second"),
            "{e}"
        );
    }

    /// The seed scenario parses.
    #[test]
    fn seed_example_parses() {
        let text = include_str!("../../../examples/calculator/tollgate.yaml");
        let c = parse("seed", text, 0).unwrap();
        assert!(c.plan("demo-usage-plan").is_some());
        assert!(c.plan("premium-usage-plan").is_some());
        assert!(c.key("testApikey").is_some());
        assert!(c.key("premiumApikey").is_some());
    }
}
