#!/usr/bin/env bash
# Abuse test (issues 7 and 12, RELIABILITY.md §2 and §6): builds kadre and
# runs every abuse case against real node processes on 127.0.0.1: the
# malformed-input cases against one node with default settings, then the
# free-identity, many-network, local-endpoint and disk cases against five
# nodes while an honest owner places 3-of-5 grants and a recipient
# decrypts. Prints the tables; exits non-zero if any case fails. Flags go
# to scripts/abuse (-h).
#   scripts/abuse.sh                 # 3 s floods against nodes with small limits (about 1 min)
#   scripts/abuse.sh -soak 5m        # every flood 5 minutes, nodes with default settings (about 40 min)
#   scripts/abuse.sh -target /ip4/127.0.0.1/tcp/P/p2p/ID   # input cases against a running node
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/abuse "$@"
