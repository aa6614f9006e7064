"""Conformance of tollgate's envoy.service.auth.v3.Authorization/Check (Envoy ext_authz),
driven through grpcio with stubs generated from Envoy's own protos: every verdict with its
exact gRPC code, HTTP status, body and headers, as Envoy would relay them.

Run by crates/tollgate-server/tests/envoy.rs; see envoy_common.py for the arguments. The
plans and keys are examples/calculator/tollgate.yaml plus a disabled key.
"""

import json

from envoy_common import expect, expect_eq, labelled, run

SEED_KEY = "demo-testApikey-0123456789abcdef"
PREMIUM_KEY = "demo-premiumApikey-0123456789abcdef"
DISABLED_KEY = "disabled-key-0123456789abcdef"
API, STAGE = "demo-API-usage-plan", "usage-plan-test"
RATELIMIT = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]


class Authz:
    def __init__(self, args):
        import grpc
        from envoy_common import channel
        from envoy.config.core.v3 import base_pb2
        from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc

        self.grpc = grpc
        self.base = base_pb2
        self.ctx = attribute_context_pb2.AttributeContext
        self.pb = external_auth_pb2
        self.stub = external_auth_pb2_grpc.AuthorizationStub(channel(args.grpc))

    def request(self, key=None, header="x-api-key", path="/usageplanOffering?a=1", method="POST",
                api=API, stage=STAGE, raw=False):
        headers = {":path": path, ":method": method, "host": "calculator"}
        if key is not None:
            headers[header] = key
        http = self.ctx.HttpRequest(method=method, path=path, host="calculator")
        if raw:
            http.header_map.CopyFrom(self.base.HeaderMap(headers=[
                self.base.HeaderValue(key=k, raw_value=v.encode()) for k, v in headers.items()]))
        else:
            http.headers.update(headers)
        ext = {}
        if api is not None:
            ext["tollgate_api"] = api
        if stage is not None:
            ext["tollgate_stage"] = stage
        return self.pb.CheckRequest(attributes=self.ctx(
            request=self.ctx.Request(http=http), context_extensions=ext))

    def check(self, **kw):
        return self.stub.Check(self.request(**kw), timeout=5)


def headers_of(options):
    return [(o.header.key, o.header.value) for o in options]


def allowed(a, r, key_id, plan_id, remaining, what):
    expect_eq(r.status.code, 0, f"{what}: gRPC OK")
    expect(r.HasField("ok_response"), f"{what}: an ok_response", r)
    expect_eq(headers_of(r.ok_response.headers),
              [("x-tollgate-key-id", key_id), ("x-tollgate-plan-id", plan_id)], f"{what}: upstream headers")
    h = headers_of(r.ok_response.response_headers_to_add)
    expect_eq([k for k, _ in h], RATELIMIT, f"{what}: response headers")
    expect_eq(dict(h)["RateLimit-Remaining"], str(remaining), f"{what}: RateLimit-Remaining")
    return dict(h)


def denied(a, r, grpc_code, http, message, what, retry=False):
    expect_eq(r.status.code, grpc_code.value[0], f"{what}: gRPC code")
    expect(r.HasField("denied_response"), f"{what}: a denied_response", r)
    d = r.denied_response
    expect_eq(d.status.code, http, f"{what}: HTTP status")
    expect_eq(json.loads(d.body), {"message": message}, f"{what}: body")
    expect_eq(d.body, json.dumps({"message": message}, separators=(",", ":")), f"{what}: body bytes")
    h = headers_of(d.headers)
    names = ["content-type"] + RATELIMIT + (["Retry-After"] if retry else [])
    expect_eq([k for k, _ in h], names, f"{what}: headers")
    expect_eq(dict(h)["content-type"], "application/json", f"{what}: content-type")
    return dict(h)


