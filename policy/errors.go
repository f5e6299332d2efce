package policy

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// them, so callers (the node's RPC handler, the CLI) test with errors.Is and
// map them to a wire code or a hint; the wrapped message adds the details a
// user needs (which field, which limit, which time).
var (
	// ErrInvalidPath means a string is not a kadre path: relative, "..",
	// invalid UTF-8, a refused character (controls, invisible, bidi and
	// look-alike characters, unassigned code points; SPEC.md §3.2.1), or
	// over a documented limit.
	ErrInvalidPath = errors.New("policy: invalid path")

	// ErrInvalidIdentity means a public identity string or key does not
	// parse: wrong prefix, typo (checksum mismatch), or not a curve point.
	ErrInvalidIdentity = errors.New("policy: invalid identity")

	// ErrMalformed means record bytes are not the canonical encoding of a
	// record of the expected type: wrong length, trailing bytes, a field out
	// of its domain, a key that is not a compressed curve point.
	ErrMalformed = errors.New("policy: malformed record")

	// ErrUnsupportedVersion means the record's format version is not one
	// this implementation knows; the sender runs a newer or older kadre.
	ErrUnsupportedVersion = errors.New("policy: unsupported record version")

	// ErrUnknownAlgorithm means the record names a re-encryption, signature
	// or path hash algorithm this implementation does not support.
	ErrUnknownAlgorithm = errors.New("policy: unknown algorithm")

	// ErrBadSignature means the record's signature does not verify under
	// the key it claims (or is not in the canonical low-S form).
	ErrBadSignature = errors.New("policy: bad signature")

	// ErrBadThreshold means m or n is outside 1 ≤ m ≤ n ≤ MaxShares.
	ErrBadThreshold = errors.New("policy: threshold out of range")

	// ErrExpired means the grant's expiry is not in the future.
	ErrExpired = errors.New("policy: grant expired")

	// ErrExpiryTooLong means the grant expires later than the node is
	// willing to keep it (its advertised maximum grant duration).
	ErrExpiryTooLong = errors.New("policy: grant expiry beyond the node's maximum duration")

	// ErrStaleSequence means a grant or revocation carries a sequence
	// number not greater than the last one the node saw for the same owner
	// and path hash: a replay (also of a revoked grant) or out of order.
	ErrStaleSequence = errors.New("policy: stale or replayed sequence number")

	// ErrBadKFrag means the key fragment does not match the grant's
	// commitment or does not verify against the owner's kfrag verifying
	// key, the delegating key and the recipient's receiving key.
	ErrBadKFrag = errors.New("policy: key fragment does not verify")

	// ErrRevoked means the owner revoked the grant: a lookup met its
	// tombstone, or a grant being stored is at or below one.
	ErrRevoked = errors.New("policy: grant revoked by its owner")

	// ErrNotRecipient means the peer asking is not the grant's recipient.
	ErrNotRecipient = errors.New("policy: requester is not the grant's recipient")

	// ErrNotGranted means no level of the requested path has a live grant
	// for this requester.
	ErrNotGranted = errors.New("policy: not granted")

	// ErrMismatch means two records that must agree do not (a receipt that
	// does not name the record it answers, a grant for another path hash or
	// owner than the one asked about, a signer that is not the record's key).
	ErrMismatch = errors.New("policy: records do not match")
)
