#!/usr/bin/env python3
"""Checks of the deployment files that Docker, Kubernetes and Helm would read, for a machine
that has none of them: docker-compose.yml, Dockerfile, deploy/{nginx,prometheus,grafana,k8s,
helm}/ and the demo backend examples/calculator/backend.py. Each check is a function
`test_*` whose docstring says what it checks; they agree with one another and with what
tollgate itself does (its ports and /healthz come from crates/tollgate-server/src/cli.rs).

    python3 test_deploy.py             # every check
    python3 test_deploy.py NAME...     # some of them
    python3 test_deploy.py --list      # their names

crates/tollgate-server/tests/deploy_files.rs runs each one as a cargo test. pytest runs them
too. Needs PyYAML (requirements.txt beside this file).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[4]

# The metrics tollgate exports (once every branch has merged); dashboards and alerts may use
# these only. The histogram also has its _bucket, _sum and _count series.
METRICS = {
    "tollgate_checks_total",
    "tollgate_check_duration_seconds",
    "tollgate_store_errors_total",
    "tollgate_deny_cache_hits_total",
    "tollgate_rls_config_reloads_total",
    "tollgate_rls_config_errors_total",
    "tollgate_rls_requests_total",
    "tollgate_ext_authz_checks_total",
}
HISTOGRAMS = {"tollgate_check_duration_seconds"}
# Prometheus' own per-target series, which alerts may use too.
PROMETHEUS_SERIES = {"up"}

# Ports of images we do not configure: what they listen on by default.
IMAGE_PORTS = {"redis": {6379}, "prometheus": {9090}, "grafana": {3000}, "jaeger": {4317, 4318, 16686}}


# ---------------------------------------------------------------------------------------
# Reading the files


def read(rel):
    return (ROOT / rel).read_text()


def load_yaml(rel):
    return yaml.safe_load(read(rel))


def load_yaml_all(rel):
    return [d for d in yaml.safe_load_all(read(rel)) if d is not None]


def compose():
    return load_yaml("docker-compose.yml")


def services():
    return compose()["services"]


def cli_default_port(env):
    """The port of the default address of the `tollgate serve` flag read from `env`."""
    text = read("crates/tollgate-server/src/cli.rs")
    m = re.search(r'env\s*=\s*"' + env + r'",\s*default_value\s*=\s*"([^"]+)"', text)
    assert m, f"cli.rs: no default_value next to env = \"{env}\""
    return int(m.group(1).rsplit(":", 1)[1])


HTTP_PORT = None
GRPC_PORT = None


def tollgate_ports():
    """(http, grpc) defaults of `tollgate serve`, from cli.rs."""
    global HTTP_PORT, GRPC_PORT
    if HTTP_PORT is None:
        HTTP_PORT = cli_default_port("TOLLGATE_HTTP_ADDR")
        GRPC_PORT = cli_default_port("TOLLGATE_GRPC_ADDR")
    return HTTP_PORT, GRPC_PORT


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def is_tollgate(svc):
    """A service running the image this repository's Dockerfile builds."""
    build = svc.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context in (".", "./")


def tollgate_services():
    return {n: s for n, s in services().items() if is_tollgate(s)}


def tollgate_service_ports(svc):
    """{'http': port, 'grpc': port} a tollgate container listens on, from its environment."""
    http, grpc = tollgate_ports()
    env = env_of(svc)
    if "TOLLGATE_HTTP_ADDR" in env:
        http = int(env["TOLLGATE_HTTP_ADDR"].rsplit(":", 1)[1])
    if "TOLLGATE_GRPC_ADDR" in env:
        grpc = int(env["TOLLGATE_GRPC_ADDR"].rsplit(":", 1)[1])
    return {"http": http, "grpc": grpc}


