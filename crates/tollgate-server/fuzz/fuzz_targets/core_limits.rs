//! Drives tollgate-core's limit math with arbitrary limits, costs, clocks and stored
//! states: GCRA throttles (per second and per period), calendar quotas with offsets and
//! operator grants, and batches of them evaluated all-or-nothing (`evaluate_batch`,
//! `evaluate_all` with shadow parts), the way the memory store runs them step after step.
//!
//! Why: this is the math every store enforces; with debug assertions on, any arithmetic
//! overflow on a cost, rate, burst, limit, offset or clock is a crash. Beyond "no panic"
//! it checks what the docs promise: from idle exactly `burst` requests pass at once; no
//! status reports more remaining than its limit; a refused check writes nothing and
//! reports every limit as a cost-0 read would; cost 0 writes nothing.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;
use std::collections::HashMap;
use tollgate_core::batch::{
    evaluate_all, evaluate_batch, BatchPart, Limit, LimitBatch, LimitKind, StateWrite, StoredValue,
};
use tollgate_core::calendar::{window, QuotaPeriod};
use tollgate_core::check::MAX_COST;
use tollgate_core::gcra::{self, GcraLimit};
use tollgate_core::plan::MAX_QUOTA_START_S;
use tollgate_core::quota::{QuotaLimit, QuotaState, MAX_QUOTA};

/// The store clock stays within what Redis `TIME` gives this century and the next, in µs.
const MAX_NOW_US: i64 = 4_000_000_000_000_000;

#[derive(Arbitrary, Debug)]
enum Spec {
    Throttle {
        rate: f64,
        burst: u64,
    },
    PerPeriod {
        requests: u64,
        period_us: u64,
    },
    Quota {
        limit: u64,
        period: u8,
        offset: u64,
        anchor_s: i64,
    },
}

