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
}
