package dht

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
)

// PlaceOptions tune Place and the choice of hand-off targets. Zero values
// take the documented defaults.
type PlaceOptions struct {
	// PerNodeTimeout bounds storing one fragment on one node. Default
	// DefaultPerNodeTimeout.
	PerNodeTimeout time.Duration
	// SampleLookups is how many random-target lookups make each sample.
	// Default DefaultSampleLookups.
	SampleLookups int
	// Rounds bounds the samples drawn when a sample does not place every
	// fragment. Default DefaultSampleRounds.
	Rounds int
	// Diversity is the network-group rule: no two holders of a grant in
	// one group. Default DefaultDiversity (IPv4 /24, IPv6 /48).
	Diversity Diversity
	// Admission, if set, is the verified list of admitted nodes of a
	// private deployment: no other node is ever given a fragment.
	Admission *policy.AdmissionList
	// Exclude lists nodes never to use (for a hand-off: the grant's other
	// holders), and Taken the network groups already holding a fragment of
	// the grant.
	Exclude map[peer.ID]bool
	Taken   map[string]bool
	// Rand is the randomness of the sample and the shuffle. Default
	// crypto/rand: placement must be unpredictable (SPEC.md §5.2).
	Rand io.Reader
	// Gate, if set, is called once the first sample is drawn and before
	// any fragment is sent; its error ends the placement with nothing
	// placed. A client checks meanwhile that nodes would keep the grant,
	// so that the check and the sample's lookups take one wait, not two.
	Gate func() error
}

// Placement says where the fragments of one grant went.
type Placement struct {
	// Holders[i] holds fragment i (grants[i]); empty when it found no node.
	Holders []peer.ID
	// Receipts[i] is Holders[i]'s signed receipt.
	Receipts []*policy.Receipt
	// Groups[i] is Holders[i]'s network group.
	Groups []string
	// Refused records why each node that was tried and not used failed.
	Refused map[peer.ID]error
	// Sampled counts the distinct nodes the samples offered.
	Sampled int
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

// errSameGroup is why a candidate in the network group of another holder
// is skipped.
var errSameGroup = errors.New("dht: a node of the same network group holds a fragment of this grant")

// errNotAdmitted is why a candidate missing from the admission list is
// skipped.
var errNotAdmitted = errors.New("dht: the node is not on the admission list")

// candidates is a placement's supply of nodes: shuffled samples of the
// network, drawn one round at a time, filtered by the options. It is safe
// for concurrent use.
type candidates struct {
	h      *Host
	opt    *PlaceOptions
	mu     sync.Mutex
	queue  []peer.ID
	tried  map[peer.ID]bool
	taken  map[string]bool
	rounds int
	seen   int
	refuse func(peer.ID, error)
}

func (c *candidates) draw(ctx context.Context) error {
	ps, err := c.h.Sample(ctx, c.opt.SampleLookups, c.opt.Rand)
	if err != nil {
		return err
	}
	if err := shuffle(ps, c.opt.Rand); err != nil {
		return err
	}
	c.rounds++
	for _, p := range ps {
		if c.tried[p] {
			continue
		}
		c.tried[p] = true
		c.seen++
		switch {
		case c.opt.Exclude[p]:
		case c.opt.Admission != nil && !admitted(c.opt.Admission, p):
			c.refuse(p, errNotAdmitted)
		default:
			c.queue = append(c.queue, p)
		}
	}
	return nil
}

func admitted(a *policy.AdmissionList, p peer.ID) bool {
	k, err := PublicKeyOf(p)
	return err == nil && a.Admits(k)
}

// next returns the next candidate whose network group is free and
// reserves the group; it draws another sample when the queue runs dry,
// up to the round limit. ok is false when none is left.
func (c *candidates) next(ctx context.Context) (p peer.ID, group string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.queue) > 0 {
			p, c.queue = c.queue[0], c.queue[1:]
			group = c.h.Group(p, c.opt.Diversity)
			if group != "" && c.taken[group] {
				c.refuse(p, errSameGroup)
				continue
			}
			if group != "" {
				c.taken[group] = true
			}
			return p, group, true
		}
		if c.rounds >= c.opt.Rounds || ctx.Err() != nil {
			return "", "", false
		}
		if err := c.draw(ctx); err != nil && c.rounds == 0 {
			return "", "", false
		}
	}
}

