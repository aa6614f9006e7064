//! Errors of the RLS config: what is wrong, and where (file, descriptor path, field).

use thiserror::Error;

/// Why an envoyproxy/ratelimit config (or a request's limit override) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RlsConfigError {
    /// A field holds a value outside its allowed range or format.
    #[error("{path}: {reason}")]
    Invalid {
        /// Path of the field, e.g. `descriptors[0].descriptors[1].rate_limit.unit`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two descriptors of one level have the same key and value.
    #[error("{path}: duplicate descriptor {what} at this level (first defined at {first})")]
    DuplicateDescriptor {
        /// Path of the second descriptor.
        path: String,
        /// The clashing key and value, e.g. ``key `path` value `/login` ``.
        what: String,
        /// Path of the first descriptor.
        first: String,
    },
    /// Two config files define the same domain.
    #[error("domain `{domain}` is defined in both `{first}` and `{second}`")]
    DuplicateDomain {
        /// The domain.
        domain: String,
        /// The file that defined it first.
        first: String,
        /// The file that defined it again.
        second: String,
    },
    /// An error found in one config file of several.
    #[error("{file}: {error}")]
    InFile {
        /// Name of the file (as the caller named it).
        file: String,
        /// The error within it.
        #[source]
        error: Box<RlsConfigError>,
    },
}

impl RlsConfigError {
    /// Shorthand for [`RlsConfigError::Invalid`].
    pub fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        RlsConfigError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Wraps this error with the name of the file it was found in.
    pub fn in_file(self, file: impl Into<String>) -> Self {
        RlsConfigError::InFile {
            file: file.into(),
            error: Box::new(self),
        }
    }
}

/// A unit name that is none of second, minute, hour, day, week, month, year.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown unit `{0}`, expected one of second, minute, hour, day, week, month, year")]
pub struct UnknownRlsUnit(pub String);
