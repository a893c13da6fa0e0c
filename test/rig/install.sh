#!/usr/bin/env bash
# Installs what the test rig needs and is missing; prints what it installed.
# Idempotent: a second run installs nothing. Fails loudly on any failure.
#
#   apt:        docker-registry docker.io busybox-static rsync apache2-utils git ca-certificates
#               debootstrap (the Debian base image of the RUN corpus and bench)
#               buildah skopeo (bench peers) time (GNU time: peak RSS in bench)
#               qemu-user-static binfmt-support (foreign-platform RUN)
#               uidmap (newuidmap/newgidmap: rootless RUN with subordinate ids)
#   subids:     nobody (uid 65534, the rootless tests' user) gets 65536 subordinate
#               uids and gids in /etc/subuid and /etc/subgid
#               (and nodejs npm where npm is missing)
#   binfmt:     binfmt_misc mounted; qemu-aarch64 and qemu-arm registered with the F (fix binary)
#               flag, so a foreign RUN works inside a chroot or a container too
#   npm:        gitlab-ci-local@4.70.1            → .cache/tools/bin/gitlab-ci-local
#               azurite@3.35.0 (Azure Storage emulator; 3.36+ needs Node 21)
#                                                 → .cache/tools/bin/azurite-blob
#               s3rver@3.7.1 (an S3-protocol server: publish's bucket tests)
#                                                 → .cache/tools/bin/s3rver
#   go install: act@v0.2.89, crane@v0.22.1        → .cache/tools/bin
#   go build:   buildkitd, buildctl at go.mod's moby/buildkit version → .cache/tools/bin
set -euo pipefail
# dockerd lives in /usr/sbin, not on every PATH.
export PATH="$PATH:/usr/sbin:/sbin"

root=$(cd "$(dirname "$0")/../.." && pwd)
tools="$root/.cache/tools"
bin="$tools/bin"
mkdir -p "$bin"

# Debian package → what shows it is there. A command already on PATH counts
# (a CI runner with Docker CE installed needs no docker.io).
APT_PACKAGES=(
  "docker-registry:cmd:docker-registry"
  "docker.io:cmd:dockerd"
  "docker.io:cmd:docker"
  "runc:cmd:runc"
  "attr:cmd:setfattr"
  "busybox-static:pkg:busybox-static"
  "rsync:cmd:rsync"
  "apache2-utils:cmd:htpasswd"
  "git:cmd:git"
  "ca-certificates:file:/etc/ssl/certs/ca-certificates.crt"
  "nodejs:cmd:node"
  "npm:cmd:npm"
  "debootstrap:cmd:debootstrap"
  "buildah:cmd:buildah"
  "skopeo:cmd:skopeo"
  "qemu-user-static:pkg:qemu-user-static"
  "binfmt-support:pkg:binfmt-support"
  "time:file:/usr/bin/time"
  "curl:cmd:curl"
  "uidmap:cmd:newuidmap"
)
GITLAB_CI_LOCAL_VERSION=4.70.1
AZURITE_VERSION=3.35.0
S3RVER_VERSION=3.7.1
ACT_VERSION=v0.2.89
CRANE_VERSION=v0.22.1

installed=()
die() { echo "install.sh: $*" >&2; exit 1; }

# --- apt ---------------------------------------------------------------------
missing=()
present() { # kind what
  case $1 in
    cmd) command -v "$2" >/dev/null 2>&1 ;;
    pkg) [ "$(dpkg-query -W -f='${Status}' "$2" 2>/dev/null || true)" = "install ok installed" ] ;;
    file) [ -e "$2" ] ;;
  esac
}
for entry in "${APT_PACKAGES[@]}"; do
  IFS=: read -r pkg kind what <<<"$entry"
  if ! present "$kind" "$what" && [[ " ${missing[*]} " != *" $pkg "* ]]; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
  echo "install.sh: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  installed+=("apt: ${missing[*]}")
fi

# --- binfmt_misc: qemu-aarch64 and qemu-arm with the F flag -----------------------
# F (fix binary) makes the kernel open the interpreter at registration time, so it
# runs inside a chroot or mount namespace that has no /usr/bin/qemu-aarch64-static.
binfmt=/proc/sys/fs/binfmt_misc
# A kernel without binfmt_misc (a kernel feature, not a tool) is reported, not
# fatal: the foreign-platform tests detect it and check the error instead.
if [ ! -e "$binfmt/register" ]; then
  [ "$(id -u)" = 0 ] || die "binfmt_misc is not mounted on $binfmt; as root: mount -t binfmt_misc binfmt_misc $binfmt"
  echo "install.sh: mount -t binfmt_misc binfmt_misc $binfmt"
  if mount -t binfmt_misc binfmt_misc "$binfmt"; then
    installed+=("binfmt_misc mounted on $binfmt")
  else
    echo "install.sh: this kernel has no binfmt_misc: foreign-platform RUN is not possible here; the tests check its error instead" >&2
  fi
