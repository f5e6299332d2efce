#!/usr/bin/env bash
# Times kadre's Umbral against the reference (@nucypher/umbral-pre 0.10.0)
# side by side and prints the ratio table that BENCHMARKS.md records.
# Usage: scripts/bench-umbral.sh [-rounds 5] [-iters 200] [-warmup 50] [-json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d interop/node_modules/@nucypher/umbral-pre ] || (cd interop && npm ci --no-audit --no-fund)
go run ./rekey/internal/cmd/bench-umbral -interop interop "$@"
