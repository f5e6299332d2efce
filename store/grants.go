package store

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
)

// Grant is one stored key fragment: an opaque, owner-signed record that the
// policy layer validated, with the fields the store needs to enforce the
// rules. Its identity is (Owner, Recipient, PathHash).
type entry struct {
	Owner     [OwnerSize]byte
	Recipient [RecipientSize]byte
	PathHash  [PathHashSize]byte
	// ID names the grant in receipts (the policy layer's record hash).
	ID [IDSize]byte
	// Seq orders the owner's mutations of (Owner, PathHash); it starts at 1.
	Seq uint64
	// Expires is kept at one-second precision (truncated). The grant is live
	// strictly before it.
	Expires time.Time
	// Record is the signed grant, 1 to MaxRecordSize bytes.
	Record []byte
}

// Revocation asks to delete a grant and remember that it was revoked.
type revocation struct {
	Owner     [OwnerSize]byte
	Recipient [RecipientSize]byte
	PathHash  [PathHashSize]byte
	// Seq must be greater than every sequence number seen for (Owner,
	// PathHash), including the grant's.
	Seq uint64
	// At is when the node accepted the revocation (the caller's clock).
	At time.Time
	// KeepUntil, if later than the store's own bound, extends how long the
	// tombstone and sequence mark are kept: set it to the latest expiry of
	// any grant the owner may have signed for this path hash, so that no
	// such grant can be replayed after the tombstone is pruned.
	KeepUntil time.Time
	// Record is the owner-signed revocation, kept with the tombstone.
	Record []byte
}

// Tombstone records a revocation; it is what a revocation receipt names.
type tombstone struct {
	Owner     [OwnerSize]byte
	Recipient [RecipientSize]byte
	PathHash  [PathHashSize]byte
	Seq       uint64
	RevokedAt time.Time
	// Deleted reports whether a grant was present and deleted; DeletedSeq
	// and DeletedID identify it.
	Deleted    bool
	DeletedSeq uint64
	DeletedID  [IDSize]byte
}

// Match is the result of a successful Lookup.
type match struct {
	Grant entry
	// Level is the index in the path hash list (0 = root) of the grant.
	Level int
}

// lookupError is returned by Lookup when no level holds a live grant but
// some level held a revoked or expired one. It wraps ErrRevoked or
// ErrExpired; Level is the deepest level that had anything.
type lookupError struct {
	Level int
	Err   error
}

func (e *lookupError) Error() string { return fmt.Sprintf("%v (path level %d)", e.Err, e.Level) }
func (e *lookupError) Unwrap() error { return e.Err }

func (s *Store) checkGrant(g *entry, now time.Time) error {
	switch {
	case len(g.Record) == 0 || len(g.Record) > MaxRecordSize:
		return fmt.Errorf("%w: record of %d bytes (want 1 to %d)", ErrInvalid, len(g.Record), MaxRecordSize)
	case g.Seq == 0:
		return fmt.Errorf("%w: sequence number 0 (they start at 1)", ErrInvalid)
	case expiredAt(g.Expires.Unix(), now):
		return ErrExpired
	}
	return nil
}

// PutGrant stores g after checking, in the same write transaction, that its
// sequence number is newer than everything seen for (owner, path hash),
// revocations included. It fails with ErrStale for an older or equal
// sequence number, ErrRevoked if a tombstone for the same key has an equal
// or newer one and ErrExpired if g is expired at now. Putting exactly the grant already
// stored (same Seq and ID) succeeds without a write, so a retry whose
// acknowledgement was lost is not an error. A newer grant replaces the
// stored one and clears the tombstone for the same key.
//
// The caller (the policy layer) must have verified the owner's signature on
// the record: the store trusts the fields it is given.
func (s *Store) putGrant(g entry, now time.Time) error { return s.putGrantAs(g, now, nil) }

