package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
)

// GrantRequest is what an owner grants: access for To to every file under
// Prefix, as an M-of-N split, until Expires.
type GrantRequest struct {
	To      policy.Identity
	Prefix  policy.Path
	M, N    int
	Expires time.Time
}

// TooFewPlacedError means fewer than N fragments found a node. The grant is
// recorded with the fragments that were placed; with fewer than M it
// cannot work (Placed < M), with at least M it works with less margin.
type TooFewPlacedError struct {
	Placed, M, N int
	Err          error // dht.ErrPlacement, with the per-node refusals
}

func (e *TooFewPlacedError) Error() string {
	return fmt.Sprintf("client: only %d of %d fragments were placed (m=%d): %v", e.Placed, e.N, e.M, e.Err)
}
func (e *TooFewPlacedError) Unwrap() error { return e.Err }

// GrantResult is a grant as placed.
type GrantResult struct {
	// Record is the grant as recorded in the ledger; nil if no fragment
	// was placed.
	Record *GrantRecord
	// Refused says why every node that was tried and not used refused.
	Refused map[peer.ID]error
}

// Grant splits the owner's re-encryption key for req.Prefix to req.To
// m-of-n, places one fragment on each of n nodes and records the grant in
// the ledger. When not every fragment found a node, it returns the result
// with a *TooFewPlacedError.
func (c *Client) Grant(ctx context.Context, req GrantRequest) (*GrantResult, error) {
	if req.M < 1 || req.N < req.M || req.N > policy.MaxShares {
		return nil, fmt.Errorf("%w: m=%d n=%d; need 1 ≤ m ≤ n ≤ %d", policy.ErrBadThreshold, req.M, req.N, policy.MaxShares)
	}
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	expiry := req.Expires.Truncate(time.Second)
	var seq uint64
	if err := c.ledger.update(func(doc *ledgerDoc) error {
		seq = doc.nextSequence(req.To.String(), req.Prefix.String(), now)
		return nil
	}); err != nil {
		return nil, err
	}
	grants, err := policy.NewGrants(c.keys, policy.GrantParams{
		Recipient: req.To, Prefix: req.Prefix, Threshold: uint8(req.M), Shares: uint8(req.N),
		Sequence: seq, Expiry: uint64(expiry.Unix()),
	})
	if err != nil {
		return nil, err
	}
	pl, placeErr := h.Place(ctx, grants, dht.PlaceOptions{})
	if pl == nil {
		return nil, fmt.Errorf("client: failed to place the grant: %w", placeErr)
	}
	rec := &GrantRecord{Recipient: req.To.String(), Path: req.Prefix.String(), Threshold: req.M, Shares: req.N,
		Sequence: seq, Created: now.UTC(), Expires: expiry.UTC()}
	for i, p := range pl.Holders {
		if p == "" {
			continue
		}
		hr := HolderRecord{Fragment: i, Peer: p.String(), Receipt: hex.EncodeToString(pl.Receipts[i].Bytes())}
		for _, a := range h.Libp2p().Peerstore().Addrs(p) {
			hr.Addrs = append(hr.Addrs, a.String())
		}
		rec.Holders = append(rec.Holders, hr)
	}
	res := &GrantResult{Refused: pl.Refused}
	if len(rec.Holders) > 0 {
		res.Record = rec
		if err := c.ledger.update(func(doc *ledgerDoc) error {
			doc.Grants = append(doc.Grants, rec)
			return nil
		}); err != nil {
			return res, fmt.Errorf("client: the grant was placed but not recorded: %w", err)
		}
	}
	if placeErr != nil {
		return res, &TooFewPlacedError{Placed: len(rec.Holders), M: req.M, N: req.N, Err: placeErr}
	}
	return res, nil
}

// RevokeResult is what revoking a grant achieved.
type RevokeResult struct {
	Info *RevocationInfo
	// Known reports whether the ledger recorded the grant: without it m
	// and n are unknown and no verdict is possible.
	Known bool
	M, N  int
}