fi
# qemu-aarch64 (linux/arm64 RUN) and qemu-arm (the arm probe of internal/sandbox).
handler_flags() { sed -n 's/^flags: *//p' "$binfmt/$1" 2>/dev/null || true; }
handler_enabled() { [ "$(head -n1 "$binfmt/$1" 2>/dev/null || true)" = enabled ]; }
[ -e "$binfmt/register" ] && for h in qemu-aarch64 qemu-arm; do
  if handler_enabled "$h" && [[ "$(handler_flags "$h")" == *F* ]]; then
    continue
  fi
  [ "$(id -u)" = 0 ] || die "$h is not registered in binfmt_misc with the F flag; as root: update-binfmts --enable $h"
  command -v update-binfmts >/dev/null 2>&1 || die "update-binfmts is missing (apt-get install -y binfmt-support)"
  if [ -e "$binfmt/$h" ]; then
    # registered without F (or disabled): drop it and register again from qemu-user-static's spec
    state=$(head -n1 "$binfmt/$h")
    echo "install.sh: re-registering $h ($state, flags '$(handler_flags "$h")'; want enabled with F)"
    echo -1 >"$binfmt/$h" || die "unregistering $h failed"
  fi
  echo "install.sh: update-binfmts --enable $h"
  update-binfmts --enable "$h" || die "update-binfmts --enable $h failed"
  handler_enabled "$h" || die "$h is not enabled in $binfmt after update-binfmts"
  [[ "$(handler_flags "$h")" == *F* ]] \
    || die "$h is registered with flags '$(handler_flags "$h")', want F (qemu-user-static's /usr/share/binfmts/$h needs fix_binary yes)"
  installed+=("binfmt: $h (flags $(handler_flags "$h"))")
done

# --- subordinate ids for nobody (rootless RUN tests) ------------------------------
# A range far above useradd's defaults (100000…), so no real user shares it.
SUBID_START=1879048192
for f in /etc/subuid /etc/subgid; do
  if ! grep -qE '^(nobody|65534):' "$f" 2>/dev/null; then
    [ "$(id -u)" = 0 ] || die "nobody has no subordinate ids in $f; as root: echo nobody:$SUBID_START:65536 >> $f"
    echo "install.sh: nobody:$SUBID_START:65536 >> $f"
    echo "nobody:$SUBID_START:65536" >>"$f" || die "writing $f failed"
    installed+=("subordinate ids for nobody in $f")
  fi
done

# --- npm tools, each in its own directory under the cache, so that another
# install (of these or of anything) neither clobbers it nor is clobbered.
# npm_tool PACKAGE VERSION BIN: installs PACKAGE@VERSION unless that version is
# there, and links its BIN into $bin.
npm_tool() {
  local pkg=$1 want=$2 exe=$3 dir="$tools/$1" have
  have=$(node -p "require('$dir/node_modules/$pkg/package.json').version" 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    echo "install.sh: npm install $pkg@$want"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$pkg@$want" >/dev/null \
      || die "npm install $pkg@$want failed"
    have=$(node -p "require('$dir/node_modules/$pkg/package.json').version" 2>/dev/null || true)
    [ "$have" = "$want" ] || die "$pkg reports version '$have', want $want"
    installed+=("npm: $pkg@$want")
  fi
  ln -sfn "../$pkg/node_modules/.bin/$exe" "$bin/$exe"
}
npm_tool gitlab-ci-local "$GITLAB_CI_LOCAL_VERSION" gitlab-ci-local
npm_tool azurite "$AZURITE_VERSION" azurite-blob # the Azure Blob emulator of the remote-context and publish tests
npm_tool s3rver "$S3RVER_VERSION" s3rver         # an S3-protocol server for the same tests

# --- go install ------------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go is not on PATH (Go is expected at /usr/local/go/bin)"
go_install() { # name module version want-version-substring
  local name=$1 module=$2 version=$3
  local have=""
  if [ -x "$bin/$name" ]; then
    have=$(go version -m "$bin/$name" 2>/dev/null | awk '$1 == "mod" { print $3; exit }')
  fi
  if [ "$have" != "$version" ]; then
    echo "install.sh: go install $module@$version"
    GOBIN="$bin" GOFLAGS=-mod=mod go install "$module@$version" || die "go install $module@$version failed"
    installed+=("go: $module@$version")
  fi
}
go_install act github.com/nektos/act "$ACT_VERSION"
go_install crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"

# --- BuildKit: the differential tests' oracle (Docker's builder) ------------------
# buildkitd and buildctl at the version of github.com/moby/buildkit in go.mod (the
# parser hoist imports), built from the module proxy's source as the main module
# (its go.mod has exclude directives, so `go install pkg@version` refuses it).
BUILDKIT_VERSION=$(awk '$1 == "github.com/moby/buildkit" { print $2; exit }' "$root/go.mod")
[ -n "$BUILDKIT_VERSION" ] || die "github.com/moby/buildkit is not in go.mod"
buildkit_have() { "$bin/buildkitd" --version 2>/dev/null | awk '{ print $3 }'; }
if [ ! -x "$bin/buildctl" ] || [ "$(buildkit_have)" != "$BUILDKIT_VERSION" ]; then
  echo "install.sh: building buildkitd and buildctl $BUILDKIT_VERSION from the module proxy (a few minutes, once)"
  src=$(cd "$root" && go mod download -json "github.com/moby/buildkit@$BUILDKIT_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || die "go mod download github.com/moby/buildkit@$BUILDKIT_VERSION failed"
  work=$(mktemp -d)
  cp -r "$src" "$work/buildkit" && chmod -R u+w "$work/buildkit"
  (cd "$work/buildkit" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
      -o "$bin/" ./cmd/buildkitd ./cmd/buildctl) || { rm -rf "$work"; die "building buildkitd $BUILDKIT_VERSION failed"; }
  rm -rf "$work"
  [ "$(buildkit_have)" = "$BUILDKIT_VERSION" ] || die "buildkitd reports version '$(buildkit_have)', want $BUILDKIT_VERSION"
  installed+=("go: buildkitd and buildctl $BUILDKIT_VERSION")
fi

if [ ${#installed[@]} -eq 0 ]; then
  echo "install.sh: nothing to install (rig tools in $bin)"
else
  printf 'install.sh: installed %s\n' "${installed[@]}"
fi
