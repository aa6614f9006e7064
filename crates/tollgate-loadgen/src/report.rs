//! What a run measured: counts by outcome, an HDR latency histogram, and how they print.
//!
//! Every run prints a few human lines and one `SUMMARY key=value ...` line that scripts
//! (`loadtest/bench.sh`) read.

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::Duration;

/// Outcomes of the checks of one call (one check, or a pipeline of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Admitted.
    pub allowed: u64,
    /// Refused by a throttle or quota (429).
    pub limited: u64,
    /// Refused by key (403).
    pub forbidden: u64,
    /// Store unavailable (503).
    pub unavailable: u64,
    /// The call itself failed (transport or protocol error).
    pub errors: u64,
}

impl Tally {
    /// Checks counted.
    pub fn checks(&self) -> u64 {
        self.allowed + self.limited + self.forbidden + self.unavailable + self.errors
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: &Tally) {
        self.allowed += other.allowed;
        self.limited += other.limited;
        self.forbidden += other.forbidden;
        self.unavailable += other.unavailable;
        self.errors += other.errors;
    }
}

/// Latency histogram in microseconds, 1 µs to 60 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Bounds are constants that the crate accepts; failing here is a programming error.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// The measurements of one worker, or of a whole run once merged.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency per call, µs (open loop: from the time the call was due).
    pub latency_us: Histogram<u64>,
    /// Open loop only: from the moment the call was actually sent, µs. Its gap to
    /// `latency_us` is time spent queued in the load generator (busy callers, a late tick).
    pub sent_us: Histogram<u64>,
    /// Outcomes in the measured window.
    pub tally: Tally,
    /// Checks sent in total, warm-up included (for per-check Redis accounting).
    pub sent_total: u64,
    /// Checks given the hot key, warm-up included.
    pub hot_total: u64,
    /// Checks given an ordinary key, warm-up included.
    pub rest_total: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency_us: histogram(),
            sent_us: histogram(),
            tally: Tally::default(),
            sent_total: 0,
            hot_total: 0,
            rest_total: 0,
        }
    }
}

