package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// KeyResult is one file's outcome in DecryptKeys: its key, or why there
// is none. On failure Key may still be set, with the header and, after a
// failed collection, every node's answer (FileKey.Nodes).
type KeyResult struct {
	Key *FileKey
	Err error
}

// DecryptKeys recovers the data keys of many files at once: what
// DecryptKey does for each header (the owner offline, a recipient from m
// holders, the writer checked), with the network work shared. The files
// a recipient opens through one grant are asked of its holders together,
// many capsules per request (SPEC.md §4.3.10, §5.2.8), so that a
// thousand small files under one grant cost a few dozen requests rather
// than thousands. It returns one result per header, in order; a failed
// file does not stop the others.
func (c *Client) DecryptKeys(ctx context.Context, headers []*kfile.Header, opt DecryptOptions) []KeyResult {
	res := make([]KeyResult, len(headers))
	byOwner := map[policy.PublicKey][]int{}
	var mine []int
	for i, h := range headers {
		switch {
		case h == nil:
			res[i].Err = errors.New("client: no header")
		case h.FormatVersion() == 1 && !opt.AllowUnsigned:
			res[i] = KeyResult{&FileKey{Header: h}, fmt.Errorf("%w: written by kadre before files were signed; its writer cannot be checked (allow unsigned files to read it, or have the owner migrate it)", kfile.ErrUnsigned)}
		case h.Owner() == c.me.IdentityKey:
			mine = append(mine, i)
		default:
			byOwner[h.Owner()] = append(byOwner[h.Owner()], i)
		}
	}
	parallel(len(mine), func(k int) {
		i := mine[k]
		fk, err := c.ownerKey(headers[i])
		res[i] = KeyResult{fk, err}
	})
	var wg sync.WaitGroup
	for owner, idx := range byOwner {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.recipientKeys(ctx, owner, headers, idx, res)
		}()
	}
	wg.Wait()
	return res
}

// parallel runs fn(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, fn func(int)) {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		g.Go(func() error { fn(i); return nil })
	}
	g.Wait()
}

// batchFile is one file of a recipient's batch.
type batchFile struct {
	i          int
	h          *kfile.Header
	fk         *FileKey
	cands      []candidate
	next       int // index of the candidate to try
	lastErr    error
	collectErr error
	done       bool  // opened, or refused by the checks after opening
	final      error // why the checks refused it
}

// recipientKeys opens owner's files of headers[idx] as recipientKey does
// for one: the cached holder map first, then a fresh one; the deepest
// candidate level of each file first, then the next; files whose current
// candidate is the same grant are collected together.
func (c *Client) recipientKeys(ctx context.Context, owner policy.PublicKey, headers []*kfile.Header, idx []int, res []KeyResult) {
	pair, err := policy.RecipientPairKey(c.keys, owner)
	if err != nil {
		for _, i := range idx {
			res[i].Err = err
		}
		return
	}
	files := make([]*batchFile, len(idx))
	for k, i := range idx {
		files[k] = &batchFile{i: i, h: headers[i], fk: &FileKey{Header: headers[i]}}
	}
	for _, fresh := range []bool{false, true} {
		var pending []*batchFile
		for _, f := range files {
			if !f.done {
				pending = append(pending, f)
			}
		}
		if len(pending) == 0 {
			break
		}
		m, err := c.mapFor(ctx, pair, fresh)
		if err != nil {
			for _, f := range pending {
				if errors.Is(err, dht.ErrNoMap) {
					f.lastErr = fmt.Errorf("client: cannot decrypt this file of %s: %w: %w", owner, policy.ErrNotGranted, err)
				} else {
					f.lastErr = err
				}
			}
			continue
		}
		var active []*batchFile
		for _, f := range pending {
			f.cands, f.next = candidates(f.h, pair, m), 0
			if len(f.cands) == 0 {
				f.lastErr = fmt.Errorf("client: cannot decrypt this file of %s: %w: the owner's holder map lists no grant to you for a prefix of it", owner, policy.ErrNotGranted)
				if f.collectErr != nil {
					f.lastErr = f.collectErr
				}
				continue
			}
			active = append(active, f)
		}
		for len(active) > 0 {
			groups := map[policy.PathHash][]*batchFile{}
			for _, f := range active {
				ph := f.cands[f.next].entry.PathHash
				groups[ph] = append(groups[ph], f)
			}
			var wg sync.WaitGroup
			for _, group := range groups {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.collectGroup(ctx, pair, m, group)
				}()
			}
			wg.Wait()
			next := active[:0]
			for _, f := range active {
				if !f.done && f.next < len(f.cands) {
					next = append(next, f)
				}
			}
			active = next
		}
	}
	for _, f := range files {
		res[f.i].Key = f.fk
		if f.done {
			res[f.i].Err = f.final
		} else {
			res[f.i].Err = f.lastErr
		}
	}
}

