//! The two ways of driving a target.
//!
//! - **Closed loop** ([`closed_loop`]): `concurrency` callers, each sending its next call as
//!   soon as the last one answered. Measures peak throughput; its latencies are per call.
//! - **Open loop** ([`open_loop`]): calls start at a fixed rate whatever the target does,
//!   and each latency is measured from the call's *intended* start, so a stalled target
//!   shows as the queue it would build at its clients rather than as fewer, faster samples
//!   (coordinated omission). The schedule is a [`Pacer`], which keeps the kernel's timer
//!   precision (tens of µs) rather than tokio's 1 ms timer wheel; a late tick is charged
//!   to the latency, so the figures err on the slow side. The time from the
//!   actual send is kept too: on a machine where the load generator shares the cores with
//!   the target, the gap between the two is the generator's own queueing.
//!
//! Both run a warm-up first (connections up, caches and the script loaded) that counts
//! towards `sent_total` but not towards the measured figures.

use crate::pacer::Pacer;
use crate::report::{Report, Stats};
use crate::target::Target;
use crate::workload::Picker;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long and how hard to drive.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Callers (closed loop), or the most calls in flight (open loop).
    pub concurrency: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Ordinary keys.
    pub keys: usize,
    /// With a hot key: it gets this many times the calls of all other keys together.
    pub hot_factor: Option<u32>,
}

fn pick(picker: &mut Picker, n: usize, buf: &mut Vec<usize>) {
    buf.clear();
    buf.extend((0..n).map(|_| picker.pick()));
}

/// Drives `target` with `spec.concurrency` callers back to back.
pub async fn closed_loop<T: Target>(target: &T, spec: &RunSpec) -> Report {
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let per_call = target.checks_per_call();
    let mut tasks = Vec::with_capacity(spec.concurrency);
    for i in 0..spec.concurrency.max(1) {
        let mut t = target.for_worker(i);
        let mut picker = Picker::new(spec.keys, spec.hot_factor, i as u64 + 1);
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            let mut keys = Vec::with_capacity(per_call);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                pick(&mut picker, per_call, &mut keys);
                let tally = t.call(&keys).await;
                stats.sent_total += keys.len() as u64;
                if sent >= measure_from {
                    stats.record(sent.elapsed(), &tally);
                }
            }
            stats.hot_total = picker.hot;
            stats.rest_total = picker.rest;
            stats
        }));
    }
    let mut stats = Stats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            stats.merge(&s);
        }
    }
    Report {
        target: target.name(),
        mode: "closed",
        concurrency: spec.concurrency,
        rate: None,
        checks_per_call: per_call,
        measured: spec.duration,
        stats,
    }
}

/// Drives `target` at `rate` calls per second, with at most `spec.concurrency` in flight
/// (a call due while all are busy waits, and the wait counts in its latency).
pub async fn open_loop<T: Target>(
    target: &T,
    spec: &RunSpec,
    rate: f64,
) -> std::io::Result<Report> {
    let rate = rate.max(1.0);
    let mut pacer = Pacer::start(rate, Duration::from_millis(20))?;
    let measure_from = pacer.first_due() + spec.warmup;
    let end = measure_from + spec.duration;
    let per_call = target.checks_per_call();
    let permits = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut picker = Picker::new(spec.keys, spec.hot_factor, 1);
    let workers: Vec<T> = (0..spec.concurrency.max(1))
        .map(|i| target.for_worker(i))
        .collect();
    let mut n = 0usize;
    'schedule: loop {
        for i in pacer.due().await? {
            let due = pacer.due_at(i);
            if due >= end {
                break 'schedule;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break 'schedule;
            };
            let mut keys = Vec::with_capacity(per_call);
            pick(&mut picker, per_call, &mut keys);
            let mut t = workers[n % workers.len()].clone();
            n += 1;
            let stats = stats.clone();
            tokio::spawn(async move {
                let sent = Instant::now();
                let tally = t.call(&keys).await;
                let done = Instant::now();
                let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                s.sent_total += keys.len() as u64;
                if due >= measure_from {
                    s.record(done - due, &tally);
                    s.record_sent(done - sent);
                }
                drop(permit);
            });
        }
    }
    // Let the calls in flight finish (bounded, in case the target hangs).
    let all = u32::try_from(spec.concurrency.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(all)).await;
    let mut stats = stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
    stats.hot_total = picker.hot;
    stats.rest_total = picker.rest;
    Ok(Report {
        target: target.name(),
        mode: "open",
        concurrency: spec.concurrency,
        rate: Some(rate * per_call as f64),
        checks_per_call: per_call,
        measured: spec.duration,
        stats,
    })
}
