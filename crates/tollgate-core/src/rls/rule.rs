//! A validated `rate_limit` block, with the flags of the descriptor that holds it: what
//! applies when a request descriptor ends on that descriptor.
//!
//! The core limit is computed once, at validation, so every rule that exists can be enforced
//! and [`RlsRule::limit_kind`] cannot fail.

use crate::batch::LimitKind;
use crate::rls::config::{RlsRateLimitConfig, RlsReplacesConfig};
use crate::rls::error::{RlsConfigError, UnknownRlsUnit};
use crate::rls::unit::{limit_kind_for, RlsUnit};

/// A rate-limit rule of an RLS domain.
#[derive(Debug, Clone, PartialEq)]
pub struct RlsRule {
    unit: Option<RlsUnit>,
    requests_per_unit: u32,
    name: Option<String>,
    replaces: Vec<String>,
    shadow_mode: bool,
    detailed_metric: bool,
    kind: Option<LimitKind>,
}

/// The descriptor-level flags that travel with a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RuleFlags {
    pub(crate) shadow_mode: bool,
    pub(crate) detailed_metric: bool,
}

impl RlsRule {
    /// A plain limit of `requests_per_unit` per `unit`, without name or flags (what a
    /// request's limit override amounts to).
    pub fn limited(requests_per_unit: u32, unit: RlsUnit) -> Result<Self, RlsConfigError> {
        let kind = limit_kind_for(requests_per_unit, unit)
            .map_err(|reason| RlsConfigError::invalid("limit.requests_per_unit", reason))?;
        Ok(RlsRule {
            unit: Some(unit),
            requests_per_unit,
            name: None,
            replaces: Vec::new(),
            shadow_mode: false,
            detailed_metric: false,
            kind: Some(kind),
        })
    }

    /// Validates the `rate_limit` block at `path` (e.g. `descriptors[0].rate_limit`).
    pub(crate) fn from_config(
        raw: RlsRateLimitConfig,
        flags: RuleFlags,
        path: &str,
    ) -> Result<Self, RlsConfigError> {
        let (unit, kind) = if raw.unlimited {
            check_unlimited(&raw, path)?;
            (None, None)
        } else {
            let unit = parse_unit(raw.unit.as_deref(), path)?;
            let requests = raw.requests_per_unit.unwrap_or(0);
            (Some(unit), Some(limit_for(requests, unit, path)?))
        };
        let name = raw.name.filter(|n| !n.is_empty());
        let replaces = check_replaces(raw.replaces, name.as_deref(), path)?;
        Ok(RlsRule {
            unit,
            requests_per_unit: raw.requests_per_unit.unwrap_or(0),
            name,
            replaces,
            shadow_mode: flags.shadow_mode,
            detailed_metric: flags.detailed_metric,
            kind,
        })
    }

    /// The unit; `None` when unlimited.
    pub fn unit(&self) -> Option<RlsUnit> {
        self.unit
    }

    /// Requests allowed per unit; 0 when unlimited.
    pub fn requests_per_unit(&self) -> u32 {
        self.requests_per_unit
    }

    /// Whether the rule sets no limit at all.
    pub fn unlimited(&self) -> bool {
        self.kind.is_none()
    }

    /// The name other rules' `replaces` refer to.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Names of the rules this one replaces when both match one request.
    pub fn replaces(&self) -> &[String] {
        &self.replaces
    }

    /// Whether the rule only counts and reports, never denies.
    pub fn shadow_mode(&self) -> bool {
        self.shadow_mode
    }

    /// Whether its stats are named after the request's values.
    pub fn detailed_metric(&self) -> bool {
        self.detailed_metric
    }

    /// The core limit to enforce; `None` when unlimited.
    pub fn limit_kind(&self) -> Option<LimitKind> {
        self.kind.clone()
    }
}

/// `unlimited` excludes a unit and an allowance (the original refuses the unit too).
fn check_unlimited(raw: &RlsRateLimitConfig, path: &str) -> Result<(), RlsConfigError> {
    if raw.unit.is_some() {
        return Err(RlsConfigError::invalid(
            format!("{path}.unit"),
            "must not be set when unlimited is true",
        ));
    }
    if raw.requests_per_unit.is_some() {
        return Err(RlsConfigError::invalid(
            format!("{path}.requests_per_unit"),
            "must not be set when unlimited is true",
        ));
    }
    Ok(())
}