// putGrantAs is putGrant charged to c (nil: a local write; SPEC.md §8.2).
func (s *Store) putGrantAs(g entry, now time.Time, c *quota.Charge) error {
	if err := s.checkGrant(&g, now); err != nil {
		return fmt.Errorf("failed to put grant: %w", err)
	}
	k := makeKeys(&g.Owner, &g.Recipient, &g.PathHash)
	sg := storedGrant{seq: g.Seq, expires: g.Expires.Unix(), id: g.ID, record: g.Record}
	sealed := s.seal.seal(dbGrants, k.g(), sg.encode())
	err := s.write(func(txn *lmdb.Txn) (bool, error) {
		// Only a grant that replaces one must reach the rollback counter
		// at once (SPEC.md §8.8): losing a new one to a rollback
		// brings nothing back.
		_, gerr := txn.Get(s.grants, k.g())
		return gerr == nil, s.putGrantTxn(txn, k, &sg, sealed, now, c)
	})
	if err != nil {
		return fmt.Errorf("failed to put grant: %w", err)
	}
	return nil
}

// putGrantTxn writes a grant charged to c (nil: a local write, SPEC.md
// §8.2): a new grant and a new mark are charged and may be refused; a newer
// grant replacing one keeps its charge.
func (s *Store) putGrantTxn(txn *lmdb.Txn, k *entryKeys, sg *storedGrant, sealed []byte, now time.Time, c *quota.Charge) error {
	gk, mk := k.g(), k.m()
	mark, hasMark, err := s.getMark(txn, mk)
	if err != nil {
		return err
	}
	old, hasOld, err := s.getGrant(txn, gk)
	if err != nil {
		return err
	}
	if hasMark && policy.ValidateSequence(sg.seq, mark.seq) != nil {
		if hasOld && old.seq == sg.seq && old.id == sg.id {
			return nil
		}
		t, hasTomb, err := s.getTomb(txn, k.t())
		if err != nil {
			return err
		}
		if hasTomb && t.seq >= sg.seq {
			return ErrRevoked
		}
		return ErrStale
	}
	owner := gk[:OwnerSize]
	if hasOld {
		if err := delIfExists(txn, s.deadlines, deadlineKey(deadlineGrant, old.expires, gk)); err != nil {
			return err
		}
	} else if err := s.charge(txn, itemGrant, gk, owner, c, true); err != nil {
		return err
	}
	if !hasMark {
		if err := s.charge(txn, itemMark, mk, owner, c, true); err != nil {
			return err
		}
	}
	if err := txn.Put(s.grants, gk, sealed, 0); err != nil {
		return err
	}
	if err := txn.Put(s.deadlines, deadlineKey(deadlineGrant, sg.expires, gk), nil, 0); err != nil {
		return err
	}
	if err := delIfExists(txn, s.tombs, k.t()); err != nil {
		return err
	}
	if err := s.uncharge(txn, itemTomb, k.t()); err != nil {
		return err
	}
	keep := max(sg.expires, now.Add(s.opts.Retention).Unix())
	return s.putMark(txn, mk, mark, hasMark, sg.seq, keep)
}

// putMark raises the sequence mark of mk to seq and its retention to at
// least keep, keeping the deadline index in step.
func (s *Store) putMark(txn *lmdb.Txn, mk []byte, old storedMark, hasOld bool, seq uint64, keep int64) error {
	m := storedMark{seq: seq, keepUntil: keep}
	if hasOld {
		m.keepUntil = max(m.keepUntil, old.keepUntil)
		if m.keepUntil != old.keepUntil {
			if err := delIfExists(txn, s.deadlines, deadlineKey(deadlineMark, old.keepUntil, mk)); err != nil {
				return err
			}
		}
	}
	if err := txn.Put(s.seqs, mk, s.seal.seal(dbSeqs, mk, m.encode()), 0); err != nil {
		return err
	}
	return txn.Put(s.deadlines, deadlineKey(deadlineMark, m.keepUntil, mk), nil, 0)
}

