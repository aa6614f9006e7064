// Shared by the k6 scripts: the load-test keys, the load shape, the counters and thresholds
// every script has, and the end-of-test summary.
//
// The keys are those of `tollgate-loadgen gen-config --keys N`: start tollgate with that
// config (see loadtest/README.md) and pass KEYS=N to k6.

import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';

export const KEYS = parseInt(__ENV.KEYS || '10000', 10);
export const API_ID = 'loadgen-api';
export const STAGE = 'bench';

// The value of ordinary key i, as tollgate-loadgen generates it.
export function keyValue(i) {
  return `loadgen-key-${String(i).padStart(7, '0')}-0123456789`;
}

// A uniformly chosen key.
export function randomKey() {
  return keyValue(Math.floor(Math.random() * KEYS));
}

// Closed loop with VUS virtual users, or, with RATE set, open loop at RATE requests/s
// (k6's arrival-rate executor starts iterations on schedule whatever the server does).
export function scenarios() {
  const duration = __ENV.DURATION || '30s';
  if (__ENV.RATE) {
    return {
      open: {
        executor: 'constant-arrival-rate',
        rate: parseInt(__ENV.RATE, 10),
        timeUnit: '1s',
        duration,
        preAllocatedVUs: parseInt(__ENV.VUS || '100', 10),
        maxVUs: parseInt(__ENV.MAX_VUS || '1000', 10),
      },
    };
  }
  return {
    closed: { executor: 'constant-vus', vus: parseInt(__ENV.VUS || '50', 10), duration },
  };
}

// Checks tollgate admitted, checks it answered otherwise, and calls that got no answer at
// all (no connection, a transport error).
const allowed = new Counter('tollgate_allowed');
const refused = new Counter('tollgate_refused');
const failed = new Counter('tollgate_failed');

// Counts one answered check: admitted (OK), or answered otherwise.
export function tally(ok) {
  (ok ? allowed : refused).add(1);
}

// The thresholds of every script: every check admitted, none failed, p99 of DURATION_METRIC
// under P99_MS (default 50 ms, for a closed loop at saturation), plus EXTRA. A run in which
// no check was admitted fails even where it took no samples at all (a refused connection
// throws before any check is recorded, and k6 passes a threshold that has no samples).
export function thresholds(durationMetric, extra = {}) {
  return {
    checks: ['rate>0.999'],
    tollgate_allowed: ['count>0'],
    tollgate_refused: ['count==0'],
    tollgate_failed: ['count==0'],
    [durationMetric]: [`p(99)<${__ENV.P99_MS || '50'}`],
    ...extra,
  };
}

// Runs CALL, a gRPC call or connection that throws when it gets no answer. Returns its
// result, or null after counting the failure (and pausing, so that a server that is down
// is not hammered by every VU in a tight loop).
export function attempt(what, call) {
  try {
    return call();
  } catch (e) {
    failed.add(1);
    check(null, { [`${what} answered`]: () => false });
    sleep(0.1);
    return null;
  }
}

// A function that connects CLIENT to ADDR with PARAMS on its first call and says whether the
// client is connected; a failed connection counts as a failure (attempt) and is tried again
// on the next call.
export function connector(client, addr, params) {
  let connected = false;
  return () => {
    connected = connected || attempt('connect', () => {
      client.connect(addr, params);
      return true;
    }) !== null;
    return connected;
  };
}

// The metrics the gRPC scripts' summaries show.
export const GRPC_SUMMARY = ['grpc_req_duration', 'iterations', 'tollgate_allowed', 'tollgate_refused', 'tollgate_failed', 'checks'];

export const TREND_STATS = ['avg', 'min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max'];

function fmt(v) {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v);
}

// A compact text summary (k6's own needs a remote module, and tests run offline), plus the
// full data as JSON when SUMMARY_JSON names a file.
export function summary(data, names) {
  const lines = ['', `tollgate k6 summary (${__ENV.RATE ? `open loop at ${__ENV.RATE}/s` : 'closed loop'})`];
  for (const name of names) {
    const m = data.metrics[name];
    if (!m) continue;
    const order = ['count', 'rate', 'passes', 'fails', ...TREND_STATS];
    const rank = (k) => (order.indexOf(k) < 0 ? order.length : order.indexOf(k));
    const vals = Object.entries(m.values)
      .sort(([a], [b]) => rank(a) - rank(b))
      .map(([k, v]) => `${k}=${fmt(v)}`)
      .join(' ');
    lines.push(`  ${name.padEnd(28)} ${vals}`);
    for (const [expr, t] of Object.entries(m.thresholds || {})) {
      lines.push(`    threshold ${expr}: ${t.ok ? 'ok' : 'FAILED'}`);
    }
  }
  const out = { stdout: lines.join('\n') + '\n' };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 2);
  return out;
}
