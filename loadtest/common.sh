# loadtest/common.sh: what the load scripts share (sourced, not run): a work directory
# and the processes started in it, both removed on exit; the tools a script needs and the
# release build; free loopback ports; waiting; a throwaway Redis; tollgate's health; the host
# report; reading tollgate-loadgen's SUMMARY lines.

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
# for it; sets REDIS_PORT, REDIS_URL and REDIS_PID. Arguments, if any, are a command to run
# it under (callgrind.sh: valgrind), whose process REDIS_PID then is.
start_redis() {
  REDIS_PORT=$(free_port)
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
  "$@" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  # Under valgrind Redis takes seconds to start; unwrapped it answers at once.
  wait_for 60 redis-cli -p "$REDIS_PORT" ping || { cat "$WORK/redis.log"; exit 1; }
}

# Starts the release tollgate on $REDIS_URL with `tollgate-loadgen gen-config`'s $KEYS keys
# (the config in $WORK), on free loopback ports, and waits until it answers; sets GRPC_PORT,
# HTTP_PORT and TOLLGATE_PID. Arguments go to `tollgate serve` after the common ones
# (bench.sh: --rls-config, --worker-threads). TOLLGATE_LAUNCH, an array, is a command that
# execs it (bench.sh: chrt), so TOLLGATE_PID is still tollgate's own.
TOLLGATE_LAUNCH=()
start_tollgate() {
  GRPC_PORT=$(free_port)
  HTTP_PORT=$(free_port)
  "$LOADGEN" gen-config --keys "$KEYS" >"$WORK/tollgate.yaml"
  RUST_LOG=warn "${TOLLGATE_LAUNCH[@]}" "$TOLLGATE" serve --config "$WORK/tollgate.yaml" --redis-url "$REDIS_URL" \
    --grpc-addr "127.0.0.1:$GRPC_PORT" --http-addr "127.0.0.1:$HTTP_PORT" "$@" >"$WORK/tollgate.log" 2>&1 &
  TOLLGATE_PID=$!
  PIDS+=("$TOLLGATE_PID")
  wait_for 20 healthy "$HTTP_PORT" || { cat "$WORK/tollgate.log"; exit 1; }
}

http_get() { # http_get PORT PATH: the whole HTTP/1.0 answer (status line, headers, body) from 127.0.0.1
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3 && cat <&3)
}

healthy() { # healthy HTTP_PORT: tollgate's /healthz answers 200
  local answer
  answer=$(http_get "$1" /healthz) && [[ ${answer%%$'\n'*} == *' 200 '* ]]
}

# Prints the machine, the load average, the worst stall Redis's own probe sees in 3 s and
# what a wake-up costs on one core and across two, and how an idle vCPU waits (needs
# LOADGEN: build_release).
# Other work on the machine skews every figure; the load average before and after says how
# much, and the probe shows how long this host can stall a running process (on a shared VM,
# milliseconds: such stalls, not tollgate, then set the tail latencies).
report_host() {
  echo "==> machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(redis-server --version | cut -d' ' -f1-3)"
  echo "==> load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local jitter_us
  jitter_us=$(timeout 10 redis-cli --intrinsic-latency 3 2>/dev/null | sed -n 's/^Max latency so far: \([0-9]*\) microseconds.*/\1/p' | tail -1)
  echo "==> host jitter: worst stall ${jitter_us:-?} us in 3 s (redis-cli --intrinsic-latency 3)"
  # Each open-loop check wakes every process at least once; where a wake-up across cores
  # costs several times one on the same core (a VM whose idle vCPUs halt), that sets the tail.
  local wake
  wake=$(timeout 30 "$LOADGEN" wake-probe 2>&1 | head -1) || true
  echo "==> wake-ups: ${wake:-?} (tollgate-loadgen wake-probe)"
  # Why a wake-up across cores costs what it does: how an idle vCPU waits. Under the
  # haltpoll driver with guest_halt_poll_ns 0 it halts at once, and waking it goes through
  # the hypervisor (docs/benchmarks.md, fifth session of 6 December).
  local cpuidle=/sys/devices/system/cpu/cpuidle haltpoll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
  local idle
  idle="driver $(cat "$cpuidle/current_driver" 2>/dev/null || echo none), governor $(cat "$cpuidle/current_governor" 2>/dev/null || echo none)"
  [[ ! -r $haltpoll ]] || idle+=", guest_halt_poll_ns $(cat "$haltpoll")"
  echo "==> idle vCPUs: cpuidle $idle"
}

summary() { # summary TARGET < output: the SUMMARY line tollgate-loadgen printed for that target
  grep "^SUMMARY target=$1 " | tail -1
}

field() { # field LINE NAME: the value of NAME=... in a SUMMARY line
  sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}
