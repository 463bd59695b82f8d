#!/usr/bin/env bash
# protocheck.sh fails when the committed generated code of proto/ is stale.
# It needs only Go: without protoc it generates with tools/protocgo. Where
# protoc is installed it generates with both and also fails if they differ,
# so the Go stand-in stays faithful to protoc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
compilers=(go)
command -v protoc >/dev/null && compilers=(protoc go)
status=0
for c in "${compilers[@]}"; do
  PROTOC=$c "$root/scripts/protogen.sh" "$tmp/$c"
  for f in "$tmp/$c"/sipas/v1/*.go; do
    if ! cmp -s "$f" "$root/proto/sipas/v1/$(basename "$f")"; then
      echo "stale generated code ($c): proto/sipas/v1/$(basename "$f") (run 'make proto' and commit)" >&2
      status=1
    fi
  done
  for f in "$root"/proto/sipas/v1/*.pb.go; do
    [ -f "$tmp/$c/sipas/v1/$(basename "$f")" ] || { echo "generated file without source ($c): $f" >&2; status=1; }
  done
done
[ $status -eq 0 ] && echo "generated code is up to date (checked with: ${compilers[*]})"
exit $status
