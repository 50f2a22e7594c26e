# sealbridge container image.
#
#   docker build -t sealbridge --build-arg VERSION=$(git describe --tags --always) \
#       --build-arg COMMIT=$(git rev-parse HEAD) .
#   docker run --rm -v sealbridge-data:/data sealbridge      # first run: writes /data/config.yaml
#
# Two stages: a Go + C toolchain builds the binary (cgo is needed for SQLite), and a small Debian
# runtime without compilers runs it. Both stages use the same Debian release, so the binary links
# against the same glibc it was built with. Keep GO_VERSION equal to the `go` line of go.mod.
# test/docker/verify.sh checks this file without a Docker engine.

ARG GO_VERSION=1.26.8
ARG DEBIAN_RELEASE=bookworm

FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS builder
# The golang image has gcc and libc6-dev (cgo for mattn/go-sqlite3) and sets GOTOOLCHAIN=local.
ARG GOPROXY=https://proxy.golang.org,direct
ARG VERSION=
ARG COMMIT=unknown
ENV CGO_ENABLED=1 GOFLAGS=-buildvcs=false GOPROXY=${GOPROXY}
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# `goolm`: the pure-Go Olm/Megolm implementation (libolm is deprecated). Same flags as `make build`.
RUN go build -trimpath -tags goolm -ldflags "-s -w -X main.Tag=${VERSION} -X main.Commit=${COMMIT} -X 'main.BuildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)'" -o /out/sealbridge ./cmd/sealbridge
RUN /out/sealbridge --version

FROM debian:${DEBIAN_RELEASE}-slim
# ca-certificates: TLS to IRC servers and to an https homeserver. setpriv (util-linux, part of every
# Debian image) drops root in the entrypoint. No compilers here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ARG SEALBRIDGE_UID=1337
ARG SEALBRIDGE_GID=1337
RUN groupadd --system --gid ${SEALBRIDGE_GID} sealbridge \
 && useradd --system --uid ${SEALBRIDGE_UID} --gid sealbridge --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin sealbridge \
 && install -d -m 0700 -o sealbridge -g sealbridge /data
COPY --from=builder /out/sealbridge /usr/local/bin/sealbridge
COPY docker/entrypoint.sh /usr/local/bin/sealbridge-entrypoint
ENV SEALBRIDGE_UID=${SEALBRIDGE_UID} SEALBRIDGE_GID=${SEALBRIDGE_GID}
VOLUME /data
WORKDIR /data
# The appservice port (appservice.port in config.yaml); the homeserver must reach it.
EXPOSE 29355
# Healthy once the bridge answers ready on its appservice listener (unhealthy during the first-run
# setup, before config.yaml exists).
HEALTHCHECK --interval=30s --timeout=10s --start-period=2m \
    CMD ["/usr/local/bin/sealbridge", "--healthcheck", "-c", "/data/config.yaml"]
ENTRYPOINT ["/usr/local/bin/sealbridge-entrypoint"]
