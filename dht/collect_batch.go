package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// BatchRequest names what CollectBatch collects: cfrags of one grant (an
// entry of the owner's holder map) for many capsules, one per file (each
// file's capsule for the grant's level), from the fragments' current
// holders.
type BatchRequest struct {
	Owner    policy.PublicKey
	Me       policy.Identity
	Entry    *policy.MapEntry
	Holders  map[policy.RecordID][]policy.PublicKey
	Capsules []*rekey.Capsule
}

// BatchOptions tune CollectBatch. Zero values take the defaults.
type BatchOptions struct {
	// PerNodeTimeout bounds one batch request to one node. Default
	// DefaultPerNodeTimeout.
	PerNodeTimeout time.Duration
	// Inflight is how many batch requests one node has at once. Default 2.
	Inflight int
	// Items is how many capsules one request carries. Default (and at
	// most) proto.MaxBatchItems.
	Items int
	// Retries bounds the rate-limited answers in a row a node may give
	// before it is given up for the batch. Default 10.
	Retries int
}

// BatchCollection is what a recipient gathered for many files under one
// grant: one Collection per capsule, in order (CFrags nil where fewer than
// m fragments gave a valid cfrag, Errs saying why).
type BatchCollection struct {
	Items []*Collection
	Errs  []error
	// Requests counts the requests sent; Nodes says, for every node asked,
	// why it was given up (nil: it answered).
	Requests int
	Nodes    map[peer.ID]error
}

// CollectBatch collects, for every capsule, m verified cfrags of distinct
// fragments of one grant (SPEC.md §5.2.8). Each capsule is asked of m
// holders, spread so that every holder carries its share of the batch,
// in requests of up to proto.MaxBatchItems capsules; a holder that fails
// (unreachable, no answer in time, refusing the grant, a cfrag that does
// not verify) is given up and its capsules go to the holders of the other
// fragments. Capsules a holder refuses as rate limited are asked again
// after a pause. A holder that does not know BatchReencrypt (an older
// node) is asked one capsule at a time. Verification is that of Collect.
func (h *Host) CollectBatch(ctx context.Context, req BatchRequest, opt BatchOptions) (*BatchCollection, error) {
	e := req.Entry
	if e == nil || len(req.Capsules) == 0 {
		return nil, errors.New("dht: a batch collection needs the grant's map entry and capsules")
	}
	if opt.PerNodeTimeout == 0 {
		opt.PerNodeTimeout = DefaultPerNodeTimeout
	}
	if opt.Inflight == 0 {
		opt.Inflight = 2
	}
	if opt.Items <= 0 || opt.Items > proto.MaxBatchItems {
		opt.Items = proto.MaxBatchItems
	}
	if opt.Retries == 0 {
		opt.Retries = 10
	}
	b := &batch{h: h, req: req, opt: opt, need: int(e.Threshold),
		col: &BatchCollection{Items: make([]*Collection, len(req.Capsules)), Errs: make([]error, len(req.Capsules)), Nodes: map[peer.ID]error{}}}
	b.cond = sync.NewCond(&b.mu)
	for _, hd := range e.Holders {
		for _, k := range req.Holders[hd.GrantID] {
			if p, err := PeerIDOf(k); err == nil {
				b.nodes = append(b.nodes, &batchNode{id: p, fragment: hd.GrantID})
			}
		}
	}
	b.items = make([]*batchItem, len(req.Capsules))
	for i := range b.items {
		b.items[i] = &batchItem{got: map[policy.RecordID]*CFrag{}, kids: map[[32]byte]bool{}, pending: map[int]bool{},
			tried: map[int]bool{}, outcomes: map[peer.ID]error{}}
	}
	b.remaining = len(b.items)
	var cancel context.CancelFunc
	b.ctx, cancel = context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()

	b.mu.Lock()
	for i := range b.items {
		b.assign(i)
	}
	var wg sync.WaitGroup
	for j := range b.nodes {
		for range opt.Inflight {
			wg.Add(1)
			go func() { defer wg.Done(); b.work(j) }()
		}
	}
	for b.remaining > 0 && ctx.Err() == nil {
		b.cond.Wait()
	}
	b.finished = true
	b.cond.Broadcast()
	b.mu.Unlock()
	cancel() // stragglers: their answers are not needed
	wg.Wait()

	failed := 0
	for i, it := range b.items {
		col := &Collection{Outcomes: it.outcomes, Asked: len(it.tried)}
		b.col.Items[i] = col
		if len(it.got) >= b.need {
			for _, cf := range it.got {
				col.CFrags = append(col.CFrags, cf)
			}
			continue
		}
		failed++
		err := ctx.Err()
		if err == nil {
			err = ErrNotEnoughCFrags
		}
		b.col.Errs[i] = fmt.Errorf("%w: %d of the %d needed, %d nodes asked", err, len(it.got), b.need, len(it.tried))
	}
	for _, n := range b.nodes {
		if n.asked {
			b.col.Nodes[n.id] = n.failed
		}
	}
	if ctx.Err() != nil {
		return b.col, ctx.Err()
	}
	if failed > 0 {
		return b.col, fmt.Errorf("%w for %d of %d capsules", ErrNotEnoughCFrags, failed, len(b.items))
	}
	return b.col, nil
}

