// k6: tollgate.v1.QuotaService/CheckQuota over gRPC, over KEYS keys.
//
//   k6 run -e TOLLGATE_GRPC=127.0.0.1:8081 -e KEYS=10000 loadtest/k6/check_quota_grpc.js
//   k6 run -e RATE=5000 -e DURATION=60s loadtest/k6/check_quota_grpc.js      # open loop
//
// Every key of the load plan is admitted at these rates, so any refusal or error fails a
// threshold; p99 must stay under P99_MS (default 50 ms, for a closed loop at saturation; set
// it to the latency target for an open-loop run at a given RATE, e.g. P99_MS=2). The proto
// comes from the server's reflection, so no proto path is needed.
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import {
  API_ID, STAGE, GRPC_SUMMARY, TREND_STATS, attempt, connector, randomKey, scenarios, summary, thresholds, tally,
} from './common.js';

const ADDR = __ENV.TOLLGATE_GRPC || '127.0.0.1:8081';

export const options = {
  scenarios: scenarios(),
  summaryTrendStats: TREND_STATS,
  thresholds: thresholds('grpc_req_duration'),
};

const client = new grpc.Client();
const connected = connector(client, ADDR, { plaintext: true, reflect: true });

export default function () {
  if (!connected()) return;
  const res = attempt('CheckQuota', () =>
    client.invoke('tollgate.v1.QuotaService/CheckQuota', {
      api_key: randomKey(),
      api_id: API_ID,
      stage: STAGE,
      resource: '/check',
      method: 'GET',
    }),
  );
  if (res === null) return;
  const ok = res.status === grpc.StatusOK && res.message.verdict === 'VERDICT_OK';
  check(res, { 'CheckQuota answered VERDICT_OK': () => ok });
  tally(ok);
}

export function handleSummary(data) {
  return summary(data, GRPC_SUMMARY);
}