// collectGroup collects cfrags for files whose current candidate is one
// grant, opens them and checks them; a file that fails moves on to its
// next candidate.
func (c *Client) collectGroup(ctx context.Context, pair *policy.PairKey, m *holderMap, group []*batchFile) {
	cd0 := group[0].cands[group[0].next]
	fail := func(f *batchFile, err error) {
		f.lastErr, f.collectErr = err, err
		f.next++
	}
	var ok []*batchFile
	capsules := make([]*rekey.Capsule, 0, len(group))
	for _, f := range group {
		capsule, _, err := f.h.Level(f.cands[f.next].level)
		if err != nil {
			fail(f, err)
			continue
		}
		ok = append(ok, f)
		capsules = append(capsules, capsule)
	}
	if len(ok) == 0 {
		return
	}
	host, err := c.Host(ctx)
	if err != nil {
		for _, f := range ok {
			fail(f, err)
		}
		return
	}
	holders := policy.CurrentHolders(cd0.page, cd0.entry, m.links)
	var bc *dht.BatchCollection
	if len(ok) == 1 {
		// One file: every holder at once, as DecryptKey asks.
		col, err := host.Collect(ctx, dht.CollectRequest{Owner: pair.Owner(), Me: c.me, Entry: cd0.entry, Holders: holders,
			Level: dht.Level{PathHash: cd0.entry.PathHash, Capsule: capsules[0]}}, dht.CollectOptions{})
		if col == nil {
			col = &dht.Collection{}
		}
		bc = &dht.BatchCollection{Items: []*dht.Collection{col}, Errs: []error{err}}
	} else {
		bc, err = host.CollectBatch(ctx, dht.BatchRequest{Owner: pair.Owner(), Me: c.me, Entry: cd0.entry, Holders: holders, Capsules: capsules}, dht.BatchOptions{})
	}
	if bc == nil {
		for _, f := range ok {
			fail(f, fmt.Errorf("client: cannot decrypt this file of %s: %w", pair.Owner(), err))
		}
		return
	}
	keys := make([][]byte, len(ok))
	errs := make([]error, len(ok))
	parallel(len(ok), func(k int) {
		f, col := ok[k], bc.Items[k]
		f.fk.Nodes = map[peer.ID]error{}
		for p, err := range col.Outcomes {
			f.fk.Nodes[p] = err
		}
		for _, cf := range col.CFrags {
			f.fk.Nodes[cf.Node] = nil
		}
		if bc.Errs[k] != nil {
			errs[k] = fmt.Errorf("client: cannot decrypt this file of %s: %w", pair.Owner(), bc.Errs[k])
			return
		}
		delegating, cfrags, err := col.Material()
		if err == nil {
			keys[k], err = f.h.UnwrapReencrypted(f.cands[f.next].level, c.keys.Receiving(), delegating, cfrags)
		}
		errs[k] = err
	})
	for k, f := range ok {
		if errs[k] != nil {
			fail(f, errs[k])
			continue
		}
		// Opened: the checks decide, as for one file; no other candidate
		// is tried after them.
		f.done = true
		f.final = c.checkOpened(ctx, f.h, f.fk, pair, m, f.cands[f.next], keys[k])
	}
}