// Revoke revokes every grant of prefix to the recipient: each node that
// holds a fragment deletes it and answers with a signed receipt; nodes
// without a fragment keep a tombstone. The verdict (Info.Dead) follows
// policy.RevocationVerdict. The ledger records the revocation.
func (c *Client) Revoke(ctx context.Context, to policy.Identity, prefix policy.Path) (*RevokeResult, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	all, err := c.ledger.read()
	if err != nil {
		return nil, err
	}
	var recs []*GrantRecord
	for _, g := range all {
		if g.Recipient == to.String() && g.Path == prefix.String() {
			recs = append(recs, g)
		}
	}
	now := time.Now()
	rev := &policy.Revocation{
		Owner: c.me.IdentityKey, Recipient: to.IdentityKey,
		PathHash: policy.ComputePathHash(c.me.IdentityKey, to.IdentityKey, prefix),
		IssuedAt: uint64(now.Unix()),
	}
	if err := c.ledger.update(func(doc *ledgerDoc) error {
		rev.Sequence = doc.nextSequence(to.String(), prefix.String(), now)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := rev.Sign(policy.IdentitySigner(c.keys)); err != nil {
		return nil, err
	}
	// Every recorded holder, and every node that announces or is close to
	// the locator (fragments may have been handed off): nodes without a
	// fragment keep a tombstone and refuse the grant if it comes back.
	targets := map[peer.ID]bool{}
	for _, g := range recs {
		for _, hr := range g.Holders {
			id, err := peer.Decode(hr.Peer)
			if err != nil {
				continue
			}
			if infos, err := dht.ParseAddrs(withP2P(hr.Addrs, hr.Peer)); err == nil && len(infos) > 0 {
				h.Libp2p().Peerstore().AddAddrs(id, infos[0].Addrs, time.Hour)
			}
			targets[id] = true
		}
	}
	if found, err := h.Holders(ctx, c.me.IdentityKey, to.IdentityKey, dht.DefaultCandidates); err == nil {
		for _, p := range found {
			targets[p] = true
		}
	}
	info := &RevocationInfo{Sequence: rev.Sequence, At: now.UTC(), Failed: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, dht.DefaultCallTimeout)
			defer cancel()
			rc, err := h.Revoke(cctx, p, rev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				info.Failed[p.String()] = dht.Classify(err).Words()
				return
			}
			info.Receipts = append(info.Receipts, hex.EncodeToString(rc.Bytes()))
			if rc.Kind == policy.ReceiptRevoked {
				info.Deleted++
			} else {
				info.NotHeld++
			}
		}()
	}
	wg.Wait()
	sort.Strings(info.Receipts)
	res := &RevokeResult{Info: info}
	for _, g := range recs {
		res.M, res.N, res.Known = g.Threshold, g.Shares, true
	}
	if res.Known {
		info.Dead = policy.RevocationVerdict(info.Deleted, res.M, res.N)
	}
	err = c.ledger.update(func(doc *ledgerDoc) error {
		found := false
		for _, g := range doc.Grants {
			if g.Recipient == to.String() && g.Path == prefix.String() {
				g.Revocation, found = info, true
			}
		}
		if !found {
			doc.Grants = append(doc.Grants, &GrantRecord{Recipient: to.String(), Path: prefix.String(),
				Sequence: rev.Sequence, Created: now.UTC(), Revocation: info})
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("client: failed to record the revocation: %w", err)
	}
	return res, nil
}

// GrantsOptions tune Grants.
type GrantsOptions struct {
	// Refresh asks the network which nodes announce fragments of each
	// recipient's grants now (after hand-offs) and records them.
	Refresh bool
}

// Grants lists the owner's recorded grants.
func (c *Client) Grants(ctx context.Context, opt GrantsOptions) ([]*GrantRecord, error) {
	if !opt.Refresh {
		return c.ledger.read()
	}
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	recipients, err := c.ledger.read()
	if err != nil {
		return nil, err
	}
	announced := map[string][]string{}
	for _, g := range recipients {
		if _, done := announced[g.Recipient]; done {
			continue
		}
		id, err := policy.ParseIdentity(g.Recipient)
		if err != nil {
			continue
		}
		provs, err := h.FindProviders(ctx, dht.Locator(c.me.IdentityKey, id.IdentityKey), 64)
		if err != nil {
			return nil, err
		}
		ids := []string{}
		for _, p := range provs {
			ids = append(ids, p.ID.String())
		}
		sort.Strings(ids)
		announced[g.Recipient] = ids
	}
	var out []*GrantRecord
	err = c.ledger.update(func(doc *ledgerDoc) error {
		for _, g := range doc.Grants {
			if ids, ok := announced[g.Recipient]; ok {
				g.Announced = ids
			}
		}
		out = doc.Grants
		return nil
	})
	return out, err
}

func withP2P(addrs []string, id string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if !strings.Contains(a, "/p2p/") {
			a += "/p2p/" + id
		}
		out = append(out, a)
	}
	return out
}
