#!/usr/bin/env bash
# loadtest/compare.sh: tollgate's Envoy rate-limit service measured against another
# open-source one, limitador, with the same load, in one run, on this machine.
#
# limitador-server itself cannot be built here (it is not a published crate), so the other
# side is loadtest/compare/limitador-rls: a small RLS v3 server around the published limitador
# library (see the top of its src/main.rs for how faithful it is). It starts one redis-server
# on a free loopback port and, one after the other with that Redis emptied in between:
#   1. ceiling         tollgate's check script straight on Redis (tollgate-loadgen ceiling):
#                      C callers, one script call per round trip, the reference of bench.sh;
#   2. tollgate        ShouldRateLimit on tollgate with gen-rls-config's rules;
#   3. limitador       ShouldRateLimit on limitador-rls, AsyncRedisStorage (every check on
#                      Redis);
#   4. limitador-cached the same with CachedRedisStorage (counters in memory, written to
#                      Redis in batches: not the same consistency, shown for reference).
# Runs 2 to 4 are the same `tollgate-loadgen rls --descriptor client` load: one descriptor
# [client=<id>] per request in domain bench, K client ids chosen uniformly, each limited to
# 1000 a second, so every check is admitted and writes its counter. Each server runs only
# during its own phase. It prints a table and ends with one line
#   RESULT tollgate_vs_limitador=<x> tollgate_vs_limitador_cached=<x> tollgate_vs_ceiling=<x>
# (throughput ratios).
#
# Usage: loadtest/compare.sh [--quick] [--keys N] [--concurrency C] [--duration SECONDS]
#   --quick   a seconds-long smoke run (2 s per phase, 1000 keys)
# Both servers run on their default runtimes (one worker thread per core). For one thread
# each, as bench.sh runs tollgate: TOLLGATE_WORKER_THREADS=1 TOKIO_WORKER_THREADS=1 (tokio
# reads the second in limitador-rls).
# Needs redis-server, cargo and libclang (limitador builds RocksDB: apt-get install
# libclang-dev); uses only 127.0.0.1; every run is bounded in time, and everything it
# started or wrote is removed when it exits.
set -euo pipefail

KEYS=10000
CONC=50
DURATION=10
WARMUP=2
while (($#)); do
  case "$1" in
    --quick) KEYS=1000; DURATION=2; WARMUP=1; shift ;;
    --keys) KEYS="$2"; shift 2 ;;
    --concurrency) CONC="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    -h | --help) awk 'NR > 1 { if (/^set -euo/) exit; print }' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
# shellcheck source=loadtest/common.sh
source loadtest/common.sh # the working directory is the repository root here
require redis-server redis-cli:redis-tools
build_release

LRLS_MANIFEST=loadtest/compare/limitador-rls/Cargo.toml
echo "==> building limitador-rls (release)"
# limitador-rls is its own workspace with its own lock file (the first build compiles RocksDB:
# several minutes).
cargo build --release --quiet --locked --manifest-path "$LRLS_MANIFEST" || {
  echo "compare.sh: building limitador-rls failed (its RocksDB build needs libclang: apt-get install libclang-dev)" >&2
  exit 1
}
LRLS="${CARGO_TARGET_DIR:-loadtest/compare/limitador-rls/target}/release/limitador-rls"

start_redis

