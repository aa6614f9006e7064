// k6: POST /v1/check over HTTP, over KEYS keys.
//
//   k6 run -e TOLLGATE_HTTP=http://127.0.0.1:8080 -e KEYS=10000 loadtest/k6/http_check.js
//   k6 run -e TOLLGATE_HTTP=127.0.0.1:8080 ...    # host:port, as the gRPC scripts take it
//   k6 run -e RATE=5000 -e DURATION=60s loadtest/k6/http_check.js             # open loop
//
// Every key of the load plan is admitted at these rates, so any refusal, non-200 or error
// fails a threshold; p99 must stay under P99_MS (default 50 ms, for a closed loop at
// saturation; set it to the latency target for an open-loop run at a given RATE, e.g. P99_MS=2).
import http from 'k6/http';
import { check } from 'k6';
import {
  API_ID, STAGE, TREND_STATS, randomKey, scenarios, summary, thresholds, tally,
} from './common.js';

// The gRPC scripts take host:port, so the same form is the one people pass here too;
// without a scheme k6 rejects every request as an invalid URL.
const BASE = __ENV.TOLLGATE_HTTP || 'http://127.0.0.1:8080';
const URL = `${/^https?:\/\//.test(BASE) ? BASE : `http://${BASE}`}/v1/check`;
const PARAMS = { headers: { 'Content-Type': 'application/json' } };

export const options = {
  scenarios: scenarios(),
  summaryTrendStats: TREND_STATS,
  thresholds: thresholds('http_req_duration', { http_req_failed: ['rate<0.001'] }),
};

export default function () {
  const body = JSON.stringify({
    apiKey: randomKey(),
    apiId: API_ID,
    stage: STAGE,
    resource: '/check',
    method: 'GET',
  });
  const res = http.post(URL, body, PARAMS);
  let verdict = '';
  try {
    verdict = res.json('verdict');
  } catch (e) {
    verdict = '';
  }
  const ok = res.status === 200 && verdict === 'OK';
  check(res, {
    'answered 200': (r) => r.status === 200,
    'verdict OK with RateLimit headers': (r) => verdict === 'OK' && r.headers['Ratelimit-Limit'] !== undefined,
  });
  tally(ok);
}

export function handleSummary(data) {
  return summary(data, ['http_req_duration', 'iterations', 'tollgate_allowed', 'tollgate_refused', 'http_req_failed', 'checks']);
}
