#!/usr/bin/env bash
# loadtest/bench.sh: tollgate measured against the Redis ceiling of its own check script,
# in one run, on this machine.
#
# Starts its own redis-server and a release-built tollgate on free loopback ports, with a
# generated config of 10 000 keys (tollgate-loadgen gen-config) and a generated Envoy
# rate-limit config directory (tollgate-loadgen gen-rls-config), then runs back to back:
#   1. ceiling   check.lua straight on Redis: C callers, one script call per round trip,
#                the same keys and arguments tollgate sends (and, once, a pipelined figure);
#   2. peak      tollgate CheckQuota closed loop, C callers, the same keys, with each
#                process's CPU per check (crowding, below);
#                runs 1 and 2 alternate --rounds times, and the ratio is the median of the
#                rounds' ratios: a shared host has slow spells of several seconds, and a
#                spell that hits only one side of a single pair moves the ratio by 15 %;
#   3. half      tollgate open loop at half of that peak: latency from intended send time;
#      3b.       the ceiling open loop at the same rate, over C connections: what Redis
#                and the load generator alone give at that rate on this host, the floor
#                under run 3's latency (a shared two-core VM stalls for milliseconds);
#                for both, how long each process waited for a core (crowding, below);
#                runs 3 and 3b alternate --rounds times, and each p99 is the median;
#      3c.       tollgate open loop at 25 % and 37.5 % of the peak, one round each, each
#                followed by the ceiling open loop at the same rate: how the p99 grows
#                with the load, with and without tollgate (printed, not in the RESULT line);
#   4. hot key   closed loop where one abusive key sends 100x the traffic of all others;
#   5. rls       Envoy RLS ShouldRateLimit closed loop, C callers, the same keys as
#                `api_key` descriptors, so each is the same plan check as in run 2;
#   6. rls hot   run 5 with one abusive key at 100x the traffic of all others.
# Redis calls are counted with INFO commandstats deltas. It ends with one line
#   RESULT throughput_ratio=<tollgate/ceiling> p99_ms_at_half=<ms> redis_calls_per_check=<n> hot_key_redis_share=<fraction> rls_throughput_ratio=<rls/ceiling> rls_hot_key_redis_share=<fraction> ceiling_p99_ms_at_half=<ms>
# where redis_calls_per_check counts client calls (EVALSHA, PING, ...) per admitted check,
# hot_key_redis_share is the fraction of Redis calls in run 4 caused by the abusive key, and
# rls_throughput_ratio is run 5's peak over the ceiling, and rls_hot_key_redis_share is
# run 6's share of Redis calls caused by the abusive key, and ceiling_p99_ms_at_half is
# the median of run 3b's p99s (p99_ms_at_half is the median of run 3's).
#
# Usage: loadtest/bench.sh [--quick] [--keys N] [--concurrency C] [--duration SECONDS] [--rounds N]
#   --quick   a seconds-long smoke run (2 s per phase, 1000 keys, one round)
#   --rounds  ceiling/peak pairs, and half-peak pairs, to alternate (default 3)
# Environment: TOLLGATE_WORKER_THREADS (default 1) and TOLLGATE_SCHEDULING (auto, the
# default, fifo, batch or normal): how tollgate and Redis run on the shared cores
# (choose_scheduling in loadtest/common.sh).
# Needs redis-server and cargo (see the README's set-up); uses only 127.0.0.1; every run is
# bounded in time, and everything it started or wrote is removed when it exits.
set -euo pipefail

KEYS=10000
CONC=50
DURATION=10
WARMUP=2
HOT_FACTOR=100
ROUNDS=3
# HTTP/2 connections the load generator spreads tollgate's checks over (its default). Under
# FIFO the open loop's p99 depends on it: each connection's arrivals wake the servers
# apart, and each wake-up preempts the generator (docs/benchmarks.md, eighth session of
# 6 December: 1 to 64 connections at 25 000/s). Kept at 4, not tuned to the bar.
CONNECTIONS=4
while (($#)); do
  case "$1" in
    --quick) KEYS=1000; DURATION=2; WARMUP=1; ROUNDS=1; shift ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --keys) KEYS="$2"; shift 2 ;;
    --concurrency) CONC="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    -h | --help) awk 'NR > 1 { if (/^set -euo/) exit; print }' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
