package store

import (
	"errors"
	"fmt"

	"github.com/bmatsuo/lmdb-go/lmdb"
)

// ForEachGrant calls fn for every stored grant (live or expired but not yet
// pruned) in key order, reading in batches of short read transactions so
// that a long walk never pins old LMDB pages. fn may call other store
// methods. A value that fails authentication stops the walk with
// ErrCorrupt.
func (s *Store) forEachGrant(fn func(entry) error) error {
	var after []byte
	for {
		var batch []entry
		err := s.view(func(txn *lmdb.Txn) error {
			cur, err := txn.OpenCursor(s.grants)
			if err != nil {
				return err
			}
			defer cur.Close()
			var k, v []byte
			if after == nil {
				k, v, err = cur.Get(nil, nil, lmdb.First)
			} else {
				k, v, err = cur.Get(after, nil, lmdb.SetRange)
				if err == nil && string(k) == string(after) {
					k, v, err = cur.Get(nil, nil, lmdb.Next)
				}
			}
			for ; err == nil && len(batch) < 256; k, v, err = cur.Get(nil, nil, lmdb.Next) {
				g, oerr := s.openGrant(k, v)
				if oerr != nil {
					return oerr
				}
				batch = append(batch, grantFrom(k, g))
				after = append(after[:0], k...)
			}
			if err != nil && !lmdb.IsNotFound(err) {
				return err
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("failed to list grants: %w", err)
		}
		for _, g := range batch {
			if err := fn(g); err != nil {
				return err
			}
		}
		if len(batch) < 256 {
			return nil
		}
	}
}

// ErrChanged means the grant to delete is no longer the one stored.
var ErrChanged = errors.New("store: the stored grant changed")

// DeleteGrant removes the grant stored for (owner, recipient, path hash) if
// its ID is id, in one write transaction, without a tombstone: the grant
// was not revoked, it moved (a hand-off to another node). The sequence
// mark stays, so the grant cannot come back here by replay.
func (s *Store) deleteGrant(owner *[OwnerSize]byte, recipient *[RecipientSize]byte, pathHash *[PathHashSize]byte, id [IDSize]byte) error {
	k := makeKeys(owner, recipient, pathHash)
	err := s.update(func(txn *lmdb.Txn) error {
		g, found, err := s.getGrant(txn, k.g())
		if err != nil {
			return err
		}
		if !found {
			return ErrNotGranted
		}
		if g.id != id {
			return ErrChanged
		}
		if err := txn.Del(s.grants, k.g(), nil); err != nil {
			return err
		}
		if err := s.uncharge(txn, itemGrant, k.g()); err != nil {
			return err
		}
		return delIfExists(txn, s.deadlines, deadlineKey(deadlineGrant, g.expires, k.g()))
	})
	if err != nil {
		return fmt.Errorf("failed to delete grant: %w", err)
	}
	return nil
}
