package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
)

// Quotas (SPEC.md §8.2). Every grant, tombstone, sequence mark and
// holder-map page the store keeps is charged, in the write transaction that
// creates it, to accounts: the node ("a"), the record's owner ("o" ‖ key),
// and, for a write a remote party asked for, the sending peer when it is
// not the owner ("p" ‖ key) and the sender's network group ("n" ‖ group).
// The usage database keeps one sealed count per kind and account; the
// charges database remembers, per item, the accounts it was charged to, so
// that deleting the item (revocation, hand-off, pruning, a newer map)
// releases exactly those. A charged write that would take an account over
// its limit (Options.Limits) fails with a *quota.Error and writes nothing.

// Items, by the first byte of their charges key.
const (
	itemGrant byte = 'g' // ‖ grants key
	itemTomb  byte = 't' // ‖ tombstones key
	itemMark  byte = 's' // ‖ seqs key
	itemPage  byte = 'm' // ‖ pair ‖ page index
)

// Account prefixes.
const (
	acctAll   byte = 'a'
	acctOwner byte = 'o'
	acctPeer  byte = 'p'
	acctGroup byte = 'n'
)

// maxGroupLen bounds a network group name ("ffff:…::/48" is at most 43).
const maxGroupLen = 64

func kindOf(item byte) quota.Kind {
	switch item {
	case itemGrant:
		return quota.Grants
	case itemPage:
		return quota.Maps
	}
	return quota.History
}

var kindBytes = [...]byte{quota.Grants: 'G', quota.History: 'H', quota.Maps: 'M'}

// accounts returns the account keys a write by c (nil: a local write) of
// owner's record is charged to, the node's first.
func accounts(owner []byte, c *quota.Charge) [][]byte {
	out := [][]byte{{acctAll}, append([]byte{acctOwner}, owner...)}
	if c == nil {
		return out
	}
	if c.Peer != (policy.PublicKey{}) && !bytes.Equal(c.Peer[:], owner) {
		out = append(out, append([]byte{acctPeer}, c.Peer[:]...))
	}
	if c.Group != "" {
		g := c.Group
		if len(g) > maxGroupLen {
			g = g[:maxGroupLen]
		}
		out = append(out, append([]byte{acctGroup}, g...))
	}
	return out
}

func accountName(acct []byte) string {
	switch acct[0] {
	case acctAll:
		return "node"
	case acctOwner:
		return "owner"
	case acctPeer:
		return "peer"
	}
	return "network group " + string(acct[1:])
}

func limitOf(l quota.Limit, acct []byte) uint64 {
	switch acct[0] {
	case acctAll:
		return l.All
	case acctOwner:
		return l.Owner
	case acctPeer:
		return l.Peer
	}
	return l.Group
}

func usageKey(kind quota.Kind, acct []byte) []byte {
	return append([]byte{kindBytes[kind]}, acct...)
}

func (s *Store) usageCount(txn *lmdb.Txn, kind quota.Kind, acct []byte) (uint64, error) {
	k := usageKey(kind, acct)
	v, err := txn.Get(s.usage, k)
	if lmdb.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pt, err := s.seal.open(dbUsage, k, v)
	if err != nil {
		return 0, err
	}
	if len(pt) != 8 {
		return 0, ErrCorrupt
	}
	return binary.BigEndian.Uint64(pt), nil
}

func (s *Store) addUsage(txn *lmdb.Txn, kind quota.Kind, acct []byte, delta int64) error {
	n, err := s.usageCount(txn, kind, acct)
	if err != nil {
		return err
	}
	switch {
	case delta < 0 && n < uint64(-delta):
		n = 0
	default:
		n = uint64(int64(n) + delta)
	}
	k := usageKey(kind, acct)
	if n == 0 {
		return delIfExists(txn, s.usage, k)
	}
	return txn.Put(s.usage, k, s.seal.seal(dbUsage, k, binary.BigEndian.AppendUint64(nil, n)), 0)
}

// check refuses a write of kind charged to accts that would take one of
// them over its limit, or use the node's reserve from a network group that
// already holds Floor units or more (or from no group).
func (s *Store) check(txn *lmdb.Txn, kind quota.Kind, accts [][]byte) error {
	lim := s.opts.Limits[kind]
	var all, group uint64
	hasGroup := false
	for _, a := range accts {
		used, err := s.usageCount(txn, kind, a)
		if err != nil {
			return err
		}
		switch a[0] {
		case acctAll:
			all = used
		case acctGroup:
			group, hasGroup = used, true
		}
		if l := limitOf(lim, a); l > 0 && used >= l {
			return &quota.Error{Kind: kind, Account: accountName(a), Used: used, Limit: l}
		}
	}
	if lim.All > 0 && lim.Reserve > 0 && all+lim.Reserve >= lim.All && (!hasGroup || group >= lim.Floor) {
		return &quota.Error{Kind: kind, Account: "node reserve", Used: all, Limit: lim.All}
	}
	return nil
}

// charge charges a new item to owner's accounts and c's (nil: a local
// write, never refused); with check, a write over a limit is refused.
func (s *Store) charge(txn *lmdb.Txn, item byte, key, owner []byte, c *quota.Charge, check bool) error {
	kind := kindOf(item)
	accts := accounts(owner, c)
	if check && c != nil {
		if err := s.check(txn, kind, accts); err != nil {
			return err
		}
	}
	for _, a := range accts {
		if err := s.addUsage(txn, kind, a, 1); err != nil {
			return err
		}
	}
	ck := append([]byte{item}, key...)
	var v []byte
	for _, a := range accts {
		v = append(v, byte(len(a)))
		v = append(v, a...)
	}
	return txn.Put(s.charges, ck, s.seal.seal(dbCharges, ck, v), 0)
}

