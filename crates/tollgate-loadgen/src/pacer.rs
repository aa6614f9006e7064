//! The open loop's schedule: call `i` is due at `start + i / rate`, and [`Pacer::due`]
//! waits until one or more calls are due and says which.
//!
//! On Linux the schedule is a periodic `timerfd` that the tokio runtime polls like any
//! socket. That keeps the kernel's timer precision (tens of µs, where tokio's own timer
//! wheel has 1 ms) without a pacing thread: a thread that wakes once per call and hands
//! each call to the runtime across threads costs two context switches per call, which on a
//! two-core machine shared with the server under test was the largest CPU cost of the
//! whole open-loop run. A timerfd read returns how many periods have passed, so when the
//! runtime is busy the due calls come out as one batch, each still stamped with its own
//! due time (latency counts from there, so lateness is charged to the figures).
//!
//! Elsewhere it falls back to tokio's timer, which rounds each wait up to the millisecond.

use std::io;
use std::ops::Range;
use std::time::{Duration, Instant};

/// A fixed-rate schedule of calls.
pub struct Pacer {
    start: Instant,
    interval: Duration,
    next: u64,
    #[cfg(target_os = "linux")]
    timer: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl Pacer {
    /// A schedule of `rate` calls per second whose first call is due `delay` from now.
    /// Must be called within a tokio runtime with I/O enabled.
    pub fn start(rate: f64, delay: Duration) -> io::Result<Self> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("rate must be a positive number of calls per second, not {rate}"),
            ));
        }
        // At least 1 ns: a zero interval would disarm the periodic timer.
        let interval = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
        let start = Instant::now() + delay;
        Ok(Pacer {
            start,
            interval,
            next: 0,
            #[cfg(target_os = "linux")]
            timer: periodic_timer(delay, interval)?,
        })
    }

    /// When the first call is due.
    pub fn first_due(&self) -> Instant {
        self.start
    }

    /// When call `i` is due.
    pub fn due_at(&self, i: u64) -> Instant {
        // u32 steps keep Duration's multiplication exact; 2^32 calls is more than any run.
        self.start + self.interval * u32::try_from(i).unwrap_or(u32::MAX)
    }

    /// Waits until at least one more call is due, and returns the calls due now.
    #[cfg(target_os = "linux")]
    pub async fn due(&mut self) -> io::Result<Range<u64>> {
        loop {
            let mut ready = self.timer.readable().await?;
            let mut buf = [0u8; 8];
            match ready
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut buf).map_err(io::Error::from))
            {
                Ok(Ok(8)) => {
                    // The read consumed every expiration so far: wait for the next one in
                    // epoll rather than find out with a second read that fails with
                    // EAGAIN, a syscall per tick. tokio clears only the readiness this
                    // guard saw, so an expiration that raced the read still wakes us.
                    ready.clear_ready();
                    let expirations = u64::from_ne_bytes(buf);
                    let from = self.next;
                    self.next = self.next.saturating_add(expirations);
                    return Ok(from..self.next);
                }
                Ok(Ok(n)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("timerfd read returned {n} bytes, not 8"),
                    ))
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits until at least one more call is due, and returns the calls due now.
    #[cfg(not(target_os = "linux"))]
    pub async fn due(&mut self) -> io::Result<Range<u64>> {
        tokio::time::sleep_until(self.due_at(self.next).into()).await;
        let elapsed = Instant::now().saturating_duration_since(self.start);
        let upto = (elapsed.as_nanos() / self.interval.as_nanos().max(1)) as u64 + 1;
        let from = self.next;
        self.next = upto.max(from + 1);
        Ok(from..self.next)
    }
}

/// A non-blocking monotonic timerfd first expiring after `delay`, then every `interval`.
#[cfg(target_os = "linux")]
fn periodic_timer(
    delay: Duration,
    interval: Duration,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    let timespec = |d: Duration| Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    };
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    // A zero first expiry would disarm the timer: start at least 1 ns from now.
    let spec = Itimerspec {
        it_value: timespec(delay.max(Duration::from_nanos(1))),
        it_interval: timespec(interval),
    };
    timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)?;
    // `AsyncFd::new` is deprecated because an arbitrary `AsRawFd` may hand out a descriptor
    // it does not own; an `OwnedFd` owns its descriptor for the AsyncFd's whole life, which
    // is exactly what the unsafe replacement asks its caller to promise, so the safe call is
    // sound here and the crate keeps `forbid(unsafe_code)`.
    #[allow(deprecated)]
    tokio::io::unix::AsyncFd::new(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_come_due_at_the_rate_and_never_early() {
        let mut pacer = Pacer::start(2000.0, Duration::from_millis(5)).expect("timer");
        let mut seen = 0u64;
        while seen < 100 {
            let due = pacer.due().await.expect("due");
            assert_eq!(due.start, seen, "no call skipped or repeated");
            assert!(!due.is_empty());
            let now = Instant::now();
            for i in due.clone() {
                assert!(
                    pacer.due_at(i) <= now,
                    "call {i} handed out before its time"
                );
            }
            seen = due.end;
        }
        // 100 calls at 2000/s take 50 ms after the 5 ms delay; allow a slow machine slack
        // upwards, none downwards.
        let took = Instant::now() - pacer.first_due();
        assert!(
            took >= Duration::from_micros(49_500),
            "100 calls came due in {took:?}"
        );
        assert_eq!(
            pacer.due_at(2000) - pacer.first_due(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn rejects_a_rate_that_is_not_positive() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Pacer::start(rate, Duration::ZERO).is_err(), "rate {rate}");
        }
    }
}