def bind_mounts(svc):
    """(host path relative to the repo, container path) of each bind mount of a service."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            if v.get("type") != "bind":
                continue
            src, dst = v["source"], v["target"]
        else:
            parts = v.split(":")
            src, dst = parts[0], parts[1]
            if not src.startswith((".", "/")):
                continue  # a named volume
        out.append((os.path.normpath(src), dst))
    return out


def mounted_file(svc, container_path):
    """The repo file mounted at `container_path` in `svc`, or None."""
    for src, dst in bind_mounts(svc):
        if dst == container_path:
            return src
        if container_path.startswith(dst.rstrip("/") + "/"):
            return os.path.join(src, container_path[len(dst.rstrip("/")) + 1:])
    return None


def published(svc):
    """(host ip, host port, container port) of each published port."""
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append((p.get("host_ip", ""), int(p["published"]), int(p["target"])))
            continue
        p = str(p).split("/")[0]
        parts = p.split(":")
        if len(parts) == 3:
            out.append((parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            out.append(("", int(parts[0]), int(parts[1])))
        else:
            out.append(("", None, int(parts[0])))
    return out


def hostnames():
    """Each name a container can be reached by on the compose network, to its services."""
    names = {}
    for n, s in services().items():
        names.setdefault(n, set()).add(n)
        for net in (s.get("networks") or {}).values() if isinstance(s.get("networks"), dict) else []:
            for alias in (net or {}).get("aliases") or []:
                names.setdefault(alias, set()).add(n)
    return names


def nginx_compose_conf():
    svc = services()["nginx"]
    src = mounted_file(svc, "/etc/nginx/nginx.conf")
    assert src, "compose: nginx mounts no /etc/nginx/nginx.conf"
    return src, read(src)


def envoy_config():
    """The Envoy config compose mounts, parsed."""
    src = mounted_file(services()["envoy"], "/etc/envoy/envoy.yaml")
    assert src, "compose: envoy mounts no /etc/envoy/envoy.yaml"
    return src, load_yaml(src)


def envoy_socket_addresses(node, path=""):
    """(path, address, port) of every socket_address in the Envoy config."""
    out = []
    if isinstance(node, dict):
        sa = node.get("socket_address")
        if isinstance(sa, dict) and "address" in sa and "port_value" in sa:
            out.append((path, sa["address"], int(sa["port_value"])))
        for k, v in node.items():
            out += envoy_socket_addresses(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += envoy_socket_addresses(v, f"{path}[{i}]")
    return out


def listening_ports(name):
    """The ports the container of compose service `name` listens on, from its config."""
    svc = services()[name]
    if is_tollgate(svc):
        return set(tollgate_service_ports(svc).values())
    if name == "nginx":
        _, text = nginx_compose_conf()
        return {int(p) for p in re.findall(r"^\s*listen\s+(?:[\d.]+:)?(\d+)", strip_nginx_comments(text), re.M)}
    if name == "envoy":
        src, cfg = envoy_config()
        return {p for path, _, p in envoy_socket_addresses(cfg)
                if path.startswith((".static_resources.listeners", ".admin"))}
    if name == "calculator":
        cmd = svc.get("command") or []
        cmd = cmd.split() if isinstance(cmd, str) else cmd
        assert "--port" in cmd, "compose: calculator's command sets no --port"
        return {int(cmd[cmd.index("--port") + 1])}
    if name in IMAGE_PORTS:
        return set(IMAGE_PORTS[name])
    raise AssertionError(f"compose: no rule for which ports service `{name}` listens on")


def check_upstream(where, host, port, protocol=None):
    """`host:port` reached from `where` names a compose service listening there (on its
    `protocol` port, for tollgate)."""
    names = hostnames()
    assert host in names, f"{where}: `{host}` is no compose service or alias ({sorted(names)})"
    for svc_name in names[host]:
        svc = services()[svc_name]
        if protocol and is_tollgate(svc):
            want = tollgate_service_ports(svc)[protocol]
            assert port == want, f"{where}: {host}:{port}, but {svc_name} serves {protocol} on {want}"
        else:
            assert port in listening_ports(svc_name), \
                f"{where}: {host}:{port}, but {svc_name} listens on {sorted(listening_ports(svc_name))}"


def strip_nginx_comments(text):
    # nginx comments run from # to the end of the line; this config has no # in strings.
    return "\n".join(line.split("#", 1)[0].rstrip() for line in text.splitlines())


def nginx_upstreams(text):
    """{upstream name: [(host, port), ...]}."""
    out = {}
    for name, body in re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", strip_nginx_comments(text)):
        out[name] = [(h, int(p)) for h, p in re.findall(r"^\s*server\s+([^\s:;]+):(\d+)", body, re.M)]
    return out


def promql_metrics(expr):
    """The metric names an expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\$\{?\w+\}?", "", e)                        # Grafana variables
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    keywords = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                "bool", "and", "or", "unless", "inf", "nan", "atan2"}
    names = set()
    for m in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", e):
        word = m.group(0)
        if word.lower() in keywords or re.match(r"\s*\(", e[m.end():]):
            continue
        names.add(word)
    return names


def allowed_metric(name, extra=()):
    if name in METRICS or name in extra:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base in HISTOGRAMS


def dockerfile_instructions():
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    lines, buf = [], ""
    for raw in read("Dockerfile").splitlines():
        if not buf and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        buf += raw
        word, _, rest = buf.strip().partition(" ")
        lines.append((word.upper(), rest.strip()))
        buf = ""
    return lines


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """examples/calculator/backend.py running on a free loopback port."""

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "examples/calculator/backend.py"), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r":(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise AssertionError(f"backend.py did not say its port: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.headers.get("Content-Type"), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), json.loads(e.read())


# ---------------------------------------------------------------------------------------
# docker-compose.yml


def test_compose_parses():
    """docker-compose.yml is a compose file whose every service has an image, tollgate's built from the Dockerfile."""
    c = compose()
    assert isinstance(c, dict) and isinstance(c.get("services"), dict) and c["services"], \
        "docker-compose.yml: no services"
    for name, svc in c["services"].items():
        assert isinstance(svc, dict), f"compose: service {name} is not a mapping"
        assert svc.get("image") or svc.get("build"), f"compose: service {name} has no image or build"
    for needed in ("redis", "calculator", "envoy", "nginx", "prometheus", "grafana"):
        assert needed in c["services"], f"compose: no service `{needed}`"
    declared = set((c.get("volumes") or {}).keys())
    for name, svc in c["services"].items():
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if isinstance(v, str) and not src.startswith((".", "/")):
                assert src in declared, f"compose: {name} uses volume `{src}`, not declared under volumes:"


def test_compose_mounted_files_exist():
    """Every file or directory that a compose service bind-mounts exists in the repository."""
    for name, svc in services().items():
        for src, dst in bind_mounts(svc):
            assert (ROOT / src).exists(), f"compose: {name} mounts {src} at {dst}, and {src} does not exist"


