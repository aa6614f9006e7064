//! Validation errors of the domain model.

use thiserror::Error;

/// Why a plan, key, limit or request is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    /// A field holds a value outside its allowed range or format.
    #[error("{field}: {reason}")]
    InvalidField {
        /// Dotted path of the field, e.g. `throttle.rateLimit`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record refers to another that does not exist.
    #[error("{field}: unknown {kind} `{id}`")]
    UnknownReference {
        /// Dotted path of the referring field.
        field: String,
        /// Kind of the missing record (`usage plan`, `API key`).
        kind: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// Two records clash (same key value, same id, key in two plans of one stage).
    #[error("{0}")]
    Conflict(String),
}

impl CoreError {
    /// Shorthand for [`CoreError::InvalidField`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with an invalid field's name rewritten by `rename` (to say where the
    /// field sits in a larger record); other errors pass through unchanged.
    pub fn rename_field(self, rename: impl FnOnce(&str) -> String) -> Self {
        match self {
            CoreError::InvalidField { field, reason } => CoreError::InvalidField {
                field: rename(&field),
                reason,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_field_rewrites_only_an_invalid_fields_name() {
        let renamed = CoreError::invalid("rateLimit", "must be positive")
            .rename_field(|f| format!("throttle.{f}"));
        assert_eq!(
            renamed,
            CoreError::invalid("throttle.rateLimit", "must be positive")
        );
        assert_eq!(renamed.to_string(), "throttle.rateLimit: must be positive");

        let unknown = CoreError::UnknownReference {
            field: "usagePlanIds".into(),
            kind: "usage plan",
            id: "gone".into(),
        };
        assert_eq!(unknown.clone().rename_field(|f| format!("x.{f}")), unknown);
    }
}
