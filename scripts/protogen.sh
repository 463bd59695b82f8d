#!/usr/bin/env bash
# protogen.sh OUTDIR regenerates the Go code of proto/sipas/v1 into OUTDIR
# with the plugin versions pinned in tools/go.mod and protoc 3.21.12.
set -euo pipefail
out=$(realpath -m "${1:?usage: protogen.sh OUTDIR}")
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root/tools" && go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc)
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
mkdir -p "$out"
cd "$root/proto"
PATH="$bin:$PATH" protoc -I . \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  sipas/v1/*.proto
