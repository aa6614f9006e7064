// k6: envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit over gRPC, over KEYS keys.
//
//   ENVOY_PROTO="$(loadtest/k6/envoy_proto_dir.sh)"
//   k6 run -e ENVOY_PROTO="$ENVOY_PROTO" -e KEYS=10000 loadtest/k6/rls_should_rate_limit.js
//   k6 run -e ENVOY_PROTO="$ENVOY_PROTO" -e DESCRIPTOR=client loadtest/k6/rls_should_rate_limit.js
//   k6 run -e ENVOY_PROTO="$ENVOY_PROTO" -e RATE=5000 -e DURATION=60s loadtest/k6/rls_should_rate_limit.js
//
// DESCRIPTOR picks what each request's one descriptor carries, as `tollgate-loadgen rls`:
//   api-key (default)  the key of `tollgate-loadgen gen-config` with the load's API, stage,
//                      path and method: tollgate checks the key's usage plan, as CheckQuota;
//   client             `client=lg<i>`, matched against the rules of
//                      `tollgate-loadgen gen-rls-config` in domain DOMAIN (default bench),
//                      which any Envoy rate-limit service can serve.
// Every key is admitted at these rates, so any OVER_LIMIT or error fails a threshold; p99
// must stay under P99_MS (default 50 ms). tollgate's reflection does not describe Envoy's
// services, so the .proto files come from ENVOY_PROTO: the proto/ directory of the
// envoy-types crate tollgate builds with (envoy_proto_dir.sh prints it).
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import {
  API_ID, KEYS, STAGE, GRPC_SUMMARY, TREND_STATS, attempt, connector, keyValue, scenarios, summary, thresholds, tally,
} from './common.js';

const ADDR = __ENV.TOLLGATE_GRPC || '127.0.0.1:8081';
const DOMAIN = __ENV.DOMAIN || 'bench';
const DESCRIPTOR = __ENV.DESCRIPTOR || 'api-key';
const PROTO = __ENV.ENVOY_PROTO;

if (!PROTO) {
  throw new Error('set ENVOY_PROTO to the proto/ directory of envoy-types (loadtest/k6/envoy_proto_dir.sh prints it)');
}
if (DESCRIPTOR !== 'api-key' && DESCRIPTOR !== 'client') {
  throw new Error(`DESCRIPTOR must be api-key or client, not ${DESCRIPTOR}`);
}

export const options = {
  scenarios: scenarios(),
  summaryTrendStats: TREND_STATS,
  thresholds: thresholds('grpc_req_duration'),
};

// Include roots inside envoy-types' proto/ directory that rls.proto's imports live under.
const client = new grpc.Client();
client.load(
  ['data-plane-api', 'xds', 'protoc-gen-validate', 'googleapis', 'cel-spec/proto'].map((d) => `${PROTO}/${d}`),
  'envoy/service/ratelimit/v3/rls.proto',
);
const connected = connector(client, ADDR, { plaintext: true });

// The entries of key i's descriptor.
function entries(i) {
  if (DESCRIPTOR === 'client') return [{ key: 'client', value: `lg${i}` }];
  return [
    { key: 'api_key', value: keyValue(i) },
    { key: 'tollgate_api', value: API_ID },
    { key: 'tollgate_stage', value: STAGE },
    { key: 'path', value: '/check' },
    { key: 'method', value: 'GET' },
  ];
}

export default function () {
  if (!connected()) return;
  const i = Math.floor(Math.random() * KEYS);
  const res = attempt('ShouldRateLimit', () =>
    client.invoke('envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit', {
      domain: DOMAIN,
      descriptors: [{ entries: entries(i) }],
    }),
  );
  if (res === null) return;
  const ok = res.status === grpc.StatusOK && res.message.overallCode === 'OK';
  check(res, { 'ShouldRateLimit answered OK': () => ok });
  tally(ok);
}

export function handleSummary(data) {
  return summary(data, GRPC_SUMMARY);
}
