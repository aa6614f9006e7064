#!/usr/bin/env bash
# loadtest/sched_waits.sh: what the scheduler did to tollgate, Redis and the load generator
# during an open-loop run, wait by wait.
#
# bench.sh's crowding figures say what share of the time each process waited for a core.
# This says how that wait was made up: it starts its own Redis and a one-thread release
# tollgate, both under the policy bench.sh gives them (choose_scheduling in common.sh, so
# TOLLGATE_SCHEDULING applies here too), drives CheckQuota open loop at --rate, and in the
# middle of the measured part records every context switch on the host for --seconds with
# `perf sched record -a`. sched_waits.py then prints, per process, how often it was
# preempted or slept, its waits from runnable to running (mean, over 200 us, over 1 ms,
# longest, and the time in waits over 1 ms), and, for all its waits and again for those
# over 1 ms, what handed the core back and how much of them the other core spent idle;
# for its longest wait over 1 ms, what each core ran meanwhile.
# With --ceiling it traces the ceiling instead (check.lua straight on Redis at the same
# rate, no tollgate): the same host and load generator without tollgate's hop.
#
# Usage: loadtest/sched_waits.sh [--rate R] [--seconds S] [--keys N] [--ceiling]
#   --rate     checks per second (default 20000: about half of tollgate's peak on the
#              hosts of December 2026)
#   --seconds  how long to record (default 2; the trace grows by about 10 MB a second)
# Needs redis-server, cargo and perf (apt-get install linux-perf), and root or
# kernel.perf_event_paranoid <= -1 for the scheduler tracepoints. Uses only 127.0.0.1.
set -euo pipefail

RATE=20000
SECS=2
KEYS=10000
CEILING=0
while (($#)); do
  case "$1" in
    --rate) RATE="$2"; shift 2 ;;
    --seconds) SECS="$2"; shift 2 ;;
    --keys) KEYS="$2"; shift 2 ;;
    --ceiling) CEILING=1; shift ;;
    -h | --help) awk 'NR > 1 { if (/^set -euo/) exit; print }' "$0"; exit 0 ;;
    *) echo "sched_waits.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
# shellcheck source=loadtest/common.sh
source loadtest/common.sh # the working directory is the repository root here
require redis-server redis-cli:redis-tools perf:linux-perf python3 chrt:util-linux
build_release
choose_scheduling
start_redis

WARMUP=2
# The load runs through warm-up, a second to settle, the recording, and a second after.
DURATION=$((SECS + 2))
if ((CEILING)); then
  "$LOADGEN" ceiling --redis-url "$REDIS_URL" -k "$KEYS" -c 1000 --connections 50 \
    -d "${DURATION}s" --warmup "${WARMUP}s" --rate "$RATE" --pipeline 0 >"$WORK/load.out" 2>&1 &
  LOAD_PID=$!
  WATCH=("redis-server=$REDIS_PID" "tollgate-loadgen=$LOAD_PID")
else
  redis_policy chosen # as in bench.sh's tollgate runs; its ceiling runs keep the default
  start_tollgate --worker-threads 1
  echo "==> tollgate: $(policy "$TOLLGATE_PID"); Redis: $(policy "$REDIS_PID")"
  "$LOADGEN" grpc --addr "http://127.0.0.1:$GRPC_PORT" -k "$KEYS" -c 1000 \
    -d "${DURATION}s" --warmup "${WARMUP}s" --rate "$RATE" >"$WORK/load.out" 2>&1 &
  LOAD_PID=$!
  # One runtime thread: tokio's current-thread scheduler runs on the main thread, whose
  # thread id is the process id; so do Redis's event loop and the load generator's.
  WATCH=("tollgate=$TOLLGATE_PID" "redis-server=$REDIS_PID" "tollgate-loadgen=$LOAD_PID")
fi
PIDS+=("$LOAD_PID")

sleep $((WARMUP + 1))
echo "==> recording every context switch for ${SECS}s at $RATE checks/s$( ((CEILING)) && echo ' (ceiling: Redis alone)')"
perf sched record -a -o "$WORK/sched.data" -- sleep "$SECS" >/dev/null 2>&1
wait "$LOAD_PID"
grep -v '^SUMMARY' "$WORK/load.out"
echo "==> waits for a core while recording (sched_waits.py)"
perf script -i "$WORK/sched.data" -F comm,tid,pid,cpu,time,event,trace 2>/dev/null |
  python3 loadtest/sched_waits.py "$SECS" "${WATCH[@]}"
