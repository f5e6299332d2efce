#!/usr/bin/env bash
# Measures kadre's streaming file encryption (package kfile) against raw
# XChaCha20-Poly1305 over 1 GiB in one run and prints the table that
# BENCHMARKS.md records (target: kadre ≥ 80 % of raw).
# Usage: scripts/bench-file.sh [-mib 1024] [-rounds 5] [-strict]
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./scripts/bench-file "$@"
