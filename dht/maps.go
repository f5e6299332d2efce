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

// MapOptions tune PublishMap and FetchMap. Zero values take the documented
// defaults.
type MapOptions struct {
	// Storers is how many nodes closest to each rendezvous point keep the
	// map. Default DefaultMapStorers.
	Storers int
	// PerNodeTimeout bounds one node's answer. Default
	// DefaultPerNodeTimeout.
	PerNodeTimeout time.Duration
	// Grace is how long FetchMap waits for more answers once one node
	// answered with a valid page 0 (a newer map may be on slower nodes).
	// Default 200 ms.
	Grace time.Duration
	// Near, if set, holds the nodes closest to each rendezvous point, as
	// MapStorers found them: PublishMap and FetchMap use them instead of
	// looking the points up again.
	Near *Storers
}

// Storers are the nodes closest to each of a pair's rendezvous points, in
// the order of the points; a point whose lookup failed has none.
type Storers [policy.MapPoints][]peer.ID

// MapStorers looks up the n nodes closest to each point, the points in
// parallel. A client that will fetch and then publish a map (a grant)
// looks them up once, while it does other work.
func (h *Host) MapStorers(ctx context.Context, points [policy.MapPoints]policy.Point, n int) *Storers {
	var near Storers
	var wg sync.WaitGroup
	for j, point := range points {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ps, err := h.ClosestPeers(ctx, point[:], n); err == nil {
				near[j] = ps
			}
		}()
	}
	wg.Wait()
	return &near
}

// storersOf returns the nodes closest to point j: opt.Near's, or a lookup.
func (h *Host) storersOf(ctx context.Context, opt *MapOptions, j int, point policy.Point) ([]peer.ID, error) {
	if opt.Near != nil {
		return opt.Near[j], nil
	}
	return h.ClosestPeers(ctx, point[:], opt.Storers)
}

func (o *MapOptions) defaults() {
	if o.Storers == 0 {
		o.Storers = DefaultMapStorers
	}
	if o.PerNodeTimeout == 0 {
		o.PerNodeTimeout = DefaultPerNodeTimeout
	}
	if o.Grace == 0 {
		o.Grace = 200 * time.Millisecond
	}
}

// Publication says where the pages of a map went.
type Publication struct {
	// Stored counts, per point, the storers that kept every page.
	Stored [policy.MapPoints]int
	// Holders counts the extra nodes (the grant's holders) that kept every
	// page.
	Holders int
	// Failed says why the other nodes did not.
	Failed map[peer.ID]error
}

// ErrMapNotStored means no node near some rendezvous point kept the map.
var ErrMapNotStored = errors.New("dht: the holder map was not stored at every rendezvous point")

