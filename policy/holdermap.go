package policy

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/kadre/kadre/rekey"
)

// Holder map limits (SPEC.md §3.4.7).
const (
	// MaxMapPages bounds the pages of one pair's holder map.
	MaxMapPages = 32
	// MaxMapPageSize bounds one signed page, so that a page and its
	// framing fit one frame (proto.MaxFrameSize).
	MaxMapPageSize = 8192
	// MapHeaderSize is the size of a page's fixed part, without its
	// entries and revoked writers.
	MapHeaderSize = 185
	// MaxRevokedWriters bounds the writers an owner's maps list as revoked
	// (page 0 of every map carries the list).
	MaxRevokedWriters = 64
	mapEntryBase      = 121
	mapHolderSize     = PublicKeySize + 32
)

// MapHolder is one fragment of a grant: the node the owner placed it on
// and the grant's ID (which commits to the fragment's kfrag).
type MapHolder struct {
	Node    PublicKey
	GrantID RecordID
}

// MapEntry is one grant of the pair: what a recipient needs to find and
// check its holders without the owner.
type MapEntry struct {
	PathHash      PathHash
	Epoch         uint32
	Sequence      uint64 // the grant's sequence number
	Expiry        uint64 // the grant's expiry, Unix seconds
	Threshold     uint8
	Shares        uint8
	DelegatingKey PublicKey
	VerifyingKey  PublicKey
	// Holders[i] holds fragment i; len(Holders) is the number placed,
	// 1..Shares (fragments no node took are absent).
	Holders []MapHolder
}

func (e *MapEntry) size() int { return mapEntryBase + mapHolderSize*len(e.Holders) }

// ExpiryTime returns Expiry as a time.
func (e *MapEntry) ExpiryTime() time.Time { return unixTime(e.Expiry) }

// HolderMap is one page of an owner-signed holder map: for one owner and
// one recipient, every live grant and the nodes holding its fragments
// (SPEC.md §3.4.7). It is stored at the pair's rendezvous points (Points,
// which only the owner and the recipient can compute, PairKey.Points) and
// with the holders; a newer Sequence replaces the whole map. The owner
// signs it, so nobody else can add or hide a holder; hand-offs extend it
// with HandoffLinks.
type HolderMap struct {
	SigAlg    SignatureAlgorithm
	Owner     PublicKey
	Recipient PublicKey
	Points    [MapPoints]Point
	Sequence  uint64 // the map's version
	IssuedAt  uint64
	Page      uint8 // 0 ≤ Page < Pages
	Pages     uint8 // 1..MaxMapPages
	Entries   []MapEntry
	// RevokedWriters are the writer identity keys whose certificates the
	// owner revoked (WriterCert): readers refuse their files. Only page 0
	// carries them; strictly increasing, at most MaxRevokedWriters.
	RevokedWriters []PublicKey
	Signature      Signature
}

// WriterRevoked reports whether the page lists w as a revoked writer.
func (m *HolderMap) WriterRevoked(w PublicKey) bool {
	return slices.Contains(m.RevokedWriters, w)
}

// IssuedTime returns IssuedAt as a time.
func (m *HolderMap) IssuedTime() time.Time { return unixTime(m.IssuedAt) }

// HasPoint reports whether p is one of the map's rendezvous points.
func (m *HolderMap) HasPoint(p Point) bool {
	for _, q := range m.Points {
		if q == p {
			return true
		}
	}
	return false
}

// Entry returns the entry of path hash h, or nil.
func (m *HolderMap) Entry(h PathHash) *MapEntry {
	for i := range m.Entries {
		if m.Entries[i].PathHash == h {
			return &m.Entries[i]
		}
	}
	return nil
}