// uncharge releases what an item was charged (nothing if it was not).
func (s *Store) uncharge(txn *lmdb.Txn, item byte, key []byte) error {
	ck := append([]byte{item}, key...)
	v, err := txn.Get(s.charges, ck)
	if lmdb.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pt, err := s.seal.open(dbCharges, ck, v)
	if err != nil {
		return err
	}
	kind := kindOf(item)
	for len(pt) > 0 {
		n := int(pt[0])
		if n == 0 || len(pt) < 1+n {
			return ErrCorrupt
		}
		if err := s.addUsage(txn, kind, pt[1:1+n], -1); err != nil {
			return err
		}
		pt = pt[1+n:]
	}
	return txn.Del(s.charges, ck, nil)
}

func pageKey(pk []byte, i int) []byte { return append(bytes.Clone(pk), byte(i)) }

// Usage returns what the node, owner, and c's peer and group hold of every
// kind.
type Usage struct {
	Node, Owner, Peer, Group quota.Usage
}

// UsageOf reads the accounts a write of owner's record by c would be
// charged to.
func (s *Store) UsageOf(owner policy.PublicKey, c *quota.Charge) (Usage, error) {
	var u Usage
	err := s.view(func(txn *lmdb.Txn) error {
		for _, a := range accounts(owner[:], c) {
			var dst *quota.Usage
			switch a[0] {
			case acctAll:
				dst = &u.Node
			case acctOwner:
				dst = &u.Owner
			case acctPeer:
				dst = &u.Peer
			default:
				dst = &u.Group
			}
			for k := range dst {
				n, err := s.usageCount(txn, quota.Kind(k), a)
				if err != nil {
					return err
				}
				dst[k] = n
			}
		}
		return nil
	})
	return u, err
}

// Free returns how many more units of kind a write by c of owner's records
// may still add here: the room left in each of its accounts and in the
// node's total outside the reserve, or, for a network group below the
// reserve's floor, inside it up to the floor (SPEC.md §8.2).
func (s *Store) Free(kind quota.Kind, owner policy.PublicKey, c *quota.Charge) (uint64, error) {
	u, err := s.UsageOf(owner, c)
	if err != nil {
		return 0, err
	}
	lim := s.opts.Limits[kind]
	room := func(limit, used uint64) uint64 {
		switch {
		case limit == 0:
			return 1<<63 - 1
		case used >= limit:
			return 0
		}
		return limit - used
	}
	free := min(room(lim.All, u.Node[kind]), room(lim.Owner, u.Owner[kind]))
	if c != nil && c.Peer != (policy.PublicKey{}) && c.Peer != owner {
		free = min(free, room(lim.Peer, u.Peer[kind]))
	}
	hasGroup := c != nil && c.Group != ""
	if hasGroup {
		free = min(free, room(lim.Group, u.Group[kind]))
	}
	if lim.All > 0 && lim.Reserve > 0 {
		outside := uint64(0)
		if lim.All > lim.Reserve {
			outside = room(lim.All-lim.Reserve, u.Node[kind])
		}
		if hasGroup && u.Group[kind] < lim.Floor {
			outside = max(outside, lim.Floor-u.Group[kind])
		}
		free = min(free, outside)
	}
	return free, nil
}

// chargeExisting charges every item of a store written before quotas
// (schema 2) to its owner and the node (migration to schema 3).
func (s *Store) chargeExisting(txn *lmdb.Txn) error {
	each := func(dbi lmdb.DBI, fn func(k, v []byte) error) error {
		cur, err := txn.OpenCursor(dbi)
		if err != nil {
			return err
		}
		defer cur.Close()
		var keys, vals [][]byte
		k, v, err := cur.Get(nil, nil, lmdb.First)
		for ; err == nil; k, v, err = cur.Get(nil, nil, lmdb.Next) {
			keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
		}
		if !lmdb.IsNotFound(err) {
			return err
		}
		cur.Close()
		for i := range keys {
			if err := fn(keys[i], vals[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range []struct {
		dbi  lmdb.DBI
		item byte
	}{{s.grants, itemGrant}, {s.tombs, itemTomb}, {s.seqs, itemMark}} {
		if err := each(d.dbi, func(k, _ []byte) error {
			return s.chargeOnce(txn, d.item, k, k[:OwnerSize])
		}); err != nil {
			return fmt.Errorf("failed to charge existing %c items: %w", d.item, err)
		}
	}
	return each(s.maps, func(pk, v []byte) error {
		pt, err := s.seal.open(dbMaps, pk, v)
		if err != nil {
			return err
		}
		m, ok := decodeMap(pt)
		if !ok {
			return ErrCorrupt
		}
		for i, p := range m.pages {
			if p != nil {
				if err := s.chargeOnce(txn, itemPage, pageKey(pk, i), pk[:OwnerSize]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// chargeOnce charges an item to its owner and the node unless it is
// charged already.
func (s *Store) chargeOnce(txn *lmdb.Txn, item byte, key, owner []byte) error {
	_, err := txn.Get(s.charges, append([]byte{item}, key...))
	if err == nil {
		return nil
	}
	if !lmdb.IsNotFound(err) {
		return err
	}
	return s.charge(txn, item, key, owner, nil, false)
}