def test_compose_depends_on():
    """Every depends_on names a service, with a known condition, and service_healthy ones have a healthcheck."""
    svcs = services()
    dockerfile_healthcheck = any(i == "HEALTHCHECK" for i, _ in dockerfile_instructions())
    for name, svc in svcs.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            assert dep in svcs, f"compose: {name} depends on `{dep}`, which is no service"
            assert dep != name, f"compose: {name} depends on itself"
            cond = (spec or {}).get("condition", "service_started")
            assert cond in ("service_started", "service_healthy", "service_completed_successfully"), \
                f"compose: {name} → {dep}: unknown condition {cond}"
            if cond == "service_healthy":
                has = "healthcheck" in svcs[dep] or (is_tollgate(svcs[dep]) and dockerfile_healthcheck)
                assert has, f"compose: {name} waits for {dep} to be healthy, and {dep} has no healthcheck"
    # And no cycle: compose could never start it.
    seen, stack = set(), set()

    def visit(n):
        assert n not in stack, f"compose: depends_on cycle through {n}"
        if n in seen:
            return
        stack.add(n)
        deps = svcs[n].get("depends_on") or {}
        for d in deps:
            visit(d)
        stack.discard(n)
        seen.add(n)

    for n in svcs:
        visit(n)


def test_compose_published_ports():
    """Published ports are on 127.0.0.1, unique on the host, and each reaches a port its container listens on."""
    used = {}
    for name, svc in services().items():
        for ip, host, container in published(svc):
            assert ip == "127.0.0.1", \
                f"compose: {name} publishes {host}:{container} on `{ip or 'every address'}`; the demo keys are public, bind 127.0.0.1"
            assert host not in used, f"compose: host port {host} published by both {used[host]} and {name}"
            used[host] = name
            assert container in listening_ports(name), \
                f"compose: {name} publishes container port {container}, but listens on {sorted(listening_ports(name))}"


def test_compose_tollgate_instances():
    """Two or more tollgate services share one Redis (the redis service), the seed config and the alias `tollgate`; an OTLP endpoint, when set, is a compose service on a port it listens on."""
    tgs = tollgate_services()
    assert len(tgs) >= 2, f"compose: {len(tgs)} tollgate service(s) built from the Dockerfile; want 2 or more"
    urls = set()
    for name, svc in tgs.items():
        env = env_of(svc)
        assert env.get("TOLLGATE_REDIS_URL"), f"compose: {name} has no TOLLGATE_REDIS_URL: it would keep its own limits"
        urls.add(env["TOLLGATE_REDIS_URL"])
        m = re.match(r"rediss?://(?:[^@/]*@)?([^:/]+)(?::(\d+))?", env["TOLLGATE_REDIS_URL"])
        assert m, f"compose: {name}: TOLLGATE_REDIS_URL {env['TOLLGATE_REDIS_URL']} is not a redis:// URL"
        check_upstream(f"compose {name} TOLLGATE_REDIS_URL", m.group(1), int(m.group(2) or 6379))
        config = env.get("TOLLGATE_CONFIG")
        assert config, f"compose: {name} has no TOLLGATE_CONFIG"
        assert mounted_file(svc, config) == "examples/calculator/tollgate.yaml", \
            f"compose: {name}: TOLLGATE_CONFIG {config} is not the mounted examples/calculator/tollgate.yaml"
        rls = env.get("TOLLGATE_RLS_CONFIG")
        if rls:
            src = mounted_file(svc, rls)
            assert src and (ROOT / src).is_dir(), f"compose: {name}: TOLLGATE_RLS_CONFIG {rls} is no mounted directory"
        otlp = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if otlp:
            m = re.match(r"http://([^:/]+):(\d+)/?$", otlp)
            assert m, f"compose: {name}: OTEL_EXPORTER_OTLP_ENDPOINT {otlp} is not http://HOST:PORT, which tollgate requires"
            check_upstream(f"compose {name} OTEL_EXPORTER_OTLP_ENDPOINT", m.group(1), int(m.group(2)))
        deps = svc.get("depends_on") or {}
        assert "redis" in deps, f"compose: {name} does not wait for redis"
        assert name in hostnames().get("tollgate", set()), f"compose: {name} lacks the network alias `tollgate`"
    assert len(urls) == 1, f"compose: the tollgate services use different Redis URLs: {sorted(urls)}"


def test_compose_proxies_wait_for_their_upstreams():
    """envoy and nginx wait for every tollgate and the calculator to be healthy before starting."""
    for proxy in ("envoy", "nginx"):
        deps = services()[proxy].get("depends_on") or {}
        for up in list(tollgate_services()) + ["calculator"]:
            assert up in deps and deps[up].get("condition") == "service_healthy", \
                f"compose: {proxy} does not wait for {up} to be healthy"


# ---------------------------------------------------------------------------------------
# nginx, Envoy, Prometheus, Grafana as compose runs them


def test_nginx_compose_upstreams():
    """The compose nginx config's upstreams are compose services: tollgate on its HTTP port, the API on the calculator's."""
    src, text = nginx_compose_conf()
    ups = nginx_upstreams(text)
    assert set(ups) >= {"tollgate", "api_backend"}, f"{src}: upstreams {sorted(ups)}"
    for host, port in ups["tollgate"]:
        check_upstream(f"{src} upstream tollgate", host, port, protocol="http")
    for host, port in ups["api_backend"]:
        assert host == "calculator", f"{src}: upstream api_backend is {host}, not the calculator service"
        check_upstream(f"{src} upstream api_backend", host, port)
    assert "127.0.0.1" not in strip_nginx_comments(text), f"{src}: a loopback address is left; in compose it is the nginx container itself"


