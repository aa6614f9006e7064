#!/usr/bin/env bash
# loadtest/k6/envoy_proto_dir.sh: prints the proto/ directory of the envoy-types crate that
# tollgate builds with (Envoy's .proto files, which rls_should_rate_limit.js loads), as
# `cargo metadata` locates it in cargo's local crate sources.
#
#   k6 run -e ENVOY_PROTO="$(loadtest/k6/envoy_proto_dir.sh)" loadtest/k6/rls_should_rate_limit.js
set -euo pipefail
cd "$(dirname "$0")/../.."
meta=$(cargo metadata --format-version 1 --offline 2>/dev/null || cargo metadata --quiet --format-version 1)
python3 -c '
import json, os, sys
pkgs = json.load(sys.stdin)["packages"]
manifest = next((p["manifest_path"] for p in pkgs if p["name"] == "envoy-types"), None)
if manifest is None:
    sys.exit("envoy_proto_dir.sh: envoy-types is not in cargo metadata")
print(os.path.join(os.path.dirname(manifest), "proto"))
' <<<"$meta"