func delIfExists(txn *lmdb.Txn, db lmdb.DBI, k []byte) error {
	if err := txn.Del(db, k, nil); err != nil && !lmdb.IsNotFound(err) {
		return err
	}
	return nil
}

func (s *Store) getMark(txn *lmdb.Txn, mk []byte) (storedMark, bool, error) {
	v, err := txn.Get(s.seqs, mk)
	if lmdb.IsNotFound(err) {
		return storedMark{}, false, nil
	}
	if err != nil {
		return storedMark{}, false, err
	}
	pt, err := s.seal.open(dbSeqs, mk, v)
	if err != nil {
		return storedMark{}, false, err
	}
	m, ok := decodeMark(pt)
	if !ok {
		return storedMark{}, false, ErrCorrupt
	}
	return m, true, nil
}

func (s *Store) getGrant(txn *lmdb.Txn, gk []byte) (storedGrant, bool, error) {
	v, err := txn.Get(s.grants, gk)
	if lmdb.IsNotFound(err) {
		return storedGrant{}, false, nil
	}
	if err != nil {
		return storedGrant{}, false, err
	}
	g, err := s.openGrant(gk, v)
	return g, err == nil, err
}

func (s *Store) openGrant(gk, v []byte) (storedGrant, error) {
	pt, err := s.seal.open(dbGrants, gk, v)
	if err != nil {
		return storedGrant{}, err
	}
	g, ok := decodeGrant(pt)
	if !ok {
		return storedGrant{}, ErrCorrupt
	}
	return g, nil
}

func (s *Store) getTomb(txn *lmdb.Txn, gk []byte) (storedTomb, bool, error) {
	v, err := txn.Get(s.tombs, gk)
	if lmdb.IsNotFound(err) {
		return storedTomb{}, false, nil
	}
	if err != nil {
		return storedTomb{}, false, err
	}
	pt, err := s.seal.open(dbTombs, gk, v)
	if err != nil {
		return storedTomb{}, false, err
	}
	t, ok := decodeTomb(pt)
	if !ok {
		return storedTomb{}, false, ErrCorrupt
	}
	return t, true, nil
}

// Revoke deletes the grant for (owner, recipient, path hash), if any, and
// writes a tombstone with r.Seq, in one write transaction. It fails with
// ErrStale if r.Seq is not greater than the last sequence number seen for
// (owner, path hash) — except that repeating exactly the stored revocation
// returns its tombstone again, so a retried request gets its receipt. A
// revocation for which no grant is stored is still recorded: it refuses the
// grant if it arrives later.
func (s *Store) revoke(r revocation) (tombstone, error) { return s.revokeAs(r, nil) }

// revokeAs is revoke charged to c (nil: a local write; SPEC.md §8.2).
func (s *Store) revokeAs(r revocation, c *quota.Charge) (tombstone, error) {
	if r.Seq == 0 {
		return tombstone{}, fmt.Errorf("failed to revoke grant: %w: sequence number 0", ErrInvalid)
	}
	if r.At.IsZero() {
		// The tombstone's retention counts from At: a zero time would
		// make it prunable at once.
		return tombstone{}, fmt.Errorf("failed to revoke grant: %w: zero revocation time", ErrInvalid)
	}
	k := makeKeys(&r.Owner, &r.Recipient, &r.PathHash)
	var out storedTomb
	err := s.update(func(txn *lmdb.Txn) error {
		var err error
		out, err = s.revokeTxn(txn, k, storedTomb{seq: r.Seq, revokedAt: r.At.Unix(), record: r.Record},
			max(r.At.Add(s.opts.Retention).Unix(), r.KeepUntil.Unix()), c)
		return err
	})
	if err != nil {
		return tombstone{}, fmt.Errorf("failed to revoke grant: %w", err)
	}
	return tombstoneFrom(k.t(), out), nil
}