// release frees the group of a candidate that did not take a fragment.
func (c *candidates) release(group string) {
	if group == "" {
		return
	}
	c.mu.Lock()
	delete(c.taken, group)
	c.mu.Unlock()
}

func (o *PlaceOptions) defaults() {
	if o.PerNodeTimeout == 0 {
		o.PerNodeTimeout = DefaultPerNodeTimeout
	}
	if o.SampleLookups == 0 {
		o.SampleLookups = DefaultSampleLookups
	}
	if o.Rounds == 0 {
		o.Rounds = DefaultSampleRounds
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
}

// Place stores the n fragments of one grant (one policy.Grant each, as
// policy.NewGrants makes them) on n distinct nodes chosen with fresh
// randomness (SPEC.md §5.2): samples of the network from random-target
// lookups, shuffled, without two holders in one network group, and only
// admitted nodes when an admission list is given. A node that fails or
// refuses is skipped and its fragment goes to the next candidate, through
// as many samples as Rounds allows. The placement says which node holds
// which fragment; it is returned with ErrPlacement when not every fragment
// found a node.
func (h *Host) Place(ctx context.Context, grants []*policy.Grant, opt PlaceOptions) (*Placement, error) {
	if len(grants) == 0 {
		return nil, errors.New("dht: nothing to place")
	}
	opt.defaults()
	pl := &Placement{
		Holders:  make([]peer.ID, len(grants)),
		Receipts: make([]*policy.Receipt, len(grants)),
		Groups:   make([]string, len(grants)),
		Refused:  map[peer.ID]error{},
	}
	var mu sync.Mutex
	refuse := func(p peer.ID, err error) { pl.Refused[p] = err } // called with c.mu or mu held
	c := &candidates{h: h, opt: &opt, tried: map[peer.ID]bool{}, taken: map[string]bool{}, refuse: func(p peer.ID, err error) {
		mu.Lock()
		refuse(p, err)
		mu.Unlock()
	}}
	for g := range opt.Taken {
		c.taken[g] = true
	}
	if err := c.draw(ctx); err != nil {
		return nil, err
	}
	if opt.Gate != nil {
		if err := opt.Gate(); err != nil {
			return nil, err
		}
	}

	pending := make([]int, len(grants))
	for i := range pending {
		pending[i] = len(grants) - 1 - i // pop from the end: fragment 0 first
	}
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(pending) == 0 {
			return 0, false
		}
		i := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		return i, true
	}
	var wg sync.WaitGroup
	for range len(grants) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				p, group, ok := c.next(ctx)
				if !ok {
					mu.Lock()
					pending = append(pending, i)
					mu.Unlock()
					return
				}
				cctx, cancel := context.WithTimeout(ctx, opt.PerNodeTimeout)
				rc, err := h.StoreGrant(cctx, p, grants[i])
				cancel()
				mu.Lock()
				if err != nil {
					refuse(p, err)
					pending = append(pending, i)
					mu.Unlock()
					c.release(group)
					continue
				}
				pl.Holders[i], pl.Receipts[i], pl.Groups[i] = p, rc, group
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	pl.Sampled = c.seen
	if n := pl.Placed(); n < len(grants) {
		return pl, fmt.Errorf("%w: %d of %d fragments placed; %d nodes sampled in %d rounds, %d refused", ErrPlacement,
			n, len(grants), c.seen, c.rounds, len(pl.Refused))
	}
	return pl, nil
}
