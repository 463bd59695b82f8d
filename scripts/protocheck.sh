#!/usr/bin/env bash
# protocheck.sh fails when the committed generated code of proto/ is stale.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v protoc >/dev/null; then
  if [ "${CI:-}" = "true" ]; then echo "protoc missing in CI: cannot check generated code" >&2; exit 1; fi
  echo "protoc not installed: skipping the generated-code check (apt-get install protobuf-compiler)" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/protogen.sh" "$tmp"
status=0
for f in "$tmp"/sipas/v1/*.go; do
  if ! cmp -s "$f" "$root/proto/sipas/v1/$(basename "$f")"; then
    echo "stale generated code: proto/sipas/v1/$(basename "$f") (run 'make proto' and commit)" >&2
    status=1
  fi
done
for f in "$root"/proto/sipas/v1/*.pb.go; do
  [ -f "$tmp/sipas/v1/$(basename "$f")" ] || { echo "generated file without source: $f" >&2; status=1; }
done
[ $status -eq 0 ] && echo "generated code is up to date"
exit $status
