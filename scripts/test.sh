#!/usr/bin/env bash
# kadre's test command (README): installs what is missing, vets, and runs
# every test, including the interop tests against the reference
# implementation and the end-to-end tests with real processes. The race
# detector runs on the packages with concurrency of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -timeout 15m ./...
echo "== go test -race (store, curve, dht, client, agent)"
go test -count=1 -race -timeout 15m ./store/ ./rekey/internal/curve/ ./dht/ ./client/ ./agent/
