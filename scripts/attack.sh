#!/usr/bin/env bash
# The trust model's attacks (SPEC.md §5.7) with real hosts, at a larger
# scale than the test command runs them: grinding sybil identities near
# every public point of a pair (KADRE_ATTACK_GRANTS grants, default 1000),
# eclipsing the pair's public points, forged and replayed receipts,
# diversity and admission, and the collusion after a revocation.
#   scripts/attack.sh            # prints each test's figures (RELIABILITY.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export KADRE_ATTACK_GRANTS=${KADRE_ATTACK_GRANTS:-1000}
go test -count=1 -timeout 60m -v -run 'Grinding|Diversity|Admission|Eclipse|Forged' ./dht | grep -E '^(=== RUN|--- |\s+attack_test)' || true
go test -count=1 -timeout 10m -v -run 'Collusion|Writers' ./client | grep -E '^(=== RUN|--- )'
