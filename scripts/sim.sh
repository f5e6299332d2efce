#!/usr/bin/env bash
# The simulator (issue 15): kadre's real code on 100, 300 or 1,000
# in-process nodes over go-libp2p's mock network at 50 ms RTT (±20 %, plus
# per-message jitter), with churn, faulty nodes and sybils. Prints the
# tables of BENCHMARKS.md §7. Flags after the size go to scripts/sim (-h).
#   scripts/sim.sh 100                 # all phases at 100 nodes (~30 min: churn and faults wait on vanished nodes)
#   scripts/sim.sh 300                 # the same at 300 nodes (~20 min with one sybil stage: -sybils 0.1)
#   scripts/sim.sh 1000                # 1,000 nodes, 50,000 grants (~16 GiB; -background 100000 needs more than 24 GiB;
#                                      #   -phases steady,churn,faults ~23 min; with -background 0 the sybil stage f=0.05 ~3 min,
#                                      #   f=0.2 after it ~40 min on 2 cores, most of it starting the sybils;
#                                      #   -sybils 0.3 alone ~2 h: 6 min to start them, 40 min of captures, 1 h of operations)
#   scripts/sim.sh 100 -phases steady  # one phase
# The quick variant (100 nodes, under a minute) is a test:
#   go test -run TestQuickSimulation ./internal/sim/
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-100}
shift || true
case "$size" in
100)  args=(-nodes 100 -grants 100 -decrypts 200 -background 10000 -idle 2m -phases steady,churn,faults,sybil) ;;
300)  args=(-nodes 300 -grants 100 -decrypts 200 -background 30000 -idle 2m -phases steady,churn,faults,sybil) ;;
1000) args=(-nodes 1000 -grants 100 -decrypts 200 -background 50000 -idle 4m -refresh 3m -capture-trials 300 -max-rss-gib 20 -gogc 150 -phases steady,sybil,churn) ;;
*)    args=(-nodes "$size") ;;
esac
exec go run ./scripts/sim "${args[@]}" "$@"
