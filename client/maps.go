package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/policy"
)

// A pair's holder map (SPEC.md §5.2) is how a recipient finds the holders
// of his grants without the owner: the owner signs it and stores it at the
// pair's rendezvous points and on the holders after every grant and
// revocation; the recipient fetches it (and caches it), and follows the
// hand-off links to where fragments moved.

// peerKeyOf returns the public key of a peer ID string.
func peerKeyOf(s string) (policy.PublicKey, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return policy.PublicKey{}, err
	}
	return dht.PublicKeyOf(id)
}

// holderMap is a pair's map as a recipient or an owner holds it.
type holderMap struct {
	ref     dht.MapRef
	seq     uint64
	pages   []*policy.HolderMap
	links   []*policy.HandoffLink
	fetched time.Time // when it came from the network
}

func (m *holderMap) entry(ph policy.PathHash) (*policy.HolderMap, *policy.MapEntry) {
	for _, p := range m.pages {
		if e := p.Entry(ph); e != nil {
			return p, e
		}
	}
	return nil, nil
}

func (m *holderMap) entries() []policy.MapEntry {
	var out []policy.MapEntry
	for _, p := range m.pages {
		out = append(out, p.Entries...)
	}
	return out
}

// fetchMap gets the newest map of the pair from the network.
func (c *Client) fetchMap(ctx context.Context, pair *policy.PairKey) (*holderMap, error) {
	return c.fetchMapWith(ctx, pair, dht.MapOptions{})
}

// fetchMapWith is fetchMap with map options (the storers already found).
func (c *Client) fetchMapWith(ctx context.Context, pair *policy.PairKey, opt dht.MapOptions) (*holderMap, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	fm, err := h.FetchMap(ctx, dht.RefOf(pair), opt)
	if err != nil {
		return nil, err
	}
	return &holderMap{ref: dht.RefOf(pair), seq: fm.Sequence, pages: fm.Pages, links: fm.Links, fetched: time.Now()}, nil
}

// mapPrep is what publishing a pair's map needs from the network before
// the map is signed: the nodes nearest its rendezvous points and the map
// stored there now. A grant starts it before placing, so that its lookups
// run while the fragments are placed.
type mapPrep struct {
	done chan struct{}
	pair *policy.PairKey
	near *dht.Storers
	net  *holderMap // nil if the network has none
	err  error
}

// prepareMap starts looking up the storers of the pair's points and the
// map they keep.
func (c *Client) prepareMap(ctx context.Context, h *dht.Host, pair *policy.PairKey) *mapPrep {
	p := &mapPrep{done: make(chan struct{}), pair: pair}
	go func() {
		defer close(p.done)
		p.near = h.MapStorers(ctx, pair.Points(), dht.DefaultMapStorers)
		p.net, p.err = c.fetchMapWith(ctx, pair, dht.MapOptions{Near: p.near})
		if errors.Is(p.err, dht.ErrNoMap) {
			p.err = nil
		}
	}()
	return p
}

// publishMap signs and stores the owner's map of grants to recipient:
// every live grant the ledger records, with the entries of the network's
// newest map that the ledger does not know (another device of the owner's)
// and has not revoked, under a sequence above both. extra are nodes that
// get the pages too (the holders of a new grant). It records the sequence
// in the ledger. prep is the pair's prepareMap, started earlier; nil
// starts one now.
func (c *Client) publishMap(ctx context.Context, recipient policy.Identity, extra []peer.ID, revoked map[policy.PathHash]bool, prep *mapPrep) (*dht.Publication, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	if prep == nil {
		pair, err := policy.OwnerPairKey(c.keys, recipient.IdentityKey)
		if err != nil {
			return nil, err
		}
		prep = c.prepareMap(ctx, h, pair)
	}
	<-prep.done
	if prep.err != nil {
		return nil, prep.err
	}
	pair, net := prep.pair, prep.net
	now := time.Now()
	var pages []*policy.HolderMap
	var links []*policy.HandoffLink
	err = c.ledger.update(func(doc *ledgerDoc) error {
		byHash := map[policy.PathHash]policy.MapEntry{}
		var order []policy.PathHash
		add := func(e policy.MapEntry) {
			if _, ok := byHash[e.PathHash]; !ok {
				order = append(order, e.PathHash)
			}
			byHash[e.PathHash] = e
		}
		seq := doc.Maps[recipient.String()]
		known := map[policy.PathHash]bool{}
		for _, g := range doc.Grants {
			if g.Recipient == recipient.String() {
				if ph, err := hex.DecodeString(g.PathHash); err == nil && len(ph) == 32 {
					known[policy.PathHash(ph)] = true
				}
			}
		}
		if net != nil {
			seq = max(seq, net.seq)
			links = net.links
			// Once revoked, a writer stays revoked, whichever device of
			// the owner's revoked him.
			if len(net.pages) > 0 {
				for _, w := range net.pages[0].RevokedWriters {
					if !doc.writerRevoked(w) && len(doc.RevokedWriters) < policy.MaxRevokedWriters {
						doc.RevokedWriters = append(doc.RevokedWriters, w.String())
					}
				}
				slices.Sort(doc.RevokedWriters)
			}
			for _, e := range net.entries() {
				if !known[e.PathHash] && !revoked[e.PathHash] && now.Before(e.ExpiryTime()) {
					add(e)
				}
			}
		}
		for _, g := range doc.live(recipient.String(), now) {
			e, err := g.entry()
			if err != nil {
				continue
			}
			if !revoked[e.PathHash] {
				add(e)
			}
		}
		entries := make([]policy.MapEntry, 0, len(order))
		for _, ph := range order {
			entries = append(entries, byHash[ph])
		}
		revokedWriters, err := doc.revokedWriterKeys()
		if err != nil {
			return err
		}
		split, err := policy.PageEntries(entries, len(revokedWriters))
		if err != nil {
			return err
		}
		seq++
		for i, p := range split {
			m := &policy.HolderMap{Recipient: recipient.IdentityKey, Points: pair.Points(), Sequence: seq,
				IssuedAt: uint64(now.Unix()), Page: uint8(i), Pages: uint8(len(split)), Entries: p}
			if i == 0 {
				m.RevokedWriters = revokedWriters
			}
			if err := m.Sign(policy.IdentitySigner(c.keys)); err != nil {
				return err
			}
			pages = append(pages, m)
		}
		if doc.Maps == nil {
			doc.Maps = map[string]uint64{}
		}
		doc.Maps[recipient.String()] = seq
		return nil
	})
	if err != nil {
		return nil, err
	}
	pub, err := h.PublishMap(ctx, pages, extra, dht.MapOptions{Near: prep.near})
	if err != nil {
		return pub, err
	}
	// New storers near the points keep the links too.
	spreadLinks(ctx, h, prep.near, links)
	return pub, nil
}

