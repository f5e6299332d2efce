#!/usr/bin/env bash
# Crash test (issue 7): 1,000 grants (3-of-5) placed and decrypted on 10
# kadre node processes on 127.0.0.1 while random nodes are killed with
# SIGKILL and restarted from their data directories; then every
# acknowledged fragment is checked over the network and in the stores.
# Exits 1 if an acknowledged fragment is lost or, with at most n−m nodes
# down, a decryption failed. Flags go to scripts/fault (-h).
#   scripts/fault.sh                  # the full run
#   scripts/fault.sh -grants 50       # smoke run
#   scripts/fault.sh -kill-every 300ms -down-min 500ms -down-max 2s
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/fault "$@"
