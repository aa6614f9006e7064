"""Conformance of tollgate's envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit,
driven through grpcio with stubs generated from Envoy's own protos (not through tonic), in
the semantics Envoy and envoyproxy/ratelimit define, with tollgate's documented differences
(GCRA for second/minute/hour, nothing consumed on a request that is over).

Run by crates/tollgate-server/tests/envoy.rs; see envoy_common.py for the arguments. The
domain `conformance` is tests/fixtures/rls/conformance.yaml.
"""

import os

from envoy_common import eventually, expect, expect_eq, labelled, metric, run, write_atomically

DOMAIN = "conformance"
SEED_KEY = "demo-testApikey-0123456789abcdef"


class Rls:
    def __init__(self, args):
        import grpc
        from envoy_common import channel
        from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
        from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
        from envoy.type.v3 import ratelimit_unit_pb2
        from google.protobuf import wrappers_pb2

        self.grpc = grpc
        self.pb = rls_pb2
        self.rl = ratelimit_pb2
        self.units = ratelimit_unit_pb2
        self.wrappers = wrappers_pb2
        self.stub = rls_pb2_grpc.RateLimitServiceStub(channel(args.grpc))
        self.OK = rls_pb2.RateLimitResponse.OK
        self.OVER = rls_pb2.RateLimitResponse.OVER_LIMIT
        self.Unit = rls_pb2.RateLimitResponse.RateLimit

    def desc(self, *entries, hits=None, limit=None):
        d = self.rl.RateLimitDescriptor(
            entries=[self.rl.RateLimitDescriptor.Entry(key=k, value=v) for k, v in entries])
        if hits is not None:
            d.hits_addend.CopyFrom(self.wrappers.UInt64Value(value=hits))
        if limit is not None:
            rpu, unit = limit
            d.limit.CopyFrom(self.rl.RateLimitDescriptor.RateLimitOverride(
                requests_per_unit=rpu, unit=unit))
        return d

    def call(self, *descriptors, domain=DOMAIN, hits_addend=0):
        return self.stub.ShouldRateLimit(
            self.pb.RateLimitRequest(domain=domain, descriptors=list(descriptors),
                                     hits_addend=hits_addend), timeout=5)

    def one(self, *entries, **kw):
        """Calls with one descriptor; returns (overall code, its status)."""
        r = self.call(self.desc(*entries), **kw)
        expect_eq(len(r.statuses), 1, "one status per descriptor")
        return r.overall_code, r.statuses[0]

    def invalid(self, request, what):
        try:
            self.stub.ShouldRateLimit(request, timeout=5)
        except self.grpc.RpcError as e:
            expect_eq(e.code(), self.grpc.StatusCode.INVALID_ARGUMENT, what)
            return e.details()
        raise AssertionError(f"{what}: expected INVALID_ARGUMENT, got an answer")


def no_limit(rls, code, status, what):
    expect_eq(code, rls.OK, f"{what}: overall code")
    expect_eq(status.code, rls.OK, f"{what}: descriptor code")
    expect(not status.HasField("current_limit"), f"{what}: no current_limit", status)


def sequence(rls, entries, limit, unit, what):
    """`limit` hits pass with the remaining counting down, the next is OVER_LIMIT."""
    for i in range(limit):
        code, s = rls.one(*entries)
        expect_eq((code, s.code), (rls.OK, rls.OK), f"{what}: hit {i + 1}")
        expect_eq((s.current_limit.requests_per_unit, s.current_limit.unit), (limit, unit),
                  f"{what}: current_limit")
        expect_eq(s.limit_remaining, limit - 1 - i, f"{what}: limit_remaining after hit {i + 1}")
        expect(s.duration_until_reset.seconds > 0, f"{what}: duration_until_reset", s)
    code, s = rls.one(*entries)
    expect_eq((code, s.code), (rls.OVER, rls.OVER), f"{what}: hit {limit + 1}")
    expect_eq(s.limit_remaining, 0, f"{what}: nothing remains")
    return s


def nested_and_depth(args):
    rls = Rls(args)
    m = rls.Unit.MINUTE
    s = sequence(rls, [("tier", "gold"), ("user", "u1")], 3, m, "nested [tier=gold, user=u1]")
    # 3 a minute by GCRA: the next hit is possible one interval (20 s) from now.
    expect(0 < s.duration_until_reset.seconds <= 20, "retry within one interval", s)
    code, s = rls.one(("tier", "gold"), ("user", "u2"))
    expect_eq((code, s.limit_remaining), (rls.OK, 2), "each user value counts on its own")
    no_limit(rls, *rls.one(("tier", "gold")), "[tier=gold]: the exact node has no limit")
    sequence(rls, [("tier", "silver")], 2, m, "key-only [tier=silver]")
    no_limit(rls, *rls.one(("tier", "silver"), ("user", "u1")), "deeper than the config")
    no_limit(rls, *rls.one(("tier", "gold"), ("user", "u1"), ("x", "y")), "deeper than the path")
    no_limit(rls, *rls.one(("user", "u1")), "no top-level user")