# shellcheck source=loadtest/common.sh
source loadtest/common.sh # the working directory is the repository root here
require redis-server redis-cli:redis-tools chrt:util-linux
build_release

# One thread (tokio's current-thread scheduler): Redis (a full core at the ceiling) and the
# load generator share the two cores, and one tollgate thread served more checks/s than one
# per core in A/B rounds (docs/benchmarks.md); it is the setting an operator co-locating
# tollgate with Redis would pick. So is a scheduling policy: choose_scheduling (common.sh)
# reads TOLLGATE_SCHEDULING and says why each.
choose_scheduling

start_redis
# on_default_redis CMD...: CMD with Redis under the default policy, as the ceiling runs have
# it, then Redis back under the chosen one. A failing CMD ends the script (set -e), and the
# exit trap stops Redis, so no policy is left behind.
on_default_redis() {
  redis_policy default
  "$@"
  redis_policy chosen
}
redis_policy chosen
mkdir "$WORK/rls"
"$LOADGEN" gen-rls-config >"$WORK/rls/bench.yaml"
start_tollgate --rls-config "$WORK/rls" --worker-threads "${TOLLGATE_WORKER_THREADS:-1}"
echo "==> tollgate: $(policy "$TOLLGATE_PID"), ${TOLLGATE_WORKER_THREADS:-1} worker thread(s); Redis: $(policy "$REDIS_PID")"

report_host
TOLLGATE_TARGET=(--addr "http://127.0.0.1:$GRPC_PORT" --connections "$CONNECTIONS")
echo "==> load: $KEYS keys, $CONC callers (over $CONNECTIONS HTTP/2 connections to tollgate), ${DURATION}s per phase after ${WARMUP}s warm-up"

LIMIT=$((DURATION + WARMUP + 60))
COMMON=(-k "$KEYS" -c "$CONC" -d "${DURATION}s" --warmup "${WARMUP}s")


median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# nearest LIST VALUE: the index of the element of LIST (one number per line) nearest VALUE
nearest() { awk -v m="$2" '{ d = $1 - m; if (d < 0) d = -d; if (NR == 1 || d < best) { best = d; i = NR - 1 } } END { print i }' <<<"$1"; }

# sched_ns PID: "<tid> <ns on a core> <ns runnable, waiting for a core> <turns on a core>
# <times it went to sleep>;" per thread. A turn starts after a wake-up or after the thread
# was preempted; only the sleeps (voluntary context switches) count wake-ups.
sched_ns() {
  # One grep for all threads (the reads fall inside the measured run, so no process per
  # thread); -s skips a thread that ended after the glob was expanded.
  { grep -sH -E '^[0-9]|^voluntary_ctxt_switches' /proc/"$1"/task/*/schedstat /proc/"$1"/task/*/status || true; } |
    awk -F'[/:[:space:]]+' '
      $6 == "schedstat" { run[$5] = $7; wait[$5] = $8; turns[$5] = $9 }
      $6 == "status" { slept[$5] = $8 }
      END { for (t in run) if (t in slept) printf "%s %s %s %s %s;", t, run[t], wait[t], turns[t], slept[t]; print "" }'
}
steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; } # the host's steal time, in clock ticks
# inside_buckets: tollgate's own histogram of gRPC check durations (decoded request to encoded
# answer, the Redis round trip inside) from /metrics, "<le> <count>;" per bucket
inside_buckets() {
  { http_get "$HTTP_PORT" /metrics || true; } |
    sed -n 's/^tollgate_check_duration_seconds_bucket{protocol="grpc",le="\([^"]*\)"} \([0-9]*\).*/\1 \2;/p' | tr -d '\n'
}

