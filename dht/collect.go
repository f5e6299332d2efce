package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// CollectOptions tune Collect. Zero values take the documented defaults.
type CollectOptions struct {
	// Concurrency is how many holders are asked at once. Default: all
	// the grant's fragments at once.
	Concurrency int
	// PerNodeTimeout bounds one node's answer. Default
	// DefaultPerNodeTimeout.
	PerNodeTimeout time.Duration
}

// CollectRequest names what to collect: cfrags of one grant (an entry of
// the owner's holder map) for the capsule of one level of a file, from the
// fragments' current holders.
type CollectRequest struct {
	Owner policy.PublicKey
	Me    policy.Identity
	// Entry is the grant's entry of the owner-signed holder map; Level's
	// path hash must be Entry.PathHash.
	Entry *policy.MapEntry
	// Holders are the fragments' current holders (policy.CurrentHolders).
	Holders map[policy.RecordID][]policy.PublicKey
	Level   Level
}

// Collection is what a recipient gathered for one file.
type Collection struct {
	// CFrags are m verified cfrags of m distinct fragments of the grant,
	// enough to decrypt; nil if fewer answered.
	CFrags []*CFrag
	// Outcomes says, for every node asked, why it gave no usable cfrag
	// (nil for the nodes whose cfrag was used or was valid).
	Outcomes map[peer.ID]error
	// Asked is the number of nodes asked.
	Asked int
}

// ErrNotEnoughCFrags means fewer than m fragments of the grant gave a
// valid cfrag; Collection.Outcomes says why each node failed.
var ErrNotEnoughCFrags = errors.New("dht: not enough valid cfrags")

// errOtherFragment is why a node's cfrag is not used: it was made with
// another fragment than the holder map says the node holds, or with a
// fragment already used.
var errOtherFragment = fmt.Errorf("%w: the cfrag is not of the fragment the holder map names", ErrBadProof)

// Collect asks the current holders of the grant's fragments for cfrags of
// one level (only that level's path hash and capsule leave this host),
// verifies every answer (the owner's signed grant, that it is the fragment
// the owner's map names for that node, the cfrag's proof), keeps one cfrag
// per fragment and stops at m. It succeeds whenever m holders of distinct
// fragments answer honestly, whatever the others do (dead, hung, refusing,
// lying, or copies of a fragment on extra nodes, which are never asked).
func (h *Host) Collect(ctx context.Context, req CollectRequest, opt CollectOptions) (*Collection, error) {
	e := req.Entry
	if e == nil || req.Level.PathHash != e.PathHash || req.Level.Capsule == nil {
		return nil, errors.New("dht: a collection needs the grant's map entry and the capsule of its level")
	}
	if opt.PerNodeTimeout == 0 {
		opt.PerNodeTimeout = DefaultPerNodeTimeout
	}
	type task struct {
		fragment policy.RecordID
		node     peer.ID
	}
	var tasks []task
	for _, hd := range e.Holders {
		for _, k := range req.Holders[hd.GrantID] {
			p, err := PeerIDOf(k)
			if err == nil {
				tasks = append(tasks, task{hd.GrantID, p})
			}
		}
	}
	if opt.Concurrency == 0 {
		opt.Concurrency = max(len(e.Holders), 1)
	}
	need := int(e.Threshold)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	col := &Collection{Outcomes: map[peer.ID]error{}}
	var mu sync.Mutex
	got := map[policy.RecordID]*CFrag{}
	kfragIDs := map[[32]byte]bool{}
	var done []*CFrag
	work := make(chan task)
	var wg sync.WaitGroup
	for range min(opt.Concurrency, len(tasks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				mu.Lock()
				skip := got[t.fragment] != nil || done != nil
				mu.Unlock()
				if skip {
					continue
				}
				nctx, ncancel := context.WithTimeout(cctx, opt.PerNodeTimeout)
				cf, err := h.Reencrypt(nctx, t.node, req.Owner, req.Me, []Level{req.Level})
				ncancel()
				mu.Lock()
				if err == nil {
					kid := cf.CFrag.Unverify().KFragID()
					if cf.Grant.ID() != t.fragment || kfragIDs[kid] {
						err = errOtherFragment
					} else if got[t.fragment] == nil {
						got[t.fragment], kfragIDs[kid] = cf, true
						if len(got) >= need && done == nil {
							for _, c := range got {
								done = append(done, c)
							}
							cancel()
						}
					}
				}
				col.Outcomes[t.node] = err
				mu.Unlock()
			}
		}()
	}
feed:
	for _, t := range tasks {
		select {
		case work <- t:
			col.Asked++
		case <-cctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if done == nil {
		return col, fmt.Errorf("%w: %d of the %d needed, %d nodes asked", ErrNotEnoughCFrags, len(got), need, col.Asked)
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
// made under capsule (the capsule the cfrags were made for).
func (c *Collection) Decrypt(receiving *rekey.SecretKey, capsule *rekey.Capsule, ct []byte) ([]byte, error) {
	delegating, vcs, err := c.Material()
	if err != nil {
		return nil, err
	}
	return rekey.DecryptReencrypted(receiving, delegating, capsule, vcs, ct)
}
