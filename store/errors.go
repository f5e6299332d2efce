package store

import (
	"errors"

	"github.com/kadre/kadre/policy"
)

// Sentinel errors. Callers test them with errors.Is; the messages are meant to
// be shown to a node operator or relayed (for the lookup ones) to a recipient.
// The four that enforce a policy rule (not granted, revoked, expired, stale)
// also match that rule's policy sentinel, so the node maps them to wire codes
// without knowing this package.
var (
	// ErrNotGranted means no grant is stored for the key or any level of the
	// path asked about.
	ErrNotGranted = ruleError("store: not granted", policy.ErrNotGranted)

	// ErrRevoked means the deepest level that had anything was revoked by the
	// owner, or that a grant being stored was already revoked (its sequence
	// number is not newer than the tombstone's).
	ErrRevoked = ruleError("store: grant revoked by its owner", policy.ErrRevoked)

	// ErrExpired means the deepest level that had anything holds only an
	// expired grant, or that a grant being stored has already expired.
	ErrExpired = ruleError("store: grant expired", policy.ErrExpired)

	// ErrStale means a grant or revocation carries a sequence number that is
	// not greater than the last one seen for the same owner and path hash:
	// it is a replay or arrived out of order, and the owner must re-sign it
	// with a higher sequence number.
	ErrStale = ruleError("store: sequence number not newer than the last one seen (replay or out of order)", policy.ErrStaleSequence)

	// ErrInvalid means the caller passed a value the store cannot hold
	// (empty or oversized record, zero sequence number, bad path list).
	ErrInvalid = errors.New("store: invalid argument")

	// ErrWrongKey means the storage key does not open this store. Nothing in
	// the data directory was modified.
	ErrWrongKey = errors.New("store: wrong storage key for this data directory (check the key file, passphrase or environment variable)")

	// ErrLocked means another process has the data directory open.
	ErrLocked = errors.New("store: data directory is in use by another process (stop the other node or use another directory)")

	// ErrCorrupt means a value on disk failed authentication or decoding: it
	// was modified, moved to another key, or written by something else. It is
	// deliberately opaque about which check failed.
	ErrCorrupt = errors.New("store: stored value failed authentication")

	// ErrSchema means the store was written by a newer, incompatible version
	// of kadre; upgrade the binary or restore a backup made by this version.
	ErrSchema = errors.New("store: unsupported schema version")

	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("store: closed")

	// ErrBadExport means an export stream is malformed, truncated, was made
	// with another export key, or was modified. It is deliberately opaque.
	ErrBadExport = errors.New("store: export stream failed authentication")
)

// rule is a store sentinel that also matches the policy sentinel of the rule
// it enforces.
type rule struct {
	msg    string
	policy error
}

func ruleError(msg string, policyErr error) error { return &rule{msg: msg, policy: policyErr} }

func (e *rule) Error() string { return e.msg }
func (e *rule) Unwrap() error { return e.policy }