def wildcards(args):
    rls = Rls(args)
    m = rls.Unit.MINUTE
    sequence(rls, [("path", "/api/users")], 2, m, "wildcard /api/*")
    code, s = rls.one(("path", "/api/orders"))
    expect_eq((code, s.limit_remaining), (rls.OK, 1), "another value under the wildcard counts apart")
    code, s = rls.one(("path", "/api/special"))
    expect_eq((code, s.current_limit.requests_per_unit), (rls.OK, 4), "exact beats wildcard")
    sequence(rls, [("path", "/other")], 1, m, "key-only fallback")


def unlimited(args):
    rls = Rls(args)
    for i in range(20):
        no_limit(rls, *rls.one(("internal", "health")), f"unlimited hit {i + 1}")


def replaces(args):
    rls = Rls(args)
    for i in range(3):
        r = rls.call(rls.desc(("client", "partner")), rls.desc(("any_client", "acme")))
        expect_eq(r.overall_code, rls.OK, f"partner request {i + 1}")
        expect_eq(r.statuses[0].current_limit.name, "partner", "the partner rule applies")
        expect(not r.statuses[1].HasField("current_limit"), "the general rule is replaced",
               r.statuses[1])
    code, s = rls.one(("any_client", "acme"))
    expect_eq((code, s.current_limit.name, s.limit_remaining), (rls.OK, "general", 0),
              "alone, the general rule applies, and the replaced hits were not counted")
    expect_eq(rls.one(("any_client", "acme"))[0], rls.OVER, "general: second hit")


def shadow_mode(args):
    rls = Rls(args)
    for i in range(3):
        r = rls.call(rls.desc(("shadowed", "s1")), rls.desc(("bulk", "shadow")))
        expect_eq(r.overall_code, rls.OK, f"shadow hit {i + 1}")
        expect_eq(r.statuses[0].code, rls.OK, f"shadow descriptor {i + 1}")
        expect_eq(r.statuses[0].limit_remaining, 0, "counted, and over after the first")
        expect_eq(r.statuses[1].limit_remaining, 9 - i, "the other descriptor is consumed")
    text = metric_text(args.http)
    expect('tollgate_rls_rule_shadow_mode_total{rule="conformance.shadowed"} 2' in text,
           "shadow-mode hits over the limit are counted", text)


def global_shadow_mode(args):
    rls = Rls(args)
    for i in range(4):
        code, s = rls.one(("tier", "silver"))
        expect_eq((code, s.code), (rls.OK, rls.OK), f"global shadow hit {i + 1}")
    expect_eq(s.limit_remaining, 0, "still counted")


def hits_addend(args):
    rls = Rls(args)
    b = ("bulk", "h1")
    code, s = rls.one(b, hits_addend=4)
    expect_eq((code, s.limit_remaining), (rls.OK, 6), "request hits_addend 4")
    code, s = rls.one(b, hits_addend=0)
    expect_eq((code, s.limit_remaining), (rls.OK, 5), "request hits_addend 0 means 1")
    r = rls.call(rls.desc(b, hits=3), hits_addend=4)
    expect_eq(r.statuses[0].limit_remaining, 2, "the descriptor's hits_addend overrides")
    r = rls.call(rls.desc(b, hits=0), hits_addend=4)
    expect_eq((r.overall_code, r.statuses[0].limit_remaining), (rls.OK, 2),
              "an explicit 0 reads without consuming")
    code, s = rls.one(b, hits_addend=3)
    expect_eq((code, s.limit_remaining), (rls.OVER, 2), "3 > 2 left: over, nothing consumed")
    r = rls.call(rls.desc(b, hits=2))
    expect_eq((r.overall_code, r.statuses[0].limit_remaining), (rls.OK, 0), "exactly what is left")
    r = rls.call(rls.desc(b, hits=0))
    expect_eq(r.overall_code, rls.OVER, "a read when nothing is left is over")


