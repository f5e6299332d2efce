#!/usr/bin/env bash
# kadre's first command (README): sets everything up, starts a local
# testnet of 7 nodes, runs the story (grant /docs 3-of-5, encrypt
# /docs/report.txt, decrypt as the recipient, lose two holders and decrypt
# again, revoke, see the decryption refused), and stops the testnet.
# KEEP=1 leaves the testnet running (scripts/testnet.sh down stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export KADRE_TESTNET_DIR=${KADRE_TESTNET_DIR:-$PWD/.testnet}
scripts/testnet.sh down >/dev/null 2>&1 || true
if [ "${KEEP:-}" != 1 ]; then
  trap 'scripts/testnet.sh down >/dev/null 2>&1 || true' EXIT
fi
scripts/testnet.sh up 7
scripts/testnet.sh demo