// revokeTxn applies t (whose deleted fields it fills in) at gk and returns
// the tombstone as stored. The tombstone and a new mark are charged to c
// (nil: a local write); they may be refused only when no grant is held
// (revoked-not-held): a revocation that deletes a grant always applies.
func (s *Store) revokeTxn(txn *lmdb.Txn, k *entryKeys, t storedTomb, keep int64, c *quota.Charge) (storedTomb, error) {
	gk, tk, mk := k.g(), k.t(), k.m()
	mark, hasMark, err := s.getMark(txn, mk)
	if err != nil {
		return t, err
	}
	if hasMark && policy.ValidateSequence(t.seq, mark.seq) != nil {
		old, hasTomb, err := s.getTomb(txn, tk)
		if err != nil {
			return t, err
		}
		if hasTomb && old.seq == t.seq {
			return old, nil
		}
		return t, ErrStale
	}
	g, hasGrant, err := s.getGrant(txn, gk)
	if err != nil {
		return t, err
	}
	owner := gk[:OwnerSize]
	if _, hadTomb, err := s.getTomb(txn, tk); err != nil {
		return t, err
	} else if !hadTomb {
		if err := s.charge(txn, itemTomb, tk, owner, c, !hasGrant); err != nil {
			return t, err
		}
	}
	if !hasMark {
		if err := s.charge(txn, itemMark, mk, owner, c, !hasGrant); err != nil {
			return t, err
		}
	}
	if hasGrant {
		t.deleted, t.deletedSeq, t.deletedID = true, g.seq, g.id
		keep = max(keep, g.expires)
		if err := txn.Del(s.grants, gk, nil); err != nil {
			return t, err
		}
		if err := delIfExists(txn, s.deadlines, deadlineKey(deadlineGrant, g.expires, gk)); err != nil {
			return t, err
		}
		if err := s.uncharge(txn, itemGrant, gk); err != nil {
			return t, err
		}
	}
	if err := txn.Put(s.tombs, tk, s.seal.seal(dbTombs, tk, t.encode()), 0); err != nil {
		return t, err
	}
	return t, s.putMark(txn, mk, mark, hasMark, t.seq, keep)
}

func tombstoneFrom(tk []byte, t storedTomb) tombstone {
	owner, recipient, ph, _ := splitTombKey(tk)
	return tombstone{
		Owner: owner, Recipient: recipient, PathHash: ph,
		Seq: t.seq, RevokedAt: unixTime(t.revokedAt),
		Deleted: t.deleted, DeletedSeq: t.deletedSeq, DeletedID: t.deletedID,
	}
}

func grantFrom(gk []byte, g storedGrant) entry {
	owner, recipient, ph, _ := splitGrantKey(gk)
	return entry{
		Owner: owner, Recipient: recipient, PathHash: ph,
		ID: g.id, Seq: g.seq, Expires: unixTime(g.expires), Record: g.record,
	}
}

// Get returns the grant stored for (owner, recipient, path hash), live or
// not, or ErrNotGranted. Serving decisions use Lookup.
func (s *Store) get(owner *[OwnerSize]byte, recipient *[RecipientSize]byte, pathHash *[PathHashSize]byte) (entry, error) {
	var gkb [grantKeyLen]byte
	gk := grantKey(&gkb, owner, recipient, pathHash)
	var g storedGrant
	var found bool
	err := s.view(func(txn *lmdb.Txn) error {
		var err error
		g, found, err = s.getGrant(txn, gk)
		return err
	})
	if err != nil {
		return entry{}, fmt.Errorf("failed to get grant: %w", err)
	}
	if !found {
		return entry{}, ErrNotGranted
	}
	return grantFrom(gk, g), nil
}

