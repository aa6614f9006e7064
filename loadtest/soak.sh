#!/usr/bin/env bash
# loadtest/soak.sh: tollgate's memory under a long steady load (issue 5: RSS growth < 10 %
# over 10 minutes).
#
# Starts its own redis-server and a release-built tollgate on free loopback ports with a
# generated config of 10 000 keys, drives CheckQuota open-loop at a fixed rate over all keys
# with half of it from one abusive key (so the deny cache is exercised too), samples tollgate's resident
# memory (VmRSS) every 30 s, and ends with one line
#   SOAK minutes=<m> rate=<checks/s> rss_start_kb=<after warm-up> rss_end_kb=<n> rss_max_kb=<n> rss_growth_pct=<%>
# The baseline is taken after a 60 s warm-up, once pools, caches and allocator arenas
# have reached their working size.
#
# Usage: loadtest/soak.sh [--minutes M] [--rate R] [--keys N]   (defaults: 10, 5000, 10000)
# Uses only 127.0.0.1; bounded in time; removes everything it started or wrote.
set -euo pipefail

MINUTES=10
RATE=5000
KEYS=10000
while (($#)); do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --keys) KEYS="$2"; shift 2 ;;
    -h | --help) awk 'NR > 1 { if (/^set -euo/) exit; print }' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
# shellcheck source=loadtest/common.sh
source loadtest/common.sh # the working directory is the repository root here
require redis-server redis-cli:redis-tools
build_release

start_redis
start_tollgate

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$TOLLGATE_PID/status"; }

TOTAL_S=$((MINUTES * 60 + 60))
echo "==> soak: $RATE checks/s over $KEYS keys, half of it from one abusive key, ${MINUTES} min after a 60 s warm-up"
timeout "$((TOTAL_S + 60))" "$LOADGEN" grpc --addr "http://127.0.0.1:$GRPC_PORT" -k "$KEYS" \
  -c 1000 --rate "$RATE" --hot --hot-factor 1 --warmup 60s -d "$((MINUTES * 60))s" >"$WORK/load.out" 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")

sleep 60
START=$(rss_kb)
MAX=$START
echo "  t=0s rss=${START} kB (baseline)"
for ((t = 30; t <= MINUTES * 60; t += 30)); do
  sleep 30
  kill -0 "$TOLLGATE_PID" 2>/dev/null || { echo "soak.sh: tollgate died"; cat "$WORK/tollgate.log"; exit 1; }
  NOW=$(rss_kb)
  ((NOW > MAX)) && MAX=$NOW
  echo "  t=${t}s rss=${NOW} kB"
done
wait "$LOAD_PID" || true
grep -E "^  throughput|latency per check" "$WORK/load.out" || tail -5 "$WORK/load.out"
END=$(rss_kb)
GROWTH=$(awk -v a="$START" -v b="$END" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
echo "SOAK minutes=$MINUTES rate=$RATE rss_start_kb=$START rss_end_kb=$END rss_max_kb=$MAX rss_growth_pct=$GROWTH"
