#!/usr/bin/env bash
# A local kadre testnet: N nodes, each on a loopback address of its own
# (127.0.i+1.1: on Linux all of 127/8 is loopback) so that placement's
# one-fragment-per-network rule sees N networks, each with its own data
# directory, and the whole story as a demo.
#
#   scripts/testnet.sh up [N]     start N nodes (default 7) and wait for the DHT
#   scripts/testnet.sh status     each node's /status
#   scripts/testnet.sh logs [i]   the logs (of node i)
#   scripts/testnet.sh stop i     stop node i (kill -TERM)
#   scripts/testnet.sh start i    start node i again from its data directory
#   scripts/testnet.sh demo       grant, encrypt, decrypt, lose holders, revoke
#   scripts/testnet.sh down       stop every node and remove the testnet
#
# Environment: KADRE_TESTNET_DIR (default .testnet), KADRE_TESTNET_PORT
# (first libp2p port, default 47100; metrics on port+100).
# After `up`, `source .testnet/env` points the kadre commands at it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${KADRE_TESTNET_DIR:-$ROOT/.testnet}
PORT=${KADRE_TESTNET_PORT:-47100}
BIN=$DIR/bin/kadre

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
die() { echo "testnet: error: $*" >&2; exit 1; }

build() {
  mkdir -p "$DIR/bin"
  go build -o "$BIN" ./cmd/node
}

