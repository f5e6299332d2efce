package dht

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// Moved is one fragment a retiring node handed off.
type Moved struct {
	GrantID policy.RecordID
	To      peer.ID
	Link    *policy.HandoffLink
	// Told counts the nodes that keep the pair's map and took the link.
	Told int
}

// RetireReport says what Retire did with each fragment.
type RetireReport struct {
	Moved   []Moved
	Expired int                       // expired fragments, dropped
	Kept    map[policy.RecordID]error // fragments no node accepted, kept here
}

// Retire hands every live fragment this node holds to another node (seed
// 003's hand-off, SPEC.md §5.4): for each, nodes are drawn as placement
// draws them (random samples, shuffled, network diversity, the admission
// list), never a node that holds a fragment of the same grant; the node
// accepts only with the proof that this node holds the fragment (the
// owner's holder map and the links so far) and countersigns the new link.
// The fragment is deleted here only after that, and the link is given to
// the grant's other holders and to the nodes that keep the pair's map at
// its rendezvous points, where recipients find it. The sender's tombstones
// of the pair and its sequence mark travel with the fragment. From the
// first call on, the service refuses new fragments (UNAVAILABLE).
func (s *Service) Retire(ctx context.Context) (*RetireReport, error) {
	s.mu.Lock()
	s.retiring = true
	s.mu.Unlock()
	rep := &RetireReport{Kept: map[policy.RecordID]error{}}
	now := s.cfg.Now()
	var held []*policy.Grant
	if err := s.cfg.Store.ForEachGrant(func(rec []byte) error {
		g, err := policy.ParseGrant(rec)
		if err != nil {
			return fmt.Errorf("stored grant: %w", err)
		}
		held = append(held, g)
		return nil
	}); err != nil {
		return rep, err
	}
	// Several fragments at once: each hand-off waits mostly on lookups
	// and round trips, and a node may hold thousands.
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, RetireParallel)
	for _, g := range held {
		if ctx.Err() != nil {
			break
		}
		id := g.ID()
		if policy.ValidateLive(g.Expiry, now) != nil {
			rep.Expired++
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			mv, err := s.handoff(ctx, g)
			if err == nil {
				if err = s.cfg.Store.DeleteGrant(g.StorageKey(), id); errors.Is(err, policy.ErrNotGranted) {
					err = nil
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Kept[id] = err
				s.log.Warn("fragment not handed off", "grant", id, "err", err)
				return
			}
			s.kfrags.drop(id)
			rep.Moved = append(rep.Moved, *mv)
			s.log.Info("fragment handed off", "grant", id, "to", mv.To, "told", mv.Told)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// RetireParallel bounds the fragments Retire hands off at once.
const RetireParallel = 8

// ErrNoProof means a node cannot hand a fragment off: it keeps no holder
// map that shows it holds the fragment.
var ErrNoProof = errors.New("dht: no holder map shows that this node holds the fragment")

// handoff finds a node that accepts g with its proof, then spreads the
// link.
func (s *Service) handoff(ctx context.Context, g *policy.Grant) (*Moved, error) {
	pages, links, err := s.storedMap(g.Owner, g.Recipient.IdentityKey)
	if err != nil {
		return nil, err
	}
	m, e := entryIn(pages, g.PathHash)
	if e == nil {
		return nil, ErrNoProof
	}
	cur := policy.CurrentHolders(m, e, links)
	if !holdsFragment(cur, g.ID(), s.nodeKey) {
		return nil, ErrNoProof
	}
	proof := &HandoffProof{Map: m, Links: chainTo(links, g.ID(), s.nodeKey, e)}
	revs, err := s.cfg.Store.Revocations(g.Owner, g.Recipient.IdentityKey)
	if err != nil {
		return nil, err
	}
	for _, b := range revs[:min(len(revs), proto.MaxHandoffRevocations)] {
		if r, err := policy.ParseRevocation(b); err == nil {
			proof.Revocations = append(proof.Revocations, r)
		}
	}
	if proof.Mark, err = s.cfg.Store.Mark(g.Owner, g.PathHash); err != nil {
		return nil, err
	}
	// Never a node holding a fragment of this grant, nor its network group.
	opt := s.cfg.Handoff
	opt.Exclude, opt.Taken = map[peer.ID]bool{s.h.ID(): true}, map[string]bool{}
	for _, holders := range cur {
		for _, k := range holders {
			if p, err := PeerIDOf(k); err == nil && p != s.h.ID() {
				opt.Exclude[p] = true
				if grp := s.h.Group(p, opt.Diversity); grp != "" {
					opt.Taken[grp] = true
				}
			}
		}
	}
	opt.defaults()
	c := &candidates{h: s.h, opt: &opt, tried: map[peer.ID]bool{}, taken: opt.Taken, refuse: func(peer.ID, error) {}}
	if err := c.draw(ctx); err != nil {
		return nil, err
	}
	var errs []error
	for {
		p, group, ok := c.next(ctx)
		if !ok {
			break
		}
		to, err := PublicKeyOf(p)
		if err != nil {
			continue
		}
		link := &policy.HandoffLink{Owner: g.Owner, Recipient: g.Recipient.IdentityKey, GrantID: g.ID(), PathHash: g.PathHash,
			To: to, At: uint64(s.cfg.Now().Unix())}
		if err := link.SignFrom(s.signer); err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, opt.PerNodeTimeout)
		signed, err := s.h.Handoff(cctx, p, g, proof, link)
		cancel()
		if err != nil {
			c.release(group)
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			if len(errs) >= 20 {
				break
			}
			continue
		}
		mv := &Moved{GrantID: g.ID(), To: p, Link: signed}
		// The whole chain, oldest first: a node that missed an earlier
		// link could not check the new one.
		var chain []*policy.HandoffLink
		for i := len(proof.Links) - 1; i >= 0; i-- {
			chain = append(chain, proof.Links[i])
		}
		mv.Told = s.spreadLinks(ctx, append(chain, signed), m, cur)
		return mv, nil
	}
	return nil, fmt.Errorf("no node accepted the fragment (%d sampled): %w", c.seen, errors.Join(errs...))
}

// chainTo returns the links of fragment id that lead from the map's holder
// to node, at most proto.MaxChain.
func chainTo(links []*policy.HandoffLink, id policy.RecordID, node policy.PublicKey, e *policy.MapEntry) []*policy.HandoffLink {
	var start policy.PublicKey
	for _, h := range e.Holders {
		if h.GrantID == id {
			start = h.Node
		}
	}
	var chain []*policy.HandoffLink
	at := node
	for at != start && len(chain) < proto.MaxChain {
		var prev *policy.HandoffLink
		for _, l := range links {
			if l.GrantID == id && l.To == at {
				prev = l
				break
			}
		}
		if prev == nil {
			break
		}
		chain = append(chain, prev)
		at = prev.From
	}
	return chain
}

// spreadLinks gives countersigned links, in order, to the grant's other
// holders and to the nodes closest to the pair's rendezvous points; it
// returns how many took the last one.
func (s *Service) spreadLinks(ctx context.Context, links []*policy.HandoffLink, m *policy.HolderMap, cur map[policy.RecordID][]policy.PublicKey) int {
	links = ChronologicalLinks(links)
	targets := map[peer.ID]bool{}
	for _, holders := range cur {
		for _, k := range holders {
			if p, err := PeerIDOf(k); err == nil && p != s.h.ID() {
				targets[p] = true
			}
		}
	}
	for _, point := range m.Points {
		if ps, err := s.h.ClosestPeers(ctx, point[:], DefaultMapStorers); err == nil {
			for _, p := range ps {
				if p != s.h.ID() {
					targets[p] = true
				}
			}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	told := 0
	for p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, DefaultPerNodeTimeout)
			defer cancel()
			var err error
			for _, l := range links {
				err = s.h.PutLink(cctx, p, l)
			}
			if err == nil {
				mu.Lock()
				told++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return told
}

// ChronologicalLinks returns links sorted by their time, oldest first: the
// order in which a node that keeps the map can check each one against the
// ones before it.
func ChronologicalLinks(links []*policy.HandoffLink) []*policy.HandoffLink {
	out := slices.Clone(links)
	slices.SortStableFunc(out, func(a, b *policy.HandoffLink) int { return cmp.Compare(a.At, b.At) })
	return out
}
