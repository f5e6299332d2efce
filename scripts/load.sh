#!/usr/bin/env bash
# Load generator (issue 5) and sustained load (issue 7) against real kadre
# node processes on 127.0.0.1. Flags go to scripts/load (-h).
#   scripts/load.sh                          # rpc: 1 node, 32 clients, 10 s, crypto-only ceiling
#   scripts/load.sh -mode testnet            # 20 nodes: grant 3-of-5, lookup, collect latency
#   scripts/load.sh -duration 5m -rss-interval 5s   # sustained: RSS/heap/goroutines min/max/last
# The node runs with -peer-rate 1e6 for the load (kadre's default is 200/s).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/load "$@"
