//! The wall clock, read in one place for the crate: the memory store decides by it, and the
//! Redis backend names today's calendar by it (Redis decides by its own `TIME`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch by this process's clock; 0 for a clock before 1970.
pub(crate) fn unix_now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
