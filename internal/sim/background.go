package sim

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// GrantsPerPair is how many background grants each background pair has.
const GrantsPerPair = 10

// preload puts total background grants on the honest nodes as placement
// and PublishMap would have left them: each grant made by policy.NewGrants
// (real kfrags and signatures) between one of total/GrantsPerPair pairs of
// fresh keys, its five fragments on five distinct random nodes (each node
// is its own network group), the pair's signed holder map on the
// dht.DefaultMapStorers nodes closest to each of its rendezvous points
// and on the grant's holders. Nothing of this goes through the network:
// it is the load of a network that holds that many grants.
func (s *Sim) preload(ctx context.Context, total int) (*BackgroundReport, error) {
	nodes := s.alive(Honest)
	if len(nodes) < 5 {
		return nil, errors.New("sim: fewer than 5 nodes for background grants")
	}
	ids := make([]peer.ID, len(nodes))
	byID := make(map[peer.ID]*Node, len(nodes))
	for i, nd := range nodes {
		ids[i] = nd.E.ID
		byID[nd.E.ID] = nd
	}
	pairs := (total + GrantsPerPair - 1) / GrantsPerPair
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var made, pages int
	workers := max(1, runtime.GOMAXPROCS(0))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(w)))
			for p := range work {
				k := min(GrantsPerPair, total-p*GrantsPerPair)
				np, err := preloadPair(k, nodes, ids, byID, rng)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				made += k
				pages += np
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for p := range pairs {
		if ctx.Err() != nil {
			break
		}
		work <- p
		if p > 0 && p%1000 == 0 {
			s.cfg.Logf("  %d background grants (%s)", p*GrantsPerPair, time.Since(start).Round(time.Second))
		}
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &BackgroundReport{Grants: made, Pairs: pairs, MapPages: pages}, nil
}

// preloadPair makes k grants of one fresh pair and writes them and the
// pair's map into the stores.
func preloadPair(k int, nodes []*Node, ids []peer.ID, byID map[peer.ID]*Node, rng *rand.Rand) (int, error) {
	seed := make([]byte, 32)
	crand.Read(seed)
	owner, err := rekey.NewKeyring(seed)
	if err != nil {
		return 0, err
	}
	crand.Read(seed)
	recipient, err := rekey.NewKeyring(seed)
	if err != nil {
		return 0, err
	}
	to := policy.IdentityOf(recipient)
	pair, err := policy.OwnerPairKey(owner, to.IdentityKey)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	expiry := uint64(now.Add(30 * 24 * time.Hour).Unix())
	var entries []policy.MapEntry
	holders := map[*Node]bool{}
	for j := range k {
		gs, err := policy.NewGrants(owner, policy.GrantParams{Recipient: to, Prefix: policy.MustNormalizePath(fmt.Sprintf("/bg/%d", j)),
			Threshold: 3, Shares: 5, Sequence: uint64(now.UnixMilli()), Expiry: expiry})
		if err != nil {
			return 0, err
		}
		e := policy.MapEntry{PathHash: gs[0].PathHash, Sequence: gs[0].Sequence, Expiry: expiry, Threshold: 3, Shares: 5,
			DelegatingKey: gs[0].DelegatingKey, VerifyingKey: gs[0].VerifyingKey}
		picked := map[int]bool{}
		for _, g := range gs {
			i := rng.IntN(len(nodes))
			for picked[i] {
				i = rng.IntN(len(nodes))
			}
			picked[i] = true
			nd := nodes[i]
			if err := nd.Store.PutGrant(g, now); err != nil {
				return 0, fmt.Errorf("background grant on node %d: %w", nd.Index, err)
			}
			holders[nd] = true
			e.Holders = append(e.Holders, policy.MapHolder{Node: nd.PK, GrantID: g.ID()})
		}
		entries = append(entries, e)
	}
	split, err := policy.PageEntries(entries, 0)
	if err != nil {
		return 0, err
	}
	var pages []*policy.HolderMap
	for i, es := range split {
		m := &policy.HolderMap{Recipient: to.IdentityKey, Points: pair.Points(), Sequence: 1, IssuedAt: uint64(now.Unix()),
			Page: uint8(i), Pages: uint8(len(split)), Entries: es}
		if err := m.Sign(policy.IdentitySigner(owner)); err != nil {
			return 0, err
		}
		pages = append(pages, m)
	}
	storers := map[*Node]bool{}
	for nd := range holders {
		storers[nd] = true
	}
	for _, pt := range pair.Points() {
		sorted := dht.SortByDistance(append([]peer.ID(nil), ids...), pt[:])
		for _, id := range sorted[:min(dht.DefaultMapStorers, len(sorted))] {
			storers[byID[id]] = true
		}
	}
	n := 0
	for nd := range storers {
		for _, m := range pages {
			if err := nd.Store.PutMapPage(m, m.Bytes(), now); err != nil {
				return 0, fmt.Errorf("background map on node %d: %w", nd.Index, err)
			}
			n++
		}
	}
	return n, nil
}
