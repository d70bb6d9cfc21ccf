# syntax=docker/dockerfile:1
# Berth's image: one static `berth` binary for every component (manager, agent, ...).
# The final stage is empty but for the binary, CA certificates and a non-root user,
# like a distroless static image.

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

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/berth /berth
# The manager runs as this user; the agent's DaemonSet overrides it with root because
# it drives containerd.
USER 65532:65532
ENTRYPOINT ["/berth"]
CMD ["manager"]