def test_nginx_compose_config_is_the_tested_one():
    """deploy/nginx/compose.conf is deploy/nginx/nginx.conf (run by tests/nginx.rs) but for its addresses and stand-in backend."""
    src, text = nginx_compose_conf()
    tested = strip_nginx_comments(read("deploy/nginx/nginx.conf"))
    # The stand-in backend: the server block listening on 127.0.0.1:9000.
    m = re.search(r"\n    server \{\n        listen 127\.0\.0\.1:9000;.*?\n    \}\n", tested, re.S)
    assert m, "deploy/nginx/nginx.conf: no stand-in server on 127.0.0.1:9000 (update this check)"
    tested = tested[:m.start()] + "\n" + tested[m.end():]

    def normal(t):
        t = re.sub(r"(\n\s*server\s+)[^\s;]+:\d+;", r"\1ADDR;", "\n" + t)
        return [line.strip() for line in t.splitlines() if line.strip()]

    a, b = normal(tested), normal(strip_nginx_comments(text))
    if a != b:
        import difflib
        diff = "\n".join(difflib.unified_diff(a, b, "nginx.conf", src, lineterm="", n=1))
        raise AssertionError(f"{src} differs from the tested deploy/nginx/nginx.conf beyond its addresses:\n{diff}")


def test_envoy_upstreams():
    """Envoy's clusters name compose services on the right ports (tollgate gRPC, calculator) and it listens where compose publishes."""
    src, cfg = envoy_config()
    clusters = [(p, a, port) for p, a, port in envoy_socket_addresses(cfg) if p.startswith(".static_resources.clusters")]
    assert clusters, f"{src}: no cluster with a socket_address"
    hosts = {a for _, a, _ in clusters}
    assert "tollgate" in hosts or any(h in hostnames() and any(is_tollgate(services()[s]) for s in hostnames()[h]) for h in hosts), \
        f"{src}: no cluster reaches tollgate ({sorted(hosts)})"
    for path, host, port in clusters:
        tg = host in hostnames() and any(is_tollgate(services()[s]) for s in hostnames()[host])
        check_upstream(f"{src} {path}", host, port, protocol="grpc" if tg else None)
    listen = {p for path, _, p in envoy_socket_addresses(cfg) if path.startswith((".static_resources.listeners", ".admin"))}
    for _, host, container in published(services()["envoy"]):
        assert container in listen, f"compose publishes envoy's {container}, but {src} listens on {sorted(listen)}"


