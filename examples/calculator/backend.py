#!/usr/bin/env python3
"""The demo calculator API of the seed scenario: the backend that Envoy and nginx put tollgate
in front of in docker-compose.yml. Python's standard library only, so any python3 runs it.

    python3 examples/calculator/backend.py --port 8000      # or PORT=8000; default 8000

Routes (any of them answers JSON; `a` and `b` come from the query string or a JSON body):

    POST /usageplanOffering         the seed scenario's resource: what the offering is, and
                                    the result when `a`, `b` (and `op`, default add) are given
    GET  /add?a=1&b=2               {"operation":"add","a":1,"b":2,"result":3}
    GET  /subtract  /multiply  /divide  (also POST)
    GET  /healthz                   {"status":"ok"}, for container healthchecks

It trusts whatever the proxy in front of it says: `X-Tollgate-Key-Id` and `X-Tollgate-Plan-Id`
(set by nginx, see deploy/nginx/) are echoed as `calledBy` and `plan`. It never sees an API
key value, and it applies no limits of its own: that is tollgate's job.
"""

import argparse
import json
import math
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

OPERATIONS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
}

MAX_BODY = 64 * 1024


class BadRequest(Exception):
    """A request the calculator cannot answer; the message goes to the client with 400."""


def number(params, name):
    """The parameter `name` as an int or float, or BadRequest."""
    if name not in params:
        raise BadRequest(f"missing parameter `{name}`")
    value = params[name]
    if isinstance(value, bool):
        raise BadRequest(f"`{name}` must be a number")
    if isinstance(value, (int, float)):
        result = value
    else:
        try:
            result = int(value)
        except (TypeError, ValueError):
            try:
                result = float(value)
            except (TypeError, ValueError):
                raise BadRequest(f"`{name}` must be a number, got {value!r}") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise BadRequest(f"`{name}` must be a finite number")
    return result


def compute(op, params):
    """`op` applied to the `a` and `b` of `params`, as the JSON answer."""
    if op not in OPERATIONS:
        raise BadRequest(f"unknown operation `{op}`; one of {', '.join(OPERATIONS)}")
    a, b = number(params, "a"), number(params, "b")
    if op == "divide" and b == 0:
        raise BadRequest("division by zero")
    result = OPERATIONS[op](a, b)
    if isinstance(result, float) and not math.isfinite(result):
        raise BadRequest("result out of range")
    if isinstance(result, float) and result.is_integer() and op != "divide":
        result = int(result)
    return {"operation": op, "a": a, "b": b, "result": result}


class Handler(BaseHTTPRequestHandler):
    server_version = "tollgate-demo-calculator/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        url = urlsplit(self.path)
        try:
            params = self.params(url.query)
            status, body = 200, self.route(url.path, params)
        except BadRequest as e:
            status, body = 400, {"message": str(e)}
        except LookupError:
            status, body = 404, {"message": f"no route {self.command} {url.path}"}
        self.answer(status, body)

    def params(self, query):
        """Query parameters, overlaid by the fields of a JSON object body if there is one."""
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length < 0 or length > MAX_BODY:
            raise BadRequest(f"body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise BadRequest("body is not JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("body must be a JSON object")
            params.update(body)
        return params

    def route(self, path, params):
        caller = {
            "calledBy": self.headers.get("X-Tollgate-Key-Id"),
            "plan": self.headers.get("X-Tollgate-Plan-Id"),
        }
        if path == "/healthz" and self.command == "GET":
            return {"status": "ok"}
        if path == "/usageplanOffering":
            answer = {
                "offering": "demo calculator",
                "api": "demo-API-usage-plan",
                "stage": "usage-plan-test",
                "method": self.command,
                "operations": sorted(OPERATIONS),
            }
            if "a" in params or "b" in params:
                answer.update(compute(str(params.get("op", "add")), params))
            return {**answer, **caller}
        op = path.strip("/")
        if op in OPERATIONS and self.command in ("GET", "POST"):
            return {**compute(op, params), **caller}
        raise LookupError(path)

    def answer(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            # The body may not have been read: do not reuse the connection.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args):
        # One line per request on stderr, as `docker compose logs` expects.
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description="The demo calculator API of the seed scenario.")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"),
                        help="address to listen on (env HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")),
                        help="port to listen on (env PORT, default 8000; 0 picks a free one)")
    args = parser.parse_args(argv)

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True

    # As PID 1 in a container, SIGTERM has no default action: stop on it as on Ctrl-C.
    def stop(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    host, port = server.server_address[:2]
    # The bound port on stdout, flushed, so a caller that asked for port 0 can read it.
    print(f"calculator listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
