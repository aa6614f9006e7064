//! Envoy's rate-limit units and their translation into core limits.
//!
//! `second`, `minute` and `hour` become a GCRA throttle of `requests_per_unit` per unit with
//! a burst of `requests_per_unit`: from idle the whole allowance passes at once, then it
//! refills evenly, so no client gets twice the limit around a window edge as with the
//! original's fixed windows. `day`, `week`, `month` and `year` become calendar quotas in UTC
//! (ISO week from Monday, calendar month and year), which is what a quota's user expects
//! where the original counts epoch-aligned 7-, 30- and 365-day windows.

use crate::batch::LimitKind;
use crate::calendar::QuotaPeriod;
use crate::gcra::{GcraLimit, MAX_BURST};
use crate::quota::QuotaLimit;
use crate::rls::error::{RlsConfigError, UnknownRlsUnit};
use std::fmt;
use std::str::FromStr;

/// The unit of a `rate_limit` (or of a request's limit override).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RlsUnit {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
    /// One ISO week, UTC.
    Week,
    /// One calendar month, UTC.
    Month,
    /// One calendar year, UTC.
    Year,
}

impl RlsUnit {
    /// Every unit, shortest first.
    pub const ALL: [RlsUnit; 7] = [
        RlsUnit::Second,
        RlsUnit::Minute,
        RlsUnit::Hour,
        RlsUnit::Day,
        RlsUnit::Week,
        RlsUnit::Month,
        RlsUnit::Year,
    ];

    /// The lower-case name, as configs usually write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RlsUnit::Second => "second",
            RlsUnit::Minute => "minute",
            RlsUnit::Hour => "hour",
            RlsUnit::Day => "day",
            RlsUnit::Week => "week",
            RlsUnit::Month => "month",
            RlsUnit::Year => "year",
        }
    }

    /// The unit's length in microseconds when it is enforced as a throttle, else `None`.
    pub fn throttle_period_us(self) -> Option<u64> {
        match self.enforcement() {
            Enforcement::Throttle(period_us) => Some(period_us),
            Enforcement::Quota(_) => None,
        }
    }

    /// The calendar period when the unit is enforced as a quota, else `None`.
    pub fn quota_period(self) -> Option<QuotaPeriod> {
        match self.enforcement() {
            Enforcement::Quota(period) => Some(period),
            Enforcement::Throttle(_) => None,
        }
    }

    fn enforcement(self) -> Enforcement {
        match self {
            RlsUnit::Second => Enforcement::Throttle(1_000_000),
            RlsUnit::Minute => Enforcement::Throttle(60_000_000),
            RlsUnit::Hour => Enforcement::Throttle(3_600_000_000),
            RlsUnit::Day => Enforcement::Quota(QuotaPeriod::Day),
            RlsUnit::Week => Enforcement::Quota(QuotaPeriod::Week),
            RlsUnit::Month => Enforcement::Quota(QuotaPeriod::Month),
            RlsUnit::Year => Enforcement::Quota(QuotaPeriod::Year),
        }
    }
}

/// How a unit is enforced.
enum Enforcement {
    /// A GCRA throttle over a period of this many microseconds.
    Throttle(u64),
    /// A quota over this calendar period.
    Quota(QuotaPeriod),
}

impl fmt::Display for RlsUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RlsUnit {
    type Err = UnknownRlsUnit;

    /// Parses a unit name in any case (`second`, `SECOND`, `Second`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RlsUnit::ALL
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRlsUnit(s.to_owned()))
    }
}

// A day, week, month or year unit becomes a calendar quota of `requests_per_unit`, which is a
// u32 in the config and in Envoy's API, so it can never pass the quota bound that keeps the
// Redis script exact; nothing to check at run time.
const _: () = assert!(u32::MAX as u64 <= crate::quota::MAX_QUOTA);

