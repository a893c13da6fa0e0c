#!/usr/bin/env bash
# Builds the peer of bench/build-push: kaniko v1.24.0's executor image, laid
# out as its deploy/Dockerfile's kaniko-executor target (/kaniko/executor,
# CA certificates, /kaniko/.docker, its ENV, WORKDIR and ENTRYPOINT), built
# with hoist's own build-push into a tarball and loaded into the rig's engine
# as hoist-bench/kaniko:v1.24.0. kaniko is archived and no image can be
# pulled here: give it kaniko's source at the v1.24.0 tag (it vendors its
# modules), e.g. from a clone:
#
#   git clone --branch v1.24.0 https://github.com/GoogleContainerTools/kaniko
#   bench/build-push/kaniko-image.sh kaniko
#
# Needs the rig's engine (. .cache/rig/env) and Go.
set -euo pipefail
src=${1:?usage: kaniko-image.sh KANIKO_SOURCE_DIR (kaniko at tag v1.24.0)}
tag=${KANIKO_IMAGE:-hoist-bench/kaniko:v1.24.0}
root=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$src/cmd/executor/main.go" ] || { echo "kaniko-image.sh: $src has no cmd/executor: give kaniko's source at v1.24.0" >&2; exit 1; }
[ -n "${DOCKER_HOST:-}" ] || { echo "kaniko-image.sh: DOCKER_HOST is not set: run test/rig/up.sh and . .cache/rig/env" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx/docker"
echo "kaniko-image.sh: building kaniko's executor from $src"
(cd "$src" && CGO_ENABLED=0 go build -mod=vendor -trimpath -ldflags '-s -w' -o "$work/ctx/executor" ./cmd/executor)
cp /etc/ssl/certs/ca-certificates.crt "$work/ctx/"
cp "$src/files/nsswitch.conf" "$work/ctx/"
echo '{}' >"$work/ctx/docker/config.json"
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY --chmod=0755 executor /kaniko/executor
COPY ca-certificates.crt /kaniko/ssl/certs/
COPY nsswitch.conf /etc/nsswitch.conf
COPY docker/ /kaniko/.docker/
ENV HOME=/root USER=root PATH=/usr/local/bin:/kaniko SSL_CERT_DIR=/kaniko/ssl/certs
ENV DOCKER_CONFIG=/kaniko/.docker/ DOCKER_CREDENTIAL_GCR_CONFIG=/kaniko/.config/gcloud/docker_credential_gcr_config.json
WORKDIR /workspace
ENTRYPOINT ["/kaniko/executor"]
DOCKERFILE
(cd "$root" && CGO_ENABLED=0 go build -o "$work/build-push" ./actions/build-push)
"$work/build-push" --context "$work/ctx" --tags "$tag" --push=false --media-types docker --tar-path "$work/kaniko.tar" >/dev/null
docker load -i "$work/kaniko.tar"
echo "kaniko-image.sh: loaded $tag"