// GetTombstone returns the tombstone for (owner, recipient, path hash), or
// ErrNotGranted if there is none.
func (s *Store) getTombstone(owner *[OwnerSize]byte, recipient *[RecipientSize]byte, pathHash *[PathHashSize]byte) (tombstone, error) {
	var tkb [grantKeyLen]byte
	tk := tombKey(&tkb, owner, recipient, pathHash)
	var t storedTomb
	var found bool
	err := s.view(func(txn *lmdb.Txn) error {
		var err error
		t, found, err = s.getTomb(txn, tk)
		return err
	})
	if err != nil {
		return tombstone{}, fmt.Errorf("failed to get tombstone: %w", err)
	}
	if !found {
		return tombstone{}, ErrNotGranted
	}
	return tombstoneFrom(tk, t), nil
}

// Lookup finds the deepest live grant of owner to recipient along a path,
// in one read transaction. pathHashes lists the path hash of every level,
// root first (1 to MaxDepth of them).
//
// Access is the union of grants: a revoked or expired deeper level does not
// hide a live shallower grant (revoking /a/b ends only that grant). When no
// level is live, the error describes the deepest level that had anything:
// a *lookupError wrapping ErrRevoked or ErrExpired, or ErrNotGranted if no
// level had anything. A value that fails authentication fails the lookup
// with ErrCorrupt rather than being skipped, so tampering cannot widen
// access.
func (s *Store) lookup(owner *[OwnerSize]byte, recipient *[RecipientSize]byte, pathHashes [][PathHashSize]byte, now time.Time) (match, error) {
	if len(pathHashes) == 0 || len(pathHashes) > MaxDepth {
		return match{}, fmt.Errorf("failed to look up grant: %w: %d path levels (want 1 to %d)", ErrInvalid, len(pathHashes), MaxDepth)
	}
	var m match
	var lookupErr error
	var gkb [grantKeyLen]byte
	err := s.view(func(txn *lmdb.Txn) error {
		expiredLevel := -1
		// Pass 1: grants only, deepest first. The deepest level is tried
		// alone first (a grant on the file itself costs one seek); the
		// others are probed together in key order (see probeGrants) and
		// decrypted from the deepest hit until one is live, usually once.
		cur, err := txn.OpenCursor(s.grants)
		if err != nil {
			return err
		}
		defer cur.Close()
		n := len(pathHashes)
		gk := grantKey(&gkb, owner, recipient, &pathHashes[n-1])
		_, v, err := cur.Get(gk, nil, lmdb.Set)
		switch {
		case err == nil:
			g, err := s.openGrant(gk, v)
			if err != nil {
				return err
			}
			if !expiredAt(g.expires, now) {
				m = match{Grant: grantFrom(gk, g), Level: n - 1}
				return nil
			}
			expiredLevel = n - 1
		case !lmdb.IsNotFound(err):
			return err
		}
		var hitBuf [16][]byte
		hits := hitBuf[:0]
		if n-1 > len(hitBuf) {
			hits = make([][]byte, 0, n-1)
		}
		hits = hits[:n-1]
		if err := probeGrants(cur, owner, recipient, pathHashes[:n-1], hits); err != nil {
			return err
		}
		for i := n - 2; i >= 0; i-- {
			if hits[i] == nil {
				continue
			}
			gk := grantKey(&gkb, owner, recipient, &pathHashes[i])
			g, err := s.openGrant(gk, hits[i])
			if err != nil {
				return err
			}
			if !expiredAt(g.expires, now) {
				m = match{Grant: grantFrom(gk, g), Level: i}
				return nil
			}
			if expiredLevel < 0 {
				expiredLevel = i
			}
		}
		// Pass 2, only when nothing is live: tombstones on levels deeper
		// than the deepest expired grant decide the error. A level never
		// holds both a grant and a tombstone (a newer grant clears it).
		for i := len(pathHashes) - 1; i > expiredLevel; i-- {
			tk := tombKey(&gkb, owner, recipient, &pathHashes[i])
			_, found, err := s.getTomb(txn, tk)
			if err != nil {
				return err
			}
			if found {
				lookupErr = &lookupError{Level: i, Err: ErrRevoked}
				return nil
			}
		}
		if expiredLevel >= 0 {
			lookupErr = &lookupError{Level: expiredLevel, Err: ErrExpired}
		} else {
			lookupErr = ErrNotGranted
		}
		return nil
	})
	if err != nil {
		return match{}, fmt.Errorf("failed to look up grant: %w", err)
	}
	return m, lookupErr
}

