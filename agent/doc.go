// Package agent is kadre's user agent (`kadre agent`, SPEC.md §9): a
// long-running light client that holds the user's identity, unlocked
// once, and a warm libp2p host, and answers a local JSON/HTTP API on a
// loopback address, so that programs in any language encrypt, grant,
// decrypt and revoke without shelling out, and many decryptions share
// one host and its batch requests.
//
// The API is described by openapi.json (served at /v1/openapi.json).
// Every request but that document's carries the token of the agent's
// cookie file (Authorization: Bearer …); requests with an Origin header
// are refused (auth.go). Errors are JSON problems with the codes and
// hints of the CLI (package internal/explain).
//
// Backend is what the CLI runs its user commands against: Remote when an
// agent serves the home directory (Discover), Local otherwise — the same
// code answers the agent's requests, so that both say the same.
//
// # Security
//
// The agent holds the user's keys in memory for as long as it runs.
// Anyone who can read the cookie file (the user, root) can use them
// through the API: decrypt what the user may, grant and revoke as the
// user. The listen address must be a loopback address; the agent refuses
// others, and requests whose Host header is not a loopback name.
package agent