# crowding OUT RATE NAME=PID... -- COMMAND...: runs COMMAND (a load-generator run of WARMUP s
# unmeasured, then DURATION s measured; RATE `measured` for a closed loop takes the rate from
# its SUMMARY line) with its output to OUT and, over DURATION-1 s of the measured part,
# reads how the scheduler treated each named process and the generator itself
# (/proc/PID/task/*/schedstat and status): the share of a core it used and that CPU per
# check at RATE checks/s, the share of the time it was runnable but waited for a core, that
# wait per check and per turn on a core, and how often it went to sleep per check (under
# one: it serves several checks per wake-up; near zero: it never caught up, so its own
# lateness is in every figure it measures); also the host's steal time. A latency figure
# over the bar with large waits here is a crowded host, not a slow program. The CPU per
# check, read across the loads of runs 3 and 3c, shows what one wake-up costs on this host:
# where each check arrives alone, each process pays a wake-up for it, which on a small VM
# can cost more than the check's own work. Where tollgate is among the processes, the same
# window of tollgate's own check-duration histogram says how many checks were quick inside
# tollgate: a slow p99 with those quick is time spent before tollgate read the request or
# after it wrote the answer.
crowding() {
  local out=$1 rate=$2
  shift 2
  local names=() pids=()
  while [[ $1 != -- ]]; do
    names+=("${1%%=*}")
    pids+=("${1#*=}")
    shift
  done
  shift
  "$@" >"$out" &
  local runner=$! gen window=$((DURATION - 1))
  ((window >= 1)) || window=1
  sleep "$WARMUP.5"
  gen=$(pgrep -P "$runner" | head -1)
  names+=("load generator")
  pids+=("${gen:-$runner}")
  local before=() after=() steal0 steal1 i
  local inside0="" inside1=""
  steal0=$(steal_ticks)
  [[ " ${names[*]} " != *" tollgate "* ]] || inside0=$(inside_buckets)
  for i in "${!pids[@]}"; do before[i]=$(sched_ns "${pids[i]}"); done
  sleep "$window"
  for i in "${!pids[@]}"; do after[i]=$(sched_ns "${pids[i]}"); done
  [[ -z $inside0 ]] || inside1=$(inside_buckets)
  steal1=$(steal_ticks)
  local rc=0
  wait "$runner" || rc=$?
  cat "$out"
  ((rc == 0)) || return "$rc"
  [[ $rate != measured ]] || rate=$(field "$(grep '^SUMMARY ' "$out" | tail -1)" throughput)
  echo "  over ${window}s of the run, from /proc/PID/task/*/schedstat and status:"
  : >"$out.figures"
  for i in "${!pids[@]}"; do
    # Only threads alive at both reads count: one that ended took its counters with it.
    awk -v name="${names[i]}" -v b="${before[i]}" -v a="${after[i]}" -v s="$window" -v rate="$rate" \
      -v figures="$out.figures" 'BEGIN {
      nb = split(b, x, ";")
      for (j = 1; j <= nb; j++) if (split(x[j], t, " ") == 5) { r0[t[1]] = t[2]; w0[t[1]] = t[3]; n0[t[1]] = t[4]; s0[t[1]] = t[5] }
      na = split(a, y, ";")
      for (j = 1; j <= na; j++) if (split(y[j], t, " ") == 5 && (t[1] in r0)) {
        run += (t[2] - r0[t[1]]) / 1e9; wait += (t[3] - w0[t[1]]) / 1e9; n += t[4] - n0[t[1]]; slept += t[5] - s0[t[1]]
      }
      cpu_us = (rate > 0 ? 1e6 * run / (rate * s) : 0)
      printf "    %-15s cpu %5.1f %% (%5.1f us per check)  waited for a core %5.1f %%  (%.1f us per check, %.1f us per turn on a core)  slept %.2f times per check\n",
        name, 100 * run / s, cpu_us, 100 * wait / s,
        (rate > 0 ? 1e6 * wait / (rate * s) : 0), (n > 0 ? 1e6 * wait / n : 0), (rate > 0 ? slept / (rate * s) : 0)
      key = name; gsub(/ /, "_", key)
      printf " cpu_us_%s=%.1f", key, cpu_us >>figures
    }'
  done
  awk -v a="$steal0" -v b="$steal1" -v s="$window" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" \
    'BEGIN { printf "    host steal      %.2f %% of %d cores\n", 100 * (b - a) / hz / s / cores, cores }'
  [[ -z $inside1 ]] || awk -v b="$inside0" -v a="$inside1" -v figures="$out.figures" 'BEGIN {
    nb = split(b, x, ";"); for (j = 1; j <= nb; j++) if (split(x[j], t, " ") == 2) c0[t[1]] = t[2]
    na = split(a, y, ";"); for (j = 1; j <= na; j++) if (split(y[j], t, " ") == 2) c1[t[1]] = t[2] - c0[t[1]]
    n = c1["+Inf"]
    if (n > 0) {
      printf "    inside tollgate (its own histogram, Redis round trip included): <= 0.5 ms %.1f %%, <= 1 ms %.1f %%, <= 2.5 ms %.1f %%\n",
        100 * c1["0.0005"] / n, 100 * c1["0.001"] / n, 100 * c1["0.0025"] / n
      printf " inside_1ms_pct=%.1f", 100 * c1["0.001"] / n >>figures
    }
  }'
}

