# loadtest/common.sh: what the load scripts share (sourced, not run): a work directory
# and the processes started in it, both removed on exit; the tools a script needs and the
# release build; free loopback ports; waiting; a throwaway Redis; tollgate's health; the
# servers' scheduling policy; the host report; reading tollgate-loadgen's SUMMARY lines.

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

# choose_scheduling: how tollgate and Redis run on the cores they share with the load
# generator (chrt, util-linux; systemd's CPUSchedulingPolicy=), from TOLLGATE_SCHEDULING;
# sets SCHEDULING and TOLLGATE_LAUNCH (start_tollgate runs tollgate under it; redis_policy
# moves Redis). bench.sh's figures come from the default, auto:
#   fifo    tollgate and Redis both under SCHED_FIFO at priority 1 (needs root or
#           CAP_SYS_NICE): a wake-up of either runs at once, ahead of the load generator,
#           and neither preempts the other at the same priority. In paired rounds near half
#           the peak tollgate's p99 was lower in 21 of 21 pairs, the medians 3.6-8.2 ms
#           against 8.0-65 ms under batch, at the same peak (docs/benchmarks.md, third
#           session of 6 December). It takes the cores from the load generator, which is
#           light (about 12 us of CPU per check in a closed loop) and counts its own waits
#           in its figures; k6 and oha (about 200 and 23 us per request) lost up to 45 % of
#           their closed-loop throughput to it on the same cores. Only Redis's event-loop
#           thread is switched (redis_policy, below): its helper threads, started before,
#           keep the default, and --reset-on-fork keeps any later thread or snapshot child
#           (none here: --save '') off the policy too. A real-time process that would fill
#           a core is stopped for 50 ms each second (kernel.sched_rt_runtime_us); Redis
#           alone fills one at the closed-loop ceiling and nearly does at half the peak (it
#           spends more per call than behind tollgate, which pipelines). So bench.sh's
#           ceiling runs (1, 3b and the ceiling half of 3c) have Redis under the default
#           policy: Redis as it comes, which the throttle cannot hold back.
#   batch   tollgate under SCHED_BATCH, Redis under the default policy: tollgate's wake-ups
#           stop preempting Redis mid-reply on a shared core, which in A/B rounds gave 7 %
#           more checks/s and a lower p99 at 25-50 % of the peak in 31 of 48 pairs.
#   normal  both under the default policy.
#   auto    (the default) fifo where this user may set it, batch otherwise.
# The load generator always runs under the default policy: it stands in for the clients,
# and any wait it has for a core counts in the latencies it prints.
choose_scheduling() {
  SCHEDULING=${TOLLGATE_SCHEDULING:-auto}
  if [[ $SCHEDULING == auto ]]; then
    SCHEDULING=batch
    ! chrt --fifo 1 true 2>/dev/null || SCHEDULING=fifo
  fi
  case "$SCHEDULING" in
    fifo) TOLLGATE_LAUNCH=(chrt --fifo 1) ;;
    batch) TOLLGATE_LAUNCH=(chrt --batch 0) ;;
    normal) TOLLGATE_LAUNCH=() ;;
    *) echo "$(basename "$0"): TOLLGATE_SCHEDULING must be auto, fifo, batch or normal" >&2; exit 2 ;;
  esac
}

# redis_policy default|chosen: the policy of Redis's event-loop thread, the one that serves
# calls (its helper threads keep the default). Runs of Redis alone (bench.sh's ceiling) have
# it under the default policy, the rest under the chosen one; only fifo moves Redis at all.
redis_policy() {
  [[ $SCHEDULING == fifo ]] || return 0
  case "$1" in
    default) chrt --other --pid 0 "$REDIS_PID" ;;
    chosen) chrt --reset-on-fork --fifo --pid 1 "$REDIS_PID" ;;
  esac
}
policy() { chrt -p "$1" | sed -n '1s/.*: //p'; } # policy PID: its scheduling policy, as chrt names it

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
