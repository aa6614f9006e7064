#!/usr/bin/env bash
# loadtest/oha.sh: HTTP load on tollgate's POST /v1/check with oha (cargo install --locked oha).
#
# Start tollgate with the load-test keys first, e.g.:
#   cargo run --release -p tollgate-loadgen -- gen-config --keys 10000 > /tmp/load.yaml
#   cargo run --release -p tollgate-server -- serve --config /tmp/load.yaml --http-addr 127.0.0.1:8080
# then:  loadtest/oha.sh [closed|rate|hot]
#
# oha sends the same body on every request, so each command loads one key; the Rust load
# generator (tollgate-loadgen) and the k6 scripts spread the load over many keys.
#   closed  peak: CONC connections back to back, cost 0 (reads the limits, consumes nothing,
#           so the key is never refused and every answer takes the full path)
#   rate    RATE requests/s, latency corrected for coordinated omission
#   hot     one key at full speed with cost 1: past its throttle, nearly every check is a
#           refusal (verdict THROTTLED in a 200 answer) — the hot-key path
# Environment: TOLLGATE_HTTP (default http://127.0.0.1:8080; host:port alone means http),
# DURATION (30s), CONC (50), RATE (5000). Targets only the URL given; stops after DURATION.
set -euo pipefail

BASE="${TOLLGATE_HTTP:-http://127.0.0.1:8080}"
[[ $BASE == http://* || $BASE == https://* ]] || BASE="http://$BASE"
URL="$BASE/v1/check"
DURATION="${DURATION:-30s}"
CONC="${CONC:-50}"
RATE="${RATE:-5000}"
KEY="loadgen-key-0000000-0123456789"
body() { # body COST
  printf '{"apiKey":"%s","apiId":"loadgen-api","stage":"bench","resource":"/check","method":"GET","cost":%s}' "$KEY" "$1"
}
command -v oha >/dev/null || { echo "oha.sh: oha not found (cargo install --locked oha)" >&2; exit 1; }

case "${1:-closed}" in
  closed)
    oha --no-tui -z "$DURATION" -c "$CONC" -m POST -H 'Content-Type: application/json' -d "$(body 0)" "$URL" ;;
  rate)
    oha --no-tui -z "$DURATION" -c "$CONC" -q "$RATE" --latency-correction -m POST \
      -H 'Content-Type: application/json' -d "$(body 0)" "$URL" ;;
  hot)
    oha --no-tui -z "$DURATION" -c "$CONC" -m POST -H 'Content-Type: application/json' -d "$(body 1)" "$URL" ;;
  *) echo "usage: loadtest/oha.sh [closed|rate|hot]" >&2; exit 2 ;;
esac