fn parse_unit(unit: Option<&str>, path: &str) -> Result<RlsUnit, RlsConfigError> {
    let field = format!("{path}.unit");
    let unit = unit.ok_or_else(|| {
        RlsConfigError::invalid(
            &field,
            "required unless unlimited is true (one of second, minute, hour, day, week, month, year)",
        )
    })?;
    unit.parse()
        .map_err(|e: UnknownRlsUnit| RlsConfigError::invalid(field, e.to_string()))
}

fn limit_for(requests: u32, unit: RlsUnit, path: &str) -> Result<LimitKind, RlsConfigError> {
    let field = format!("{path}.requests_per_unit");
    if requests == 0 {
        return Err(RlsConfigError::invalid(
            field,
            "must be at least 1 unless unlimited is true",
        ));
    }
    limit_kind_for(requests, unit).map_err(|reason| RlsConfigError::invalid(field, reason))
}

/// Every replaced name is non-empty and not the rule's own (as the original checks).
fn check_replaces(
    replaces: Vec<RlsReplacesConfig>,
    own: Option<&str>,
    path: &str,
) -> Result<Vec<String>, RlsConfigError> {
    let mut names = Vec::with_capacity(replaces.len());
    for (i, r) in replaces.into_iter().enumerate() {
        let field = format!("{path}.replaces[{i}].name");
        if r.name.is_empty() {
            return Err(RlsConfigError::invalid(field, "must not be empty"));
        }
        if Some(r.name.as_str()) == own {
            return Err(RlsConfigError::invalid(
                field,
                format!("a rule must not replace itself (`{}`)", r.name),
            ));
        }
        names.push(r.name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use crate::rls::testutil::domain_err;

    fn err_of(rate_limit: &str) -> String {
        domain_err(&format!(
            "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n      - key: c\n        rate_limit: {rate_limit}\n"
        ))
    }

    const AT: &str = "descriptors[0].descriptors[1].rate_limit";

    /// A missing or unknown unit is refused with the descriptor path.
    #[test]
    fn unit_errors() {
        assert_eq!(
            err_of("{requests_per_unit: 1}"),
            format!("{AT}.unit: required unless unlimited is true (one of second, minute, hour, day, week, month, year)")
        );
        assert_eq!(
            err_of("{unit: fortnight, requests_per_unit: 1}"),
            format!("{AT}.unit: unknown unit `fortnight`, expected one of second, minute, hour, day, week, month, year")
        );
    }

    /// A zero or missing allowance without `unlimited` is refused.
    #[test]
    fn zero_requests_per_unit() {
        let expected =
            format!("{AT}.requests_per_unit: must be at least 1 unless unlimited is true");
        assert_eq!(err_of("{unit: second, requests_per_unit: 0}"), expected);
        assert_eq!(err_of("{unit: second}"), expected);
    }

    /// An allowance too large for a throttle's burst is refused.
    #[test]
    fn throttle_ceiling() {
        assert_eq!(
            err_of("{unit: minute, requests_per_unit: 20000000}"),
            format!("{AT}.requests_per_unit: must be at most 10000000 per second, minute or hour, got 20000000")
        );
    }

    /// `unlimited` together with an allowance or a unit is refused.
    #[test]
    fn unlimited_conflicts() {
        assert_eq!(
            err_of("{unlimited: true, requests_per_unit: 5}"),
            format!("{AT}.requests_per_unit: must not be set when unlimited is true")
        );
        assert_eq!(
            err_of("{unlimited: true, unit: second}"),
            format!("{AT}.unit: must not be set when unlimited is true")
        );
    }

    /// Empty and self-referring `replaces` entries are refused.
    #[test]
    fn replaces_errors() {
        assert_eq!(
            err_of("{unit: second, requests_per_unit: 1, replaces: [{name: x}, {name: ''}]}"),
            format!("{AT}.replaces[1].name: must not be empty")
        );
        assert_eq!(
            err_of("{unit: second, requests_per_unit: 1, name: me, replaces: [{name: me}]}"),
            format!("{AT}.replaces[0].name: a rule must not replace itself (`me`)")
        );
    }
}
