package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
)

// A node keeps, for every pair (owner, recipient) whose holder map it
// stores (as a node close to one of the pair's rendezvous points, or as a
// holder of one of its fragments), the pages of the newest map sequence it
// was given and the hand-off links of the pair (SPEC.md §6.4). The caller
// (the RPC service) checks signatures and links; the store keeps the
// newest, bounds what it keeps, and answers by point.

// Limits of the map store.
const (
	// MaxLinks bounds the hand-off links kept per pair (the encoding's
	// count byte); the oldest goes first.
	MaxLinks = 255
	// MaxFragmentLinks bounds the links kept per fragment (grant ID), the
	// longest chain a hand-off proves (proto.MaxChain): one holder's links
	// never push out another fragment's.
	MaxFragmentLinks = 8
	pairLen          = OwnerSize + RecipientSize
)

// ErrNotFound means the store keeps no map of the pair a link is for.
var ErrNotFound = errors.New("store: no holder map for this pair")

// mapValue is the sealed value of a pair's map.
type mapValue struct {
	seq       uint64
	keepUntil int64
	points    [policy.MapPoints]policy.Point
	pages     [][]byte // index = page; nil where missing
	links     [][]byte
}

func (m *mapValue) encode() []byte {
	b := []byte{valueVersion}
	b = binary.BigEndian.AppendUint64(b, m.seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.keepUntil))
	for _, p := range m.points {
		b = append(b, p[:]...)
	}
	b = append(b, byte(len(m.pages)))
	for _, p := range m.pages {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	b = append(b, byte(len(m.links)))
	for _, l := range m.links {
		b = append(b, l...)
	}
	return b
}

