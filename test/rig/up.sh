#!/usr/bin/env bash
# Starts the rig's private Docker engine (as ../shared/RIG.md describes) and
# writes .cache/rig/env, a shell file that sets DOCKER_HOST and puts the rig's
# tools on PATH:   . .cache/rig/env
# Idempotent: an engine already running from this tree is reused.
# Stop it with test/rig/down.sh.
set -euo pipefail
# dockerd lives in /usr/sbin, not on every PATH.
export PATH="$PATH:/usr/sbin:/sbin"

root=$(cd "$(dirname "$0")/../.." && pwd)
rig="$root/.cache/rig"
tools="$root/.cache/tools/bin"
START_TIMEOUT=${RIG_START_TIMEOUT:-60}

mkdir -p "$rig"
sock="$rig/docker.sock"
pidfile="$rig/dockerd.pid"
log="$rig/dockerd.log"
# containerd's sockets live under the exec root and must stay short (a unix
# socket path is at most 107 bytes): a deep checkout gets one under /tmp.
exec_root="$rig/exec"
if [ ${#exec_root} -gt 60 ]; then
  exec_root="/tmp/hoist-rig-$(printf '%s' "$root" | sha256sum | cut -c1-12)"
fi
[ ${#sock} -le 100 ] || { echo "up.sh: socket path $sock is too long for a unix socket; use a shorter checkout path" >&2; exit 1; }

export DOCKER_HOST="unix://$sock"

write_env() {
  cat >"$rig/env" <<EOF
# written by test/rig/up.sh; removed by test/rig/down.sh
export DOCKER_HOST='$DOCKER_HOST'
export PATH='$tools':"\$PATH"
EOF
}

alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if alive && docker version >/dev/null 2>&1; then
  write_env
  echo "up.sh: dockerd already running (pid $(cat "$pidfile")), DOCKER_HOST=$DOCKER_HOST"
  exit 0
fi

command -v dockerd >/dev/null 2>&1 || { echo "up.sh: dockerd is not installed: run test/rig/install.sh (or make rig-install)" >&2; exit 1; }
command -v docker >/dev/null 2>&1 || { echo "up.sh: the docker CLI is not installed: run test/rig/install.sh (or make rig-install)" >&2; exit 1; }

if alive; then
  echo "up.sh: dockerd (pid $(cat "$pidfile")) does not answer; stopping it" >&2
  "$root/test/rig/down.sh"
fi
rm -f "$sock" "$pidfile"
mkdir -p "$rig/data" "$exec_root"
echo "$exec_root" >"$rig/exec-root" # for down.sh

# setsid: the engine outlives this script and is not killed with make's process group.
# Own containerd namespaces: where a system containerd runs (a CI runner with
# Docker installed), dockerd uses it, and must not share the system engine's.
setsid dockerd \
  --iptables=false --ip6tables=false --bridge=none \
  --data-root "$rig/data" --exec-root "$exec_root" \
  --containerd-namespace hoist-rig --containerd-plugins-namespace hoist-rig-plugins \
  --pidfile "$pidfile" -H "$DOCKER_HOST" \
  --shutdown-timeout 5 \
  >"$log" 2>&1 </dev/null &
pid=$!

deadline=$((SECONDS + START_TIMEOUT))
until docker version >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "up.sh: dockerd exited while starting; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "up.sh: dockerd did not answer on $DOCKER_HOST within ${START_TIMEOUT}s; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done
# dockerd writes its pid file itself; make sure it is there for down.sh.
[ -s "$pidfile" ] || echo "$pid" >"$pidfile"
write_env
echo "up.sh: dockerd $(docker version -f '{{.Server.Version}}') running (pid $pid), DOCKER_HOST=$DOCKER_HOST; env in $rig/env"
