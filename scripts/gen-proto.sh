#!/usr/bin/env bash
# Regenerates proto/kadre.pb.go from proto/kadre.proto. The generated code is
# committed, so building and testing never need protoc; run this only after
# editing the .proto. Needs protoc (Debian: apt-get install -y
# protobuf-compiler; the committed code was made with 3.21.12) and
# protoc-gen-go at the version go.mod pins for google.golang.org/protobuf.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
if ! command -v protoc >/dev/null; then
	echo "gen-proto: protoc not found; install it (apt-get install -y protobuf-compiler)" >&2
	exit 1
fi
GOBIN="$(go env GOPATH)/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${version}"
PATH="$(go env GOPATH)/bin:$PATH" protoc \
	--proto_path=proto \
	--go_out=proto --go_opt=paths=source_relative \
	kadre.proto
gofmt -l proto/kadre.pb.go
echo "gen-proto: wrote proto/kadre.pb.go (protoc $(protoc --version | cut -d' ' -f2), protoc-gen-go ${version})"