count() { ls -d "$DIR"/node* 2>/dev/null | wc -l; }
p2p_port() { echo $((PORT + $1)); }
metrics_port() { echo $((PORT + 100 + $1)); }
pid_of() { cat "$DIR/node$1/pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
ip_of() { echo "127.$(($1 / 254)).$(($1 % 254 + 1)).1"; }
# node_status i: node i's /status, with the token of its endpoint.cookie.
node_status() {
  local c="$DIR/node$1/data/endpoint.cookie"
  [ -r "$c" ] || return 1
  curl -fs -H "Authorization: Bearer $(cat "$c")" "http://127.0.0.1:$(metrics_port "$1")/status"
}
addr_of() { echo "/ip4/$(ip_of "$1")/tcp/$(p2p_port "$1")/p2p/$(cat "$DIR/node$1/peer")"; }

start_node() {
  local i=$1 d="$DIR/node$1" boot=""
  mkdir -p "$d"
  if [ "$i" -ne 0 ]; then boot=$(addr_of 0); fi
  if [ "$i" -gt 1 ]; then boot="$boot,$(addr_of 1)"; fi
  alive "$i" && return 0
  rm -f "$d/data/node.json"
  nohup "$BIN" run -data-dir "$d/data" -listen "/ip4/$(ip_of "$i")/tcp/$(p2p_port "$i")" \
    -metrics-addr "127.0.0.1:$(metrics_port "$i")" -bootstrap "$boot" \
    -refresh-interval 15s -max-grant-duration 365d \
    >>"$d/log" 2>&1 &
  echo $! >"$d/pid"
  # The peer ID is known once the node wrote node.json.
  for _ in $(seq 100); do
    if [ -s "$d/data/node.json" ] && node_status "$i" >/dev/null 2>&1; then
      sed -n 's/.*"peer_id": "\(.*\)".*/\1/p' "$d/data/node.json" >"$d/peer"
      return 0
    fi
    alive "$i" || { tail -5 "$d/log" >&2; die "node $i exited"; }
    sleep 0.1
  done
  die "node $i did not start (see $d/log)"
}

wait_converged() {
  local n=$1 want=$(( $1 - 1 < 20 ? $1 - 1 : 20 ))
  for _ in $(seq 300); do
    local ok=1
    for i in $(seq 0 $((n - 1))); do
      alive "$i" || continue
      rt=$(node_status "$i" | sed -n 's/.*"routing_table":\([0-9]*\).*/\1/p')
      [ "${rt:-0}" -ge "$want" ] || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.2
  done
  die "the DHT did not converge in 60 s"
}

write_env() {
  local boot="" n; n=$(count)
  for i in 0 1 2; do [ "$i" -lt "$n" ] && boot="${boot:+$boot,}$(addr_of "$i")"; done
  cat >"$DIR/env" <<ENV
# source this file to point kadre at the local testnet
export KADRE_BOOTSTRAP="$boot"
export PATH="$DIR/bin:\$PATH"
ENV
}

up() {
  local n=${1:-7}
  [ "$n" -ge 1 ] || die "need at least one node"
  build
  say "starting $n nodes in $DIR"
  for i in $(seq 0 $((n - 1))); do start_node "$i"; done
  wait_converged "$n"
  write_env
  say "testnet up: $n nodes; run: source $DIR/env"
}

status() {
  local n; n=$(count)
  [ "$n" -gt 0 ] || die "no testnet in $DIR (scripts/testnet.sh up)"
  for i in $(seq 0 $((n - 1))); do
    if alive "$i"; then
      printf 'node %d: %s\n' "$i" "$(node_status "$i" || echo unreachable)"
    else
      printf 'node %d: stopped\n' "$i"
    fi
  done
}

down() {
  local n; n=$(count)
  for i in $(seq 0 $((n - 1))); do
    p=$(pid_of "$i"); [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for i in $(seq 0 $((n - 1))); do
    for _ in $(seq 50); do alive "$i" || break; sleep 0.1; done
    alive "$i" && kill -9 "$(pid_of "$i")" 2>/dev/null || true
  done
  rm -rf "$DIR"
  say "testnet down"
}

# stop_node I: SIGTERM, then wait for the node to exit.
stop_node() {
  local p; p=$(pid_of "$1")
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || true
  for _ in $(seq 100); do alive "$1" || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}

# node_index PEER: which testnet node has this peer ID.
node_index() {
  for d in "$DIR"/node*; do
    [ "$(cat "$d/peer" 2>/dev/null)" = "$1" ] && { basename "$d" | sed 's/node//'; return; }
  done
}

demo() {
  [ "$(count)" -ge 5 ] || die "the demo needs at least 5 nodes (scripts/testnet.sh up)"
  # shellcheck disable=SC1091
  source "$DIR/env"
  export KADRE_PASSPHRASE=
  local A="$DIR/alice" B="$DIR/bob" C="$DIR/carol" D="$DIR/dave" W="$DIR/work"
  rm -rf "$A" "$B" "$C" "$D" "$W"; mkdir -p "$W"
  say "alice, bob, carol and dave create identities"
  kadre keygen -home "$A" >/dev/null
  BOB=$(kadre keygen -home "$B")
  CAROL=$(kadre keygen -home "$C")
  DAVE=$(kadre keygen -home "$D")
  echo "bob is $BOB"
  say "alice grants /docs to bob, 3-of-5, and to carol"
  kadre grant -home "$A" -to "$BOB" -path /docs -m 3 -n 5 -expires 30d | tee "$W/grant.txt"
  kadre grant -home "$A" -to "$CAROL" -path /docs -m 3 -n 5 -expires 30d >/dev/null
  say "alice lets dave write under /docs/sensors (he gets a certificate, no secret)"
  kadre writer add -home "$A" -to "$DAVE" -path /docs/sensors >"$W/dave.cert"
  printf 't,celsius\n0,21.5\n' >"$W/sensor.csv"
  kadre encrypt -home "$D" -writer "@$W/dave.cert" -path /docs/sensors/7.csv -o "$W/sensor.kadre" "$W/sensor.csv"
  kadre decrypt -home "$C" -o "$W/carol-sensor.csv" "$W/sensor.kadre"
  cmp "$W/sensor.csv" "$W/carol-sensor.csv" && echo "carol read dave's file, signed by dave"
  if grep -q sensors "$W/sensor.kadre"; then die "the path is in the file in clear"; fi
  say "alice encrypts /docs/report.txt"
  printf 'Q3 report\nrevenue: up\ncosts: down\n' >"$W/report.txt"
  kadre encrypt -home "$A" -path /docs/report.txt -o "$W/report.kadre" "$W/report.txt"
  ls -l "$W/report.kadre"
  say "bob decrypts it"
  kadre decrypt -home "$B" -o "$W/bob.txt" "$W/report.kadre"
  cmp "$W/report.txt" "$W/bob.txt" && cat "$W/bob.txt"
  say "two of the five holders stop"
  holders=$(kadre grants -home "$A" -json | sed -n 's/.*"peer": "\(.*\)".*/\1/p')
  stopped=0
  for h in $holders; do
    i=$(node_index "$h")
    [ -n "$i" ] || continue
    [ "$i" -eq 0 ] && continue
    echo "stopping node $i ($h)"
    stop_node "$i"; stopped=$((stopped + 1))
    [ $stopped -eq 2 ] && break
  done
  say "bob decrypts again with three holders"
  kadre decrypt -home "$B" -o "$W/bob2.txt" "$W/report.kadre"
  cmp "$W/report.txt" "$W/bob2.txt" && echo "decrypted: identical"
  say "the stopped holders come back"
  for i in $(seq 0 $(($(count) - 1))); do alive "$i" || start_node "$i"; done
  say "alice revokes /docs for bob: the prefix moves to a new key epoch, carol is granted again"
  kadre revoke -home "$A" -to "$BOB" -path /docs
  say "bob tries again: refused"
  if kadre decrypt -home "$B" -o "$W/bob3.txt" "$W/report.kadre"; then
    die "decryption succeeded after revocation"
  fi
  say "alice writes /docs/q4.txt after the revocation; carol reads it and the old report"
  printf 'Q4 report\n' >"$W/q4.txt"
  kadre encrypt -home "$A" -path /docs/q4.txt -o "$W/q4.kadre" "$W/q4.txt"
  kadre decrypt -home "$C" -o "$W/carol-q4.txt" "$W/q4.kadre"
  cmp "$W/q4.txt" "$W/carol-q4.txt"
  kadre decrypt -home "$C" -o "$W/carol-report.txt" "$W/report.kadre"
  cmp "$W/report.txt" "$W/carol-report.txt" && echo "carol: both identical"
  say "demo complete"
}

case "${1:-}" in
  up) up "${2:-7}" ;;
  down) down ;;
  status) status ;;
  logs) if [ -n "${2:-}" ]; then cat "$DIR/node$2/log"; else tail -n +1 "$DIR"/node*/log; fi ;;
  stop) stop_node "$2" ;;
  start) start_node "$2" ;;
  demo) demo ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
