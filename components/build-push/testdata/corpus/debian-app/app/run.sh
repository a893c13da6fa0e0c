#!/bin/bash
set -euo pipefail
declare -A counts=()
for f in /opt/app/data/*.txt; do
  counts[$(basename "$f" .txt)]=$(wc -l < "$f")
done
for k in $(printf '%s\n' "${!counts[@]}" | sort); do
  echo "$k: ${counts[$k]} lines"
done
cat /etc/built-on
if [ -f /opt/app/at-build ]; then
  echo "at build time:"
  sed 's/^/  /' /opt/app/at-build
fi
