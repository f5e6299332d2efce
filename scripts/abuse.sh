#!/usr/bin/env bash
# Abuse test (issue 7): builds kadre, starts one node on 127.0.0.1 with
# default settings, runs every abuse case against it and prints the table.
# Exits non-zero if any case fails. Flags go to scripts/abuse (-h).
#   scripts/abuse.sh [-flood 5s] [-target /ip4/127.0.0.1/tcp/P/p2p/ID]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/abuse "$@"
