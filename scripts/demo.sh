#!/usr/bin/env bash
# kadre's first command (README): sets everything up and runs the story.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== the cryptographic story, in one process (rekey)"
go run ./scripts/umbral-story
