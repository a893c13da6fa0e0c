#!/usr/bin/env bash
# What `make demo` needs on a fresh Debian or Ubuntu machine, installed when
# missing: Debian's busybox-static (the base image the demo builds on, made
# from /bin/busybox) and git (the demo's repositories). Nothing else: the demo
# runs its own registry in process and needs no Docker.
set -euo pipefail
missing=()
dpkg_has() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]; }
if ! dpkg_has busybox-static && ! busybox --list 2>/dev/null | grep -qx sh; then missing+=(busybox-static); fi
command -v git >/dev/null 2>&1 || missing+=(git)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "demo-deps.sh: the demo needs ${missing[*]}; install them: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null 2>&1 || { echo "demo-deps.sh: the demo needs ${missing[*]} and this machine has no apt-get: install them with its package manager" >&2; exit 1; }
echo "demo-deps.sh: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "demo-deps.sh: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { echo "demo-deps.sh: apt-get install ${missing[*]} failed" >&2; exit 1; }