// spreadLinks gives known hand-off links to the storers of the pair's map.
func spreadLinks(ctx context.Context, h *dht.Host, near *dht.Storers, links []*policy.HandoffLink) {
	if len(links) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, storers := range near {
		for _, p := range storers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, dht.DefaultPerNodeTimeout)
				defer cancel()
				for _, l := range dht.ChronologicalLinks(links) {
					h.PutLink(cctx, p, l)
				}
			}()
		}
	}
	wg.Wait()
}

// The recipient's cache of holder maps: in memory for the client's life,
// and in the home directory (maps/<owner key>.json) across commands.

type mapCacheDoc struct {
	Pages   []string  `json:"pages"` // hex of each signed page
	Links   []string  `json:"links"` // hex of each hand-off link
	Fetched time.Time `json:"fetched"`
}

func (c *Client) cachePath(owner policy.PublicKey) string {
	if c.opt.Home == "" {
		return ""
	}
	return filepath.Join(c.opt.Home, "maps", owner.String()+".json")
}

// cachedMap returns the map of owner's grants to this user from the cache,
// nil if none (or if it does not verify).
func (c *Client) cachedMap(pair *policy.PairKey) *holderMap {
	c.mu.Lock()
	m := c.maps[pair.Owner()]
	c.mu.Unlock()
	if m != nil {
		return m
	}
	path := c.cachePath(pair.Owner())
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var doc mapCacheDoc
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	m = &holderMap{ref: dht.RefOf(pair), fetched: doc.Fetched}
	for _, s := range doc.Pages {
		raw, err := hex.DecodeString(s)
		if err != nil {
			return nil
		}
		p, err := policy.ParseHolderMap(raw)
		if err != nil || policy.VerifyHolderMap(p, pair.Owner(), pair.Recipient()) != nil || p.Points != pair.Points() {
			return nil
		}
		m.pages, m.seq = append(m.pages, p), p.Sequence
	}
	for _, s := range doc.Links {
		if raw, err := hex.DecodeString(s); err == nil {
			if l, err := policy.ParseHandoffLink(raw); err == nil && l.VerifySignatures() == nil {
				m.links = append(m.links, l)
			}
		}
	}
	if len(m.pages) == 0 {
		return nil
	}
	c.mu.Lock()
	c.maps[pair.Owner()] = m
	c.mu.Unlock()
	return m
}

// cacheMap keeps m as the newest known map of its owner.
func (c *Client) cacheMap(m *holderMap) error {
	c.mu.Lock()
	c.maps[m.ref.Owner] = m
	c.mu.Unlock()
	path := c.cachePath(m.ref.Owner)
	if path == "" {
		return nil
	}
	doc := mapCacheDoc{Fetched: m.fetched}
	for _, p := range m.pages {
		doc.Pages = append(doc.Pages, hex.EncodeToString(p.Bytes()))
	}
	for _, l := range m.links {
		doc.Links = append(doc.Links, hex.EncodeToString(l.Bytes()))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(doc)
	return fsx.WriteFile(path, b, 0o600)
}

// mapFor returns the map of owner's grants to this user: the cached one
// unless fresh is set, else the network's (then cached).
func (c *Client) mapFor(ctx context.Context, pair *policy.PairKey, fresh bool) (*holderMap, error) {
	if !fresh {
		if m := c.cachedMap(pair); m != nil {
			return m, nil
		}
	}
	m, err := c.fetchMap(ctx, pair)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if old := c.cachedMap(pair); old != nil && old.seq > m.seq {
		// The storers asked served an older map than one seen before:
		// keep the newer (a rollback would un-revoke writers).
		old.fetched = m.fetched
		m = old
	}
	if err := c.cacheMap(m); err != nil {
		return m, nil // a cache that cannot be written only costs a lookup next time
	}
	return m, nil
}
