# loadtest/common.sh: what the load scripts share (sourced, not run): a work directory
# and the processes started in it, both removed on exit; the tools a script needs and the
# release build; free loopback ports; waiting; a throwaway Redis; tollgate's health; the host
# report; how crowded the cores were during a run; reading tollgate-loadgen's SUMMARY lines.

WORK="$(mktemp -d -t tollgate-load.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

require() { # require TOOL[:PACKAGE]...: stop, naming the package to install, if a tool is missing
  local spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null || {
      echo "$(basename "$0"): ${spec%%:*} not found (apt-get install ${spec#*:})" >&2
      exit 1
    }
  done
}

# Builds tollgate and tollgate-loadgen (release profile, which keeps line tables for
# profilers); sets TOLLGATE and LOADGEN to the binaries.
build_release() {
  echo "==> building tollgate and tollgate-loadgen (release)"
  cargo build --release --quiet -p tollgate-server -p tollgate-loadgen
  TOLLGATE="${CARGO_TARGET_DIR:-target}/release/tollgate"
  LOADGEN="${CARGO_TARGET_DIR:-target}/release/tollgate-loadgen"
}

# A free loopback port: one nothing answers on, from a range the kernel does not hand out.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "$(basename "$0"): no free port found" >&2
  exit 1
}

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Starts a throwaway redis-server on a free port (no persistence, files in $WORK) and waits
# for it; sets REDIS_PORT and REDIS_URL. Arguments, if any, are a command to run it under
# (callgrind.sh: valgrind); the server's process is then the last of PIDS.
start_redis() {
  REDIS_PORT=$(free_port)
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
  "$@" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  REDIS_PID=$!
  # Under valgrind Redis takes seconds to start; unwrapped it answers at once.
  wait_for 60 redis-cli -p "$REDIS_PORT" ping || { cat "$WORK/redis.log"; exit 1; }
}

healthy() { # healthy HTTP_PORT: tollgate's /healthz answers 200
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | grep -q ' 200 ')
}

# Prints the machine, the load average and the worst stall Redis's own probe sees in 3 s.
# Other work on the machine skews every figure; the load average before and after says how
# much, and the probe shows how long this host can stall a running process (on a shared VM,
# milliseconds: such stalls, not tollgate, then set the tail latencies).
report_host() {
  echo "==> machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(redis-server --version | cut -d' ' -f1-3)"
  echo "==> load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local jitter_us
  jitter_us=$(timeout 10 redis-cli --intrinsic-latency 3 2>/dev/null | sed -n 's/^Max latency so far: \([0-9]*\) microseconds.*/\1/p' | tail -1)
  echo "==> host jitter: worst stall ${jitter_us:-?} us in 3 s (redis-cli --intrinsic-latency 3)"
}

summary() { # summary TARGET < output: the SUMMARY line tollgate-loadgen printed for that target
  grep "^SUMMARY target=$1 " | tail -1
}

field() { # field LINE NAME: the value of NAME=... in a SUMMARY line
  sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}

sched_ns() { # sched_ns PID: "<tid> <ns on a core> <ns runnable, waiting for a core> <times run>;" per thread
  local f
  for f in /proc/"$1"/task/*/schedstat; do
    [[ -r $f ]] && printf '%s %s;' "$(basename "$(dirname "$f")")" "$(cat "$f" 2>/dev/null)"
  done
  echo
}

# crowding OUT RATE NAME=PID... -- COMMAND...: runs COMMAND (a load-generator run of WARMUP s
# unmeasured, then DURATION s measured) with its output to OUT and, over DURATION-1 s of the
# measured part, reads how the scheduler treated each named process and the generator itself
# (/proc/PID/task/*/schedstat): the share of a core it used, the share of the time it was
# runnable but waited for a core, and that wait per check at RATE checks/s; also the host's
# steal time. A latency figure over the bar with large waits here is a crowded host, not a
# slow program.
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
  steal0=$(awk '/^cpu /{ print $9 }' /proc/stat)
  for i in "${!pids[@]}"; do before[i]=$(sched_ns "${pids[i]}"); done
  sleep "$window"
  for i in "${!pids[@]}"; do after[i]=$(sched_ns "${pids[i]}"); done
  steal1=$(awk '/^cpu /{ print $9 }' /proc/stat)
  local rc=0
  wait "$runner" || rc=$?
  cat "$out"
  ((rc == 0)) || return "$rc"
  echo "  over ${window}s of the run, from /proc/PID/schedstat:"
  for i in "${!pids[@]}"; do
    # Only threads alive at both reads count: one that ended took its counters with it.
    awk -v name="${names[i]}" -v b="${before[i]}" -v a="${after[i]}" -v s="$window" -v rate="$rate" 'BEGIN {
      nb = split(b, x, ";")
      for (j = 1; j <= nb; j++) if (split(x[j], t, " ") == 4) { r0[t[1]] = t[2]; w0[t[1]] = t[3]; n0[t[1]] = t[4] }
      na = split(a, y, ";")
      for (j = 1; j <= na; j++) if (split(y[j], t, " ") == 4 && (t[1] in r0)) {
        run += (t[2] - r0[t[1]]) / 1e9; wait += (t[3] - w0[t[1]]) / 1e9; n += t[4] - n0[t[1]]
      }
      printf "    %-15s cpu %5.1f %%  waited for a core %5.1f %%  (%.1f us per check, %.1f us per wake-up)\n",
        name, 100 * run / s, 100 * wait / s, (rate > 0 ? 1e6 * wait / (rate * s) : 0), (n > 0 ? 1e6 * wait / n : 0)
    }'
  done
  awk -v a="$steal0" -v b="$steal1" -v s="$window" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" \
    'BEGIN { printf "    host steal      %.2f %% of %d cores\n", 100 * (b - a) / hz / s / cores, cores }'
}
