//! The throttle: a generic cell rate algorithm (GCRA) over one stored value.
//!
//! A limit of `rate` requests per second with burst `b` has an emission interval
//! `T = 1/rate` and admits a request of cost `n` at time `now` when the theoretical arrival
//! time (TAT) after it, `max(tat, now) + n·T`, is at most `now + b·T`. From idle exactly `b`
//! requests pass at once, then one per `T`. Only the TAT is stored, so the state is one
//! number per limit, and the check is the same whether it runs here or in Lua.
//!
//! Times are integer microseconds: Lua numbers are doubles, exact up to 2^53, and every
//! value here stays below that (see [`MAX_WINDOW_US`]).

use crate::CoreError;

/// Lowest accepted rate, in requests per second (one request per ~11.6 days).
pub const MIN_RATE_PER_SECOND: f64 = 0.000_001;
/// Highest accepted rate, in requests per second.
pub const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;
/// Highest accepted burst.
pub const MAX_BURST: u64 = 10_000_000;
/// Upper bound on `T·burst`, so that `now + T·burst` stays exact as a Lua number.
pub const MAX_WINDOW_US: u64 = 1_000_000_000_000_000;

/// A GCRA limit: emission interval and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GcraLimit {
    interval_us: u64,
    burst: u64,
}

impl GcraLimit {
    /// A limit of `rate` requests per second with `burst` requests at once.
    ///
    /// The interval is rounded up to whole microseconds, so the enforced rate never exceeds
    /// the configured one.
    pub fn per_second(rate: f64, burst: u64) -> Result<Self, CoreError> {
        if !rate.is_finite() || !(MIN_RATE_PER_SECOND..=MAX_RATE_PER_SECOND).contains(&rate) {
            return Err(CoreError::invalid(
                "rateLimit",
                format!(
                    "must be a number from {MIN_RATE_PER_SECOND} to {MAX_RATE_PER_SECOND} requests per second, got {rate}"
                ),
            ));
        }
        let interval_us = (1_000_000.0 / rate).ceil() as u64;
        Self::from_interval(interval_us.max(1), burst)
    }

    /// A limit of `requests` per `period_us` microseconds with a burst of `requests`
    /// (how Envoy's per-second/minute/hour units are enforced without a double burst at
    /// window edges).
    pub fn per_period(requests: u64, period_us: u64) -> Result<Self, CoreError> {
        if requests == 0 {
            return Err(CoreError::invalid(
                "requests_per_unit",
                "must be at least 1",
            ));
        }
        Self::from_interval(period_us.div_ceil(requests).max(1), requests)
    }

    fn from_interval(interval_us: u64, burst: u64) -> Result<Self, CoreError> {
        if !(1..=MAX_BURST).contains(&burst) {
            return Err(CoreError::invalid(
                "burstLimit",
                format!("must be from 1 to {MAX_BURST}, got {burst}"),
            ));
        }
        if interval_us.saturating_mul(burst) > MAX_WINDOW_US {
            return Err(CoreError::invalid(
                "burstLimit",
                "burst divided by rate must not exceed 1e9 seconds",
            ));
        }
        Ok(GcraLimit { interval_us, burst })
    }

    /// The emission interval `T` in microseconds.
    pub fn interval_us(&self) -> u64 {
        self.interval_us
    }

    /// The burst `b`.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The enforced rate in requests per second.
    pub fn rate_per_second(&self) -> f64 {
        1_000_000.0 / self.interval_us as f64
    }
}

/// What one GCRA evaluation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraOutcome {
    /// Whether a request of this cost (at least 1 when peeking) may pass now.
    pub allowed: bool,
    /// The TAT to store if the request is committed; `None` when nothing is to be written
    /// (denied, or cost 0).
    pub new_tat_us: Option<i64>,
    /// Requests of cost 1 that could pass at once after this one.
    pub remaining: u64,
    /// When denied, how long until a request of this cost can pass; 0 when admitted, and
    /// 0 when denied because no wait lets it pass (a cost above the burst).
    pub retry_after_us: u64,
    /// How long until the full burst is available again.
    pub reset_after_us: u64,
}

