// Package explain is how kadre explains an error to people and programs,
// in one place for the CLI and the agent's API: a stable code (the names
// of SPEC.md §9.4), the error's text, and what to do next. The CLI prints
// "kadre: error: <message>" and "kadre: hint: <hint>", or the Problem as
// JSON with -json; the agent answers with the Problem as JSON. The library
// packages return sentinels; codes and hints are added here, at the edge.
package explain

import (
	"errors"
	"fmt"
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

// Problem is an explained error, as the agent and `-json` print it.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// Nodes says, after a failed collection, what each node answered
	// (dht.Outcome names: REVOKED, UNREACHABLE, …).
	Nodes map[string]string `json:"nodes,omitempty"`
}

// Error is an error with a code and a hint that override the ones its
// sentinels give.
type Error struct {
	Err   error
	Code  string
	Hint  string
	Nodes map[string]string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// WithHint attaches a hint to err (nil stays nil); its code stays what
// Code finds.
func WithHint(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Hint: fmt.Sprintf(format, args...)}
}

// WithCode attaches a code and a hint to err.
func WithCode(code string, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Code: code, Hint: fmt.Sprintf(format, args...)}
}

// Of explains err.
func Of(err error) Problem {
	if err == nil {
		return Problem{}
	}
	p := Problem{Code: Code(err), Message: err.Error(), Hint: Hint(err)}
	var e *Error
	for x := err; errors.As(x, &e); x = e.Err {
		if p.Nodes == nil && e.Nodes != nil {
			p.Nodes = e.Nodes
		}
	}
	return p
}

// Code is err's code: the outermost Error's, else the one its sentinels
// give, else ERROR.
func Code(err error) string {
	var e *Error
	for x := err; errors.As(x, &e); x = e.Err {
		if e.Code != "" {
			return e.Code
		}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return "ERROR"
}

// Hint is err's hint: the outermost Error's, else the one its sentinels
// give, else "".
func Hint(err error) string {
	var e *Error
	for x := err; errors.As(x, &e); x = e.Err {
		if e.Hint != "" {
			return e.Hint
		}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.hint
		}
	}
	return ""
}

// NotGrantedHint is the hint for a file no grant covers.
const NotGrantedHint = "no grant covers this file's path for your identity; ask the owner to grant a prefix of it to `kadre identity`"

// sentinels give the default code and hint of the library's errors, most
// telling first.
var sentinels = []struct {
	err  error
	code string
	hint string
}{
	{client.ErrNoIdentity, "NO_IDENTITY", "create one with `kadre keygen`"},
	{client.ErrIdentityExists, "IDENTITY_EXISTS", "print it with `kadre identity`; -force replaces it"},
	{client.ErrWrongPassphrase, "WRONG_PASSPHRASE", "type the passphrase given to `kadre keygen`, or set KADRE_PASSPHRASE"},
	{client.ErrPassphraseNeeded, "PASSPHRASE_NEEDED", "set KADRE_PASSPHRASE, or run the command on a terminal"},
	{client.ErrWeakPassphrase, "WEAK_PASSPHRASE", "choose a longer passphrase"},
	{client.ErrIdentityFile, "BAD_IDENTITY_FILE", "restore identity.json from a backup"},
	{client.ErrNoBootstrap, "NO_BOOTSTRAP", "pass -bootstrap /ip4/…/tcp/…/p2p/…, set KADRE_BOOTSTRAP, or source the testnet's env file"},
	{client.ErrJoin, "JOIN_FAILED", "check that the bootstrap nodes are running (kadre status, scripts/testnet.sh status)"},
	{policy.ErrInvalidIdentity, "INVALID_IDENTITY", "the recipient prints their identity with `kadre identity`; `kadre grants` lists the ones you granted to"},
	{policy.ErrInvalidPath, "INVALID_PATH", "paths look like /docs or /home/ubuntu/report.txt"},
	{policy.ErrBadThreshold, "BAD_THRESHOLD", fmt.Sprintf("need 1 ≤ m ≤ n ≤ %d", policy.MaxShares)},
	{client.ErrBadExpiry, "BAD_EXPIRY", "-expires takes a duration (30d, 12h, 2w, 1y) or a date in the future (2027-01-01, 2027-01-01T12:00:00Z)"},
	{policy.ErrExpiryTooLong, "EXPIRY_TOO_LONG", "choose a shorter -expires: `kadre status` shows the longest grant each node keeps"},
	{kfile.ErrNotKadreFile, "NOT_KADRE_FILE", "decrypt takes a file made by `kadre encrypt`"},
	{kfile.ErrUnsigned, "UNSIGNED", "pass -allow-unsigned to read it anyway; its owner can make a signed copy with `kadre migrate`"},
	{kfile.ErrBadSignature, "BAD_SIGNATURE", "the file was not written by whom it claims, or was changed since: do not trust its content"},
	{kfile.ErrNotAuthorized, "NOT_AUTHORIZED", "the file was not written by whom it claims, or was changed since: do not trust its content"},
	{client.ErrPathMismatch, "PATH_MISMATCH", "the file was not written by whom it claims, or was changed since: do not trust its content"},
	{client.ErrWriterRevoked, "WRITER_REVOKED", "the owner no longer vouches for files of this writer; ask her for a copy she wrote"},
	{kfile.ErrCorrupt, "CORRUPT", "the file was damaged or modified; get another copy"},
	{kfile.ErrTruncated, "TRUNCATED", "the file ends early (an interrupted copy?); get the whole file"},
	{kfile.ErrWrongKey, "WRONG_KEY", "the file's header was modified, or the grant does not open it"},
	{kfile.ErrMalformedHeader, "MALFORMED_HEADER", "the file's header is damaged; get another copy"},
	{kfile.ErrUnsupportedVersion, "UNSUPPORTED_VERSION", "a newer kadre wrote this file; upgrade kadre"},
	{kfile.ErrUnsupportedAlgorithm, "UNSUPPORTED_ALGORITHM", "a newer kadre wrote this file; upgrade kadre"},
	{policy.ErrNotGranted, "NOT_GRANTED", NotGrantedHint},
	{dht.ErrNotEnoughCFrags, "TOO_FEW_ANSWERS", "too few nodes holding the grant answered; check `kadre status` and try again"},
	{policy.ErrMalformed, "MALFORMED", ""},
	{dht.ErrPlacement, "TOO_FEW_PLACED", "start more nodes (kadre status shows what is reachable) and grant again"},
}

