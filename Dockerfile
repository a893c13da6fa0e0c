# The one hoist image: one stripped static multi-call binary,
# /usr/local/bin/hoist, with a link per tool (build-push, retag, gate, bump,
# publish) and kaniko's /kaniko/executor (build-push with kaniko's flags;
# credentials in /kaniko/.docker/config.json, private CAs in /kaniko/ssl/certs/),
# a static busybox so GitLab `script:` has a shell (also at /busybox, where
# kaniko's debug image has it), and CA certificates. No USER line:
# GitHub container actions run as root. No ENTRYPOINT: each action.yml sets
# runs.entrypoint, and GitLab jobs use `entrypoint: [""]`.
#
# Until build-push can build this file, `make image` assembles the same image
# without a daemon (test/rig/mkimage; its dockerfile_test.go keeps the paths,
# PATH and labels of the two in agreement).

ARG GO_VERSION=1.26.8
ARG VERSION=0.2.0

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/hoist-ci/hoist/internal/spec.stamped=${VERSION}" -o /out/ ./actions/hoist

FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends busybox-static ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    mkdir -p /rootfs/bin /rootfs/etc/ssl/certs /rootfs/root /rootfs/tmp \
             /rootfs/usr/bin /rootfs/usr/local/bin /rootfs/usr/local/sbin; \
    cp /bin/busybox /rootfs/bin/busybox; \
    for applet in $(/bin/busybox --list); do \
      [ "$applet" = busybox ] || ln -s busybox "/rootfs/bin/$applet"; \
    done; \
    ln -s /bin/env /rootfs/usr/bin/env; \
    for tool in build-push retag gate bump publish; do \
      ln -s hoist "/rootfs/usr/local/bin/$tool"; \
    done; \
    mkdir -p /rootfs/kaniko/.docker /rootfs/kaniko/ssl/certs; \
    ln -s /usr/local/bin/hoist /rootfs/kaniko/executor; \
    ln -s /etc/ssl/certs/ca-certificates.crt /rootfs/kaniko/ssl/certs/ca-certificates.crt; \
    ln -s bin /rootfs/busybox; \
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >/rootfs/etc/passwd; \
    printf 'root:x:0:\nnogroup:x:65534:\n' >/rootfs/etc/group; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt; \
    chmod 0700 /rootfs/root; \
    chmod 1777 /rootfs/tmp

FROM scratch
ARG VERSION
COPY --from=rootfs /rootfs/ /
COPY --from=build /out/ /usr/local/bin/
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
LABEL org.opencontainers.image.source="https://github.com/hoist-ci/hoist" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.title="hoist"
CMD ["/bin/sh"]
