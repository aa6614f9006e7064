"""Generates Python gRPC stubs for Envoy's rate-limit (RLS v3) and ext_authz v3 services, and
for the parts of Envoy's bootstrap config that deploy/envoy/envoy.yaml uses, from Envoy's own
.proto files, as shipped by the envoy-types crate under its proto/ directory.

    python3 envoy_stubs.py PROTO_ROOT OUT_DIR

Only the closure of imports of those files is compiled (a few hundred files, not all of
Envoy), with grpcio-tools, into OUT_DIR; put OUT_DIR on sys.path to import e.g.
`envoy.service.ratelimit.v3.rls_pb2_grpc`. google/protobuf/*.proto come with grpcio-tools.
"""

import os
import re
import sys

# Include roots under envoy-types' proto/ directory, in the order protoc should search them.
INCLUDES = [
    "data-plane-api",
    "xds",
    "protoc-gen-validate",
    "googleapis",
    "cel-spec/proto",
    "opentelemetry-proto",
    "client_model",
]
SERVICES = [
    "envoy/service/ratelimit/v3/rls.proto",
    "envoy/service/auth/v3/external_auth.proto",
    # Envoy's own config, with the extensions deploy/envoy/envoy.yaml uses, so that the file
    # can be parsed into a Bootstrap message (every field name and enum value checked).
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
    "envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    "envoy/config/trace/v3/opentelemetry.proto",
]
IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.M)


def closure(proto_root, builtin):
    """Every .proto the services need, as (include dir, relative path), services first."""
    roots = [os.path.join(proto_root, i) for i in INCLUDES]
    seen, order, todo = set(), [], list(SERVICES)
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        found = next((r for r in roots if os.path.isfile(os.path.join(r, rel))), None)
        if found is None:
            if os.path.isfile(os.path.join(builtin, rel)):
                continue  # a well-known type that grpcio-tools ships
            raise SystemExit(f"envoy_stubs: {rel} not found under {proto_root} ({', '.join(INCLUDES)})")
        order.append(rel)
        with open(os.path.join(found, rel), encoding="utf-8") as f:
            todo.extend(IMPORT.findall(f.read()))
    return roots, order


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    proto_root, out = sys.argv[1], sys.argv[2]
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as e:
        raise SystemExit(f"envoy_stubs: grpcio-tools is missing ({e}); "
                         "pip install -r crates/tollgate-server/tests/python/requirements.txt")
    builtin = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    roots, files = closure(proto_root, builtin)
    os.makedirs(out, exist_ok=True)
    args = ["grpc_tools.protoc", f"-I{builtin}"] + [f"-I{r}" for r in roots]
    args += [f"--python_out={out}", f"--grpc_python_out={out}"] + files
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"envoy_stubs: protoc failed with {code}")
    print(f"envoy_stubs: compiled {len(files)} files into {out}")


if __name__ == "__main__":
    main()