// probeGrants sets hits[i] to the sealed grant value stored for level i,
// or nil, pointing into the map (valid until the transaction ends).
//
// All levels share the key prefix owner || recipient, so their keys are
// neighbours in the B-tree. Probing them in key order with one cursor is a
// merge of two sorted lists: a range seek lands on the first stored key at
// or after a probe, and every later probe before that key is a miss
// without another seek; once the cursor leaves the prefix, all remaining
// probes are misses. A recipient with a few grants from an owner costs one
// or two seeks however deep the path, and seeks near the cursor stay on its
// leaf page (LMDB checks the current page before descending from the root).
func probeGrants(cur *lmdb.Cursor, owner *[OwnerSize]byte, recipient *[RecipientSize]byte, pathHashes [][PathHashSize]byte, hits [][]byte) error {
	if len(pathHashes) == 0 {
		return nil
	}
	var orderBuf [16]int
	order := orderBuf[:0]
	if len(pathHashes) > len(orderBuf) {
		order = make([]int, 0, len(pathHashes))
	}
	for i := range pathHashes {
		order = append(order, i)
	}
	less := func(a, b int) int { return bytes.Compare(pathHashes[a][:], pathHashes[b][:]) }
	if len(order) <= len(orderBuf) {
		for i := 1; i < len(order); i++ {
			for j := i; j > 0 && less(order[j-1], order[j]) > 0; j-- {
				order[j-1], order[j] = order[j], order[j-1]
			}
		}
	} else {
		slices.SortFunc(order, less)
	}

	const phOff = OwnerSize + RecipientSize
	var probe [grantKeyLen]byte
	var k, v []byte // current cursor position; k == nil before the first seek
	for _, level := range order {
		ph := pathHashes[level][:]
		if k == nil || bytes.Compare(k[phOff:], ph) < 0 {
			var err error
			k, v, err = cur.Get(grantKey(&probe, owner, recipient, &pathHashes[level]), nil, lmdb.SetRange)
			if lmdb.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if len(k) != grantKeyLen || !bytes.Equal(k[:OwnerSize], owner[:]) || !bytes.Equal(k[OwnerSize:phOff], recipient[:]) {
				return nil // past this owner's grants to this recipient
			}
		}
		if bytes.Equal(k[phOff:], ph) {
			hits[level] = v
		}
	}
	return nil
}

// PruneStats says what a Prune pass removed.
type PruneStats struct {
	Grants, Tombstones, Seqs, Maps int
}

// pruneBatch bounds the work per write transaction, so pruning never holds
// the single writer slot long enough to stall grants and revocations.
const pruneBatch = 512

// Prune removes grants expired at now, and sequence marks whose retention
// ended (Options.Retention after their last change, and never before every
// grant seen for their (owner, path hash) expired) together with the
// tombstones under them. It works in small write transactions and can be
// run at any time; each transaction leaves the store consistent.
func (s *Store) Prune(now time.Time) (PruneStats, error) {
	var total PruneStats
	for _, kind := range []byte{deadlineGrant, deadlineMark, deadlineMap} {
		for {
			var st PruneStats
			var n int
			err := s.write(func(txn *lmdb.Txn) (bool, error) {
				st = PruneStats{}
				var err error
				n, err = s.pruneTxn(txn, kind, now, &st)
				return false, err
			})
			if err != nil {
				return total, fmt.Errorf("failed to prune: %w", err)
			}
			total.Grants += st.Grants
			total.Tombstones += st.Tombstones
			total.Seqs += st.Seqs
			total.Maps += st.Maps
			if n < pruneBatch {
				break
			}
		}
	}
	if total != (PruneStats{}) {
		s.log.Info("store pruned", "grants", total.Grants, "tombstones", total.Tombstones, "seqs", total.Seqs, "maps", total.Maps)
	}
	return total, nil
}

