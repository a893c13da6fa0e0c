#!/usr/bin/env bash
# Installs what the test rig needs and is missing; prints what it installed.
# Idempotent: a second run installs nothing. Fails loudly on any failure.
#
#   apt:        docker-registry docker.io busybox-static rsync apache2-utils git ca-certificates
#               (and nodejs npm where npm is missing)
#   npm:        gitlab-ci-local@4.70.1            → .cache/tools/bin/gitlab-ci-local
#   go install: act@v0.2.89, crane@v0.22.1        → .cache/tools/bin
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
  "busybox-static:pkg:busybox-static"
  "rsync:cmd:rsync"
  "apache2-utils:cmd:htpasswd"
  "git:cmd:git"
  "ca-certificates:file:/etc/ssl/certs/ca-certificates.crt"
  "nodejs:cmd:node"
  "npm:cmd:npm"
)
GITLAB_CI_LOCAL_VERSION=4.70.1
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

# --- gitlab-ci-local (npm, project-local) --------------------------------------
glcl_dir="$tools/gitlab-ci-local"
glcl_version() { "$glcl_dir/node_modules/.bin/gitlab-ci-local" --version 2>/dev/null || true; }
if [ "$(glcl_version)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
  echo "install.sh: npm install gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION"
  mkdir -p "$glcl_dir"
  npm install --prefix "$glcl_dir" --no-audit --no-fund --loglevel=error \
    "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" >/dev/null \
    || die "npm install gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION failed"
  [ "$(glcl_version)" = "$GITLAB_CI_LOCAL_VERSION" ] \
    || die "gitlab-ci-local reports version '$(glcl_version)', want $GITLAB_CI_LOCAL_VERSION"
  installed+=("npm: gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION")
fi
ln -sfn ../gitlab-ci-local/node_modules/.bin/gitlab-ci-local "$bin/gitlab-ci-local"

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

if [ ${#installed[@]} -eq 0 ]; then
  echo "install.sh: nothing to install (rig tools in $bin)"
else
  printf 'install.sh: installed %s\n' "${installed[@]}"
fi
