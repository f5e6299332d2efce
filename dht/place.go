package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
)

// PlaceOptions tune Place. Zero values take the documented defaults.
type PlaceOptions struct {
	// Candidates is how many nodes closest to the locator are considered.
	// Default DefaultCandidates.
	Candidates int
	// PerNodeTimeout bounds the node-info check and the store of one
	// fragment on one node. Default DefaultPerNodeTimeout.
	PerNodeTimeout time.Duration
	// Now is the clock used to check node's maximum grant durations.
	Now func() time.Time
}

// Placement says where the fragments of one grant went.
type Placement struct {
	// Holders[i] holds fragment i (grants[i]); empty when it found no node.
	Holders []peer.ID
	// Receipts[i] is Holders[i]'s signed receipt.
	Receipts []*policy.Receipt
	// Refused records why each node that was tried and not used failed.
	Refused map[peer.ID]error
}

// Placed counts the fragments that found a holder.
func (p *Placement) Placed() int {
	n := 0
	for _, h := range p.Holders {
		if h != "" {
			n++
		}
	}
	return n
}

// ErrPlacement means fewer nodes accepted a fragment than the grant has
// fragments.
var ErrPlacement = errors.New("dht: not enough nodes accepted a fragment")

// Place stores the n fragments of one grant (one policy.Grant each, as
// policy.NewGrants makes them) on n distinct nodes chosen by XOR distance to
// the grant's locator, nearest first: each candidate is asked for its node
// info (it must speak Umbral, keep grants long enough and have a free
// slot), then given one fragment; a node that fails or refuses is skipped
// and its fragment goes to the next candidate. No node ever gets two
// fragments of one grant. The placement says exactly which node holds
// which fragment; it is returned with ErrPlacement when not every fragment
// found a node.
func (h *Host) Place(ctx context.Context, grants []*policy.Grant, opt PlaceOptions) (*Placement, error) {
	if len(grants) == 0 {
		return nil, errors.New("dht: nothing to place")
	}
	if opt.Candidates == 0 {
		opt.Candidates = DefaultCandidates
	}
	if opt.PerNodeTimeout == 0 {
		opt.PerNodeTimeout = DefaultPerNodeTimeout
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	g0 := grants[0]
	loc := Locator(g0.Owner, g0.Recipient.IdentityKey)
	candidates, err := h.ClosestPeers(ctx, loc, max(opt.Candidates, len(grants)))
	if err != nil {
		return nil, err
	}
	pl := &Placement{
		Holders:  make([]peer.ID, len(grants)),
		Receipts: make([]*policy.Receipt, len(grants)),
		Refused:  map[peer.ID]error{},
	}
	needed := time.Until(g0.ExpiryTime())
	if d := g0.ExpiryTime().Sub(opt.Now()); d > needed {
		needed = d
	}

	// Workers take the next fragment still without a holder and the next
	// candidate not yet tried; a failed fragment goes back in the queue.
	var mu sync.Mutex
	pending := make([]int, len(grants))
	for i := range pending {
		pending[i] = len(grants) - 1 - i // pop from the end: fragment 0 first
	}
	next := 0
	take := func() (int, peer.ID, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(pending) == 0 || next >= len(candidates) {
			return 0, "", false
		}
		i := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		p := candidates[next]
		next++
		return i, p, true
	}
	try := func(i int, p peer.ID) error {
		cctx, cancel := context.WithTimeout(ctx, opt.PerNodeTimeout)
		defer cancel()
		ni, err := h.NodeInfo(cctx, p)
		if err != nil {
			return err
		}
		switch {
		case !ni.Supports(grants[i].PRE):
			return fmt.Errorf("node does not support the grant's algorithm")
		case ni.MaxDuration() < needed:
			return fmt.Errorf("%w: node keeps grants %s, the grant needs %s", policy.ErrExpiryTooLong, ni.MaxDuration(), needed.Round(time.Second))
		case ni.FreeSlots == 0:
			return fmt.Errorf("node is full")
		}
		rc, err := h.StoreGrant(cctx, p, grants[i])
		if err != nil {
			return err
		}
		mu.Lock()
		pl.Holders[i], pl.Receipts[i] = p, rc
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for range min(len(grants), len(candidates)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, p, ok := take()
				if !ok {
					return
				}
				if err := try(i, p); err != nil {
					mu.Lock()
					pl.Refused[p] = err
					pending = append(pending, i)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if n := pl.Placed(); n < len(grants) {
		return pl, fmt.Errorf("%w: %d of %d fragments placed among %d candidate nodes", ErrPlacement, n, len(grants), len(candidates))
	}
	return pl, nil
}