func decodeMap(b []byte) (mapValue, bool) {
	var m mapValue
	if len(b) < 1+16+32*policy.MapPoints+2 || b[0] != valueVersion {
		return m, false
	}
	m.seq = binary.BigEndian.Uint64(b[1:])
	m.keepUntil = int64(binary.BigEndian.Uint64(b[9:]))
	b = b[17:]
	for j := range m.points {
		copy(m.points[j][:], b)
		b = b[32:]
	}
	n := int(b[0])
	b = b[1:]
	for range n {
		if len(b) < 2 {
			return m, false
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l || l > policy.MaxMapPageSize {
			return m, false
		}
		var p []byte
		if l > 0 {
			p = bytes.Clone(b[2 : 2+l])
		}
		m.pages = append(m.pages, p)
		b = b[2+l:]
	}
	if len(b) < 1 {
		return m, false
	}
	n = int(b[0])
	b = b[1:]
	if len(b) != n*policy.HandoffSize || n > MaxLinks {
		return m, false
	}
	for i := range n {
		m.links = append(m.links, bytes.Clone(b[i*policy.HandoffSize:(i+1)*policy.HandoffSize]))
	}
	return m, true
}

func pairKey(owner, recipient policy.PublicKey) []byte {
	return append(append(make([]byte, 0, pairLen), owner[:]...), recipient[:]...)
}

func (s *Store) getMap(txn *lmdb.Txn, pk []byte) (mapValue, bool, error) {
	v, err := txn.Get(s.maps, pk)
	if lmdb.IsNotFound(err) {
		return mapValue{}, false, nil
	}
	if err != nil {
		return mapValue{}, false, err
	}
	pt, err := s.seal.open(dbMaps, pk, v)
	if err != nil {
		return mapValue{}, false, err
	}
	m, ok := decodeMap(pt)
	if !ok {
		return mapValue{}, false, ErrCorrupt
	}
	return m, true, nil
}

func (s *Store) putMap(txn *lmdb.Txn, pk []byte, m *mapValue, old *mapValue) error {
	if old != nil && old.keepUntil != m.keepUntil {
		if err := delIfExists(txn, s.deadlines, deadlineKey(deadlineMap, old.keepUntil, pk)); err != nil {
			return err
		}
	}
	if err := txn.Put(s.maps, pk, s.seal.seal(dbMaps, pk, m.encode()), 0); err != nil {
		return err
	}
	return txn.Put(s.deadlines, deadlineKey(deadlineMap, m.keepUntil, pk), nil, 0)
}

// PutMapPage keeps page (already verified: the owner's signature, the
// fields) of its pair's map, raw being its bytes. A page of a newer map
// sequence replaces everything kept of the older one but the links; a page
// of an older sequence fails with ErrStale; a different page at the same
// sequence and index fails with ErrStale too (the owner signs a new
// sequence for every change). The map is kept until its last grant
// expires, and at least retention after now.
func (s *Store) PutMapPage(page *policy.HolderMap, raw []byte, now time.Time) error {
	return s.PutMapPageAs(page, raw, now, nil)
}

// PutMapPageAs is PutMapPage charged to c (SPEC.md §8.2): a page this
// store did not keep is one unit of holder-map pages, refused over a limit;
// the pages of an older sequence are released when a newer one replaces
// them.
func (s *Store) PutMapPageAs(page *policy.HolderMap, raw []byte, now time.Time, c *quota.Charge) error {
	pk := pairKey(page.Owner, page.Recipient)
	keep := now.Add(s.opts.Retention).Unix()
	for _, e := range page.Entries {
		keep = max(keep, int64(e.Expiry))
	}
	err := s.update(func(txn *lmdb.Txn) error {
		old, found, err := s.getMap(txn, pk)
		if err != nil {
			return err
		}
		m := old
		var oldp *mapValue
		if found {
			oldp = &old
		}
		switch {
		case !found || page.Sequence > old.seq:
			m = mapValue{seq: page.Sequence, points: page.Points, pages: make([][]byte, page.Pages), links: old.links}
			if err := s.rechargePages(txn, pk, oldp, &m, c); err != nil {
				return err
			}
			if err := s.replacePoints(txn, pk, oldp, page.Points); err != nil {
				return err
			}
		case page.Sequence < old.seq:
			return ErrStale
		case len(old.pages) != int(page.Pages) || old.points != page.Points:
			return ErrStale
		case old.pages[page.Page] != nil:
			if bytes.Equal(old.pages[page.Page], raw) {
				return nil
			}
			return ErrStale
		}
		if err := s.charge(txn, itemPage, pageKey(pk, int(page.Page)), page.Owner[:], c, true); err != nil {
			return err
		}
		m.pages[page.Page] = raw
		m.keepUntil = max(keep, old.keepUntil)
		return s.putMap(txn, pk, &m, oldp)
	})
	if err != nil {
		return fmt.Errorf("failed to put holder map: %w", err)
	}
	return nil
}

// rechargePages releases the pages of old (a map being replaced) and
// charges those of m already present (an import brings them all).
func (s *Store) rechargePages(txn *lmdb.Txn, pk []byte, old, m *mapValue, c *quota.Charge) error {
	if old != nil {
		for i, p := range old.pages {
			if p != nil {
				if err := s.uncharge(txn, itemPage, pageKey(pk, i)); err != nil {
					return err
				}
			}
		}
	}
	for i, p := range m.pages {
		if p != nil {
			if err := s.charge(txn, itemPage, pageKey(pk, i), pk[:OwnerSize], c, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// replacePoints points the rendezvous points of a pair's map at it, and
// drops the points of the map it replaces that it no longer has (the owner
// signs the points; a page of a newer sequence may name others).
func (s *Store) replacePoints(txn *lmdb.Txn, pk []byte, old *mapValue, points [policy.MapPoints]policy.Point) error {
	owner := policy.PublicKey(pk[:OwnerSize])
	if old != nil {
		for _, p := range old.points {
			if slices.Contains(points[:], p) {
				continue
			}
			if at, err := s.pairAt(txn, p, owner); err != nil {
				return err
			} else if bytes.Equal(at, pk) {
				if err := txn.Del(s.points, pointKey(p, owner), nil); err != nil {
					return err
				}
			}
		}
	}
	for _, p := range points {
		k := pointKey(p, owner)
		if err := txn.Put(s.points, k, s.seal.seal(dbPoints, k, pk), 0); err != nil {
			return err
		}
	}
	return nil
}

// pointKey is the key of the point index: point ‖ owner. Maps are found
// by point and owner, so a map signed by another owner that names the
// same points (anyone who learned them can sign one) is kept beside hers,
// never in its place.
func pointKey(p policy.Point, owner policy.PublicKey) []byte {
	return append(append(make([]byte, 0, len(p)+len(owner)), p[:]...), owner[:]...)
}

// pairAt returns the pair of owner whose map is kept under point p, nil if
// none.
func (s *Store) pairAt(txn *lmdb.Txn, p policy.Point, owner policy.PublicKey) ([]byte, error) {
	k := pointKey(p, owner)
	v, err := txn.Get(s.points, k)
	if lmdb.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pt, err := s.seal.open(dbPoints, k, v)
	if err != nil {
		return nil, err
	}
	if len(pt) != pairLen {
		return nil, ErrCorrupt
	}
	return bytes.Clone(pt), nil
}

// MapPage returns page i of owner's map kept under point p, nil if there
// is none.
func (s *Store) MapPage(p policy.Point, owner policy.PublicKey, i int) ([]byte, error) {
	var out []byte
	err := s.view(func(txn *lmdb.Txn) error {
		pk, err := s.pairAt(txn, p, owner)
		if err != nil || pk == nil {
			return err
		}
		m, found, err := s.getMap(txn, pk)
		if err != nil || !found || i < 0 || i >= len(m.pages) || !slices.Contains(m.points[:], p) {
			return err
		}
		out = m.pages[i]
		return nil
	})
	return out, err
}

// Map returns the pages (nil where missing) and links kept for the pair;
// no pages if none.
func (s *Store) Map(owner, recipient policy.PublicKey) (pages, links [][]byte, err error) {
	err = s.view(func(txn *lmdb.Txn) error {
		m, _, err := s.getMap(txn, pairKey(owner, recipient))
		pages, links = m.pages, m.links
		return err
	})
	return pages, links, err
}

// Links returns the hand-off links kept for owner's pair whose map is
// under point p.
func (s *Store) Links(p policy.Point, owner policy.PublicKey) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(txn *lmdb.Txn) error {
		pk, err := s.pairAt(txn, p, owner)
		if err != nil || pk == nil {
			return err
		}
		m, _, err := s.getMap(txn, pk)
		out = m.links
		return err
	})
	return out, err
}

// Mark returns the sequence mark of (owner, path hash), 0 if none.
func (s *Store) Mark(owner policy.PublicKey, ph policy.PathHash) (uint64, error) {
	mk := append(append(make([]byte, 0, markKeyLen), owner[:]...), ph[:]...)
	var seq uint64
	err := s.view(func(txn *lmdb.Txn) error {
		m, _, err := s.getMark(txn, mk)
		seq = m.seq
		return err
	})
	return seq, err
}

// PutLink keeps a hand-off link (already verified against the pair's map
// by the caller) with the pair's map. A link already kept is a no-op;
// beyond MaxLinks the oldest (by its time) is dropped. It fails with
// ErrNotFound when no map of the pair is kept.
func (s *Store) PutLink(l *policy.HandoffLink) error {
	pk := pairKey(l.Owner, l.Recipient)
	raw := l.Bytes()
	err := s.update(func(txn *lmdb.Txn) error {
		m, found, err := s.getMap(txn, pk)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		for _, x := range m.links {
			if bytes.Equal(x, raw) {
				return nil
			}
		}
		m.links = boundLinks(append(m.links, raw))
		return s.putMap(txn, pk, &m, &m)
	})
	if err != nil {
		return fmt.Errorf("failed to put hand-off link: %w", err)
	}
	return nil
}

// pruneMap deletes a pair's map and its points once kept long enough.
func (s *Store) pruneMap(txn *lmdb.Txn, pk []byte, now time.Time, st *PruneStats) error {
	if len(pk) != pairLen {
		return nil
	}
	m, found, err := s.getMap(txn, pk)
	if err != nil || !found || m.keepUntil > now.Unix() {
		return err
	}
	for _, p := range m.points {
		if at, err := s.pairAt(txn, p, policy.PublicKey(pk[:OwnerSize])); err != nil {
			return err
		} else if bytes.Equal(at, pk) {
			if err := delIfExists(txn, s.points, pointKey(p, policy.PublicKey(pk[:OwnerSize]))); err != nil {
				return err
			}
		}
	}
	for i, p := range m.pages {
		if p != nil {
			if err := s.uncharge(txn, itemPage, pageKey(pk, i)); err != nil {
				return err
			}
		}
	}
	st.Maps++
	return txn.Del(s.maps, pk, nil)
}

// Revocations returns the owner-signed revocations kept with the
// tombstones of owner's grants to recipient.
func (s *Store) Revocations(owner, recipient policy.PublicKey) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(txn *lmdb.Txn) error {
		cur, err := txn.OpenCursor(s.tombs)
		if err != nil {
			return err
		}
		defer cur.Close()
		k, v, err := cur.Get(owner[:], nil, lmdb.SetRange)
		for ; err == nil && bytes.HasPrefix(k, owner[:]); k, v, err = cur.Get(nil, nil, lmdb.Next) {
			if !bytes.Equal(k[markKeyLen:], recipient[:]) {
				continue
			}
			pt, err := s.seal.open(dbTombs, k, v)
			if err != nil {
				return err
			}
			t, ok := decodeTomb(pt)
			if !ok {
				return ErrCorrupt
			}
			if t.record != nil {
				out = append(out, bytes.Clone(t.record))
			}
		}
		if err != nil && !lmdb.IsNotFound(err) {
			return err
		}
		return nil
	})
	return out, err
}

// RaiseMark raises the sequence mark of (owner, path hash) to seq, kept
// until keepUntil at least (a hand-off brings the former holder's mark).
// It never lowers a mark.
func (s *Store) RaiseMark(owner policy.PublicKey, ph policy.PathHash, seq uint64, keepUntil time.Time) error {
	return s.RaiseMarkAs(owner, ph, seq, keepUntil, nil)
}

// RaiseMarkAs is RaiseMark charged to c: a new mark is one unit of
// history (SPEC.md §8.2).
func (s *Store) RaiseMarkAs(owner policy.PublicKey, ph policy.PathHash, seq uint64, keepUntil time.Time, c *quota.Charge) error {
	mk := append(append(make([]byte, 0, markKeyLen), owner[:]...), ph[:]...)
	err := s.update(func(txn *lmdb.Txn) error {
		err := s.raiseMark(txn, mk, storedMark{seq: seq, keepUntil: keepUntil.Unix()}, c)
		if errors.Is(err, ErrStale) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to raise sequence mark: %w", err)
	}
	return nil
}

// boundLinks keeps the newest MaxFragmentLinks links of every fragment and
// the newest MaxLinks in all, oldest first.
func boundLinks(links [][]byte) [][]byte {
	const offGrant, offAt = 3 + 2*policy.PublicKeySize, policy.HandoffBodySize - 8
	at := func(l []byte) []byte { return l[offAt:policy.HandoffBodySize] }
	slices.SortStableFunc(links, func(a, b []byte) int { return bytes.Compare(at(a), at(b)) })
	perFragment := map[string]int{}
	keep := make([]bool, len(links))
	for i := len(links) - 1; i >= 0; i-- {
		id := string(links[i][offGrant : offGrant+32])
		if perFragment[id] < MaxFragmentLinks {
			perFragment[id]++
			keep[i] = true
		}
	}
	out := links[:0]
	for i, l := range links {
		if keep[i] {
			out = append(out, l)
		}
	}
	if len(out) > MaxLinks {
		out = out[len(out)-MaxLinks:]
	}
	return out
}
