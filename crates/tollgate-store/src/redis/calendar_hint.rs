//! The calendar of one UTC day, worked out on the instance and sent with each check so that
//! Redis need not work it out per call.
//!
//! `check.lua` names quota periods (`m202611`) and usage days (`20261126`) from Redis's own
//! clock. Doing that date arithmetic in Lua cost Redis about a tenth of its instructions per
//! check, and Redis is the one process a whole fleet shares. So each call carries a
//! [`CalendarHint`]: a day number and the names and ends of the periods holding that day.
//! The script uses them only when Redis's `TIME` falls on that same day, and otherwise works
//! everything out itself, as before; time still comes from Redis alone, and an instance
//! whose clock is off costs Redis the arithmetic, never a wrong answer.

use crate::clock::unix_now_us;
use arc_swap::ArcSwap;
use std::sync::{Arc, LazyLock};
use tollgate_core::calendar::{day_id, window, PeriodWindow, QuotaPeriod, SECONDS_PER_DAY};

/// One UTC day's usage-day id and the quota periods that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarHint {
    day: i64,
    day_id: String,
    periods: [PeriodWindow; 4],
}

impl CalendarHint {
    /// The hint for Unix day `day` (days since 1970-01-01).
    pub fn for_day(day: i64) -> Self {
        let s = day.saturating_mul(SECONDS_PER_DAY);
        CalendarHint {
            day,
            day_id: day_id(s),
            periods: [
                window(QuotaPeriod::Day, s),
                window(QuotaPeriod::Week, s),
                window(QuotaPeriod::Month, s),
                window(QuotaPeriod::Year, s),
            ],
        }
    }

    /// The hint for today by this instance's clock, rebuilt when the day changes.
    pub fn today() -> Arc<CalendarHint> {
        static TODAY: LazyLock<ArcSwap<CalendarHint>> =
            LazyLock::new(|| ArcSwap::from_pointee(CalendarHint::for_day(unix_day_now())));
        let day = unix_day_now();
        let current = TODAY.load_full();
        if current.day == day {
            return current;
        }
        let fresh = Arc::new(CalendarHint::for_day(day));
        TODAY.store(fresh.clone());
        fresh
    }

    /// The Unix day this hint is for.
    pub fn day(&self) -> i64 {
        self.day
    }

    /// The usage-day id (`YYYYMMDD`) of the day.
    pub fn day_id(&self) -> &str {
        &self.day_id
    }

    /// The quota period of kind `period` holding the day.
    pub fn period(&self, period: QuotaPeriod) -> &PeriodWindow {
        let i = match period {
            QuotaPeriod::Day => 0,
            QuotaPeriod::Week => 1,
            QuotaPeriod::Month => 2,
            QuotaPeriod::Year => 3,
        };
        &self.periods[i]
    }
}

fn unix_day_now() -> i64 {
    // A clock before 1970 gives day 0: a hint the script will not match, so it computes.
    unix_now_us().div_euclid(1_000_000 * SECONDS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::calendar::days_from_civil;

    #[test]
    fn names_the_periods_of_its_day() {
        let day = days_from_civil(2026, 11, 26);
        let h = CalendarHint::for_day(day);
        assert_eq!(h.day_id(), "20261126");
        assert_eq!(h.period(QuotaPeriod::Day).id, "d20261126");
        assert_eq!(h.period(QuotaPeriod::Week).id, "w2026W48");
        assert_eq!(h.period(QuotaPeriod::Month).id, "m202611");
        assert_eq!(h.period(QuotaPeriod::Year).id, "y2026");
        assert_eq!(
            h.period(QuotaPeriod::Month).end_s,
            days_from_civil(2026, 12, 1) * SECONDS_PER_DAY
        );
    }

    #[test]
    fn today_follows_the_clock() {
        let before = unix_day_now();
        let h = CalendarHint::today();
        let after = unix_day_now();
        assert!(
            h.day() == before || h.day() == after,
            "hint for day {}",
            h.day()
        );
        assert_eq!(*h, CalendarHint::for_day(h.day()));
    }
}