#[derive(Arbitrary, Debug)]
enum Stored {
    Tat(i64),
    Quota {
        current: bool,
        used: i64,
        grant: i64,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    now_us: u64,
    specs: Vec<(u8, Spec)>,
    stored: Vec<(u8, Stored)>,
    steps: Vec<(u32, u32, bool)>,
    shadow_split: Option<u8>,
}

fn period(p: u8) -> QuotaPeriod {
    [
        QuotaPeriod::Day,
        QuotaPeriod::Week,
        QuotaPeriod::Month,
        QuotaPeriod::Year,
    ][usize::from(p) % 4]
}

fn limit_of(spec: &Spec) -> Option<LimitKind> {
    match spec {
        Spec::Throttle { rate, burst } => GcraLimit::per_second(*rate, *burst)
            .ok()
            .map(LimitKind::Throttle),
        Spec::PerPeriod {
            requests,
            period_us,
        } => GcraLimit::per_period(*requests, *period_us)
            .ok()
            .map(LimitKind::Throttle),
        Spec::Quota {
            limit,
            period: p,
            offset,
            anchor_s,
        } => {
            // What plan validation lets through: a limit up to 2^52, an offset below it and
            // a quota start from 1970 to 9999.
            if *limit > MAX_QUOTA || (*offset > 0 && offset >= limit) {
                return None;
            }
            Some(LimitKind::Quota(QuotaLimit {
                limit: *limit,
                period: period(*p),
                offset: *offset,
                anchor_s: anchor_s.rem_euclid(MAX_QUOTA_START_S + 1),
            }))
        }
    }
}

const NAMES: [&str; 3] = ["t", "q", "t:/x/GET"];

fn check_statuses(limits: &[Limit], statuses: &[tollgate_core::batch::LimitStatus]) {
    for (l, s) in limits.iter().zip(statuses) {
        assert!(
            s.remaining <= s.limit,
            "{l:?}: remaining {} above limit {}",
            s.remaining,
            s.limit
        );
        if let LimitKind::Throttle(g) = &l.kind {
            assert_eq!(s.limit, g.burst());
        }
    }
}

fn run(data: &[u8]) {
    let u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary_take_rest(u) else {
        return;
    };
    let now_us = (input.now_us % MAX_NOW_US as u64) as i64;
    let limits: Vec<Limit> = input
        .specs
        .iter()
        .take(4)
        .filter_map(|(n, s)| {
            Some(Limit {
                name: Cow::Borrowed(NAMES[usize::from(*n) % NAMES.len()]),
                kind: limit_of(s)?,
            })
        })
        .collect();
    if limits.is_empty() {
        return;
    }

    // From idle exactly `burst` requests of cost 1 pass at once, then none.
    if let [Limit {
        kind: LimitKind::Throttle(g),
        ..
    }] = limits.as_slice()
    {
        if g.burst() <= 200 {
            let mut tat = None;
            for i in 0..g.burst() {
                let o = gcra::evaluate(g, tat, now_us, 1);
                assert!(o.allowed, "request {i} of burst {} refused", g.burst());
                tat = o.new_tat_us;
            }
            let o = gcra::evaluate(g, tat, now_us, 1);
            assert!(!o.allowed && o.new_tat_us.is_none());
            assert!(o.retry_after_us > 0 && o.retry_after_us <= g.interval_us());
        }
    }

    // The stored state, as a store would hold it.
    let mut state: HashMap<String, StoredValue> = HashMap::new();
    for (n, s) in input.stored.iter().take(4) {
        let name = NAMES[usize::from(*n) % NAMES.len()].to_string();
        let value = match s {
            // A TAT is written as now + cost·T at most, by this or an older limit.
            Stored::Tat(d) => StoredValue::Tat(now_us.saturating_add(d % (1 << 50))),
            Stored::Quota {
                current,
                used,
                grant,
            } => {
                let q = limits.iter().find_map(|l| match &l.kind {
                    LimitKind::Quota(q) => Some(q.period),
                    _ => None,
                });
                let id = match (current, q) {
                    (true, Some(p)) => window(p, now_us.div_euclid(1_000_000)).id,
                    _ => "d19700101".to_string(),
                };
                // Use never passes the limit in force; a grant never takes it past 2^52.
                StoredValue::Quota(QuotaState {
                    period_id: id,
                    used: used.rem_euclid(MAX_QUOTA as i64 + 1),
                    grant: grant % (MAX_QUOTA as i64 + 1),
                })
            }
        };
        state.insert(name, value);
    }

    let mut now = now_us;
    for (dt, cost, read_only) in input.steps.iter().take(16) {
        now = (now + i64::from(*dt)).min(MAX_NOW_US);
        let cost = if *read_only {
            0
        } else {
            u64::from(*cost) % (MAX_COST + 1)
        };
        let batch = LimitBatch {
            tag: "p:k".into(),
            limits: limits.clone(),
            cost,
            usage_retention_days: Some(7),
        };
        let e = evaluate_batch(&batch, now, |n| state.get(n).cloned());
        check_statuses(&limits, &e.outcome.statuses);
        if cost == 0 {
            assert!(e.writes.is_empty(), "a read wrote {:?}", e.writes);
        }
        if !e.outcome.admitted {
            assert!(e.writes.is_empty(), "a refusal wrote {:?}", e.writes);
            let read = evaluate_batch(
                &LimitBatch {
                    cost: 0,
                    ..batch.clone()
                },
                now,
                |n| state.get(n).cloned(),
            );
            for (refused, peek) in e.outcome.statuses.iter().zip(&read.outcome.statuses) {
                assert_eq!(
                    (refused.remaining, refused.used, refused.limit),
                    (peek.remaining, peek.used, peek.limit),
                    "a refusal reports other than a read: {refused:?} vs {peek:?}"
                );
            }
        }
        for w in e.writes {
            if let StateWrite::Set { name, value, .. } = w {
                state.insert(name, value);
            }
        }

        // The same limits split in two parts, the second in shadow mode.
        if let Some(split) = input.shadow_split {
            let at = usize::from(split) % (limits.len() + 1);
            let parts = vec![
                BatchPart {
                    batch: LimitBatch {
                        limits: limits[..at].to_vec(),
                        ..batch.clone()
                    },
                    shadow: false,
                },
                BatchPart {
                    batch: LimitBatch {
                        limits: limits[at..].to_vec(),
                        ..batch.clone()
                    },
                    shadow: true,
                },
            ];
            let m = evaluate_all(&parts, now, |_, n| state.get(n).cloned());
            for (p, o) in parts.iter().zip(&m.outcome.parts) {
                check_statuses(&p.batch.limits, &o.statuses);
            }
            if !m.outcome.admitted {
                assert!(m.writes.iter().all(Vec::is_empty));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| run(data));
