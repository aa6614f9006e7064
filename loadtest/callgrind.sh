#!/usr/bin/env bash
# loadtest/callgrind.sh: instructions tollgate executes per CheckQuota, counted by
# valgrind's callgrind. Unlike checks/s, an instruction count does not move with whatever
# else the machine is doing, so it compares two builds of the hot path on a shared host.
#
# Starts its own redis-server and a release-built tollgate under callgrind (10 000 keys from
# tollgate-loadgen gen-config), waits until it answers, warms it up, zeroes the counters,
# drives checks closed-loop with tollgate-loadgen, dumps the counters and prints
#   CALLGRIND target=<grpc|rls|redis> instructions=<total> checks=<n> instructions_per_check=<total/n>
# plus the costliest functions (inclusive), and leaves the profile in --out for
# callgrind_annotate or kcachegrind.
#
# Usage: loadtest/callgrind.sh [--duration SECONDS] [--concurrency C] [--out FILE] [--rls | --redis]
#   --rls    drive Envoy RLS ShouldRateLimit (api_key descriptors) instead of CheckQuota
#   --redis  count Redis instead: redis-server runs under callgrind and `tollgate-loadgen
#            ceiling` sends it check.lua with the keys and arguments tollgate sends, one call
#            per round trip; the figure is what one check costs the Redis that every tollgate
#            instance of a fleet shares
# Needs valgrind, redis-server and cargo.
set -euo pipefail

DURATION=20
CONC=50
KEYS=10000
OUT=""
MODE=grpc
while (($#)); do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --concurrency) CONC="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --rls) MODE=rls; shift ;;
    --redis) MODE=redis; shift ;;
    -h | --help) awk 'NR > 1 { if (/^set -euo/) exit; print }' "$0"; exit 0 ;;
    *) echo "callgrind.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
# shellcheck source=loadtest/common.sh
source loadtest/common.sh
require valgrind callgrind_control:valgrind redis-server redis-cli:redis-tools
build_release

PROFILE="$WORK/callgrind.out"
if [[ $MODE == redis ]]; then
  start_redis valgrind --tool=callgrind --callgrind-out-file="$PROFILE"
  VG=$REDIS_PID
  LOAD=(ceiling --redis-url "$REDIS_URL" --pipeline 0)
else
  start_redis
  "$LOADGEN" gen-config --keys "$KEYS" >"$WORK/tollgate.yaml"
  GRPC_PORT=$(free_port)
  HTTP_PORT=$(free_port)
  EXTRA=()
  if [[ $MODE == rls ]]; then
    mkdir -p "$WORK/rls"
    "$LOADGEN" gen-rls-config >"$WORK/rls/bench.yaml"
    EXTRA=(--rls-config "$WORK/rls")
  fi
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$PROFILE" \
    "$TOLLGATE" serve --config "$WORK/tollgate.yaml" --redis-url "redis://127.0.0.1:$REDIS_PORT/" \
    --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" "${EXTRA[@]}" \
    --redis-timeout-ms 5000 \
    >"$WORK/tollgate.log" 2>&1 &
  VG=$!
  PIDS+=("$VG")
  wait_for 120 healthy "$HTTP_PORT" || { cat "$WORK/tollgate.log"; exit 1; }
  LOAD=("$MODE" --addr "http://127.0.0.1:$GRPC_PORT")
fi

# Under valgrind the profiled process runs some 50x slower: the longer Redis timeout above
# keeps slow calls from turning into timeouts and reconnects, and a warm-up (connections
# made, script loaded, every key written once, code paths translated) runs before the
# counters are zeroed.
"$LOADGEN" "${LOAD[@]}" -k "$KEYS" -c "$CONC" -d 5s --warmup 0s >/dev/null
callgrind_control -z "$VG" >/dev/null
timeout "$((DURATION + 120))" "$LOADGEN" "${LOAD[@]}" -k "$KEYS" -c "$CONC" -d "${DURATION}s" \
  --warmup 0s | tee "$WORK/load.out"
callgrind_control -d "$VG" >/dev/null
sleep 1
DUMP=$(ls -t "$PROFILE".* 2>/dev/null | head -1)
[[ -n "$DUMP" ]] || { echo "callgrind.sh: no dump written" >&2; exit 1; }

CHECKS=$(sed -n "s/^SUMMARY .* sent_total=\([0-9]*\).*/\1/p" "$WORK/load.out" | tail -1)
ERRORS=$(sed -n "s/^SUMMARY .* errors=\([0-9]*\).*/\1/p" "$WORK/load.out" | tail -1)
if [[ "${ERRORS:-0}" != 0 ]]; then
  echo "callgrind.sh: $ERRORS calls failed during the measured run; the count includes their retries and reconnects" >&2
fi
TOTAL=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$DUMP")
[[ -n "$TOTAL" ]] || TOTAL=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$DUMP")
echo
echo "==> costliest functions (inclusive instructions)"
callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null | sed -n '/^--*$/,$p' | grep -v '^-' | head -40 || true
if [[ -n "$OUT" ]]; then cp "$DUMP" "$OUT"; echo "==> profile kept in $OUT"; fi
echo "CALLGRIND target=$MODE instructions=$TOTAL checks=$CHECKS instructions_per_check=$(awk -v t="$TOTAL" -v n="$CHECKS" 'BEGIN { printf "%.0f", (n > 0 ? t / n : 0) }')"
