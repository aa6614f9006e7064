"""Parses an Envoy config file (YAML) into Envoy's own envoy.config.bootstrap.v3.Bootstrap
message, with the typed_config of every extension it uses resolved, so that every field
name, enum value and type is checked against Envoy's protos, as Envoy would on start.

    python3 envoy_config_check.py STUBS_DIR CONFIG.yaml

Run by crates/tollgate-server/tests/envoy_config.rs.
"""

import sys


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    stubs, path = sys.argv[1], sys.argv[2]
    try:
        import yaml
        from google.protobuf import json_format
    except ImportError as e:
        raise SystemExit(f"{e}; pip install -r crates/tollgate-server/tests/python/requirements.txt")
    sys.path.insert(0, stubs)
    # Importing the extension modules registers their types for the typed_config Anys.
    from envoy.config.bootstrap.v3 import bootstrap_pb2
    from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2  # noqa: F401
    from envoy.extensions.filters.http.ratelimit.v3 import rate_limit_pb2  # noqa: F401
    from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
    from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
        http_connection_manager_pb2)
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
    from envoy.config.trace.v3 import opentelemetry_pb2  # noqa: F401

    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    bootstrap = bootstrap_pb2.Bootstrap()
    try:
        json_format.ParseDict(config, bootstrap)
    except json_format.ParseError as e:
        raise SystemExit(f"{path}: not a valid Envoy bootstrap: {e}")
    listeners = len(bootstrap.static_resources.listeners)
    clusters = len(bootstrap.static_resources.clusters)
    print(f"{path}: a valid Envoy bootstrap with {listeners} listener(s), {clusters} cluster(s)")


if __name__ == "__main__":
    main()
