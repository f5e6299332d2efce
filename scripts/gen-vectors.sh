#!/usr/bin/env bash
# Regenerates rekey/testdata/vectors.json with the reference implementation
# (@nucypher/umbral-pre, pinned in interop/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/../interop"
[ -d node_modules/@nucypher/umbral-pre ] || npm ci --no-audit --no-fund
node gen-vectors.js "$@"
