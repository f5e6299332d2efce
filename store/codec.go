package store

import (
	"encoding/binary"
	"time"
)

// Key and value layouts are specified in SPEC.md §6.4. All
// integers are big-endian so that LMDB's byte order is numeric order.

const (
	// OwnerSize and RecipientSize are compressed secp256k1 public keys.
	OwnerSize     = 33
	RecipientSize = 33
	// PathHashSize is an HMAC-SHA3-256 output (DESIGN.md, path hashes).
	PathHashSize = 32
	// IDSize is the grant ID chosen by the policy layer (a record hash).
	IDSize = 32

	// MaxRecordSize bounds the opaque signed record kept with a grant. A
	// grant record (keys, one kfrag, signature, metadata) is well under 1 KiB;
	// 4 KiB leaves room for other algorithms while keeping every value on a
	// single LMDB page pair and a lookup to a bounded amount of work.
	MaxRecordSize = 4096

	// MaxDepth bounds the number of path hashes in one Lookup.
	MaxDepth = 256
)

const (
	markKeyLen  = OwnerSize + PathHashSize
	grantKeyLen = markKeyLen + RecipientSize
)

// Value format version of the plaintexts below (first byte).
const valueVersion byte = 1

const (
	grantHeaderLen = 1 + 8 + 8 + IDSize
	tombValueLen   = 1 + 8 + 8 + 1 + 8 + IDSize
	markValueLen   = 1 + 8 + 8
)

// Grants are keyed owner || recipient || path hash: the owner namespace
// comes first, and every grant one owner gave one recipient is contiguous,
// so the levels of one Lookup (same owner and recipient, several path
// hashes) land on the same few B-tree pages however large the store grows.
//
// Tombstones are keyed owner || path hash || recipient, so their first
// markKeyLen bytes are the key of the (owner, path hash) sequence mark and
// pruning a mark finds its tombstones with one prefix scan.
func grantKey(dst *[grantKeyLen]byte, owner *[OwnerSize]byte, recipient *[RecipientSize]byte, ph *[PathHashSize]byte) []byte {
	copy(dst[:], owner[:])
	copy(dst[OwnerSize:], recipient[:])
	copy(dst[OwnerSize+RecipientSize:], ph[:])
	return dst[:]
}

func tombKey(dst *[grantKeyLen]byte, owner *[OwnerSize]byte, recipient *[RecipientSize]byte, ph *[PathHashSize]byte) []byte {
	copy(dst[:], owner[:])
	copy(dst[OwnerSize:], ph[:])
	copy(dst[markKeyLen:], recipient[:])
	return dst[:]
}

// entryKeys are the keys of one (owner, recipient, path hash).
type entryKeys struct {
	grant, tomb [grantKeyLen]byte
}

func makeKeys(owner *[OwnerSize]byte, recipient *[RecipientSize]byte, ph *[PathHashSize]byte) *entryKeys {
	k := new(entryKeys)
	grantKey(&k.grant, owner, recipient, ph)
	tombKey(&k.tomb, owner, recipient, ph)
	return k
}

func (k *entryKeys) g() []byte { return k.grant[:] }
func (k *entryKeys) t() []byte { return k.tomb[:] }
func (k *entryKeys) m() []byte { return k.tomb[:markKeyLen] }

// splitGrantKey and splitTombKey return (owner, recipient, path hash).
func splitGrantKey(k []byte) (owner [OwnerSize]byte, recipient [RecipientSize]byte, ph [PathHashSize]byte, ok bool) {
	if len(k) != grantKeyLen {
		return owner, recipient, ph, false
	}
	copy(owner[:], k)
	copy(recipient[:], k[OwnerSize:])
	copy(ph[:], k[OwnerSize+RecipientSize:])
	return owner, recipient, ph, true
}

func splitTombKey(k []byte) (owner [OwnerSize]byte, recipient [RecipientSize]byte, ph [PathHashSize]byte, ok bool) {
	if len(k) != grantKeyLen {
		return owner, recipient, ph, false
	}
	copy(owner[:], k)
	copy(ph[:], k[OwnerSize:])
	copy(recipient[:], k[markKeyLen:])
	return owner, recipient, ph, true
}

func keysFromGrantKey(gk []byte) (*entryKeys, bool) {
	o, r, h, ok := splitGrantKey(gk)
	if !ok {
		return nil, false
	}
	return makeKeys(&o, &r, &h), true
}

func keysFromTombKey(tk []byte) (*entryKeys, bool) {
	o, r, h, ok := splitTombKey(tk)
	if !ok {
		return nil, false
	}
	return makeKeys(&o, &r, &h), true
}

