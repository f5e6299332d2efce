#!/usr/bin/env bash
# Decrypting many small files under one grant, side by side in one run
# (issue 13): one `kadre decrypt` per file, `kadre decrypt -r` alone and
# through `kadre agent`, and the agent's batch API; then the nodes' CPU per
# capsule against a bare rekey.Reencrypt. A 10-node testnet of real
# processes on loopback addresses of their own. Flags go to
# scripts/bench-agent (-h). BENCHMARKS.md §6 has the figures.
#   scripts/bench-agent.sh                     # 10 nodes, 1,000 files
#   scripts/bench-agent.sh -files 200 -loop 50 # a quick run
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/bench-agent "$@"
