#!/usr/bin/env bash
# Stops the Docker engine test/rig/up.sh started (SIGTERM, then SIGKILL after
# a bounded wait) and removes .cache/rig/env. Doing nothing is fine: no engine,
# no error. Images stay in .cache/rig/data for the next run.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
rig="$root/.cache/rig"
pidfile="$rig/dockerd.pid"
STOP_TIMEOUT=${RIG_STOP_TIMEOUT:-30}

rm -f "$rig/env"
if [ ! -f "$pidfile" ]; then
  echo "down.sh: no dockerd to stop"
  exit 0
fi
pid=$(cat "$pidfile")
if ! kill -0 "$pid" 2>/dev/null; then
  echo "down.sh: dockerd (pid $pid) was not running"
  rm -f "$pidfile" "$rig/docker.sock"
  exit 0
fi

kill -TERM "$pid"
deadline=$((SECONDS + STOP_TIMEOUT))
while kill -0 "$pid" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "down.sh: dockerd (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
rm -f "$pidfile" "$rig/docker.sock"
# dockerd leaves its network namespace mounted under the exec root, which
# would keep `rm -rf .cache` from working.
if [ -f "$rig/exec-root" ]; then
  exec_root=$(cat "$rig/exec-root")
  awk -v root="$exec_root/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "down.sh: could not unmount $m" >&2
  done
fi
echo "down.sh: dockerd (pid $pid) stopped"
