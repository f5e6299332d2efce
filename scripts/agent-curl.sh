#!/usr/bin/env bash
# The agent's API with curl, as a shell script would use it (SPEC.md §8):
# alice grants /curl to bob, encrypts a file, bob decrypts it (streamed),
# recovers its key alone, is refused without his token and from a web
# page's origin, alice revokes and bob is refused as revoked.
#
#   scripts/agent-curl.sh <alice home> <bob home>
#
# Both homes must have an agent running (kadre agent). Exits non-zero at
# the first check that fails. Needs curl and jq.
set -euo pipefail
ALICE=$1 BOB=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "agent-curl: FAIL: $*" >&2; exit 1; }

url() { jq -r .url "$1/agent.json"; }
# api HOME METHOD PATH [curl args…]: the body on stdout, the status in $work/status.
api() {
  local home=$1 method=$2 path=$3
  shift 3
  curl -sS -X "$method" -H "Authorization: Bearer $(cat "$home/agent.cookie")" \
    -w '%{http_code}' -o "$work/body" "$@" "$(url "$home")$path" >"$work/status"
  cat "$work/body"
}
status() { cat "$work/status"; }
expect() { [ "$(status)" = "$1" ] || fail "$2: HTTP $(status), want $1: $(cat "$work/body")"; }

bob_id=$(api "$BOB" GET /v1/identity | jq -r .identity)
expect 200 identity
[[ $bob_id == kadre1* ]] || fail "bob's identity is $bob_id"

api "$ALICE" POST /v1/grants -H 'Content-Type: application/json' \
  -d "{\"to\":\"$bob_id\",\"path\":\"/curl\",\"m\":2,\"n\":3,\"expires\":\"7d\"}" >"$work/grant.json"
expect 201 grant
[ "$(jq -r .placed "$work/grant.json")" = 3 ] || fail "grant placed $(jq -r .placed "$work/grant.json") of 3"

head -c 3000000 /dev/urandom >"$work/plain.bin"
api "$ALICE" POST '/v1/encrypt?path=/curl/data.bin' --data-binary @"$work/plain.bin" >"$work/data.kadre"
expect 200 encrypt
api "$BOB" POST /v1/decrypt --data-binary @"$work/data.kadre" -D "$work/headers" >"$work/out.bin"
expect 200 decrypt
cmp -s "$work/plain.bin" "$work/out.bin" || fail "the decrypted file differs"
grep -qi '^X-Kadre-Path: %2Fcurl%2Fdata.bin' "$work/headers" || fail "no X-Kadre-Path header"

key=$(api "$BOB" POST /v1/decrypt-key --data-binary @"$work/data.kadre")
expect 200 decrypt-key
[ "$(jq -r .path <<<"$key")" = /curl/data.bin ] && [ "$(jq -r '.data_key | length' <<<"$key")" = 64 ] || fail "decrypt-key: $key"

# Refusals: no token, a wrong one, a page's origin, bad JSON.
code=$(curl -sS -o "$work/body" -w '%{http_code}' "$(url "$BOB")/v1/identity")
[ "$code" = 401 ] && [ "$(jq -r .error.code "$work/body")" = UNAUTHORIZED ] || fail "no token: $code $(cat "$work/body")"
code=$(curl -sS -o "$work/body" -w '%{http_code}' -H "Authorization: Bearer $(printf '0%.0s' $(seq 64))" "$(url "$BOB")/v1/identity")
[ "$code" = 401 ] || fail "wrong token: $code"
api "$BOB" POST /v1/decrypt -H 'Origin: https://evil.example' --data-binary @"$work/data.kadre" >/dev/null
expect 403 "cross-origin decrypt"
[ "$(jq -r .error.code "$work/body")" = FORBIDDEN_ORIGIN ] || fail "origin: $(cat "$work/body")"
api "$ALICE" POST /v1/grants -H 'Content-Type: application/json' -d '{"to":' >/dev/null
expect 400 "bad JSON"
[ "$(jq -r .error.code "$work/body")" = BAD_JSON ] || fail "bad JSON: $(cat "$work/body")"

api "$ALICE" POST /v1/revoke -H 'Content-Type: application/json' -d "{\"to\":\"$bob_id\",\"path\":\"/curl\"}" >"$work/revoke.json"
expect 200 revoke
[ "$(jq -r .dead "$work/revoke.json")" = true ] || fail "revoke: $(cat "$work/revoke.json")"
api "$BOB" POST /v1/decrypt --data-binary @"$work/data.kadre" >/dev/null
expect 403 "decrypt after the revocation"
[ "$(jq -r .error.code "$work/body")" = REVOKED ] || fail "after the revocation: $(cat "$work/body")"
echo "agent-curl: ok (hint after the revocation: $(jq -r .error.hint "$work/body"))"