def test_prometheus_targets():
    """prometheus.yml scrapes /metrics on the HTTP port of every tollgate service, and only compose hosts."""
    svc = services()["prometheus"]
    src = mounted_file(svc, "/etc/prometheus/prometheus.yml")
    assert src, "compose: prometheus mounts no /etc/prometheus/prometheus.yml"
    cfg = load_yaml(src)
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert "tollgate" in jobs, f"{src}: no job `tollgate`"
    job = jobs["tollgate"]
    assert job.get("metrics_path", "/metrics") == "/metrics", f"{src}: tollgate's metrics_path is not /metrics"
    targets = [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    hosts = set()
    for t in targets:
        host, port = t.rsplit(":", 1)
        check_upstream(f"{src} job tollgate", host, int(port), protocol="http")
        hosts.add(host)
    assert hosts == set(tollgate_services()), \
        f"{src}: job tollgate scrapes {sorted(hosts)}, compose runs tollgate as {sorted(tollgate_services())}"
    for name, j in jobs.items():
        for sc in j.get("static_configs", []):
            for t in sc.get("targets", []):
                host, port = t.rsplit(":", 1)
                if host == "localhost":
                    continue  # Prometheus scraping itself
                check_upstream(f"{src} job {name}", host, int(port))
    for rule_file in cfg.get("rule_files") or []:
        path = rule_file if rule_file.startswith("/") else "/etc/prometheus/" + rule_file
        mounted = mounted_file(svc, path)
        assert mounted and (ROOT / mounted).is_file(), f"{src}: rule file {rule_file} is not mounted at {path}"


def test_prometheus_alerts():
    """alerts.yml has store-error, RLS-config-error and UNAVAILABLE alerts, each with severity and summary, on known metrics only."""
    groups = load_yaml("deploy/prometheus/alerts.yml")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    exprs = " ".join(r["expr"] for r in rules)
    for r in rules:
        assert r.get("alert") and r.get("expr"), f"alerts.yml: a rule without alert or expr: {r}"
        assert (r.get("labels") or {}).get("severity"), f"alerts.yml: {r['alert']} has no severity"
        assert (r.get("annotations") or {}).get("summary"), f"alerts.yml: {r['alert']} has no summary"
        for m in promql_metrics(r["expr"]):
            assert allowed_metric(m, PROMETHEUS_SERIES), f"alerts.yml: {r['alert']} uses unknown metric {m}"
        assert r["expr"].count("(") == r["expr"].count(")"), f"alerts.yml: {r['alert']}: unbalanced parentheses"
    assert "tollgate_store_errors_total" in exprs, "alerts.yml: no alert on store errors"
    assert "tollgate_rls_config_errors_total" in exprs, "alerts.yml: no alert on RLS config errors"
    assert re.search(r'tollgate_checks_total\{[^}]*verdict=~?"[^"]*(UNAVAILABLE|unavailable)', exprs), \
        "alerts.yml: no alert on checks answered UNAVAILABLE (503)"


def test_grafana_provisioning():
    """Grafana's datasource is the compose prometheus service, and its dashboard provider reads the mounted dashboards."""
    svc = services()["grafana"]
    ds_dir = mounted_file(svc, "/etc/grafana/provisioning/datasources")
    assert ds_dir and (ROOT / ds_dir).is_dir(), "compose: grafana mounts no provisioning/datasources"
    sources = [d for f in sorted((ROOT / ds_dir).glob("*.y*ml")) for d in yaml.safe_load(f.read_text())["datasources"]]
    prom = [d for d in sources if d["type"] == "prometheus"]
    assert prom, f"{ds_dir}: no prometheus datasource"
    for d in prom:
        m = re.match(r"https?://([^:/]+):(\d+)", d["url"])
        assert m, f"{ds_dir}: datasource url {d['url']}"
        check_upstream(f"{ds_dir} {d['name']}", m.group(1), int(m.group(2)))
    db_dir = mounted_file(svc, "/etc/grafana/provisioning/dashboards")
    assert db_dir and (ROOT / db_dir).is_dir(), "compose: grafana mounts no provisioning/dashboards"
    for f in sorted((ROOT / db_dir).glob("*.y*ml")):
        for p in yaml.safe_load(f.read_text())["providers"]:
            path = p["options"]["path"]
            mounted = mounted_file(svc, path)
            assert mounted and list((ROOT / mounted).glob("*.json")), \
                f"{f.relative_to(ROOT)}: provider path {path} holds no mounted dashboard"


def test_grafana_dashboard():
    """The dashboard is valid JSON whose queries use only tollgate's metric names, and all of them."""
    text = read("deploy/grafana/dashboards/tollgate.json")
    d = json.loads(text)
    assert d.get("uid") and d.get("title"), "tollgate.json: no uid or title"
    panels = []
    for p in d["panels"]:
        panels.append(p)
        panels += p.get("panels", [])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "tollgate.json: panel ids repeat"
    used = set()
    for p in panels:
        assert "gridPos" in p, f"tollgate.json: panel {p.get('title')} has no gridPos"
        if p["type"] == "row":
            continue
        assert p.get("targets"), f"tollgate.json: panel {p.get('title')} has no query"
        for t in p["targets"]:
            expr = t.get("expr", "")
            assert expr, f"tollgate.json: panel {p['title']} has a target without expr"
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), \
                f"tollgate.json: panel {p['title']}: unbalanced brackets in {expr}"
            for m in promql_metrics(expr):
                assert allowed_metric(m), f"tollgate.json: panel {p['title']} uses unknown metric {m}"
                used.add(re.sub(r"_(bucket|sum|count)$", "", m) if m not in METRICS else m)
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"label_values\(\s*([\w:]+)\s*,", q or "")
        if m:
            assert allowed_metric(m.group(1)), f"tollgate.json: variable {v['name']} uses unknown metric {m.group(1)}"
    missing = METRICS - used
    assert not missing, f"tollgate.json: no panel shows {sorted(missing)}"


# ---------------------------------------------------------------------------------------
# Dockerfile and the demo backend


