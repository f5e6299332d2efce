#!/usr/bin/env bash
# Installs what kadre's build and tests need, from the repository's own
# files: Go modules pinned in go.sum and the reference implementation pinned
# in interop/package-lock.json. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "kadre: error: $1 is not installed" >&2; echo "kadre: hint: $2" >&2; exit 1; }; }
need go "install Go 1.26 (https://go.dev/dl)"
need gcc "install gcc: LMDB is built with cgo (apt-get install gcc)"
need node "install Node.js 20 or later: the interop tests run the reference implementation"
need npm "install npm (it comes with Node.js)"

go mod download
ref=interop/node_modules/@nucypher/umbral-pre/package.json
if [ "$(node -p "require('./$ref').version" 2>/dev/null)" != "0.10.0" ]; then
  (cd interop && npm ci --no-audit --no-fund --loglevel=error)
fi
