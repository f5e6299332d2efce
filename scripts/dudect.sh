#!/usr/bin/env bash
# Statistical timing check (dudect) of the constant-time curve code: secret
# scalar multiplications and inversions against a variable-time control.
# Usage: scripts/dudect.sh [-n 200000] [-rounds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./rekey/internal/cmd/dudect "$@"