func (m *HolderMap) checkFields() error {
	if err := m.SigAlg.check(); err != nil {
		return err
	}
	if _, err := ParsePublicKey(m.Owner[:]); err != nil {
		return fmt.Errorf("owner key: %w", err)
	}
	if _, err := ParsePublicKey(m.Recipient[:]); err != nil {
		return fmt.Errorf("recipient key: %w", err)
	}
	if m.Sequence == 0 {
		return fmt.Errorf("%w: map sequence 0 (sequences start at 1)", ErrMalformed)
	}
	if err := checkTimestamp("issue time", m.IssuedAt); err != nil {
		return err
	}
	if m.Pages == 0 || m.Pages > MaxMapPages || m.Page >= m.Pages {
		return fmt.Errorf("%w: page %d of %d (at most %d pages)", ErrMalformed, m.Page, m.Pages, MaxMapPages)
	}
	if len(m.Entries) > 255 {
		return fmt.Errorf("%w: %d entries in a page", ErrMalformed, len(m.Entries))
	}
	if len(m.RevokedWriters) > MaxRevokedWriters || (m.Page != 0 && len(m.RevokedWriters) > 0) {
		return fmt.Errorf("%w: %d revoked writers on page %d (at most %d, on page 0 only)", ErrMalformed, len(m.RevokedWriters), m.Page, MaxRevokedWriters)
	}
	for i := range m.RevokedWriters {
		if _, err := ParsePublicKey(m.RevokedWriters[i][:]); err != nil {
			return fmt.Errorf("revoked writer key: %w", err)
		}
		if i > 0 && bytes.Compare(m.RevokedWriters[i-1][:], m.RevokedWriters[i][:]) >= 0 {
			return fmt.Errorf("%w: revoked writer keys not strictly increasing", ErrMalformed)
		}
	}
	size := MapHeaderSize + SignatureSize + PublicKeySize*len(m.RevokedWriters)
	seen := map[PathHash]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if seen[e.PathHash] {
			return fmt.Errorf("%w: path hash %s listed twice", ErrMalformed, e.PathHash)
		}
		seen[e.PathHash] = true
		if err := e.check(); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		size += e.size()
	}
	if size > MaxMapPageSize {
		return fmt.Errorf("%w: page of %d bytes (at most %d)", ErrMalformed, size, MaxMapPageSize)
	}
	return nil
}

func (e *MapEntry) check() error {
	if err := checkThreshold(e.Threshold, e.Shares); err != nil {
		return err
	}
	if len(e.Holders) == 0 || len(e.Holders) > int(e.Shares) {
		return fmt.Errorf("%w: %d holders for %d shares", ErrMalformed, len(e.Holders), e.Shares)
	}
	if e.Sequence == 0 {
		return fmt.Errorf("%w: grant sequence 0", ErrMalformed)
	}
	if err := checkTimestamp("expiry", e.Expiry); err != nil {
		return err
	}
	for _, k := range []*PublicKey{&e.DelegatingKey, &e.VerifyingKey} {
		if _, err := ParsePublicKey(k[:]); err != nil {
			return err
		}
	}
	nodes, ids := map[PublicKey]bool{}, map[RecordID]bool{}
	for _, h := range e.Holders {
		if _, err := ParsePublicKey(h.Node[:]); err != nil {
			return fmt.Errorf("holder key: %w", err)
		}
		if nodes[h.Node] || ids[h.GrantID] {
			return fmt.Errorf("%w: a node or a fragment listed twice in one grant", ErrMalformed)
		}
		nodes[h.Node], ids[h.GrantID] = true, true
	}
	return nil
}