/// The core limit of `requests_per_unit` per `unit`, or why there is none.
///
/// The error is the reason alone; the caller knows which field it belongs to.
pub(crate) fn limit_kind_for(requests_per_unit: u32, unit: RlsUnit) -> Result<LimitKind, String> {
    if requests_per_unit == 0 {
        return Err("must be at least 1".to_owned());
    }
    let requests = u64::from(requests_per_unit);
    match unit.enforcement() {
        Enforcement::Quota(period) => Ok(LimitKind::Quota(QuotaLimit {
            limit: requests,
            period,
            offset: 0,
            anchor_s: 0,
        })),
        Enforcement::Throttle(_) if requests > MAX_BURST => Err(format!(
            "must be at most {MAX_BURST} per second, minute or hour, got {requests}"
        )),
        Enforcement::Throttle(period_us) => GcraLimit::per_period(requests, period_us)
            .map(LimitKind::Throttle)
            .map_err(|e| e.to_string()),
    }
}

/// The core limit for a request descriptor's own `limit` (Envoy's
/// `RateLimitDescriptor.limit`), given its `requests_per_unit` and unit.
///
/// Errors name the field `limit.requests_per_unit`. Mapping Envoy's `UNKNOWN` unit is the
/// adapter's business: it has no [`RlsUnit`].
pub fn override_limit_kind(
    requests_per_unit: u32,
    unit: RlsUnit,
) -> Result<LimitKind, RlsConfigError> {
    limit_kind_for(requests_per_unit, unit)
        .map_err(|reason| RlsConfigError::invalid("limit.requests_per_unit", reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit names parse in any case and print in lower case; others are refused by name.
    #[test]
    fn parses_units_case_insensitively() {
        assert_eq!("SECOND".parse::<RlsUnit>(), Ok(RlsUnit::Second));
        assert_eq!("Week".parse::<RlsUnit>(), Ok(RlsUnit::Week));
        assert_eq!(RlsUnit::Month.to_string(), "month");
        assert_eq!(
            "fortnight".parse::<RlsUnit>().unwrap_err().to_string(),
            "unknown unit `fortnight`, expected one of second, minute, hour, day, week, month, year"
        );
    }

    /// second/minute/hour become GCRA throttles with the allowance as burst.
    #[test]
    fn short_units_become_gcra() {
        for (unit, period_us) in [
            (RlsUnit::Second, 1_000_000),
            (RlsUnit::Minute, 60_000_000),
            (RlsUnit::Hour, 3_600_000_000u64),
        ] {
            let kind = override_limit_kind(10, unit).unwrap();
            let expected = GcraLimit::per_period(10, period_us).unwrap();
            assert_eq!(kind, LimitKind::Throttle(expected));
            assert_eq!(expected.burst(), 10);
            assert_eq!(expected.interval_us(), period_us / 10);
        }
    }

    /// day/week/month/year become calendar quotas with no offset.
    #[test]
    fn long_units_become_quotas() {
        for (unit, period) in [
            (RlsUnit::Day, QuotaPeriod::Day),
            (RlsUnit::Week, QuotaPeriod::Week),
            (RlsUnit::Month, QuotaPeriod::Month),
            (RlsUnit::Year, QuotaPeriod::Year),
        ] {
            let kind = override_limit_kind(u32::MAX, unit).unwrap();
            let expected = QuotaLimit {
                limit: u64::from(u32::MAX),
                period,
                offset: 0,
                anchor_s: 0,
            };
            assert_eq!(kind, LimitKind::Quota(expected));
        }
    }

    /// An override of 0, or above the throttle's burst ceiling, is refused with the field.
    #[test]
    fn override_bounds() {
        assert_eq!(
            override_limit_kind(0, RlsUnit::Second)
                .unwrap_err()
                .to_string(),
            "limit.requests_per_unit: must be at least 1"
        );
        assert_eq!(
            override_limit_kind(10_000_001, RlsUnit::Hour)
                .unwrap_err()
                .to_string(),
            "limit.requests_per_unit: must be at most 10000000 per second, minute or hour, got 10000001"
        );
        assert!(override_limit_kind(10_000_000, RlsUnit::Second).is_ok());
    }
}
