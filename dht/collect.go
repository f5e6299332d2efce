package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// CollectOptions tune Collect. Zero values take the documented defaults.
type CollectOptions struct {
	// Candidates is how many nodes closest to the locator are asked besides
	// the announced holders. Default DefaultCandidates.
	Candidates int
	// Concurrency is how many nodes are asked at once. Default 8.
	Concurrency int
	// PerNodeTimeout bounds one node's answer. Default
	// DefaultPerNodeTimeout.
	PerNodeTimeout time.Duration
}

// Collection is what a recipient gathered for one file.
type Collection struct {
	// CFrags are m verified cfrags of one grant, enough to decrypt; nil if
	// no grant reached its threshold.
	CFrags []*CFrag
	// Outcomes says, for every node asked, why it gave no usable cfrag
	// (nil for the nodes whose cfrag was used or was valid).
	Outcomes map[peer.ID]error
	// Asked is the number of nodes asked.
	Asked int
}

// ErrNotEnoughCFrags means fewer than m nodes gave a valid cfrag of one
// grant; Collection.Outcomes says why each node failed.
var ErrNotEnoughCFrags = errors.New("dht: not enough valid cfrags")

// Holders returns the nodes to ask for cfrags of owner's grants to
// recipient: the announced holders (provider records of the locator) first,
// then the nodes closest to the locator, which held the fragments when they
// were placed or joined since. Both are found from the two public keys
// alone.
func (h *Host) Holders(ctx context.Context, owner, recipient policy.PublicKey, candidates int) ([]peer.ID, error) {
	loc := Locator(owner, recipient)
	provs, perr := h.FindProviders(ctx, loc, 64)
	var out []peer.ID
	seen := map[peer.ID]bool{h.ID(): true}
	var provIDs []peer.ID
	for _, p := range provs {
		if len(p.Addrs) > 0 {
			h.h.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.TempAddrTTL)
		}
		provIDs = append(provIDs, p.ID)
	}
	for _, p := range SortByDistance(provIDs, loc) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	closest, cerr := h.ClosestPeers(ctx, loc, candidates)
	for _, p := range closest {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dht: no node found for this owner and recipient: %w", errors.Join(perr, cerr))
	}
	return out, nil
}

// grantGroup names the grant a cfrag belongs to: all fragments of one split
// share the level, the path hash, the sequence number and the keys.
type grantGroup struct {
	level      int
	pathHash   policy.PathHash
	seq        uint64
	delegating policy.PublicKey
	verifying  policy.PublicKey
}

// Collect asks the holders of owner's grants to me for cfrags of the given
// levels, verifies every answer, and stops as soon as m cfrags of one grant
// agree. It succeeds whenever m honest holders answer, whatever the others
// do (dead, hung, refusing or lying).
func (h *Host) Collect(ctx context.Context, owner policy.PublicKey, me policy.Identity, levels []Level, opt CollectOptions) (*Collection, error) {
	if opt.Candidates == 0 {
		opt.Candidates = DefaultCandidates
	}
	if opt.Concurrency == 0 {
		opt.Concurrency = 8
	}
	if opt.PerNodeTimeout == 0 {
		opt.PerNodeTimeout = DefaultPerNodeTimeout
	}
	nodes, err := h.Holders(ctx, owner, me.IdentityKey, opt.Candidates)
	if err != nil {
		return nil, err
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	col := &Collection{Outcomes: map[peer.ID]error{}}
	var mu sync.Mutex
	groups := map[grantGroup][]*CFrag{}
	var done []*CFrag
	work := make(chan peer.ID)
	var wg sync.WaitGroup
	for range min(opt.Concurrency, len(nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				nctx, ncancel := context.WithTimeout(cctx, opt.PerNodeTimeout)
				cf, err := h.Reencrypt(nctx, p, owner, me, levels)
				ncancel()
				mu.Lock()
				col.Outcomes[p] = err
				if err == nil && done == nil {
					g := grantGroup{cf.Level, cf.Grant.PathHash, cf.Grant.Sequence, cf.Grant.DelegatingKey, cf.Grant.VerifyingKey}
					groups[g] = append(groups[g], cf)
					if len(groups[g]) >= int(cf.Grant.Threshold) {
						done = groups[g]
						cancel()
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, p := range nodes {
		select {
		case work <- p:
			col.Asked++
		case <-cctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if done == nil {
		return col, fmt.Errorf("%w: asked %d nodes", ErrNotEnoughCFrags, col.Asked)
	}
	// Cancelled stragglers are not failures.
	for p, err := range col.Outcomes {
		if errors.Is(err, context.Canceled) {
			delete(col.Outcomes, p)
		}
	}
	col.CFrags = done
	return col, nil
}

// Level is the index of the level whose grant the collection's cfrags
// belong to, or -1 for an empty collection.
func (c *Collection) Level() int {
	if len(c.CFrags) == 0 {
		return -1
	}
	return c.CFrags[0].Level
}

// Material returns what rekey.DecryptReencrypted needs besides the
// recipient's key, the capsule and the ciphertext: the grant's delegating
// key and the collection's verified cfrags.
func (c *Collection) Material() (*rekey.PublicKey, []*rekey.VerifiedCapsuleFrag, error) {
	if len(c.CFrags) == 0 {
		return nil, nil, ErrNotEnoughCFrags
	}
	delegating, err := c.CFrags[0].Grant.DelegatingKey.Rekey()
	if err != nil {
		return nil, nil, err
	}
	vcs := make([]*rekey.VerifiedCapsuleFrag, len(c.CFrags))
	for i, cf := range c.CFrags {
		vcs[i] = cf.CFrag
	}
	return delegating, vcs, nil
}

// Decrypt combines the collection's cfrags and opens ct, the ciphertext
// made under capsule, the capsule of level Level().
func (c *Collection) Decrypt(receiving *rekey.SecretKey, capsule *rekey.Capsule, ct []byte) ([]byte, error) {
	delegating, vcs, err := c.Material()
	if err != nil {
		return nil, err
	}
	return rekey.DecryptReencrypted(receiving, delegating, capsule, vcs, ct)
}