def verdicts(args):
    a = Authz(args)
    sc = a.grpc.StatusCode
    for what, kw in [("missing key", {}), ("unknown key", {"key": "no-such-key-0123456789abcdef"}),
                     ("disabled key", {"key": DISABLED_KEY}),
                     ("unsubscribed stage", {"key": SEED_KEY, "stage": "prod"}),
                     ("empty key", {"key": ""})]:
        h = denied(a, a.check(**kw), sc.PERMISSION_DENIED, 403, "Forbidden", what)
        expect_eq(h["RateLimit-Limit"], "0", f"{what}: no limit applied")
    # The seed scenario: five pass, the sixth is over quota until the next UTC midnight.
    for i in range(5):
        h = allowed(a, a.check(key=SEED_KEY), "testApikey", "demo-usage-plan", 4 - i, f"seed call {i + 1}")
        expect_eq(h["RateLimit-Limit"], "5", "the quota's limit")
    h = denied(a, a.check(key=SEED_KEY), sc.RESOURCE_EXHAUSTED, 429, "Limit Exceeded", "seed call 6", retry=True)
    expect(0 < int(h["Retry-After"]) <= 86400, "Retry-After until midnight", h)
    expect_eq(h["RateLimit-Remaining"], "0", "nothing remains")
    # Without api and stage, the key's only plan applies.
    r = a.check(key=PREMIUM_KEY, api=None, stage=None, method="GET")
    allowed(a, r, "premiumApikey", "premium-usage-plan", 19, "no context extensions")
    # The premium plan's throttle: the rest of the burst of 20 passes, then 429.
    results = [a.check(key=PREMIUM_KEY, method="GET") for _ in range(21)]
    ok = sum(1 for r in results if r.status.code == 0)
    expect(19 <= ok <= 20, "the burst of 20 passes (one more if an interval went by)", ok)
    over = next(r for r in results if r.status.code != 0)
    h = denied(a, over, sc.RESOURCE_EXHAUSTED, 429, "Too Many Requests", "throttled", retry=True)
    expect_eq(h["Retry-After"], "1", "one interval (100 ms), rounded up")
    # Header names are matched in any case; raw header maps are read too; the query string
    # is no part of the resource: DELETE on the path gets the per-method throttle (burst 4).
    h = allowed(a, a.check(key=PREMIUM_KEY, header="X-Api-Key", method="DELETE"),
                "premiumApikey", "premium-usage-plan", 3, "mixed-case header, DELETE")
    expect_eq(h["RateLimit-Limit"], "4", "the DELETE throttle's burst")
    allowed(a, a.check(key=PREMIUM_KEY, raw=True, method="DELETE"), "premiumApikey",
            "premium-usage-plan", 2, "raw header map")
    # The path is matched decoded, as plans name resources: %70 is "p".
    h = allowed(a, a.check(key=PREMIUM_KEY, path="/usage%70lanOffering?a=%41", method="DELETE"),
                "premiumApikey", "premium-usage-plan", 1, "an escaped path")
    expect_eq(h["RateLimit-Limit"], "4", "the escaped path gets the DELETE throttle")
    # Every answer is counted under its protocol and verdict, and timed.
    count = lambda verdict: labelled(args.http, "tollgate_checks_total", protocol="ext_authz", verdict=verdict)
    expect_eq(count("key_missing"), 2.0, "missing and empty keys counted")
    expect_eq(count("quota_exceeded"), 1.0, "the seed's sixth call counted")
    expect_eq(labelled(args.http, "tollgate_ext_authz_checks_total", verdict="key_disabled"), 1.0,
              "ext_authz's own counter")
    expect(labelled(args.http, "tollgate_check_duration_seconds_count", protocol="ext_authz") >= 30,
           "every check timed")


def malformed(args):
    a = Authz(args)
    for what, req in [("no attributes", a.pb.CheckRequest()),
                      ("no http request", a.pb.CheckRequest(attributes=a.ctx())),
                      ("huge path", a.request(key=SEED_KEY, path="/" + "x" * 10000))]:
        try:
            a.stub.Check(req, timeout=5)
        except a.grpc.RpcError as e:
            expect_eq(e.code(), a.grpc.StatusCode.INVALID_ARGUMENT, what)
            continue
        raise AssertionError(f"{what}: expected INVALID_ARGUMENT")
    expect_eq(a.check(key=SEED_KEY).status.code, 0, "still serving")


def custom_header(args):
    """--ext-authz-api-key-header x-client-key: the key is read from that header only."""
    a = Authz(args)
    allowed(a, a.check(key=SEED_KEY, header="x-client-key"), "testApikey", "demo-usage-plan", 4,
            "the configured header")
    denied(a, a.check(key=SEED_KEY), a.grpc.StatusCode.PERMISSION_DENIED, 403, "Forbidden",
           "x-api-key is not read then")


def unavailable(args):
    """Redis is down and the failure mode is deny: 503."""
    a = Authz(args)
    denied(a, a.check(key=SEED_KEY), a.grpc.StatusCode.UNAVAILABLE, 503, "Service Unavailable",
           "store down, failing closed")
    denied(a, a.check(key="no-such-key-0123456789abcdef"), a.grpc.StatusCode.PERMISSION_DENIED,
           403, "Forbidden", "an unknown key needs no store")
    expect_eq(labelled(args.http, "tollgate_checks_total", protocol="ext_authz", verdict="unavailable"),
              1.0, "the 503 is counted")
    failures = sum(labelled(args.http, "tollgate_store_errors_total", kind=k)
                   for k in ["unavailable", "timeout"])
    expect(failures >= 1, "the store failure is counted", failures)


def fail_open(args):
    """Redis is down and the failure mode is allow: the call passes, naming key and plan."""
    a = Authz(args)
    r = a.check(key=SEED_KEY)
    expect_eq(r.status.code, 0, "store down, failing open: gRPC OK")
    expect_eq(headers_of(r.ok_response.headers),
              [("x-tollgate-key-id", "testApikey"), ("x-tollgate-plan-id", "demo-usage-plan")],
              "upstream headers")
    # No limit is known while the store is down: no RateLimit fields, where a Remaining of 0
    # would tell the client to stop.
    expect_eq(headers_of(r.ok_response.response_headers_to_add), [], "no RateLimit headers")


if __name__ == "__main__":
    run({f.__name__: f for f in [verdicts, malformed, custom_header, unavailable, fail_open]})