// batch is the state of one CollectBatch, guarded by mu.
type batch struct {
	h    *Host
	req  BatchRequest
	opt  BatchOptions
	need int
	ctx  context.Context
	col  *BatchCollection

	mu        sync.Mutex
	cond      *sync.Cond
	nodes     []*batchNode
	items     []*batchItem
	remaining int
	finished  bool
}

type batchNode struct {
	id        peer.ID
	fragment  policy.RecordID
	queue     []int // capsules to ask it for
	inflight  int
	failed    error // given up for this batch
	single    bool  // it does not know BatchReencrypt
	notBefore time.Time
	limited   int // rate-limited answers in a row
	asked     bool
}

type batchItem struct {
	got      map[policy.RecordID]*CFrag
	kids     map[[32]byte]bool
	pending  map[int]bool // nodes asked that have not answered
	tried    map[int]bool
	outcomes map[peer.ID]error
	done     bool
}

// assign asks more holders for capsule i until enough are asked: the
// least loaded nodes of fragments it has not got or been promised. With
// none left and nothing pending, the capsule has failed.
func (b *batch) assign(i int) {
	it := b.items[i]
	if it.done {
		return
	}
	for len(it.got)+len(it.pending) < b.need {
		best, bestLoad := -1, 0
		for k := range b.nodes {
			j := (i + k) % len(b.nodes) // ties go round the holders
			n := b.nodes[j]
			if n.failed != nil || it.tried[j] || it.got[n.fragment] != nil || b.promised(it, n.fragment) {
				continue
			}
			if load := len(n.queue) + n.inflight*b.opt.Items; best < 0 || load < bestLoad {
				best, bestLoad = j, load
			}
		}
		if best < 0 {
			break
		}
		it.tried[best], it.pending[best] = true, true
		b.nodes[best].queue = append(b.nodes[best].queue, i)
	}
	if len(it.pending) == 0 && len(it.got) < b.need {
		b.finish(it)
	}
	b.cond.Broadcast()
}

// promised reports whether a node asked for it and not answered holds
// fragment f.
func (b *batch) promised(it *batchItem, f policy.RecordID) bool {
	for j := range it.pending {
		if b.nodes[j].fragment == f {
			return true
		}
	}
	return false
}

func (b *batch) finish(it *batchItem) {
	if !it.done {
		it.done = true
		b.remaining--
		b.cond.Broadcast()
	}
}

// fail gives node j up with err: every capsule waiting for it goes
// elsewhere.
func (b *batch) fail(j int, err error) {
	n := b.nodes[j]
	if n.failed == nil {
		n.failed = err
	}
	queue := n.queue
	n.queue = nil
	for _, i := range queue {
		it := b.items[i]
		delete(it.pending, j)
		if !it.done {
			it.outcomes[n.id] = err
			b.assign(i)
		}
	}
}

// backoff is the pause before asking a rate-limited node again.
func backoff(limited int) time.Duration {
	return min(2*time.Second, 100*time.Millisecond<<min(limited-1, 5))
}

// work sends node j its queued capsules until the batch is over or the
// node is given up.
func (b *batch) work(j int) {
	n := b.nodes[j]
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for !b.finished && n.failed == nil && b.ctx.Err() == nil && len(n.queue) == 0 {
			b.cond.Wait()
		}
		if b.finished || n.failed != nil || b.ctx.Err() != nil {
			return
		}
		if wait := time.Until(n.notBefore); wait > 0 {
			b.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-b.ctx.Done():
				t.Stop()
			}
			b.mu.Lock()
			continue
		}
		var chunk []int
		for len(n.queue) > 0 && len(chunk) < b.opt.Items {
			i := n.queue[0]
			n.queue = n.queue[1:]
			if b.items[i].done {
				delete(b.items[i].pending, j)
				continue
			}
			chunk = append(chunk, i)
		}
		if len(chunk) == 0 {
			continue
		}
		n.inflight++
		n.asked = true
		b.col.Requests++
		single := n.single
		b.mu.Unlock()
		ans, err := b.ask(n, chunk, single)
		b.mu.Lock()
		n.inflight--
		b.answer(j, chunk, ans, err)
	}
}