# figure OUT KEY: a figure crowding kept for OUT's run (OUT.figures, " key=value" pairs)
figure() { field " $(cat "$1.figures" 2>/dev/null)" "$2"; }
# cpu_line OUT: "tollgate / Redis / load generator" CPU per check in OUT's run, in µs
cpu_line() { echo "$(figure "$1" cpu_us_tollgate) / $(figure "$1" cpu_us_redis) / $(figure "$1" cpu_us_load_generator)"; }

# tollgate_open OUT RATE: tollgate CheckQuota open loop at RATE checks/s, up to 1000 in
# flight, with how the scheduler treated tollgate and Redis (crowding); output to OUT.
tollgate_open() {
  crowding "$1" "$2" tollgate="$TOLLGATE_PID" redis="$REDIS_PID" -- \
    timeout "$LIMIT" "$LOADGEN" grpc "${TOLLGATE_TARGET[@]}" -k "$KEYS" -c 1000 \
    -d "${DURATION}s" --warmup "${WARMUP}s" --rate "$2"
}

# ceiling_open OUT RATE: check.lua straight on Redis, open loop at RATE checks/s over $CONC
# connections, up to 1000 in flight, with how the scheduler treated Redis; output to OUT.
ceiling_open() {
  on_default_redis crowding "$1" "$2" redis="$REDIS_PID" -- \
    timeout "$LIMIT" "$LOADGEN" ceiling --redis-url "$REDIS_URL" -k "$KEYS" -c 1000 --connections "$CONC" \
    -d "${DURATION}s" --warmup "${WARMUP}s" --rate "$2" --pipeline 0
}

# ceiling_closed ROUND: run 1, the closed-loop ceiling, for round ROUND (the first adds the
# pipelined figure); output to $WORK/ceiling-ROUND.out.
ceiling_closed() {
  echo "==> 1. ceiling: check.lua straight on Redis, under $(policy "$REDIS_PID") (round $1 of $ROUNDS)"
  local pipeline=()
  (($1 == 1)) || pipeline=(--pipeline 0)
  timeout "$((2 * LIMIT))" "$LOADGEN" ceiling --redis-url "$REDIS_URL" "${COMMON[@]}" "${pipeline[@]}" \
    | tee "$WORK/ceiling-$1.out"
}

