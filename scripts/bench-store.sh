#!/usr/bin/env bash
# bench-store.sh: the store benchmarks at 1k, 100k and 1M stored grants
# (BENCHMARKS.md §3 records the figures). Building the 1M store takes
# about a minute; the whole run a few minutes.
#
#   scripts/bench-store.sh                      # all sizes
#   STORE_BENCH_SIZES=1000 scripts/bench-store.sh
#   STORE_BENCHTIME=3s scripts/bench-store.sh   # longer runs per benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${STORE_BENCH_SIZES:-1000,100000,1000000}
benchtime=${STORE_BENCHTIME:-1s}
# TMPDIR holds the benchmark stores (about 2 GiB at 1M).
exec go test ./store/ -run '^$' -bench '^BenchmarkStore$' -benchtime "$benchtime" -timeout 60m \
	-args -store.sizes="$sizes" -test.v=false "$@"