// ask sends one request for the capsules of chunk to n (or, for a node
// that does not know batches, one Reencrypt per capsule).
func (b *batch) ask(n *batchNode, chunk []int, single bool) (*BatchAnswer, error) {
	capsules := make([]*rekey.Capsule, len(chunk))
	for k, i := range chunk {
		capsules[k] = b.req.Capsules[i]
	}
	ph := b.req.Entry.PathHash
	if !single {
		ctx, cancel := context.WithTimeout(b.ctx, b.opt.PerNodeTimeout)
		defer cancel()
		return b.h.BatchReencrypt(ctx, n.id, b.req.Owner, b.req.Me, ph, capsules)
	}
	ans := &BatchAnswer{Node: n.id, Items: make([]BatchItem, len(chunk))}
	for k, c := range capsules {
		ctx, cancel := context.WithTimeout(b.ctx, b.opt.PerNodeTimeout)
		cf, err := b.h.Reencrypt(ctx, n.id, b.req.Owner, b.req.Me, []Level{{PathHash: ph, Capsule: c}})
		cancel()
		if err != nil {
			var re *proto.RemoteError
			if !errors.As(err, &re) || k == 0 {
				return nil, err // the node failed, not this capsule
			}
			ans.Items[k].Err = err
			continue
		}
		if ans.Grant == nil {
			ans.Grant = cf.Grant
		} else if cf.Grant.ID() != ans.Grant.ID() {
			return nil, errOtherFragment
		}
		ans.Items[k].CFrag = cf.CFrag
	}
	if ans.Grant == nil {
		return nil, ans.Items[0].Err
	}
	return ans, nil
}

// answer takes node j's answer (or failure) for the capsules of chunk.
func (b *batch) answer(j int, chunk []int, ans *BatchAnswer, err error) {
	n := b.nodes[j]
	if b.finished {
		return
	}
	requeue := func(limited bool) {
		n.queue = append(append([]int(nil), chunk...), n.queue...)
		if limited {
			n.limited++
			n.notBefore = time.Now().Add(backoff(n.limited))
		}
		b.cond.Broadcast()
	}
	if err != nil {
		switch {
		case b.ctx.Err() != nil:
			return
		case errors.Is(err, proto.ErrUnknownType) && !n.single:
			n.single = true
			requeue(false)
			return
		case errors.Is(err, proto.ErrRateLimited) && n.limited < b.opt.Retries:
			requeue(true)
			return
		}
		n.queue = append(n.queue, chunk...)
		b.fail(j, err)
		return
	}
	if ans.Grant.ID() != n.fragment {
		n.queue = append(n.queue, chunk...)
		b.fail(j, errOtherFragment)
		return
	}
	var limited []int
	var lying error
	progress := false
	for k, i := range chunk {
		it := b.items[i]
		delete(it.pending, j)
		if it.done {
			continue
		}
		r := ans.Items[k]
		switch {
		case r.Err == nil:
			kid := r.CFrag.Unverify().KFragID()
			if it.kids[kid] || it.got[n.fragment] != nil {
				lying = errOtherFragment
				it.outcomes[n.id] = errOtherFragment
				b.assign(i)
				continue
			}
			it.got[n.fragment], it.kids[kid] = &CFrag{Node: n.id, Grant: ans.Grant, CFrag: r.CFrag}, true
			progress = true
			if len(it.got) >= b.need {
				b.finish(it)
			}
		case errors.Is(r.Err, proto.ErrRateLimited):
			it.pending[j] = true
			limited = append(limited, i)
		case errors.Is(r.Err, ErrBadProof):
			lying = r.Err
			it.outcomes[n.id] = r.Err
			b.assign(i)
		default:
			it.outcomes[n.id] = r.Err
			b.assign(i)
		}
	}
	if lying != nil {
		// A node whose cfrag does not verify is not asked again.
		for _, i := range limited {
			delete(b.items[i].pending, j)
			n.queue = append(n.queue, i)
		}
		b.fail(j, lying)
		return
	}
	if progress {
		n.limited = 0
	}
	if len(limited) > 0 {
		if n.limited >= b.opt.Retries {
			for _, i := range limited {
				n.queue = append(n.queue, i)
			}
			b.fail(j, fmt.Errorf("%w: %d answers in a row", proto.ErrRateLimited, n.limited))
			return
		}
		chunk = limited
		requeue(true)
	}
}
