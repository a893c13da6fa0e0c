#!/usr/bin/env bash
# Regenerates expected.json for every case here with a real Docker engine
# (BuildKit), as testdata/README.md describes. Needs DOCKER_HOST pointing at
# an engine that has hoist-rig/busybox:latest loaded (test/rig/up.sh, then
# go run ./test/rig/mkimage --tag hoist-rig/busybox:latest --tarball X &&
# docker load -i X) and the buildx plugin.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
base_ids=$(docker image inspect -f '{{join .RootFS.Layers ","}}' hoist-rig/busybox:latest)
for dir in */; do
  c=${dir%/}
  args=()
  if [ -f "$c/build-args" ]; then
    while IFS= read -r line; do [ -n "$line" ] && args+=(--build-arg "$line"); done <"$c/build-args"
  fi
  if [ -f "$c/target" ]; then args+=(--target "$(cat "$c/target")"); fi
  DOCKER_BUILDKIT=1 docker build -q "${args[@]}" -t "hoist-golden/$c" "$c" >/dev/null
  docker save "hoist-golden/$c" >"$tmp/image.tar"
  python3 - "$tmp/image.tar" "$base_ids" >"$c/expected.json" <<'PY'
import hashlib, io, json, sys, tarfile
image = tarfile.open(sys.argv[1])
base = set(sys.argv[2].split(","))
manifest = json.load(image.extractfile("manifest.json"))[0]
c = json.load(image.extractfile(manifest["Config"]))
# Normalised: created times, ids and engine versions legitimately differ;
# layer digests depend on file times, so only their number is kept, with the
# entries of every layer the build added (not the base's).
out = {k: c[k] for k in ("architecture", "os", "variant", "author") if c.get(k)}
out["config"] = {k: v for k, v in c.get("config", {}).items() if v not in (None, "", [], {}, False)}
out["layers"] = len(c["rootfs"]["diff_ids"])
entries = []
for diff_id, path in zip(c["rootfs"]["diff_ids"], manifest["Layers"]):
    if diff_id in base:
        continue
    layer = tarfile.open(fileobj=io.BytesIO(image.extractfile(path).read()))
    lines = []
    for m in layer.getmembers():
        kind = "dir" if m.isdir() else "link" if m.issym() else "file" if m.isfile() else "other"
        line = "%s %04o %d:%d %s" % (kind, m.mode & 0o7777, m.uid, m.gid, m.name.rstrip("/"))
        if m.issym():
            line += " -> " + m.linkname
        if m.isfile():
            line += " sha256:" + hashlib.sha256(layer.extractfile(m).read()).hexdigest()[:12]
        lines.append(line)
    entries.append(lines)
out["layer_entries"] = entries
json.dump(out, sys.stdout, indent=2, sort_keys=True)
print()
PY
  docker rmi -f "hoist-golden/$c" >/dev/null
  echo "$c: $(wc -c <"$c/expected.json") bytes"
done