// PublishMap stores every page of a pair's map (pages, one sequence, all
// signed) on the storers nodes closest to each of its rendezvous points and
// on the extra nodes (the holders of its grants). Rendezvous points are
// known only to the pair (policy.PairKey.Points), so no node could place
// itself near one before the map was stored there (SPEC.md §5.2).
func (h *Host) PublishMap(ctx context.Context, pages []*policy.HolderMap, extra []peer.ID, opt MapOptions) (*Publication, error) {
	if len(pages) == 0 {
		return nil, errors.New("dht: no map pages")
	}
	opt.defaults()
	pub := &Publication{Failed: map[peer.ID]error{}}
	var mu sync.Mutex
	putAll := func(p peer.ID) bool {
		for _, page := range pages {
			cctx, cancel := context.WithTimeout(ctx, opt.PerNodeTimeout)
			err := h.PutMap(cctx, p, page)
			cancel()
			if err != nil {
				mu.Lock()
				pub.Failed[p] = err
				mu.Unlock()
				return false
			}
		}
		return true
	}
	var wg sync.WaitGroup
	for j, point := range pages[0].Points {
		wg.Add(1)
		go func() {
			defer wg.Done()
			storers, err := h.storersOf(ctx, &opt, j, point)
			if err != nil {
				return
			}
			var inner sync.WaitGroup
			for _, p := range storers {
				if p == h.ID() {
					continue
				}
				inner.Add(1)
				go func() {
					defer inner.Done()
					if putAll(p) {
						mu.Lock()
						pub.Stored[j]++
						mu.Unlock()
					}
				}()
			}
			inner.Wait()
		}()
	}
	for _, p := range extra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if putAll(p) {
				mu.Lock()
				pub.Holders++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, n := range pub.Stored {
		if n == 0 {
			return pub, fmt.Errorf("%w (stored at %v)", ErrMapNotStored, pub.Stored)
		}
	}
	return pub, nil
}

// MapRef names a pair's holder map: its owner, its recipient and its
// rendezvous points (which only the pair can compute, and which every page
// repeats).
type MapRef struct {
	Owner, Recipient policy.PublicKey
	Points           [policy.MapPoints]policy.Point
}

// RefOf is the map reference of a pair key.
func RefOf(pair *policy.PairKey) MapRef {
	return MapRef{Owner: pair.Owner(), Recipient: pair.Recipient(), Points: pair.Points()}
}

// FetchedMap is a pair's holder map as found in the network: the newest
// complete sequence and the hand-off links that verify.
type FetchedMap struct {
	Sequence uint64
	Pages    []*policy.HolderMap
	Links    []*policy.HandoffLink
	// Answers counts the nodes that answered with a valid page 0.
	Answers int
	// Failed says why the other nodes asked did not.
	Failed map[peer.ID]error
}

// Entry returns the page and entry of path hash ph, nil if absent.
func (fm *FetchedMap) Entry(ph policy.PathHash) (*policy.HolderMap, *policy.MapEntry) {
	for _, p := range fm.Pages {
		if e := p.Entry(ph); e != nil {
			return p, e
		}
	}
	return nil, nil
}

// ErrNoMap means no node near the pair's rendezvous points had its map.
var ErrNoMap = errors.New("dht: no holder map found for this owner and recipient")

// FetchMap finds the pair's holder map: it asks the storers nodes closest
// to each rendezvous point for page 0, checks every answer (the owner's
// signature, the pair, the point), keeps the newest sequence, fetches its
// other pages and the pair's hand-off links from the nodes that had it.
// Once a node answered it waits at most opt.Grace for slower ones. Sybils
// at public points cannot hide the map: the points are known only to the
// pair, and one honest storer among the 3×storers suffices.
func (h *Host) FetchMap(ctx context.Context, pair MapRef, opt MapOptions) (*FetchedMap, error) {
	opt.defaults()
	fm := &FetchedMap{Failed: map[peer.ID]error{}}
	type answer struct {
		p     peer.ID
		point policy.Point
		page  *policy.HolderMap
		err   error
	}
	answers := make(chan answer, 3*opt.Storers)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	asked := map[peer.ID]policy.Point{}
	var mu sync.Mutex
	for j, point := range pair.Points {
		wg.Add(1)
		go func() {
			defer wg.Done()
			storers, err := h.storersOf(cctx, &opt, j, point)
			if err != nil {
				return
			}
			for _, p := range storers {
				mu.Lock()
				_, dup := asked[p]
				if !dup {
					asked[p] = point
				}
				mu.Unlock()
				if dup || p == h.ID() {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					nctx, ncancel := context.WithTimeout(cctx, opt.PerNodeTimeout)
					page, err := h.GetMap(nctx, p, pair, point, 0)
					ncancel()
					answers <- answer{p: p, point: point, page: page, err: err}
				}()
			}
		}()
	}
	go func() { wg.Wait(); close(answers) }()

	var best []answer // valid answers of the newest sequence seen
	var grace <-chan time.Time
collect:
	for {
		select {
		case a, ok := <-answers:
			if !ok {
				break collect
			}
			if a.err != nil {
				fm.Failed[a.p] = a.err
				continue
			}
			fm.Answers++
			switch {
			case len(best) == 0 || a.page.Sequence > best[0].page.Sequence:
				best = []answer{a}
			case a.page.Sequence == best[0].page.Sequence:
				best = append(best, a)
			}
			if grace == nil {
				grace = time.After(opt.Grace)
			}
		case <-grace:
			cancel()
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	if len(best) == 0 {
		return fm, fmt.Errorf("%w (asked %d nodes)", ErrNoMap, len(fm.Failed))
	}
	fm.Sequence = best[0].page.Sequence
	pages := make([]*policy.HolderMap, best[0].page.Pages)
	pages[0] = best[0].page
	// The other pages, and the links, from the nodes that had the newest.
	for i := 1; i < len(pages); i++ {
		for _, a := range best {
			nctx, ncancel := context.WithTimeout(ctx, opt.PerNodeTimeout)
			page, err := h.GetMap(nctx, a.p, pair, a.point, i)
			ncancel()
			if err == nil && page.Sequence == fm.Sequence && page.Pages == pages[0].Pages {
				pages[i] = page
				break
			}
		}
		if pages[i] == nil {
			return fm, fmt.Errorf("%w: page %d of map %d is missing", ErrNoMap, i, fm.Sequence)
		}
	}
	fm.Pages = pages
	// The links from up to three of them at once: one that hides links
	// it holds cannot hide the others'.
	linkSets := make([][]*policy.HandoffLink, min(len(best), 3))
	var lwg sync.WaitGroup
	for i, a := range best[:len(linkSets)] {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			nctx, ncancel := context.WithTimeout(ctx, opt.PerNodeTimeout)
			defer ncancel()
			if links, err := h.GetLinks(nctx, a.p, pair.Owner, a.point); err == nil {
				linkSets[i] = links
			}
		}()
	}
	lwg.Wait()
	seen := map[policy.RecordID]bool{}
	for _, links := range linkSets {
		for _, l := range links {
			if l.Owner == pair.Owner && l.Recipient == pair.Recipient && !seen[l.ID()] {
				seen[l.ID()] = true
				fm.Links = append(fm.Links, l)
			}
		}
	}
	return fm, nil
}