// pruneTxn handles up to pruneBatch due deadline entries of one kind and
// returns how many it looked at.
func (s *Store) pruneTxn(txn *lmdb.Txn, kind byte, now time.Time, st *PruneStats) (int, error) {
	var due [][]byte
	cur, err := txn.OpenCursor(s.deadlines)
	if err != nil {
		return 0, err
	}
	k, _, err := cur.Get([]byte{kind}, nil, lmdb.SetRange)
	for err == nil && len(due) < pruneBatch {
		kk, at, _, ok := splitDeadlineKey(k)
		if !ok || kk != kind || at > now.Unix() {
			break
		}
		due = append(due, bytes.Clone(k))
		k, _, err = cur.Get(nil, nil, lmdb.Next)
	}
	cur.Close()
	if err != nil && !lmdb.IsNotFound(err) {
		return 0, err
	}
	for _, dk := range due {
		if err := txn.Del(s.deadlines, dk, nil); err != nil {
			return 0, err
		}
		_, at, target, _ := splitDeadlineKey(dk)
		switch kind {
		case deadlineGrant:
			err = s.pruneGrant(txn, target, at, now, st)
		case deadlineMark:
			err = s.pruneMark(txn, target, now, st)
		case deadlineMap:
			err = s.pruneMap(txn, target, now, st)
		}
		if err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// pruneGrant deletes the grant at gk if it is the one the index entry was
// made for and it is expired. The index is an unauthenticated hint: the
// sealed value decides.
func (s *Store) pruneGrant(txn *lmdb.Txn, gk []byte, at int64, now time.Time, st *PruneStats) error {
	if len(gk) != grantKeyLen {
		return nil
	}
	g, found, err := s.getGrant(txn, gk)
	if err != nil || !found || g.expires != at || !expiredAt(g.expires, now) {
		return err
	}
	st.Grants++
	if err := s.uncharge(txn, itemGrant, gk); err != nil {
		return err
	}
	return txn.Del(s.grants, gk, nil)
}

// pruneMark deletes the mark at mk and the tombstones under it once its
// retention ended. The mark is kept until the last expiry of any grant seen
// for its (owner, path hash), so those grants are already expired and are
// removed through their own deadline entries (the grant pass of Prune runs
// first).
func (s *Store) pruneMark(txn *lmdb.Txn, mk []byte, now time.Time, st *PruneStats) error {
	if len(mk) != markKeyLen {
		return nil
	}
	m, found, err := s.getMark(txn, mk)
	if err != nil || !found || m.keepUntil > now.Unix() {
		return err
	}
	var tombKeys [][]byte
	cur, err := txn.OpenCursor(s.tombs)
	if err != nil {
		return err
	}
	k, _, err := cur.Get(mk, nil, lmdb.SetRange)
	for err == nil && bytes.HasPrefix(k, mk) {
		tombKeys = append(tombKeys, bytes.Clone(k))
		k, _, err = cur.Get(nil, nil, lmdb.Next)
	}
	cur.Close()
	if err != nil && !lmdb.IsNotFound(err) {
		return err
	}
	for _, tk := range tombKeys {
		if err := txn.Del(s.tombs, tk, nil); err != nil {
			return err
		}
		if err := s.uncharge(txn, itemTomb, tk); err != nil {
			return err
		}
		st.Tombstones++
	}
	st.Seqs++
	if err := s.uncharge(txn, itemMark, mk); err != nil {
		return err
	}
	return txn.Del(s.seqs, mk, nil)
}
