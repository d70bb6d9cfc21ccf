# syntax=docker/dockerfile:1
# Berth's images, one static `berth` binary in each:
#   docker build -t berth:$VERSION .                       the manager (default, last stage)
#   docker build --target agent -t berth-agent:$VERSION .  the node agent
# The manager's image is empty but for the binary, CA certificates and a non-root user,
# like a distroless static image. The agent's needs a few host tools at run time, so
# it is Debian slim (see the `agent` stage). The Helm chart takes the two as
# image.repository and agent.image.repository.

FROM golang:1.26 AS build
WORKDIR /src
# Cache modules separately from the source.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/berthdev/berth/internal/version.Version=${VERSION} -X github.com/berthdev/berth/internal/version.GitCommit=${COMMIT}" \
      -o /out/berth . \
 && mkdir -p /out/etc \
 && echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > /out/etc/passwd \
 && echo 'nonroot:x:65532:' > /out/etc/group

# The agent's image. The agent runs as root on the node (privileged in the chart's
# DaemonSet) and needs, beside the binary:
#  - iptables: the portmap CNI plugin publishes host ports as DNAT rules. Debian's
#    default backend is nft, as on current distributions (Debian 11+, Ubuntu 21.04+,
#    RHEL 8+). On nodes whose kube-proxy and CNI use iptables-legacy, build with
#    --build-arg IPTABLES_BACKEND=legacy so that every tool writes the same tables.
#  - the CNI plugins bridge, host-local, portmap and loopback in /usr/lib/cni (the
#    agent's default --cni-plugin-dir): Debian's, the ones the agent's tests run.
#  - tini-static for tasks with initProcessEnabled; the chart copies it to the node,
#    because runc bind-mounts it from the node's filesystem.
#  - CA certificates for registries, and sh, cp and mv for the chart's init container.
# The agent's HTTP endpoint (127.0.0.1:51678) needs no port published: the DaemonSet
# runs in the node's network namespace.
FROM debian:bookworm-slim AS agent
ARG IPTABLES_BACKEND=nft
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates iptables containernetworking-plugins tini \
 && update-alternatives --set iptables /usr/sbin/iptables-${IPTABLES_BACKEND} \
 && update-alternatives --set ip6tables /usr/sbin/ip6tables-${IPTABLES_BACKEND} \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/berth /usr/local/bin/berth
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["agent"]

# The manager's image, the default target (last stage).
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/berth /berth
# The manager runs as this user. (The agent has its own image, above.)
USER 65532:65532
ENTRYPOINT ["/berth"]
CMD ["manager"]
