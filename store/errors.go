package store

import "errors"

// Sentinel errors. Callers test them with errors.Is; the messages are meant to
// be shown to a node operator or relayed (for the lookup ones) to a recipient.
var (
	// ErrNotGranted means no grant is stored for the key or any level of the
	// path asked about.
	ErrNotGranted = errors.New("store: not granted")

	// ErrRevoked means the deepest level that had anything was revoked by the
	// owner, or that a grant being stored was already revoked (its sequence
	// number is not newer than the tombstone's).
	ErrRevoked = errors.New("store: grant revoked by its owner")

	// ErrExpired means the deepest level that had anything holds only an
	// expired grant, or that a grant being stored has already expired.
	ErrExpired = errors.New("store: grant expired")

	// ErrStale means a grant or revocation carries a sequence number that is
	// not greater than the last one seen for the same owner and path hash:
	// it is a replay or arrived out of order, and the owner must re-sign it
	// with a higher sequence number.
	ErrStale = errors.New("store: sequence number not newer than the last one seen (replay or out of order)")

	// ErrTooLong means a grant expires later than Options.MaxGrantLifetime
	// allows; the owner must grant a shorter period.
	ErrTooLong = errors.New("store: grant lasts longer than this node keeps grants")

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