listening() ( exec 3<>"/dev/tcp/127.0.0.1/$1" )
SERVER_PID=
stop_server() { # the server of the phase that just ended
  [[ -n "$SERVER_PID" ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

report_host
echo "==> load: $KEYS client ids, $CONC callers, ${DURATION}s per phase after ${WARMUP}s warm-up"

LIMIT=$((DURATION + WARMUP + 60))
COMMON=(-k "$KEYS" -c "$CONC" -d "${DURATION}s" --warmup "${WARMUP}s")
RLS_LOAD=(--descriptor client --redis-stats "$REDIS_URL" "${COMMON[@]}")

flush() { redis-cli -p "$REDIS_PORT" flushall >/dev/null; }

echo
echo "==> 1. ceiling: tollgate's check script straight on Redis"
timeout "$LIMIT" "$LOADGEN" ceiling --redis-url "$REDIS_URL" --pipeline 0 "${COMMON[@]}" | tee "$WORK/ceiling.out"
CEILING=$(summary ceiling <"$WORK/ceiling.out")
flush

echo
echo "==> 2. tollgate: ShouldRateLimit"
mkdir "$WORK/rls"
"$LOADGEN" gen-rls-config >"$WORK/rls/bench.yaml"
GRPC_PORT=$(free_port)
HTTP_PORT=$(free_port)
RUST_LOG=warn "$TOLLGATE" serve --rls-config "$WORK/rls" \
  --redis-url "$REDIS_URL" --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
  >"$WORK/tollgate.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for 20 healthy "$HTTP_PORT" || { cat "$WORK/tollgate.log"; exit 1; }
timeout "$LIMIT" "$LOADGEN" rls --addr "http://127.0.0.1:$GRPC_PORT" "${RLS_LOAD[@]}" | tee "$WORK/tollgate.out"
TOLLGATE_LINE=$(summary rls-client <"$WORK/tollgate.out")
stop_server
flush

limitador_phase() { # limitador_phase NAME [--cached]
  local name=$1 port
  shift
  port=$(free_port)
  "$LRLS" --redis-url "$REDIS_URL" --addr "127.0.0.1:$port" --hot-client "$HOT_CLIENT" "$@" \
    >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_for 20 listening "$port" || { cat "$WORK/$name.log"; exit 1; }
  timeout "$LIMIT" "$LOADGEN" rls --addr "http://127.0.0.1:$port" "${RLS_LOAD[@]}" | tee "$WORK/$name.out"
  stop_server
  flush
}
# limitador-rls must single out the same hot client as gen-rls-config's rules (unused by
# this load, which sends no hot key, but kept identical).
HOT_CLIENT=$(sed -n 's/^ *value: *\([^ ]*\) *$/\1/p' "$WORK/rls/bench.yaml" | head -1)

echo
echo "==> 3. limitador-rls: ShouldRateLimit, AsyncRedisStorage"
limitador_phase limitador
LIMITADOR=$(summary rls-client <"$WORK/limitador.out")

echo
echo "==> 4. limitador-rls: ShouldRateLimit, CachedRedisStorage"
limitador_phase limitador-cached --cached
CACHED=$(summary rls-client <"$WORK/limitador-cached.out")

# Script calls (EVALSHA and EVAL) per check sent, warm-up included as in the loadgen's own
# redis_calls_per_check. That figure itself is not used: the loadgen leaves out only the
# commands of tollgate's script, so limitador's script-internal INCRBY, PTTL, ... would count
# as client calls. Both servers send nothing but scripts per check, so this is their round
# trips per check, except that limitador's update pipeline carries one script per counter.
scripts_per_check() { # scripts_per_check SUMMARY-LINE
  awk -v a="$(field "$1" redis_evalsha)" -v b="$(field "$1" redis_eval)" -v n="$(field "$1" sent_total)" \
    'BEGIN { printf "%.3f", (n > 0 ? (a + b) / n : 0) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
CEIL_TPUT=$(field "$CEILING" throughput)
TG_TPUT=$(field "$TOLLGATE_LINE" throughput)

echo
echo "==> load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> figures ($KEYS client ids, $CONC callers, ${DURATION}s)"
printf '  %-36s %9s %7s %7s %8s %11s %8s  %s\n' "" "checks/s" "p50 ms" "p99 ms" "p99.9 ms" "scripts/chk" "/ceiling" "allowed/limited/errors"
row() { # row LABEL SUMMARY-LINE
  printf '  %-36s %9.0f %7s %7s %8s %11s %8s  %s/%s/%s\n' "$1" "$(field "$2" throughput)" \
    "$(field "$2" p50_ms)" "$(field "$2" p99_ms)" "$(field "$2" p999_ms)" \
    "$(scripts_per_check "$2")" "$(ratio "$(field "$2" throughput)" "$CEIL_TPUT")" \
    "$(field "$2" allowed)" "$(field "$2" limited)" \
    "$(($(field "$2" errors) + $(field "$2" unavailable)))"
}
row "ceiling (check script on Redis)" "$CEILING"
row "tollgate RLS" "$TOLLGATE_LINE"
row "limitador-rls (AsyncRedisStorage)" "$LIMITADOR"
row "limitador-rls (CachedRedisStorage)" "$CACHED"
echo "RESULT tollgate_vs_limitador=$(ratio "$TG_TPUT" "$(field "$LIMITADOR" throughput)")" \
  "tollgate_vs_limitador_cached=$(ratio "$TG_TPUT" "$(field "$CACHED" throughput)")" \
  "tollgate_vs_ceiling=$(ratio "$TG_TPUT" "$CEIL_TPUT")"