RATIOS=()
CEILINGS=()
PEAK_LINES=()
for round in $(seq "$ROUNDS"); do
  echo
  on_default_redis ceiling_closed "$round"
  ROUND_CEILING=$(summary ceiling <"$WORK/ceiling-$round.out")
  # tollgate's first round starts from the same empty state the ceiling's did
  ((round == 1)) && redis-cli -p "$REDIS_PORT" flushall >/dev/null

  echo
  echo "==> 2. tollgate CheckQuota, closed loop (peak, round $round of $ROUNDS)"
  # With the crowding figures, for the CPU per check when callers batch: runs 3 and 3c give
  # it where each check comes alone.
  crowding "$WORK/peak-$round.out" measured tollgate="$TOLLGATE_PID" redis="$REDIS_PID" -- \
    timeout "$LIMIT" "$LOADGEN" grpc "${TOLLGATE_TARGET[@]}" --redis-stats "$REDIS_URL" \
    "${COMMON[@]}"
  ROUND_PEAK=$(summary grpc <"$WORK/peak-$round.out")
  RATIOS+=("$(awk -v a="$(field "$ROUND_PEAK" throughput)" -v b="$(field "$ROUND_CEILING" throughput)" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
  echo "==> round $round: ceiling $(field "$ROUND_CEILING" throughput) checks/s, tollgate $(field "$ROUND_PEAK" throughput) checks/s, ratio ${RATIOS[-1]}"
  CEILINGS+=("$ROUND_CEILING")
  PEAK_LINES+=("$ROUND_PEAK")
done
RATIO=$(printf '%s\n' "${RATIOS[@]}" | median)
# The figures below quote the round whose ratio is nearest the median; the half load is half
# of the median peak.
MID=$(nearest "$(printf '%s\n' "${RATIOS[@]}")" "$RATIO")
CEILING=${CEILINGS[$MID]}
PEAK=${PEAK_LINES[$MID]}
PEAKS=$(for line in "${PEAK_LINES[@]}"; do field "$line" throughput; done)
PEAK_TPUT=$(median <<<"$PEAKS")
HALF=$(awk -v t="$PEAK_TPUT" 'BEGIN { printf "%.0f", t / 2 }')

# Runs 3 and 3b alternate --rounds times too, and the p99s are the medians: one 10 s run's
# p99 on a shared host moved between 6 and 30 ms from one run to the next.
HALF_LINES=()
HALF_CEILING_LINES=()
for round in $(seq "$ROUNDS"); do
  echo
  echo "==> 3. tollgate CheckQuota, open loop at half the peak ($HALF checks/s, round $round of $ROUNDS)"
  tollgate_open "$WORK/half-$round.out" "$HALF"
  HALF_LINES+=("$(summary grpc <"$WORK/half-$round.out")")

  echo
  echo "==> 3b. the ceiling, open loop at the same rate (Redis alone: the floor under run 3's latency; round $round of $ROUNDS)"
  ceiling_open "$WORK/half-ceiling-$round.out" "$HALF"
  HALF_CEILING_LINES+=("$(summary ceiling <"$WORK/half-ceiling-$round.out")")
done
HALF_P99S=$(for line in "${HALF_LINES[@]}"; do field "$line" p99_ms; done)
CEILING_P99S=$(for line in "${HALF_CEILING_LINES[@]}"; do field "$line" p99_ms; done)
P99_HALF=$(median <<<"$HALF_P99S")
P99_HALF_CEILING=$(median <<<"$CEILING_P99S")
# The figures below quote the round nearest each median.
HALF_MID=$(nearest "$HALF_P99S" "$P99_HALF")
HALF_LINE=${HALF_LINES[$HALF_MID]}
HALF_CEILING=${HALF_CEILING_LINES[$(nearest "$CEILING_P99S" "$P99_HALF_CEILING")]}

# 3c. How the tail grows with the load: one open-loop round each at a quarter and three
# eighths of the peak, tollgate and then the ceiling at the same rate. An open loop wakes
# each process once per message where the closed loop's callers batch, and on a VM every
# wake-up is dear: near half the peak the three processes fill most of the two cores
# (docs/benchmarks.md, 5 December). These rounds show up to which rate the p99 bar holds on
# this host, the figure capacity planning needs, and, beside each, what Redis alone gives
# at that rate: the part of the tail that is the host's, not tollgate's.
LOAD_LINES=()
LOAD_CEILING_LINES=()
for share in 25 37.5; do
  RATE=$(awk -v t="$PEAK_TPUT" -v s="$share" 'BEGIN { printf "%.0f", t * s / 100 }')
  echo
  echo "==> 3c. tollgate CheckQuota, open loop at $share % of the peak ($RATE checks/s)"
  tollgate_open "$WORK/load-$share.out" "$RATE"
  LOAD=$(summary grpc <"$WORK/load-$share.out")
  LOAD_LINES+=("$share % $(field "$LOAD" throughput | cut -d. -f1)/s $(field "$LOAD" p99_ms) ms")
  echo
  echo "==> 3c. the ceiling, open loop at $share % of the peak ($RATE checks/s)"
  ceiling_open "$WORK/load-ceiling-$share.out" "$RATE"
  LOAD=$(summary ceiling <"$WORK/load-ceiling-$share.out")
  LOAD_CEILING_LINES+=("$share % $(field "$LOAD" p99_ms) ms")
done

echo
echo "==> 4. tollgate CheckQuota, one abusive key at ${HOT_FACTOR}x the traffic of all others"
timeout "$LIMIT" "$LOADGEN" grpc "${TOLLGATE_TARGET[@]}" --redis-stats "$REDIS_URL" \
  "${COMMON[@]}" --hot --hot-factor "$HOT_FACTOR" | tee "$WORK/hot.out"
HOT=$(summary grpc <"$WORK/hot.out")

echo
echo "==> 5. tollgate Envoy RLS ShouldRateLimit, api_key descriptors, closed loop (peak)"
timeout "$LIMIT" "$LOADGEN" rls --descriptor api-key "${TOLLGATE_TARGET[@]}" \
  --redis-stats "$REDIS_URL" "${COMMON[@]}" | tee "$WORK/rls.out"
RLS=$(summary rls-api-key <"$WORK/rls.out")

echo
echo "==> 6. tollgate Envoy RLS, one abusive key at ${HOT_FACTOR}x the traffic of all others"
timeout "$LIMIT" "$LOADGEN" rls --descriptor api-key "${TOLLGATE_TARGET[@]}" \
  --redis-stats "$REDIS_URL" "${COMMON[@]}" --hot --hot-factor "$HOT_FACTOR" | tee "$WORK/rls-hot.out"
RLS_HOT=$(summary rls-api-key <"$WORK/rls-hot.out")

PER_CHECK=$(field "$PEAK" redis_calls_per_check)
RLS_RATIO=$(awk -v a="$(field "$RLS" throughput)" -v b="$(field "$CEILING" throughput)" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
# The ordinary keys are always admitted, so they cost what an admitted check costs (runs 2
# and 5); every other Redis call of runs 4 and 6 was caused by the abusive key.
hot_share() { # hot_share SUMMARY PER_CHECK
  awk -v calls="$(field "$1" redis_calls)" -v rest="$(field "$1" rest_total)" -v per="$2" \
    'BEGIN { s = (calls > 0 ? (calls - rest * per) / calls : 0); if (s < 0) s = 0; printf "%.3f", s }'
}
HOT_SHARE=$(hot_share "$HOT" "$PER_CHECK")
RLS_HOT_SHARE=$(hot_share "$RLS_HOT" "$(field "$RLS" redis_calls_per_check)")

echo
echo "==> load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> figures"
printf '  ceiling (1 call per round trip)  %10.0f checks/s  p99 %s ms\n' "$(field "$CEILING" throughput)" "$(field "$CEILING" p99_ms)"
PIPED=$(summary ceiling-pipelined <"$WORK/ceiling-1.out" || true)
[[ -n "$PIPED" ]] && printf '  ceiling pipelined (reference)    %10.0f checks/s\n' "$(field "$PIPED" throughput)"
echo "  rounds: tollgate/ceiling ratios ${RATIOS[*]} (median $RATIO); tollgate peaks ${PEAKS//$'\n'/ }"
printf '  tollgate peak (closed loop)      %10.0f checks/s  p50 %s ms  p99 %s ms  p99.9 %s ms\n' \
  "$PEAK_TPUT" "$(field "$PEAK" p50_ms)" "$(field "$PEAK" p99_ms)" "$(field "$PEAK" p999_ms)"
echo "  rounds at half peak: tollgate p99s ${HALF_P99S//$'\n'/ } ms (median $P99_HALF); ceiling p99s ${CEILING_P99S//$'\n'/ } ms (median $P99_HALF_CEILING)"
printf '  tollgate at half peak (open)     %10.0f checks/s  p50 %s ms  p99 %s ms  p99.9 %s ms  (p99 from actual send %s ms)\n' \
  "$(field "$HALF_LINE" throughput)" "$(field "$HALF_LINE" p50_ms)" "$(field "$HALF_LINE" p99_ms)" "$(field "$HALF_LINE" p999_ms)" "$(field "$HALF_LINE" p99_sent_ms)"
echo "  tollgate p99 by load (open): ${LOAD_LINES[0]}, ${LOAD_LINES[1]}, 50 % $HALF/s $P99_HALF ms (median)"
echo "  ceiling p99 by load (open):  ${LOAD_CEILING_LINES[0]}, ${LOAD_CEILING_LINES[1]}, 50 % $P99_HALF_CEILING ms (median)"
echo "  inside tollgate, checks <= 1 ms (open): 25 % $(figure "$WORK/load-25.out" inside_1ms_pct) %, 37.5 % $(figure "$WORK/load-37.5.out" inside_1ms_pct) %, 50 % $(figure "$WORK/half-$((HALF_MID + 1)).out" inside_1ms_pct) %"
echo "  CPU per check, tollgate / Redis / load generator (us): closed loop $(cpu_line "$WORK/peak-$((MID + 1)).out"); open 25 % $(cpu_line "$WORK/load-25.out"), 37.5 % $(cpu_line "$WORK/load-37.5.out"), 50 % $(cpu_line "$WORK/half-$((HALF_MID + 1)).out")"
printf '  ceiling at the same rate (open)  %10.0f checks/s  p50 %s ms  p99 %s ms  p99.9 %s ms\n' \
  "$(field "$HALF_CEILING" throughput)" "$(field "$HALF_CEILING" p50_ms)" "$(field "$HALF_CEILING" p99_ms)" "$(field "$HALF_CEILING" p999_ms)"
printf '  tollgate with a hot key          %10.0f checks/s  hot key %s of %s checks\n' \
  "$(field "$HOT" throughput)" "$(field "$HOT" hot_total)" "$(field "$HOT" sent_total)"
printf '  tollgate RLS peak (api_key)      %10.0f checks/s  p50 %s ms  p99 %s ms  p99.9 %s ms  redis calls per check %s\n' \
  "$(field "$RLS" throughput)" "$(field "$RLS" p50_ms)" "$(field "$RLS" p99_ms)" "$(field "$RLS" p999_ms)" "$(field "$RLS" redis_calls_per_check)"
printf '  tollgate RLS with a hot key      %10.0f checks/s  hot key %s of %s checks\n' \
  "$(field "$RLS_HOT" throughput)" "$(field "$RLS_HOT" hot_total)" "$(field "$RLS_HOT" sent_total)"
echo "RESULT throughput_ratio=$RATIO p99_ms_at_half=$P99_HALF redis_calls_per_check=$PER_CHECK hot_key_redis_share=$HOT_SHARE rls_throughput_ratio=$RLS_RATIO rls_hot_key_redis_share=$RLS_HOT_SHARE ceiling_p99_ms_at_half=$P99_HALF_CEILING"
