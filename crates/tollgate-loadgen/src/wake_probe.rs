//! What one wake-up costs on this host: two threads pass a byte back and forth over a
//! socket pair, so each round trip is two sleeps and two wake-ups, first with both threads
//! on one core, then with one thread on each of two cores.
//!
//! Why: in the open loop each check arrives alone, so the load generator, tollgate and
//! Redis each sleep and are woken at least once per check. On a VM an idle vCPU halts, and
//! waking a task on it goes through the hypervisor. On the hosts in docs/benchmarks.md a
//! round trip across cores took 33-51 µs, against 4-11 µs on one core; inside tollgate
//! 99 % of checks took under 1 ms, so those wake-ups are much of the open loop's tail.
//! bench.sh prints both figures with the host report so that runs on different hosts can be
//! compared.
//!
//! Both threads are spawned here and pinned with `sched_setaffinity`, so the caller's own
//! affinity is left as it was. Linux only; elsewhere [`probe`] says so.

use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// Why the probe could not measure.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// A thread could not be pinned to its CPU.
    #[error("cannot pin a thread to CPU {cpu}")]
    Pin {
        /// Which CPU.
        cpu: usize,
        /// Why.
        source: std::io::Error,
    },
    /// The socket pair failed, or a thread's end of it did.
    #[error("the socket pair failed")]
    Socket(#[from] std::io::Error),
    /// A probe thread panicked.
    #[error("a probe thread stopped unexpectedly")]
    Thread,
    /// No way to pin threads on this system.
    #[error("the wake-up probe needs Linux")]
    Unsupported,
    /// The process may run on no CPU at all, which only a broken affinity mask gives.
    #[error("this process's CPU affinity mask is empty")]
    NoCpu,
}

/// The mean round trips the probe measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WakeCosts {
    /// Round trips measured per layout.
    pub round_trips: u32,
    /// Both threads on this CPU.
    pub same_cpu: usize,
    /// With both threads on `same_cpu`.
    pub same_core: Duration,
    /// The other CPU and the round trip with one thread on each, when the process may run
    /// on two CPUs.
    pub cross_core: Option<(usize, Duration)>,
}

/// Measures `round_trips` round trips (after a tenth as many unmeasured) on one core, then
/// across the first two CPUs this process may run on.
pub fn probe(round_trips: u32) -> Result<WakeCosts, ProbeError> {
    let cpus = allowed_cpus()?;
    let Some(&first) = cpus.first() else {
        return Err(ProbeError::NoCpu);
    };
    let same_core = round_trip(first, first, round_trips)?;
    let cross_core = match cpus.get(1) {
        Some(&second) => Some((second, round_trip(first, second, round_trips)?)),
        None => None,
    };
    Ok(WakeCosts {
        round_trips,
        same_cpu: first,
        same_core,
        cross_core,
    })
}

/// One line for people, then `WAKE same_core_us=... cross_core_us=...` for scripts
/// (`cross_core_us=none` on one CPU).
impl fmt::Display for WakeCosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e6);
        let same = us(self.same_core);
        write!(
            f,
            "wake-up round trip (two threads, a socket pair, {} round trips): one core (CPU {}) {same} us",
            self.round_trips, self.same_cpu
        )?;
        let cross = match self.cross_core {
            Some((other, d)) => {
                let cross = us(d);
                write!(
                    f,
                    ", two cores (CPUs {} and {other}) {cross} us",
                    self.same_cpu
                )?;
                cross
            }
            None => {
                write!(f, ", one CPU only")?;
                "none".to_string()
            }
        };
        writeln!(f)?;
        writeln!(f, "WAKE same_core_us={same} cross_core_us={cross}")
    }
}

/// The mean round trip between a thread pinned to CPU `a` and one pinned to CPU `b`.
#[cfg(target_os = "linux")]
pub fn round_trip(a: usize, b: usize, round_trips: u32) -> Result<Duration, ProbeError> {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    let round_trips = round_trips.max(1);
    let warmup = round_trips / 10;
    let (mut near, mut far) = UnixStream::pair()?;
    // If either side fails, its end of the pair is dropped and the other side's next read
    // ends with an error rather than waiting for ever.
    let echo = std::thread::spawn(move || -> Result<(), ProbeError> {
        pin(b)?;
        let mut byte = [0u8; 1];
        for _ in 0..warmup + round_trips {
            far.read_exact(&mut byte)?;
            far.write_all(&byte)?;
        }
        Ok(())
    });
    let timer = std::thread::spawn(move || -> Result<Duration, ProbeError> {
        pin(a)?;
        let mut byte = [0u8; 1];
        let mut started = Instant::now();
        for i in 0..warmup + round_trips {
            if i == warmup {
                started = Instant::now();
            }
            near.write_all(&byte)?;
            near.read_exact(&mut byte)?;
        }
        Ok(started.elapsed() / round_trips)
    });
    let measured = timer.join().map_err(|_| ProbeError::Thread)?;
    let echoed = echo.join().map_err(|_| ProbeError::Thread)?;
    // The pinning error, where there is one, says more than the closed socket it caused.
    match (measured, echoed) {
        (Ok(mean), Ok(())) => Ok(mean),
        (_, Err(e @ ProbeError::Pin { .. })) | (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
    }
}

/// The mean round trip between a thread pinned to CPU `a` and one pinned to CPU `b`.
#[cfg(not(target_os = "linux"))]
pub fn round_trip(_a: usize, _b: usize, _round_trips: u32) -> Result<Duration, ProbeError> {
    Err(ProbeError::Unsupported)
}

#[cfg(target_os = "linux")]
fn pin(cpu: usize) -> Result<(), ProbeError> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| ProbeError::Pin {
        cpu,
        source: e.into(),
    })
}

/// The CPUs this process may run on, lowest first.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Result<Vec<usize>, ProbeError> {
    let set = rustix::thread::sched_getaffinity(None).map_err(std::io::Error::from)?;
    Ok((0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&cpu| set.is_set(cpu))
        .collect())
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Result<Vec<usize>, ProbeError> {
    Err(ProbeError::Unsupported)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The bound is a sanity check on units, not a speed bar: a mean round trip is µs to a
    /// few ms even on a crowded machine, never a second.
    #[test]
    fn measures_a_round_trip_on_each_layout_the_machine_has() {
        let costs = probe(2_000).expect("probe");
        let plausible = |d: Duration| d > Duration::ZERO && d < Duration::from_secs(1);
        assert!(plausible(costs.same_core), "{costs:?}");
        if let Some((other, cross)) = costs.cross_core {
            assert_ne!(other, costs.same_cpu);
            assert!(plausible(cross), "{costs:?}");
        }
    }

    #[test]
    fn a_cpu_the_process_may_not_use_is_an_error_not_a_hang() {
        let err = round_trip(0, rustix::thread::CpuSet::MAX_CPU - 1, 10).expect_err("pinned");
        assert!(
            matches!(err, ProbeError::Pin { cpu, .. } if cpu == rustix::thread::CpuSet::MAX_CPU - 1),
            "{err:?}"
        );
    }
}