// storedGrant is the sealed part of a grant; the rest is in its key.
type storedGrant struct {
	seq     uint64
	expires int64
	id      [IDSize]byte
	record  []byte
}

func (g *storedGrant) encode() []byte {
	b := make([]byte, grantHeaderLen, grantHeaderLen+len(g.record))
	b[0] = valueVersion
	binary.BigEndian.PutUint64(b[1:], g.seq)
	binary.BigEndian.PutUint64(b[9:], uint64(g.expires))
	copy(b[17:], g.id[:])
	return append(b, g.record...)
}

func decodeGrant(b []byte) (storedGrant, bool) {
	var g storedGrant
	if len(b) <= grantHeaderLen || len(b) > grantHeaderLen+MaxRecordSize || b[0] != valueVersion {
		return g, false
	}
	g.seq = binary.BigEndian.Uint64(b[1:])
	g.expires = int64(binary.BigEndian.Uint64(b[9:]))
	copy(g.id[:], b[17:])
	g.record = b[grantHeaderLen:]
	return g, true
}

// storedTomb is the sealed part of a tombstone. Version 2 values also keep
// the owner-signed revocation record, which a retiring node hands on.
type storedTomb struct {
	seq        uint64
	revokedAt  int64
	deleted    bool
	deletedSeq uint64
	deletedID  [IDSize]byte
	record     []byte // the revocation (version 2); nil in version 1 values
}

const tombVersion byte = 2

func (t *storedTomb) encode() []byte {
	b := make([]byte, tombValueLen, tombValueLen+len(t.record))
	b[0] = tombVersion
	binary.BigEndian.PutUint64(b[1:], t.seq)
	binary.BigEndian.PutUint64(b[9:], uint64(t.revokedAt))
	if t.deleted {
		b[17] = 1
	}
	binary.BigEndian.PutUint64(b[18:], t.deletedSeq)
	copy(b[26:], t.deletedID[:])
	return append(b, t.record...)
}

func decodeTomb(b []byte) (storedTomb, bool) {
	var t storedTomb
	switch {
	case len(b) < tombValueLen || b[17] > 1:
		return t, false
	case b[0] == valueVersion && len(b) == tombValueLen:
	case b[0] == tombVersion && len(b) <= tombValueLen+MaxRecordSize:
		if len(b) > tombValueLen {
			t.record = b[tombValueLen:]
		}
	default:
		return t, false
	}
	t.seq = binary.BigEndian.Uint64(b[1:])
	t.revokedAt = int64(binary.BigEndian.Uint64(b[9:]))
	t.deleted = b[17] == 1
	t.deletedSeq = binary.BigEndian.Uint64(b[18:])
	copy(t.deletedID[:], b[26:])
	return t, true
}

// storedMark is the sealed high-water mark of one (owner, path hash).
type storedMark struct {
	seq       uint64
	keepUntil int64
}

func (m *storedMark) encode() []byte {
	b := make([]byte, markValueLen)
	b[0] = valueVersion
	binary.BigEndian.PutUint64(b[1:], m.seq)
	binary.BigEndian.PutUint64(b[9:], uint64(m.keepUntil))
	return b
}

func decodeMark(b []byte) (storedMark, bool) {
	var m storedMark
	if len(b) != markValueLen || b[0] != valueVersion {
		return m, false
	}
	m.seq = binary.BigEndian.Uint64(b[1:])
	m.keepUntil = int64(binary.BigEndian.Uint64(b[9:]))
	return m, true
}

// Deadline index kinds. Grants are pruned on their own expiry; a mark is
// pruned together with the tombstones under it (see Prune).
const (
	deadlineGrant byte = 'g'
	deadlineMark  byte = 's'
	deadlineMap   byte = 'p'
)

// deadlineKey is kind || unix seconds (offset so negative times sort first)
// || target key.
func deadlineKey(kind byte, at int64, target []byte) []byte {
	k := make([]byte, 9, 9+len(target))
	k[0] = kind
	binary.BigEndian.PutUint64(k[1:], uint64(at)^(1<<63))
	return append(k, target...)
}

func splitDeadlineKey(k []byte) (kind byte, at int64, target []byte, ok bool) {
	if len(k) < 9 {
		return 0, 0, nil, false
	}
	return k[0], int64(binary.BigEndian.Uint64(k[1:]) ^ (1 << 63)), k[9:], true
}

// unixTime converts a stored second count back to a time. Times are kept at
// one-second precision; expiries are truncated, i.e. end slightly early.
func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }

// expiredAt reports whether something with expiry exp (unix seconds) is
// expired at now: a grant is live strictly before its expiry second.
func expiredAt(exp int64, now time.Time) bool { return now.Unix() >= exp }
