package store

import (
	"errors"
	"time"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
)

// This file is the store as a kadre node uses it: policy records in, record
// bytes out. It is the interface the node's RPC service (dht.Store) takes,
// so that the service, and every client program that imports package dht,
// never links LMDB. The methods apply the rules of the unexported engine
// below them (SPEC.md §6.5).

// PutGrant stores g, a grant the caller validated
// (policy.ValidateGrantForStore: signature, expiry, kfrag), under
// g.StorageKey(), after the sequence and tombstone checks of the same write
// transaction. It fails with ErrStale, ErrRevoked or ErrExpired (which also
// match policy.ErrStaleSequence, policy.ErrRevoked and policy.ErrExpired);
// storing the grant already held is a no-op.
func (s *Store) PutGrant(g *policy.Grant, now time.Time) error {
	return s.putGrant(entryOf(g), now)
}

// PutGrantAs is PutGrant for a write a remote party asked for, charged to
// c (SPEC.md §8.2): a new grant, and the sequence mark a new (owner, path
// hash) needs, are refused with a *quota.Error when an account of the
// owner, c's peer, c's network group or the node is full.
func (s *Store) PutGrantAs(g *policy.Grant, now time.Time, c *quota.Charge) error {
	return s.putGrantAs(entryOf(g), now, c)
}

// Grant returns the stored grant record (policy.Grant.Bytes) for key, live
// or not, or ErrNotGranted.
func (s *Store) Grant(key policy.StorageKey) ([]byte, error) {
	owner, recipient, ph := splitStorageKey(key)
	e, err := s.get(&owner, &recipient, &ph)
	if err != nil {
		return nil, err
	}
	return e.Record, nil
}

// Lookup is the deepest-first search of a re-encryption request: levels are
// the path hashes of every prefix of the requested path, root first. It
// returns the level of the deepest live grant of owner to recipient, that
// grant's ID and its record. When no level is live, level is the deepest
// level that had anything and err wraps ErrRevoked or ErrExpired; err is
// ErrNotGranted (level −1) when no level had anything.
func (s *Store) Lookup(owner, recipient policy.PublicKey, levels []policy.PathHash, now time.Time) (level int, id policy.RecordID, record []byte, err error) {
	hashes := make([][PathHashSize]byte, len(levels))
	for i, h := range levels {
		hashes[i] = h
	}
	m, err := s.lookup((*[OwnerSize]byte)(&owner), (*[RecipientSize]byte)(&recipient), hashes, now)
	if err != nil {
		var le *lookupError
		if errors.As(err, &le) {
			return le.Level, policy.RecordID{}, nil, err
		}
		return -1, policy.RecordID{}, nil, err
	}
	return m.Level, m.Grant.ID, m.Grant.Record, nil
}

// Revoke applies revocation r, which the caller validated
// (policy.ValidateRevocation), at now: it deletes the grant held for
// r.StorageKey(), if any, and keeps a tombstone and the sequence mark until
// keepUntil at least. held says whether a grant was deleted, and deleted
// names it. Repeating the stored revocation returns the same answer; an
// older one fails with ErrStale.
func (s *Store) Revoke(r *policy.Revocation, now, keepUntil time.Time) (deleted policy.RecordID, held bool, err error) {
	return s.RevokeAs(r, now, keepUntil, nil)
}

// RevokeAs is Revoke charged to c (SPEC.md §8.2): the tombstone and a new
// mark are units of history; they are refused over a limit only when no
// grant is held (revoked-not-held), never when the revocation deletes one.
func (s *Store) RevokeAs(r *policy.Revocation, now, keepUntil time.Time, c *quota.Charge) (deleted policy.RecordID, held bool, err error) {
	t, err := s.revokeAs(revocation{
		Owner: r.Owner, Recipient: r.Recipient, PathHash: r.PathHash,
		Seq: r.Sequence, At: now, KeepUntil: keepUntil, Record: r.Bytes(),
	}, c)
	if err != nil {
		return policy.RecordID{}, false, err
	}
	return t.DeletedID, t.Deleted, nil
}

// DeleteGrant removes the grant held for key if its ID is id, without a
// tombstone (the fragment moved to another node); the sequence mark stays.
// It fails with ErrNotGranted or ErrChanged.
func (s *Store) DeleteGrant(key policy.StorageKey, id policy.RecordID) error {
	owner, recipient, ph := splitStorageKey(key)
	return s.deleteGrant(&owner, &recipient, &ph, id)
}

// ForEachGrant calls fn with the record of every stored grant, live or
// expired but not yet pruned, in key order (see forEachGrant).
func (s *Store) ForEachGrant(fn func(record []byte) error) error {
	return s.forEachGrant(func(e entry) error { return fn(e.Record) })
}

// Counts returns the number of grants and tombstones stored.
func (s *Store) Counts() (grants, tombstones uint64, err error) {
	st, err := s.Stats()
	return st.Grants, st.Tombstones, err
}

func entryOf(g *policy.Grant) entry {
	return entry{
		Owner: g.Owner, Recipient: g.Recipient.IdentityKey, PathHash: g.PathHash,
		ID: g.ID(), Seq: g.Sequence, Expires: g.ExpiryTime(), Record: g.Bytes(),
	}
}

func splitStorageKey(k policy.StorageKey) (owner [OwnerSize]byte, recipient [RecipientSize]byte, ph [PathHashSize]byte) {
	copy(owner[:], k[:OwnerSize])
	copy(recipient[:], k[OwnerSize:OwnerSize+RecipientSize])
	copy(ph[:], k[OwnerSize+RecipientSize:])
	return owner, recipient, ph
}