/// Evaluates a request of `cost` against `limit` at `now_us`, given the stored TAT.
///
/// Cost 0 reads: it reports whether a request of cost 1 would pass, and writes nothing.
/// A cost above the burst can never pass; it is denied with no retry time (0), since any
/// time named would invite a retry that must fail.
pub fn evaluate(
    limit: &GcraLimit,
    stored_tat_us: Option<i64>,
    now_us: i64,
    cost: u64,
) -> GcraOutcome {
    let t = limit.interval_us as i64;
    let window = t * limit.burst as i64;
    let tat = stored_tat_us.map_or(now_us, |s| s.max(now_us));
    let need = cost.max(1) as i64;
    let remaining_at = |tat: i64| -> u64 { ((window - (tat - now_us)) / t).max(0) as u64 };
    if need as u64 > limit.burst {
        return GcraOutcome {
            allowed: false,
            new_tat_us: None,
            remaining: remaining_at(tat),
            retry_after_us: 0,
            reset_after_us: (tat - now_us) as u64,
        };
    }
    let new_tat = tat + need * t;
    let allow_at = new_tat - window;
    if now_us < allow_at {
        return GcraOutcome {
            allowed: false,
            new_tat_us: None,
            remaining: remaining_at(tat),
            retry_after_us: (allow_at - now_us) as u64,
            reset_after_us: (tat - now_us) as u64,
        };
    }
    let committed = if cost > 0 { new_tat } else { tat };
    GcraOutcome {
        allowed: true,
        new_tat_us: (cost > 0).then_some(new_tat),
        remaining: remaining_at(committed),
        retry_after_us: 0,
        reset_after_us: (committed - now_us) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(limit: &GcraLimit, tat: &mut Option<i64>, now: i64, cost: u64) -> bool {
        let o = evaluate(limit, *tat, now, cost);
        if let Some(n) = o.new_tat_us {
            *tat = Some(n);
        }
        o.allowed
    }

    /// From idle exactly `burst` requests pass at once, then one per interval.
    #[test]
    fn burst_then_rate() {
        let l = GcraLimit::per_second(10.0, 3).unwrap();
        let mut tat = None;
        let now = 1_000_000_000_000;
        assert!((0..3).all(|_| run(&l, &mut tat, now, 1)));
        let denied = evaluate(&l, tat, now, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_us, 100_000);
        assert!(!run(&l, &mut tat, now + 99_999, 1));
        assert!(run(&l, &mut tat, now + 100_000, 1));
    }

    /// Cost 0 reports without writing, and says "no" exactly when cost 1 would be denied.
    #[test]
    fn cost_zero_peeks() {
        let l = GcraLimit::per_second(1.0, 1).unwrap();
        let o = evaluate(&l, None, 0, 0);
        assert!(o.allowed && o.new_tat_us.is_none() && o.remaining == 1);
        let o = evaluate(&l, Some(1_000_000), 0, 0);
        assert!(!o.allowed && o.new_tat_us.is_none());
    }

    /// A cost above the burst is denied with no retry time, even from idle; the state is
    /// reported as it is.
    #[test]
    fn cost_above_burst_never_passes() {
        let l = GcraLimit::per_second(1.0, 5).unwrap();
        let o = evaluate(&l, None, 0, 6);
        assert!(!o.allowed && o.new_tat_us.is_none());
        assert_eq!((o.remaining, o.retry_after_us, o.reset_after_us), (5, 0, 0));
        let o = evaluate(&l, Some(2_000_000), 0, 6);
        assert_eq!(
            (o.remaining, o.retry_after_us, o.reset_after_us),
            (3, 0, 2_000_000)
        );
    }

    /// Rates outside the accepted range, zero bursts and NaN are rejected.
    #[test]
    fn rejects_bad_limits() {
        assert!(GcraLimit::per_second(0.0, 1).is_err());
        assert!(GcraLimit::per_second(f64::NAN, 1).is_err());
        assert!(GcraLimit::per_second(-1.0, 1).is_err());
        assert!(GcraLimit::per_second(1.0, 0).is_err());
        assert!(GcraLimit::per_second(0.5, 1).is_ok());
        assert_eq!(
            GcraLimit::per_second(0.5, 1).unwrap().interval_us(),
            2_000_000
        );
    }

    proptest! {
        /// In any window of length t, GCRA admits at most `burst + rate·t` units, and a
        /// client that asks at every instant gets exactly that many (to within one).
        #[test]
        fn never_more_than_burst_plus_rate_times_t(
            rate in 0.5f64..2_000.0,
            burst in 1u64..50,
            gaps in proptest::collection::vec(0i64..20_000, 1..400),
            costs in proptest::collection::vec(0u64..4, 1..400),
        ) {
            let l = GcraLimit::per_second(rate, burst).unwrap();
            let mut tat = None;
            let mut now = 1_700_000_000_000_000i64;
            let mut admitted: Vec<(i64, u64)> = Vec::new();
            for (gap, cost) in gaps.iter().zip(costs.iter().cycle()) {
                now += gap;
                if run(&l, &mut tat, now, *cost) && *cost > 0 {
                    admitted.push((now, *cost));
                }
            }
            // Every window [a.time, b.time] holds at most burst + rate·(b - a) units.
            for i in 0..admitted.len() {
                let mut units = 0u64;
                for j in i..admitted.len() {
                    units += admitted[j].1;
                    let span = (admitted[j].0 - admitted[i].0) as f64 / 1e6;
                    prop_assert!(
                        units as f64 <= burst as f64 + l.rate_per_second() * span + 1e-9,
                        "{} units in {}s with rate {} burst {}", units, span, rate, burst
                    );
                }
            }
        }

        /// A greedy client asking at every emission instant gets `burst + floor(t/T)` in t
        /// (time a client leaves unused is lost, so it must ask on the grid to get it all).
        #[test]
        fn admits_all_it_may_when_demand_is_there(
            rate in 1f64..1_000.0,
            burst in 1u64..20,
            steps in 1i64..200,
        ) {
            let l = GcraLimit::per_second(rate, burst).unwrap();
            let t = l.interval_us() as i64;
            let start = 1_700_000_000_000_000i64;
            let mut tat = None;
            let mut count = 0u64;
            let horizon = steps * t;
            let step = if t % 4 == 0 { t / 4 } else { t };
            let mut now = start;
            while now <= start + horizon {
                while run(&l, &mut tat, now, 1) {
                    count += 1;
                }
                now += step;
            }
            let expected = burst + ((now - step - start) / t) as u64;
            prop_assert_eq!(count, expected);
        }
    }
}