def limit_override(args):
    rls = Rls(args)
    minute = rls.units.MINUTE
    for i in range(2):
        r = rls.call(rls.desc(("nowhere", "o1"), limit=(2, minute)))
        expect_eq(r.overall_code, rls.OK, f"override hit {i + 1}")
        cl = r.statuses[0].current_limit
        expect_eq((cl.requests_per_unit, cl.unit), (2, rls.Unit.MINUTE), "the override applies")
    expect_eq(rls.call(rls.desc(("nowhere", "o1"), limit=(2, minute))).overall_code, rls.OVER,
              "override: third hit")
    r = rls.call(rls.desc(("tier", "bronze"), limit=(5, minute)))
    expect_eq(r.statuses[0].current_limit.requests_per_unit, 5, "the override beats the config")
    r = rls.call(rls.desc(("nowhere", "o1"), limit=(2, minute)), domain="no-such-domain")
    no_limit(rls, r.overall_code, r.statuses[0], "an override in an unknown domain")
    detail = rls.invalid(rls.pb.RateLimitRequest(domain=DOMAIN, descriptors=[
        rls.desc(("k", "v"), limit=(2, rls.units.UNKNOWN))]), "override with unit UNKNOWN")
    expect("limit.unit" in detail, "the message names the field", detail)
    detail = rls.invalid(rls.pb.RateLimitRequest(domain=DOMAIN, descriptors=[
        rls.desc(("k", "v"), limit=(0, minute))]), "override of 0")
    expect("requests_per_unit" in detail, "the message names the field", detail)


def unknown_domain(args):
    rls = Rls(args)
    for i in range(3):
        r = rls.call(rls.desc(("tier", "silver")), rls.desc(("path", "/x")), domain="unknown")
        expect_eq(r.overall_code, rls.OK, f"unknown domain {i + 1}")
        expect_eq(len(r.statuses), 2, "one status per descriptor")
        for s in r.statuses:
            no_limit(rls, r.overall_code, s, "unknown domain")


def all_or_nothing(args):
    rls = Rls(args)
    for i in range(3):
        r = rls.call(rls.desc(("daily", "d1")), rls.desc(("bulk", "aon")))
        expect_eq(r.overall_code, rls.OK, f"both pass {i + 1}")
        expect_eq(r.statuses[0].current_limit.unit, rls.Unit.DAY, "day is a calendar quota")
    r = rls.call(rls.desc(("daily", "d1")), rls.desc(("bulk", "aon")))
    expect_eq([s.code for s in r.statuses], [rls.OVER, rls.OK], "codes per descriptor")
    expect_eq(r.overall_code, rls.OVER, "over if any descriptor is")
    expect_eq(r.statuses[1].limit_remaining, 7, "the refused request consumed nothing on bulk")
    expect(r.statuses[0].duration_until_reset.seconds <= 86400, "reset by the next UTC midnight")
    code, s = rls.one(("bulk", "aon"))
    expect_eq((code, s.limit_remaining), (rls.OK, 6), "bulk alone: three hits were counted, not four")
    expect_eq(labelled(args.http, "tollgate_checks_total", protocol="rls", verdict="over_limit"), 1.0,
              "the refused request is counted")
    expect_eq(labelled(args.http, "tollgate_rls_requests_total", code="ok"), 4.0, "and the others")


def malformed(args):
    rls = Rls(args)
    rls.invalid(rls.pb.RateLimitRequest(domain="", descriptors=[rls.desc(("a", "b"))]), "empty domain")
    rls.invalid(rls.pb.RateLimitRequest(domain=DOMAIN), "no descriptors")
    rls.invalid(rls.pb.RateLimitRequest(domain=DOMAIN, descriptors=[rls.desc()]), "no entries")
    d = rls.desc(("bulk", "x"))
    d.is_negative_hits = True
    detail = rls.invalid(rls.pb.RateLimitRequest(domain=DOMAIN, descriptors=[d]), "is_negative_hits")
    expect("is_negative_hits" in detail, "the message names the field", detail)
    detail = rls.invalid(rls.pb.RateLimitRequest(domain=DOMAIN, descriptors=[
        rls.desc(("bulk", "x"), hits=2_000_000)]), "a huge hits_addend")
    expect("descriptors[0]" in detail, "the message names the descriptor", detail)
    detail = rls.invalid(rls.pb.RateLimitRequest(domain=DOMAIN, descriptors=[rls.desc(("bulk", "x"))],
                                                 hits_addend=4_000_000_000), "a huge request hits_addend")
    expect(detail.startswith("hits_addend"), "the message names the field", detail)
    # The service still answers after all of that.
    expect_eq(rls.one(("bulk", "after"))[0], rls.OK, "still serving")


