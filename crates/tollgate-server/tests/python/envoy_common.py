"""Shared set-up of the Envoy conformance scripts: arguments, stubs, channel and checks.

Every script is run by a Rust integration test (crates/tollgate-server/tests/envoy.rs) as

    python3 SCRIPT SCENARIO --stubs DIR --grpc PORT --http PORT [--config-dir DIR]

against a tollgate it started; the script exits 0 when the scenario holds, and otherwise
prints what differed and exits non-zero.
"""

import argparse
import json
import os
import sys
import time
import urllib.request


def parse_args(scenarios):
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=sorted(scenarios))
    p.add_argument("--stubs", required=True, help="directory of the generated Envoy stubs")
    p.add_argument("--grpc", type=int, required=True, help="tollgate's gRPC port")
    p.add_argument("--http", type=int, required=True, help="tollgate's HTTP port")
    p.add_argument("--config-dir", help="tollgate's --rls-config directory")
    return p.parse_args()


def load_stubs(directory):
    """Puts the generated stubs on the path; fails clearly if grpcio is missing."""
    try:
        import grpc  # noqa: F401
    except ImportError as e:
        sys.exit(f"grpcio is missing ({e}); pip install -r crates/tollgate-server/tests/python/requirements.txt")
    sys.path.insert(0, directory)


def channel(port):
    import grpc

    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(ch).result(timeout=10)
    return ch


def expect(cond, what, got=None):
    if not cond:
        raise AssertionError(what if got is None else f"{what}; got {got!r}")


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


def metric(http_port, name):
    """The value of an unlabelled metric on /metrics, or 0 when it is absent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def labelled(http_port, name, **labels):
    """The value of metric `name` with exactly `labels` on /metrics, or 0 when absent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    want = {k: str(v) for k, v in labels.items()}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        body, value = line.rsplit(" ", 1)
        pairs = body[len(name) + 1:-1].split(",")
        got = dict(p.split("=", 1) for p in pairs if p)
        if {k: v.strip('"') for k, v in got.items()} == want:
            return float(value)
    return 0.0


def eventually(check, what, timeout=15.0):
    """Retries `check` until it returns a truthy value or `timeout` passes."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            got = check()
            if got:
                return got
        except AssertionError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s" + (f" (last: {last})" if last else ""))


def write_atomically(path, text):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def run(scenarios):
    args = parse_args(scenarios)
    load_stubs(args.stubs)
    scenarios[args.scenario](args)
    print(json.dumps({"scenario": args.scenario, "result": "ok"}))
