#!/bin/sh
# run-on-host.sh TOOL [ARGS...] — what every host action runs
# (uses: hoist-ci/hoist/actions/<tool>/host@v0, generated from internal/spec):
# installs the static binaries of hoist release $HOIST_VERSION on this runner,
# once per version and architecture, then runs TOOL with the action's
# INPUT_* variables. docs/pipelines.md says why the binaries come from the
# release's archive and not out of the image.
#
#   HOIST_VERSION      the release (set by the action: the version it belongs to)
#   HOIST_RELEASE_URL  where the releases are (default
#                      https://github.com/hoist-ci/hoist/releases/download); the
#                      archive is <url>/v<version>/hoist_<version>_linux_<arch>.tar.gz,
#                      checked against <url>/v<version>/checksums.txt. file:// works
#                      (hoist's own test, an air-gapped mirror).
#   RUNNER_TOOL_CACHE  the cache: <cache>/hoist/<version>/<arch>, complete when
#                      <arch>.complete exists (the layout of actions/tool-cache).
set -eu

fail() {
	echo "::error title=hoist host action::$*"
	exit 1
}

[ $# -ge 1 ] || fail "run-on-host.sh needs the tool to run (build-push, retag, bump, gate, publish)"
tool=$1
shift
version=${HOIST_VERSION:-}
[ -n "$version" ] || fail "HOIST_VERSION is not set: run this script through a host action (uses: hoist-ci/hoist/actions/$tool/host@v0)"
base=${HOIST_RELEASE_URL:-https://github.com/hoist-ci/hoist/releases/download}

os=$(uname -s)
[ "$os" = Linux ] || fail "the host actions run on Linux runners only (this runner is $os): use the container action hoist-ci/hoist/actions/$tool@v0"
case $(uname -m) in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) fail "hoist publishes no binaries for $(uname -m) (amd64 and arm64 only): use the container action hoist-ci/hoist/actions/$tool@v0" ;;
esac

cache_root=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}
dir=$cache_root/hoist/$version/$arch

if [ -f "$dir.complete" ]; then
	echo "hoist $version ($arch): from the tool cache $dir"
else
	command -v curl >/dev/null 2>&1 || fail "curl is not installed on this runner: install it, or use the container action hoist-ci/hoist/actions/$tool@v0"
	archive=hoist_${version}_linux_$arch.tar.gz
	url=$base/v$version
	mkdir -p "$cache_root/hoist/$version"
	work=$(mktemp -d "$cache_root/hoist/$version/.download.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	curl -fsSL --retry 3 -o "$work/$archive" "$url/$archive" ||
		fail "downloading $url/$archive failed: is v$version released, and HOIST_RELEASE_URL ($base) right?"
	curl -fsSL --retry 3 -o "$work/checksums.txt" "$url/checksums.txt" ||
		fail "downloading $url/checksums.txt failed"
	want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$work/checksums.txt")
	[ -n "$want" ] || fail "$url/checksums.txt lists no $archive"
	got=$(sha256sum "$work/$archive" | awk '{ print $1 }')
	[ "$got" = "$want" ] || fail "$archive has sha256 $got, but checksums.txt says $want: not installed"
	mkdir "$work/bin"
	tar -xzf "$work/$archive" -C "$work/bin"
	# Another job on this runner may have installed it meanwhile: keep theirs.
	if mv "$work/bin" "$dir" 2>/dev/null || [ -d "$dir" ]; then
		touch "$dir.complete"
	else
		fail "could not install hoist into $dir"
	fi
	rm -rf "$work"
	trap - EXIT
	echo "hoist $version ($arch): installed $url/$archive (sha256 $got) into $dir"
fi

# The action sets INPUT_<UPPER_SNAKE> for each input named in HOIST_INPUTS;
# on GitHub the tool reads the names the runner gives a container action,
# INPUT_<UPPER> with hyphens kept, which no POSIX shell can export: env(1)
# sets them. "$@" is the tool's arguments; the assignments and the command
# are appended, then the tool's arguments rotated behind them.
n=$#
for name in ${HOIST_INPUTS:-}; do
	case $name in *[!a-z0-9-]*) fail "HOIST_INPUTS lists $name, which is not an input name" ;; esac
	snake=$(printf %s "$name" | tr 'a-z-' 'A-Z_')
	eval "value=\${INPUT_$snake-}"
	set -- "$@" "INPUT_$(printf %s "$name" | tr 'a-z' 'A-Z')=$value"
done
# One binary per tool, or one multi-call binary named hoist.
if [ -x "$dir/$tool" ]; then
	set -- "$@" "$dir/$tool"
elif [ -x "$dir/hoist" ]; then
	set -- "$@" "$dir/hoist" "$tool"
else
	fail "hoist $version has no $tool in $dir"
fi
i=0
while [ $i -lt $n ]; do
	set -- "$@" "$1"
	shift
	i=$((i + 1))
done
exec env "$@"