def test_dockerfile():
    """The Dockerfile builds tollgate-server --locked on rust:1-slim-bookworm and runs it non-root on debian:bookworm-slim with the contract's ports."""
    ins = dockerfile_instructions()
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) == 2, f"Dockerfile: {len(froms)} stages, want builder + runtime"
    assert froms[0].startswith("rust:1-slim-bookworm"), f"Dockerfile: builder FROM {froms[0]}"
    assert froms[1].startswith("debian:bookworm-slim"), f"Dockerfile: runtime FROM {froms[1]}"
    runs = " ".join(a for i, a in ins if i == "RUN")
    assert "cargo build --release -p tollgate-server --locked" in runs, "Dockerfile: no cargo build --release -p tollgate-server --locked"
    assert "protobuf-compiler" not in runs and "protoc" not in runs, "Dockerfile: installs protoc, which the build must not need"
    assert "protox" in read("crates/tollgate-proto/build.rs"), "tollgate-proto/build.rs no longer uses protox"
    assert "ca-certificates" in runs, "Dockerfile: no ca-certificates (rediss://)"
    runtime = ins[[i for i, _ in ins].index("FROM", 1):]
    users = [a for i, a in runtime if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "Dockerfile: the runtime stage runs as root"
    http, grpc = tollgate_ports()
    exposed = {int(p.split("/")[0]) for i, a in runtime if i == "EXPOSE" for p in a.split()}
    assert exposed == {http, grpc}, f"Dockerfile: EXPOSE {sorted(exposed)}, tollgate listens on {http} and {grpc}"
    hc = [a for i, a in runtime if i == "HEALTHCHECK"]
    assert hc and "/healthz" in hc[0], "Dockerfile: no HEALTHCHECK on /healthz"
    assert ("ENTRYPOINT", '["tollgate"]') in runtime, "Dockerfile: ENTRYPOINT is not [\"tollgate\"]"
    assert ("CMD", '["serve"]') in runtime, "Dockerfile: CMD is not [\"serve\"]"
    ignored = [l.strip().rstrip("/") for l in read(".dockerignore").splitlines() if l.strip() and not l.startswith("#")]
    for must in ("target", ".git"):
        assert must in ignored, f".dockerignore: {must} is not excluded"
    for i, a in ins:
        if i == "COPY" and "--from=" not in a:
            for src in a.split()[:-1]:
                assert (ROOT / src).exists(), f"Dockerfile: COPY {src}, which does not exist"
                top = src.rstrip("/").split("/")[0]
                assert top not in ignored and src.rstrip("/") not in ignored, f"Dockerfile: COPY {src}, which .dockerignore excludes"


def test_dockerfile_healthcheck_runs():
    """The Dockerfile's HEALTHCHECK command passes against a server answering /healthz 200 and fails on a closed port."""
    hc = [a for i, a in dockerfile_instructions() if i == "HEALTHCHECK"][0]
    cmd = hc[hc.index("CMD ") + 4:].strip()
    assert not cmd.startswith("["), "Dockerfile: HEALTHCHECK in exec form; this check runs the shell form"
    with Backend() as b:  # the backend answers GET /healthz with 200
        env = dict(os.environ, TOLLGATE_HTTP_ADDR=f"0.0.0.0:{b.port}")
        r = subprocess.run(["/bin/sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, f"HEALTHCHECK failed against a healthy server: {r.stderr}"
    env = dict(os.environ, TOLLGATE_HTTP_ADDR=f"0.0.0.0:{free_port()}")
    r = subprocess.run(["/bin/sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode != 0, "HEALTHCHECK passed with nothing listening"


def test_backend_answers():
    """The demo calculator starts, answers POST /usageplanOffering and the calculator routes with JSON, and stops on SIGTERM."""
    with Backend() as b:
        status, ctype, body = b.call("POST", "/usageplanOffering")
        assert status == 200 and ctype == "application/json", f"POST /usageplanOffering: {status} {ctype}"
        assert body["offering"] and body["method"] == "POST", body
        status, _, body = b.call("POST", "/usageplanOffering", {"a": 6, "b": 7, "op": "multiply"})
        assert status == 200 and body["result"] == 42, body
        for path, result in (("/add?a=1&b=2", 3), ("/subtract?a=5&b=7", -2), ("/multiply?a=3&b=4", 12), ("/divide?a=7&b=2", 3.5)):
            status, _, body = b.call("GET", path)
            assert status == 200 and body["result"] == result, f"GET {path}: {status} {body}"
        assert b.call("GET", "/divide?a=1&b=0")[0] == 400
        assert b.call("GET", "/add?a=x&b=1")[0] == 400
        assert b.call("GET", "/nope")[0] == 404
        assert b.call("GET", "/healthz")[2] == {"status": "ok"}
        b.proc.send_signal(signal.SIGTERM)
        try:
            b.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("backend.py did not stop within 5 s of SIGTERM (it is PID 1 in its container)")


# ---------------------------------------------------------------------------------------
# Kubernetes


K8S = "deploy/k8s"


def k8s_objects():
    """(file, object) of every manifest in deploy/k8s, the kustomization and examples included."""
    out = []
    for f in sorted((ROOT / K8S).glob("*.yaml")):
        for doc in load_yaml_all(f"{K8S}/{f.name}"):
            out.append((f.name, doc))
    return out


def k8s_find(kind, name=None):
    found = [o for _, o in k8s_objects() if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert found, f"{K8S}: no {kind} {name or ''}"
    return found[0]


def named_port(container, port):
    """A probe's port (number or name) as a number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"{K8S}: container {container['name']} has no port named {port}")


def test_k8s_manifests_parse():
    """Every manifest in deploy/k8s is YAML documents with apiVersion, kind and a name, no namespace, and kustomization.yaml lists them all."""
    files = {}
    for fname, o in k8s_objects():
        assert isinstance(o, dict) and o.get("apiVersion") and o.get("kind"), f"{K8S}/{fname}: a document without apiVersion/kind"
        if o["kind"] == "Kustomization":
            continue
        assert (o.get("metadata") or {}).get("name"), f"{K8S}/{fname}: a {o['kind']} without a name"
        assert "namespace" not in o["metadata"], f"{K8S}/{fname}: {o['kind']} {o['metadata']['name']} sets a namespace"
        files.setdefault(fname, []).append(o["kind"])
    kust = load_yaml(f"{K8S}/kustomization.yaml")
    listed = set(kust["resources"])
    for r in listed:
        assert (ROOT / K8S / r).is_file(), f"{K8S}/kustomization.yaml lists {r}, which does not exist"
    for fname in files:
        if fname.endswith(".example.yaml"):
            assert fname not in listed, f"{K8S}/kustomization.yaml applies the example {fname}"
        else:
            assert fname in listed, f"{K8S}/{fname} is not in kustomization.yaml"
    kinds = {k for ks in files.values() for k in ks}
    for k in ("Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert k in kinds, f"{K8S}: no {k}"


def test_k8s_tollgate_deployment():
    """The tollgate Deployment: 2 replicas, ports and probes on tollgate's (/healthz on HTTP, gRPC), resources, config and secrets that exist."""
    http, grpc = tollgate_ports()
    d = k8s_find("Deployment", "tollgate")
    assert d["spec"]["replicas"] == 2, "deployment: replicas is not 2"
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e for e in c.get("env", [])}
    want_http = int(env["TOLLGATE_HTTP_ADDR"]["value"].rsplit(":", 1)[1]) if "TOLLGATE_HTTP_ADDR" in env else http
    want_grpc = int(env["TOLLGATE_GRPC_ADDR"]["value"].rsplit(":", 1)[1]) if "TOLLGATE_GRPC_ADDR" in env else grpc
    assert (want_http, want_grpc) == (http, grpc), "deployment: moves tollgate off its contract ports"
    assert ports == {"http": http, "grpc": grpc}, f"deployment: container ports {ports}"
    r = c["readinessProbe"]
    assert r["httpGet"]["path"] == "/healthz" and named_port(c, r["httpGet"]["port"]) == http, \
        f"deployment: readiness is not GET /healthz on {http}: {r}"
    live = c["livenessProbe"]
    if "httpGet" in live:
        assert live["httpGet"]["path"] == "/healthz" and named_port(c, live["httpGet"]["port"]) == http, live
    else:
        assert "grpc" in live and live["grpc"]["port"] == grpc, f"deployment: liveness is neither /healthz on {http} nor gRPC on {grpc}: {live}"
    for kind in ("requests", "limits"):
        assert c.get("resources", {}).get(kind), f"deployment: no resources.{kind}"
    # The config file is the ConfigMap's key, mounted where TOLLGATE_CONFIG points.
    config = env["TOLLGATE_CONFIG"]["value"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mount = [m for m in c["volumeMounts"] if config.startswith(m["mountPath"].rstrip("/") + "/") or config == m["mountPath"]]
    assert mount, f"deployment: TOLLGATE_CONFIG {config} is on no volume mount"
    cm_name = vols[mount[0]["name"]]["configMap"]["name"]
    key = mount[0].get("subPath") or config[len(mount[0]["mountPath"].rstrip("/")) + 1:]
    cm = k8s_find("ConfigMap", cm_name)
    assert key in cm["data"], f"deployment: ConfigMap {cm_name} has no key {key}"
    # Secrets: the example defines every key the Deployment reads.
    for name in ("TOLLGATE_REDIS_URL", "TOLLGATE_ADMIN_TOKEN"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        secret = k8s_find("Secret", ref["name"])
        assert ref["key"] in secret["stringData"], f"secret.example.yaml: no key {ref['key']} (for {name})"
    sc = c.get("securityContext", {})
    assert pod["securityContext"].get("runAsNonRoot") and sc.get("allowPrivilegeEscalation") is False, \
        "deployment: not locked down (runAsNonRoot, allowPrivilegeEscalation: false)"


def test_k8s_services_pdb_hpa():
    """Services select the tollgate pods on its ports (gRPC with appProtocol grpc), the PDB selects them, the HPA scales the Deployment, Redis matches the URL."""
    http, grpc = tollgate_ports()
    d = k8s_find("Deployment", "tollgate")
    labels = d["spec"]["template"]["metadata"]["labels"]
    c = d["spec"]["template"]["spec"]["containers"][0]
    services_ = [o for _, o in k8s_objects() if o["kind"] == "Service" and o["metadata"]["name"].startswith("tollgate")]
    seen = {}
    for s in services_:
        sel = s["spec"]["selector"]
        assert all(labels.get(k) == v for k, v in sel.items()), f"service {s['metadata']['name']} selects {sel}, not the tollgate pods"
        for p in s["spec"]["ports"]:
            target = named_port(c, p.get("targetPort", p["port"]))
            seen.setdefault(target, []).append(p)
            assert p["port"] == target, f"service {s['metadata']['name']}: port {p['port']} → {target}; keep the contract's numbers"
    assert http in seen and grpc in seen, f"{K8S}: no Service for both {http} and {grpc}"
    assert all(p.get("appProtocol") == "grpc" for p in seen[grpc]), f"{K8S}: the gRPC Service port lacks appProtocol: grpc"
    pdb = k8s_find("PodDisruptionBudget")
    assert all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()), "pdb: selects other pods"
    hpa = k8s_find("HorizontalPodAutoscaler")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", "tollgate"), f"hpa: scales {ref}"
    assert hpa["spec"]["minReplicas"] >= 2, "hpa: minReplicas below 2"
    url = k8s_find("Secret", "tollgate")["stringData"]["redis-url"]
    m = re.match(r"rediss?://(?:[^@/]*@)?([^:/]+)(?::(\d+))?", url)
    rs = k8s_find("Service", m.group(1))
    assert int(m.group(2) or 6379) in [p["port"] for p in rs["spec"]["ports"]], f"secret redis-url {url}: Service {m.group(1)} has no such port"


def test_k8s_configmap_is_the_seed():
    """The ConfigMap's plans are examples/calculator/tollgate.yaml word for word."""
    cm = k8s_find("ConfigMap", "tollgate-config")
    assert cm["data"]["tollgate.yaml"] == read("examples/calculator/tollgate.yaml"), \
        "deploy/k8s/configmap.yaml differs from examples/calculator/tollgate.yaml: copy it over again"


# ---------------------------------------------------------------------------------------
# Helm


CHART = "deploy/helm/tollgate"


def helm_templates():
    return sorted((ROOT / CHART / "templates").iterdir())


def values_paths(node, prefix=()):
    """Every key path in values.yaml."""
    out = {prefix}
    if isinstance(node, dict):
        for k, v in node.items():
            out |= values_paths(v, prefix + (k,))
    return out


def test_helm_chart_files():
    """The chart has Chart.yaml (v2, versions), values.yaml, _helpers.tpl, NOTES.txt and a template for each object of deploy/k8s."""
    chart = load_yaml(f"{CHART}/Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "tollgate", "Chart.yaml: not apiVersion v2 / name tollgate"
    assert chart.get("version") and chart.get("appVersion"), "Chart.yaml: no version or appVersion"
    cargo = read("Cargo.toml")
    m = re.search(r'\[workspace\.package\][^\[]*?version\s*=\s*"([^"]+)"', cargo, re.S)
    assert m and str(chart["appVersion"]) == m.group(1), f"Chart.yaml: appVersion {chart['appVersion']}, the workspace is {m and m.group(1)}"
    assert isinstance(load_yaml(f"{CHART}/values.yaml"), dict), "values.yaml: not a mapping"
    names = {p.name for p in helm_templates()}
    for f in ("_helpers.tpl", "NOTES.txt", "deployment.yaml", "service.yaml", "configmap.yaml",
              "secret.yaml", "pdb.yaml", "hpa.yaml"):
        assert f in names, f"{CHART}/templates/{f} is missing"
    kinds = " ".join(p.read_text() for p in helm_templates())
    for k in ("Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert f"kind: {k}" in kinds, f"{CHART}: no template makes a {k}"


def test_helm_values_referenced_exist():
    """Every .Values.x.y a template reads is a key of values.yaml."""
    values = load_yaml(f"{CHART}/values.yaml")
    paths = values_paths(values)
    for p in helm_templates():
        for ref in re.findall(r"\.Values((?:\.[A-Za-z_][\w]*)+)", p.read_text()):
            path = tuple(ref.strip(".").split("."))
            assert path in paths, f"{CHART}/templates/{p.name} reads .Values{ref}, which values.yaml does not have"


def test_helm_template_syntax():
    """Template actions are closed, every if/with/range/define has its end, and every included template is defined."""
    defined, included = set(), set()
    for p in helm_templates():
        text = p.read_text()
        assert text.count("{{") == text.count("}}"), f"{p.name}: unbalanced {{{{ }}}}"
        depth = []
        for action in re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", text, re.S):
            if action.startswith("/*"):
                assert action.endswith("*/"), f"{p.name}: unclosed comment {action[:40]}"
                continue
            word = action.split()[0] if action.split() else ""
            if word in ("if", "with", "range", "define", "block"):
                depth.append(word)
            elif word == "end":
                assert depth, f"{p.name}: {{{{ end }}}} without an opening action"
                depth.pop()
            elif word == "else":
                assert depth and depth[-1] in ("if", "with", "range"), f"{p.name}: else outside if/with/range"
        assert not depth, f"{p.name}: {depth} not closed by {{{{ end }}}}"
        defined |= set(re.findall(r'define\s+"([^"]+)"', text))
        included |= set(re.findall(r'(?:include|template)\s+"([^"]+)"', text))
    missing = included - defined
    assert not missing, f"{CHART}: included but never defined: {sorted(missing)}"


def test_helm_values_match_the_contract():
    """values.yaml's defaults are tollgate's: ports 8080/8081, fail closed, standalone Redis, the seed config, 2 replicas."""
    http, grpc = tollgate_ports()
    v = load_yaml(f"{CHART}/values.yaml")
    assert (v["service"]["httpPort"], v["service"]["grpcPort"]) == (http, grpc), f"values.yaml: service ports {v['service']}"
    assert v["failureMode"] in ("allow", "deny") and v["failureMode"] == "deny", "values.yaml: failureMode is not deny"
    assert v["redis"]["mode"] == "standalone", "values.yaml: redis.mode"
    assert v["replicaCount"] == 2, "values.yaml: replicaCount is not 2"
    assert v["config"] == read("examples/calculator/tollgate.yaml"), "values.yaml: config differs from the seed scenario"
    text = (ROOT / CHART / "templates/deployment.yaml").read_text()
    assert "path: /healthz" in text, "helm deployment: no /healthz probe"
    for key in ("resources", "image", "redis", "adminToken", "autoscaling", "podDisruptionBudget"):
        assert key in v, f"values.yaml: no `{key}`"


# ---------------------------------------------------------------------------------------


def checks():
    return {n: f for n, f in globals().items() if n.startswith("test_") and callable(f)}


def main(argv):
    all_checks = checks()
    if argv[:1] == ["--list"]:
        print("\n".join(all_checks))
        return 0
    names = argv or list(all_checks)
    unknown = [n for n in names if n not in all_checks]
    if unknown:
        print(f"unknown check(s): {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    failed = 0
    for n in names:
        try:
            all_checks[n]()
            print(f"ok   {n}")
        except Exception as e:  # every failure is reported, with where it came from
            failed += 1
            print(f"FAIL {n}: {all_checks[n].__doc__}\n     {e}", file=sys.stderr)
            if not isinstance(e, AssertionError):
                traceback.print_exc()
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