// Node says in a few words why a node gave no usable answer.
func Node(err error) string {
	o := dht.Classify(err)
	if o == dht.BadProof || o == dht.BadAnswer || o == dht.Failed {
		return o.Words() + ": " + err.Error()
	}
	return o.Words()
}

// Outcomes names every node's answer.
func Outcomes(nodes map[peer.ID]error) map[string]string {
	if len(nodes) == 0 {
		return nil
	}
	m := map[string]string{}
	for p, err := range nodes {
		m[p.String()] = string(dht.Classify(err))
	}
	return m
}

// Collection explains a failed collection from what the nodes answered:
// revoked, expired or not granted say more than "too few answered".
func Collection(err error, nodes map[peer.ID]error) error {
	if err == nil {
		return nil
	}
	counts := map[dht.Outcome]int{}
	for _, e := range nodes {
		counts[dht.Classify(e)]++
	}
	out := &Error{Err: err, Nodes: Outcomes(nodes)}
	switch {
	case counts["REVOKED"] > 0:
		out.Code, out.Hint = "REVOKED", "the owner revoked this grant; ask them for a new one"
	case counts["EXPIRED"] > 0:
		out.Code, out.Hint = "EXPIRED", "the grant expired; ask the owner to grant again"
	case counts["NOT_GRANTED"] > 0 || counts["NOT_RECIPIENT"] > 0:
		out.Code, out.Hint = "NOT_GRANTED", NotGrantedHint
	case counts["RATE_LIMITED"] > 0:
		out.Code, out.Hint = "RATE_LIMITED", "the nodes limit how fast one identity may ask; try again in a moment"
	}
	return out
}

// Decrypt explains why a file's key was not recovered (fk may be nil).
func Decrypt(err error, fk *client.FileKey) error {
	if err == nil {
		return nil
	}
	if fk != nil && fk.Nodes != nil && errors.Is(err, dht.ErrNotEnoughCFrags) {
		return Collection(err, fk.Nodes)
	}
	return err
}

// Lines returns "node <peer>: <words>" lines for every node's answer,
// sorted, for `kadre decrypt -v` and failed decryptions.
func Lines(nodes map[peer.ID]error) []string {
	var lines []string
	for p, err := range nodes {
		lines = append(lines, fmt.Sprintf("node %s: %s", p, Node(err)))
	}
	sort.Strings(lines)
	return lines
}
