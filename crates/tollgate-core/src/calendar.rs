//! UTC calendar periods and their ids.
//!
//! Quotas count per calendar period: a day from 00:00 UTC, an ISO week from Monday 00:00 UTC,
//! a month from the 1st, a year from 1 January. The arithmetic is integer-only civil-date
//! conversion (days since 1970-01-01 to year/month/day and back) so that the Redis Lua
//! script can do exactly the same with Lua numbers; `check.lua` holds the twin of every
//! function here and a test runs both on the same instants.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Seconds in one day.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// A calendar period a quota counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QuotaPeriod {
    /// A UTC day.
    Day,
    /// An ISO week, Monday to Sunday, UTC.
    Week,
    /// A calendar month, UTC.
    Month,
    /// A calendar year, UTC (used by Envoy rate-limit configs).
    Year,
}

impl QuotaPeriod {
    /// The one-letter code the Lua script takes for this period.
    pub fn code(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "d",
            QuotaPeriod::Week => "w",
            QuotaPeriod::Month => "m",
            QuotaPeriod::Year => "y",
        }
    }

    /// The AWS name of the period (`DAY`, `WEEK`, `MONTH`, `YEAR`).
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "DAY",
            QuotaPeriod::Week => "WEEK",
            QuotaPeriod::Month => "MONTH",
            QuotaPeriod::Year => "YEAR",
        }
    }
}

impl fmt::Display for QuotaPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A civil date in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month 1..=12.
    pub month: i64,
    /// Day of month 1..=31.
    pub day: i64,
}

/// Converts days since 1970-01-01 to a civil date.
pub fn civil_from_days(days: i64) -> CivilDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    CivilDate { year, month, day }
}

/// Converts a civil date to days since 1970-01-01.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One calendar period: its id and its bounds in Unix seconds, `start <= t < end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodWindow {
    /// Stable id of the period, e.g. `d20261126`, `w2026W48`, `m202611`, `y2026`.
    pub id: String,
    /// First second of the period.
    pub start_s: i64,
    /// First second of the next period.
    pub end_s: i64,
}

/// The period of kind `period` that contains the Unix second `unix_s`.
pub fn window(period: QuotaPeriod, unix_s: i64) -> PeriodWindow {
    let days = unix_s.div_euclid(SECONDS_PER_DAY);
    match period {
        QuotaPeriod::Day => {
            let d = civil_from_days(days);
            PeriodWindow {
                id: format!("d{:04}{:02}{:02}", d.year, d.month, d.day),
                start_s: days * SECONDS_PER_DAY,
                end_s: (days + 1) * SECONDS_PER_DAY,
            }
        }
        QuotaPeriod::Week => {
            // 1970-01-01 was a Thursday: (days + 3) mod 7 is 0 on Mondays.
            let monday = days - (days + 3).rem_euclid(7);
            let thursday = civil_from_days(monday + 3);
            let iso_year = thursday.year;
            let week = (monday + 3 - days_from_civil(iso_year, 1, 1)) / 7 + 1;
            PeriodWindow {
                id: format!("w{iso_year:04}W{week:02}"),
                start_s: monday * SECONDS_PER_DAY,
                end_s: (monday + 7) * SECONDS_PER_DAY,
            }
        }
        QuotaPeriod::Month => {
            let d = civil_from_days(days);
            let (ny, nm) = if d.month == 12 {
                (d.year + 1, 1)
            } else {
                (d.year, d.month + 1)
            };
            PeriodWindow {
                id: format!("m{:04}{:02}", d.year, d.month),
                start_s: days_from_civil(d.year, d.month, 1) * SECONDS_PER_DAY,
                end_s: days_from_civil(ny, nm, 1) * SECONDS_PER_DAY,
            }
        }
        QuotaPeriod::Year => {
            let d = civil_from_days(days);
            PeriodWindow {
                id: format!("y{:04}", d.year),
                start_s: days_from_civil(d.year, 1, 1) * SECONDS_PER_DAY,
                end_s: days_from_civil(d.year + 1, 1, 1) * SECONDS_PER_DAY,
            }
        }
    }
}

