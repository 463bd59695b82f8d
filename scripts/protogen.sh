#!/usr/bin/env bash
# protogen.sh OUTDIR regenerates the Go code of proto/sipas/v1 into OUTDIR
# with the plugin versions pinned in tools/go.mod. The compiler is protoc
# 3.21.12 when it is installed (PROTOC=go forces the other), otherwise
# tools/protocgo, a Go stand-in built on bufbuild/protocompile that produces
# the same bytes (scripts/protocheck.sh compares the two where protoc exists).
set -euo pipefail
out=$(realpath -m "${1:?usage: protogen.sh OUTDIR}")
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root/tools" && go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc)
mkdir -p "$out"
cd "$root/proto"
if [ "${PROTOC:-}" != go ] && command -v protoc >/dev/null; then
  PATH="$bin:$PATH" protoc -I . \
    --go_out="$out" --go_opt=paths=source_relative \
    --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
    sipas/v1/*.proto
else
  (cd "$root/tools" && go build -o "$bin/" ./protocgo)
  "$bin/protocgo" -I . \
    --plugin "go=$bin/protoc-gen-go:$out:paths=source_relative" \
    --plugin "go-grpc=$bin/protoc-gen-go-grpc:$out:paths=source_relative" \
    sipas/v1/*.proto
fi
