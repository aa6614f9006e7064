# syntax=docker/dockerfile:1
# The tollgate image: `tollgate serve` on gRPC 8081 and HTTP 8080 (see docker-compose.yml,
# deploy/k8s/ and deploy/helm/ for how it is run).
#
#   docker build -t tollgate .
#   docker run --rm -p 8080:8080 -p 8081:8081 tollgate \
#     serve --config /usr/share/tollgate/examples/calculator/tollgate.yaml
#
# Every flag is also read from a TOLLGATE_* variable (TOLLGATE_CONFIG, TOLLGATE_REDIS_URL,
# ...; `tollgate serve --help`). The build needs no system protoc: tollgate-proto compiles its
# .proto files with protox, in Rust.

# --- build ----------------------------------------------------------------------------------
FROM rust:1-slim-bookworm AS builder
WORKDIR /src
# The whole workspace: cargo reads every member's manifest, even to build one package.
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY crates crates
COPY examples examples
# The registry and target directories are BuildKit caches, kept between builds, so a
# change to the sources rebuilds only what it touches; the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p tollgate-server --locked \
    && install -D -m 0755 target/release/tollgate /out/tollgate

# --- run ------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# CA certificates for rediss:// (TLS to Redis).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed non-root uid, so Kubernetes can check `runAsNonRoot` and volumes can be chowned.
RUN groupadd --system --gid 10001 tollgate \
    && useradd --system --uid 10001 --gid tollgate --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin tollgate
COPY --from=builder /out/tollgate /usr/local/bin/tollgate
# The seed scenario, to try the image without writing a config first.
COPY examples/calculator/tollgate.yaml /usr/share/tollgate/examples/calculator/tollgate.yaml
USER 10001:10001
EXPOSE 8080 8081
# Healthy once /healthz answers 200 (the store can take checks). bash's /dev/tcp, so the
# image needs no curl; the port follows TOLLGATE_HTTP_ADDR.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD bash -c 'a="${TOLLGATE_HTTP_ADDR:-0.0.0.0:8080}"; exec 3<>"/dev/tcp/127.0.0.1/${a##*:}" && printf "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "'
ENTRYPOINT ["tollgate"]
CMD ["serve"]