/// The `YYYYMMDD` day id of the Unix second `unix_s`, the field of the daily usage record.
pub fn day_id(unix_s: i64) -> String {
    let d = civil_from_days(unix_s.div_euclid(SECONDS_PER_DAY));
    format!("{:04}{:02}{:02}", d.year, d.month, d.day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: i64, d: i64, hh: i64) -> i64 {
        days_from_civil(y, m, d) * SECONDS_PER_DAY + hh * 3600
    }

    /// Pins the id format and bounds of each period kind on one known instant.
    #[test]
    fn ids_and_bounds_of_a_known_instant() {
        let t = at(2026, 11, 26, 13);
        assert_eq!(window(QuotaPeriod::Day, t).id, "d20261126");
        let w = window(QuotaPeriod::Week, t);
        assert_eq!(w.id, "w2026W48");
        assert_eq!(w.start_s, at(2026, 11, 23, 0));
        assert_eq!(window(QuotaPeriod::Month, t).id, "m202611");
        assert_eq!(window(QuotaPeriod::Month, t).end_s, at(2026, 12, 1, 0));
        assert_eq!(window(QuotaPeriod::Year, t).id, "y2026");
        assert_eq!(day_id(t), "20261126");
    }

    /// ISO week 1 may start in the previous calendar year, and week 53 exists in some years.
    #[test]
    fn iso_week_edges() {
        // 2024-12-30 is a Monday and belongs to 2025-W01.
        assert_eq!(
            window(QuotaPeriod::Week, at(2024, 12, 31, 0)).id,
            "w2025W01"
        );
        // 2021-01-03 (Sunday) belongs to 2020-W53.
        assert_eq!(window(QuotaPeriod::Week, at(2021, 1, 3, 23)).id, "w2020W53");
        assert_eq!(window(QuotaPeriod::Week, at(2021, 1, 4, 0)).id, "w2021W01");
    }

    /// February has 29 days in leap years only, and century years follow the 400 rule.
    #[test]
    fn leap_years() {
        assert_eq!(
            window(QuotaPeriod::Month, at(2028, 2, 10, 0)).end_s,
            at(2028, 3, 1, 0)
        );
        assert_eq!(
            window(QuotaPeriod::Month, at(2028, 2, 10, 0)).end_s
                - window(QuotaPeriod::Month, at(2028, 2, 10, 0)).start_s,
            29 * SECONDS_PER_DAY
        );
        assert_eq!(civil_from_days(days_from_civil(2100, 2, 28) + 1).month, 3);
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 28) + 1).day, 29);
    }

    mod against_chrono {
        use super::super::*;
        use chrono::{DateTime, Datelike, Duration, NaiveDate};
        use proptest::prelude::*;

        fn midnight(d: NaiveDate) -> i64 {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp())
                .unwrap_or_default()
        }

        proptest! {
            /// Every period's id and bounds agree with chrono, an independent calendar, from
            /// 1970 to 2400 (month ends, leap days, ISO week starts, year boundaries).
            #[test]
            fn windows_agree_with_chrono(t in 0i64..13_569_465_600) {
                let dt = DateTime::from_timestamp(t, 0).unwrap();
                let date = dt.date_naive();
                let d = window(QuotaPeriod::Day, t);
                prop_assert_eq!(&d.id, &format!("d{}", date.format("%Y%m%d")));
                prop_assert_eq!(d.start_s, midnight(date));
                let w = window(QuotaPeriod::Week, t);
                let iso = date.iso_week();
                prop_assert_eq!(&w.id, &format!("w{:04}W{:02}", iso.year(), iso.week()));
                let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                prop_assert_eq!(w.start_s, midnight(monday));
                let m = window(QuotaPeriod::Month, t);
                let first = date.with_day(1).unwrap();
                let next = first.checked_add_months(chrono::Months::new(1)).unwrap();
                prop_assert_eq!(&m.id, &format!("m{}", date.format("%Y%m")));
                prop_assert_eq!((m.start_s, m.end_s), (midnight(first), midnight(next)));
                let y = window(QuotaPeriod::Year, t);
                prop_assert_eq!(y.end_s, midnight(NaiveDate::from_ymd_opt(date.year() + 1, 1, 1).unwrap()));
                prop_assert!(d.start_s <= t && t < d.end_s && w.start_s <= t && t < w.end_s);
            }

            /// Near period edges (the last and first second), the window flips exactly there.
            #[test]
            fn flips_exactly_at_the_edge(day in 0i64..157_000, period in 0usize..4) {
                let p = [QuotaPeriod::Day, QuotaPeriod::Week, QuotaPeriod::Month, QuotaPeriod::Year][period];
                let w = window(p, day * SECONDS_PER_DAY);
                prop_assert_eq!(window(p, w.end_s - 1).id, w.id.clone());
                prop_assert_ne!(window(p, w.end_s).id, w.id.clone());
                prop_assert_eq!(window(p, w.end_s).start_s, w.end_s);
            }
        }
    }
}