def api_key(args):
    """The seed scenario through RLS: a descriptor carrying testApikey gets its usage plan."""
    rls = Rls(args)
    key = [("api_key", SEED_KEY), ("tollgate_api", "demo-API-usage-plan"),
           ("tollgate_stage", "usage-plan-test")]
    for i in range(5):
        code, s = rls.one(*key)
        expect_eq(code, rls.OK, f"seed call {i + 1}")
        cl = s.current_limit
        expect_eq((cl.name, cl.requests_per_unit, cl.unit),
                  ("demo-usage-plan:quota", 5, rls.Unit.DAY), "the plan's quota")
        expect_eq(s.limit_remaining, 4 - i, f"remaining after call {i + 1}")
    code, s = rls.one(*key)
    expect_eq((code, s.code, s.limit_remaining), (rls.OVER, rls.OVER, 0), "the sixth call")
    expect(0 < s.duration_until_reset.seconds <= 86400, "until the next UTC midnight", s)
    code, _ = rls.one(("api_key", SEED_KEY))
    expect_eq(code, rls.OVER, "without api/stage the key's only plan applies (and is used up)")
    for bad in [[("api_key", "no-such-key-0123456789abcdef")], [("api_key", "")],
                [("api_key", SEED_KEY), ("tollgate_api", "demo-API-usage-plan"),
                 ("tollgate_stage", "prod")]]:
        r = rls.call(rls.desc(*bad), rls.desc(("bulk", "with-a-bad-key")))
        expect_eq([s.code for s in r.statuses], [rls.OVER, rls.OK], f"refused key {bad[0][1][:8]}...")
    code, s = rls.one(("bulk", "with-a-bad-key"))
    expect_eq(s.limit_remaining, 9, "requests with a refused key consumed nothing")
    premium = [("api_key", "demo-premiumApikey-0123456789abcdef"),
               ("tollgate_api", "demo-API-usage-plan"), ("tollgate_stage", "usage-plan-test"),
               ("path", "/usageplanOffering?x=1"), ("method", "DELETE")]
    code, s = rls.one(*premium)
    expect_eq((code, s.limit_remaining), (rls.OK, 3), "path and method select the DELETE throttle (burst 4)")


def ratelimit_headers(args):
    """--rls-response-headers ratelimit: the IETF fields of the closest limit."""
    rls = Rls(args)
    r = rls.call(rls.desc(("bulk", "hd")), rls.desc(("tier", "silver")))
    h = {x.key: x.value for x in r.response_headers_to_add}
    expect_eq((h.get("RateLimit-Limit"), h.get("RateLimit-Remaining")), ("2", "1"), "headers")
    expect_eq(h.get("RateLimit-Reset"), "30", "full again in one interval (30 s)")
    rls.one(("tier", "silver"))
    r = rls.call(rls.desc(("tier", "silver")))
    h = {x.key: x.value for x in r.response_headers_to_add}
    expect_eq((h.get("RateLimit-Remaining"), h.get("Retry-After")), ("0", "30"), "over: Retry-After")
    # A usage plan's throttle (10/s, burst 20): Envoy's current_limit is the rate, while the
    # header's Limit is the burst, as /v1/check gives it, so Remaining never exceeds it.
    code, s = rls.one(("api_key", "demo-premiumApikey-0123456789abcdef"),
                      ("tollgate_api", "demo-API-usage-plan"), ("tollgate_stage", "usage-plan-test"))
    expect_eq((code, s.current_limit.requests_per_unit, s.limit_remaining), (rls.OK, 10, 19),
              "the premium throttle")
    r = rls.call(rls.desc(("api_key", "demo-premiumApikey-0123456789abcdef"),
                          ("tollgate_api", "demo-API-usage-plan"), ("tollgate_stage", "usage-plan-test")))
    h = {x.key: x.value for x in r.response_headers_to_add}
    expect_eq(h.get("RateLimit-Limit"), "20", "the burst")
    # 18 left, or 19 if a refill interval (100 ms) went by between the two calls.
    expect(h.get("RateLimit-Remaining") in ("18", "19"), "what is left of the burst", h)


def x_ratelimit_headers(args):
    """--rls-response-headers x-ratelimit: Envoy's DRAFT_VERSION_03 rendering."""
    rls = Rls(args)
    r = rls.call(rls.desc(("bulk", "xh")), rls.desc(("client", "partner")), rls.desc(("internal", "health")))
    h = {x.key: x.value for x in r.response_headers_to_add}
    expect_eq(h.get("x-ratelimit-limit"), '5, 10;w=3600, 5;w=60;name="partner"', "x-ratelimit-limit")
    expect_eq(h.get("x-ratelimit-remaining"), "4", "the fewest remaining")
    expect_eq(h.get("x-ratelimit-reset"), "12", "partner: full again in one interval (12 s)")