impl Stats {
    /// Records one call that took `latency` and ended as `tally`.
    pub fn record(&mut self, latency: Duration, tally: &Tally) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency_us.saturating_record(us);
        self.tally.add(tally);
    }

    /// Records, for an open-loop call, the time from its actual send to its answer.
    pub fn record_sent(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.sent_us.saturating_record(us);
    }

    /// Merges another worker's stats in.
    pub fn merge(&mut self, other: &Stats) {
        // Same bounds on both sides, so adding cannot fail; ignore it if it somehow does.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.sent_us.add(&other.sent_us);
        self.tally.add(&other.tally);
        self.sent_total += other.sent_total;
        self.hot_total += other.hot_total;
        self.rest_total += other.rest_total;
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was driven (`grpc`, `ceiling`, `ceiling-pipelined`).
    pub target: String,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Concurrent callers (closed) or the most calls in flight (open).
    pub concurrency: usize,
    /// Target rate for an open-loop run.
    pub rate: Option<f64>,
    /// Checks per call.
    pub checks_per_call: usize,
    /// Length of the measured window.
    pub measured: Duration,
    /// The numbers.
    pub stats: Stats,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

impl Report {
    /// Checks per second in the measured window.
    pub fn throughput(&self) -> f64 {
        self.stats.tally.checks() as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        ms(self.stats.latency_us.value_at_quantile(q))
    }

    /// The human lines.
    pub fn human(&self) -> String {
        let s = &self.stats;
        let t = &s.tally;
        let mut out = String::new();
        let shape = match self.rate {
            Some(r) => format!(
                "open loop at {r:.0} checks/s, up to {} in flight",
                self.concurrency
            ),
            None => format!("closed loop, {} callers", self.concurrency),
        };
        let per_call = if self.checks_per_call > 1 {
            format!(", {} checks per round trip", self.checks_per_call)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{}: {shape}{per_call}, {:.1} s measured",
            self.target,
            self.measured.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  throughput {:.0} checks/s ({} checks: {} allowed, {} limited, {} forbidden, {} unavailable, {} errors)",
            self.throughput(),
            t.checks(),
            t.allowed,
            t.limited,
            t.forbidden,
            t.unavailable,
            t.errors
        );
        let _ = writeln!(
            out,
            "  latency per {} ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            if self.checks_per_call > 1 {
                "round trip"
            } else {
                "check"
            },
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            ms(s.latency_us.max())
        );
        if !s.sent_us.is_empty() {
            let q = |x: f64| ms(s.sent_us.value_at_quantile(x));
            let _ = writeln!(
                out,
                "  from actual send ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  (the rest is queueing in the load generator)",
                q(0.5),
                q(0.9),
                q(0.99),
                q(0.999)
            );
        }
        if s.hot_total > 0 {
            let _ = writeln!(
                out,
                "  hot key: {} of {} checks ({:.1} %)",
                s.hot_total,
                s.hot_total + s.rest_total,
                100.0 * s.hot_total as f64 / (s.hot_total + s.rest_total).max(1) as f64
            );
        }
        out
    }

    /// The `key=value` fields of the SUMMARY line.
    pub fn fields(&self) -> Vec<(String, String)> {
        let s = &self.stats;
        let t = &s.tally;
        let mut f = vec![
            ("target".into(), self.target.clone()),
            ("mode".into(), self.mode.to_string()),
            ("concurrency".into(), self.concurrency.to_string()),
            ("throughput".into(), format!("{:.1}", self.throughput())),
            ("p50_ms".into(), format!("{:.3}", self.latency_ms(0.5))),
            ("p99_ms".into(), format!("{:.3}", self.latency_ms(0.99))),
            ("p999_ms".into(), format!("{:.3}", self.latency_ms(0.999))),
            ("checks".into(), t.checks().to_string()),
            ("allowed".into(), t.allowed.to_string()),
            ("limited".into(), t.limited.to_string()),
            ("forbidden".into(), t.forbidden.to_string()),
            ("unavailable".into(), t.unavailable.to_string()),
            ("errors".into(), t.errors.to_string()),
            ("sent_total".into(), s.sent_total.to_string()),
            ("hot_total".into(), s.hot_total.to_string()),
            ("rest_total".into(), s.rest_total.to_string()),
        ];
        if let Some(r) = self.rate {
            f.push(("rate".into(), format!("{r:.1}")));
        }
        if !s.sent_us.is_empty() {
            let p99 = ms(s.sent_us.value_at_quantile(0.99));
            f.push(("p99_sent_ms".into(), format!("{p99:.3}")));
        }
        f
    }
}

/// Formats a SUMMARY line from fields.
pub fn summary_line(fields: &[(String, String)]) -> String {
    let mut line = String::from("SUMMARY");
    for (k, v) in fields {
        let _ = write!(line, " {k}={v}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Percentiles come from the merged histogram; throughput counts the measured window.
    #[test]
    fn merged_report() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for i in 1..=1000u64 {
            let t = Tally {
                allowed: 1,
                ..Tally::default()
            };
            if i % 2 == 0 {
                a.record(Duration::from_micros(i), &t);
            } else {
                b.record(Duration::from_micros(i), &t);
            }
        }
        a.merge(&b);
        let r = Report {
            target: "grpc".into(),
            mode: "closed",
            concurrency: 4,
            rate: None,
            checks_per_call: 1,
            measured: Duration::from_secs(2),
            stats: a,
        };
        assert_eq!(r.throughput(), 500.0);
        assert!((r.latency_ms(0.5) - 0.5).abs() < 0.01);
        assert!((r.latency_ms(0.99) - 0.99).abs() < 0.01);
        let line = summary_line(&r.fields());
        assert!(
            line.starts_with("SUMMARY target=grpc mode=closed"),
            "{line}"
        );
        assert!(line.contains(" throughput=500.0 "), "{line}");
    }
}