// BodyBytes returns the canonical body, the part the signature covers.
func (m *HolderMap) BodyBytes() []byte {
	b := make([]byte, 0, MaxMapPageSize)
	b = append(b, holderMapVersion, recordTypeHolderMap, byte(m.SigAlg))
	b = append(b, m.Owner[:]...)
	b = append(b, m.Recipient[:]...)
	for _, p := range m.Points {
		b = append(b, p[:]...)
	}
	b = appendU64(b, m.Sequence)
	b = appendU64(b, m.IssuedAt)
	b = append(b, m.Page, m.Pages, byte(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		b = append(b, e.PathHash[:]...)
		b = appendU32(b, e.Epoch)
		b = appendU64(b, e.Sequence)
		b = appendU64(b, e.Expiry)
		b = append(b, e.Threshold, e.Shares, byte(len(e.Holders)))
		b = append(b, e.DelegatingKey[:]...)
		b = append(b, e.VerifyingKey[:]...)
		for _, h := range e.Holders {
			b = append(b, h.Node[:]...)
			b = append(b, h.GrantID[:]...)
		}
	}
	b = append(b, byte(len(m.RevokedWriters)))
	for _, w := range m.RevokedWriters {
		b = append(b, w[:]...)
	}
	return b
}

// Bytes returns body ‖ signature.
func (m *HolderMap) Bytes() []byte { return append(m.BodyBytes(), m.Signature[:]...) }

// ID returns the SHA-256 of Bytes.
func (m *HolderMap) ID() RecordID { return recordID(m.Bytes()) }

// Sign signs the page with the owner's identity signer, filling SigAlg and
// Owner when zero.
func (m *HolderMap) Sign(owner *rekey.Signer) error {
	if m.SigAlg == 0 {
		m.SigAlg = SignatureECDSASecp256k1
	}
	if err := signerKey(owner, &m.Owner, "owner"); err != nil {
		return err
	}
	if err := m.checkFields(); err != nil {
		return err
	}
	var err error
	m.Signature, err = signRecord(owner, LabelHolderMap, m.BodyBytes())
	return err
}

// VerifySignature checks the owner's signature on the page.
func (m *HolderMap) VerifySignature() error {
	return verifyRecord(m.Owner, LabelHolderMap, m.BodyBytes(), m.Signature)
}

// ParseHolderMap parses one signed page. It does not verify the signature
// (VerifyHolderMap does).
func ParseHolderMap(b []byte) (*HolderMap, error) {
	if len(b) < MapHeaderSize+SignatureSize || len(b) > MaxMapPageSize {
		return nil, fmt.Errorf("%w: holder map page of %d bytes (%d..%d)", ErrMalformed, len(b), MapHeaderSize+SignatureSize, MaxMapPageSize)
	}
	d := decoder{b: b}
	d.header(holderMapVersion, recordTypeHolderMap, "holder map")
	m := &HolderMap{SigAlg: SignatureAlgorithm(d.u8())}
	m.Owner = d.key("owner key")
	m.Recipient = d.key("recipient key")
	for j := range m.Points {
		m.Points[j] = d.hash32()
	}
	m.Sequence = d.u64()
	m.IssuedAt = d.u64()
	m.Page, m.Pages = d.u8(), d.u8()
	n := int(d.u8())
	for i := 0; i < n && d.err == nil; i++ {
		var e MapEntry
		e.PathHash = d.hash32()
		e.Epoch = d.u32()
		e.Sequence = d.u64()
		e.Expiry = d.u64()
		e.Threshold, e.Shares = d.u8(), d.u8()
		holders := int(d.u8())
		e.DelegatingKey = d.key("delegating key")
		e.VerifyingKey = d.key("verifying key")
		if holders > MaxShares {
			d.fail("%d holders in one grant", holders)
		}
		for j := 0; j < holders && d.err == nil; j++ {
			e.Holders = append(e.Holders, MapHolder{Node: d.key("holder key"), GrantID: d.hash32()})
		}
		m.Entries = append(m.Entries, e)
	}
	revoked := int(d.u8())
	if revoked > MaxRevokedWriters {
		d.fail("%d revoked writers (at most %d)", revoked, MaxRevokedWriters)
	}
	for i := 0; i < revoked && d.err == nil; i++ {
		m.RevokedWriters = append(m.RevokedWriters, d.key("revoked writer key"))
	}
	m.Signature = d.signature()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if err := m.checkFields(); err != nil {
		return nil, err
	}
	return m, nil
}

// VerifyHolderMap checks a page received for the pair (owner, recipient):
// fields in their domain, signed by the owner, for that pair.
func VerifyHolderMap(m *HolderMap, owner, recipient PublicKey) error {
	if err := m.checkFields(); err != nil {
		return err
	}
	if m.Owner != owner || m.Recipient != recipient {
		return fmt.Errorf("%w: the holder map is another pair's", ErrMismatch)
	}
	return m.VerifySignature()
}

// PageEntries splits entries into the fewest pages that each fit
// MaxMapPageSize, in order, page 0 leaving room for revoked writer keys.
// It fails if an entry alone does not fit or if more than MaxMapPages
// pages are needed.
func PageEntries(entries []MapEntry, revoked int) ([][]MapEntry, error) {
	var pages [][]MapEntry
	var cur []MapEntry
	size := MapHeaderSize + SignatureSize + PublicKeySize*revoked
	for _, e := range entries {
		if MapHeaderSize+SignatureSize+e.size() > MaxMapPageSize {
			return nil, fmt.Errorf("%w: one grant's map entry does not fit a page", ErrMalformed)
		}
		if size+e.size() > MaxMapPageSize || len(cur) == 255 {
			pages = append(pages, cur)
			cur, size = nil, MapHeaderSize+SignatureSize
		}
		cur = append(cur, e)
		size += e.size()
	}
	pages = append(pages, cur)
	if revoked > MaxRevokedWriters {
		return nil, fmt.Errorf("%w: %d revoked writers (at most %d)", ErrMalformed, revoked, MaxRevokedWriters)
	}
	if len(pages) > MaxMapPages {
		return nil, fmt.Errorf("%w: %d grants need %d map pages (at most %d)", ErrMalformed, len(entries), len(pages), MaxMapPages)
	}
	return pages, nil
}