def metric_text(http_port):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        return r.read().decode()


def hot_reload(args):
    rls = Rls(args)
    cfg = os.path.join(args.config_dir, "conformance.yaml")
    extra = os.path.join(args.config_dir, "extra.yaml")
    errors = metric(args.http, "tollgate_rls_config_errors_total")
    reloads = metric(args.http, "tollgate_rls_config_reloads_total")

    # A changed file: [tier=*] goes from 2 to 7 a minute, and a new domain appears.
    with open(cfg, encoding="utf-8") as f:
        original = f.read()
    changed = original.replace("rate_limit: {unit: minute, requests_per_unit: 2}\n\n  # Wildcards",
                               "rate_limit: {unit: minute, requests_per_unit: 7}\n\n  # Wildcards")
    expect(changed != original, "the fixture has the tier rule to change")
    # The new file first: the poller may see the two writes on different ticks, and once the
    # changed limit shows, the new domain (written before it) must be there too.
    write_atomically(extra, "domain: extra\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 1}\n")
    write_atomically(cfg, changed)

    def reloaded():
        code, s = rls.one(("tier", "t-new"))
        return s.current_limit.requests_per_unit == 7
    eventually(reloaded, "the changed limit applies")
    code, s = rls.one(("k", "v"), domain="extra")
    expect_eq(s.current_limit.requests_per_unit, 1, "the new domain is served")
    expect(metric(args.http, "tollgate_rls_config_reloads_total") > reloads, "reloads are counted")

    # A broken file: the previous config stays in force, and the error is counted.
    write_atomically(cfg, changed.replace("requests_per_unit: 7", "requests_per_unit: [7"))
    eventually(lambda: metric(args.http, "tollgate_rls_config_errors_total") > errors,
               "the broken file is counted")
    code, s = rls.one(("tier", "t-broken"))
    expect_eq(s.current_limit.requests_per_unit, 7, "the previous config stays in force")
    code, s = rls.one(("k", "v2"), domain="extra")
    expect_eq(code, rls.OK, "every domain stays, not only the broken file's")
    # A file that parses but does not validate is refused the same way.
    write_atomically(cfg, changed.replace("unit: day", "unit: fortnight"))
    eventually(lambda: metric(args.http, "tollgate_rls_config_errors_total") > errors + 1,
               "the invalid file is counted")
    expect_eq(rls.one(("daily", "still"))[1].current_limit.unit, rls.Unit.DAY, "still the old config")

    # A removed file takes its domain away; fixed, the file applies again (removed first, so
    # that once the fix shows, the removal has been seen too).
    os.remove(extra)
    write_atomically(cfg, original)
    eventually(lambda: rls.one(("tier", "t-fixed"))[1].current_limit.requests_per_unit == 2,
               "the fixed file applies")
    no_limit(rls, *rls.one(("k", "v"), domain="extra"), "the removed domain is gone")


def reload_lifts_denials(args):
    """A reload that raises a limit applies to a descriptor already over the old one: the
    count in the store is below the new limit, so the next hit passes."""
    rls = Rls(args)
    cfg = os.path.join(args.config_dir, "conformance.yaml")
    sequence(rls, [("daily", "reload")], 3, rls.Unit.DAY, "daily before the reload")
    with open(cfg, encoding="utf-8") as f:
        original = f.read()
    raised = original.replace("rate_limit: {unit: day, requests_per_unit: 3}",
                              "rate_limit: {unit: day, requests_per_unit: 5}")
    expect(raised != original, "the fixture has the daily rule to raise")
    write_atomically(cfg, raised)
    eventually(lambda: rls.one(("daily", "other"))[1].current_limit.requests_per_unit == 5,
               "the raised limit applies")
    code, s = rls.one(("daily", "reload"))
    expect_eq((code, s.code), (rls.OK, rls.OK), "hit 4 of 5 after the reload")
    expect_eq(s.limit_remaining, 1, "one left of the raised limit")


if __name__ == "__main__":
    run({f.__name__: f for f in [
        nested_and_depth, wildcards, unlimited, replaces, shadow_mode, global_shadow_mode,
        hits_addend, limit_override, unknown_domain, all_or_nothing, malformed, api_key,
        ratelimit_headers, x_ratelimit_headers, hot_reload, reload_lifts_denials]})
