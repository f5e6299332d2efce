package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
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

// ErrBadExpiry means a grant's expiry is not a time at least a minute
// from now.
var ErrBadExpiry = errors.New("client: invalid grant expiry")

// ExpiryTooLongError means fewer than m of the nodes this client sees
// keep a grant that long (their signed node info says how long they keep
// grants, SPEC.md §3.4.6), so that placing it could not work: Grant
// refuses it before splitting anything.
type ExpiryTooLongError struct {
	Wanted               time.Duration
	Accepting, Reachable int
	Full                 int // reachable nodes with no free slot
	M                    int
	Longest              time.Duration // the longest grant a reachable node keeps
}

func (e *ExpiryTooLongError) Error() string {
	full := ""
	if e.Full > 0 {
		full = fmt.Sprintf(", %d have no free slot", e.Full)
	}
	return fmt.Sprintf("client: %d of the %d reachable nodes would keep a grant of %s (the longest any of them keeps is %s%s); it needs %d",
		e.Accepting, e.Reachable, FormatDuration(e.Wanted), FormatDuration(e.Longest), full, e.M)
}
func (e *ExpiryTooLongError) Unwrap() error { return policy.ErrExpiryTooLong }

// FormatDuration writes d in days when it is a whole number of days
// ("90d"), else as time.Duration does, rounded to the second.
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	if d >= day && d%time.Hour == 0 {
		return fmt.Sprintf("%dd%dh", d/day, d%day/time.Hour)
	}
	return d.Round(time.Second).String()
}

// GrantResult is a grant as placed.
type GrantResult struct {
	// Record is the grant as recorded in the ledger; nil if no fragment
	// was placed.
	Record *GrantRecord
	// Refused says why every node that was tried and not used refused.
	Refused map[peer.ID]error
	// Sampled counts the nodes the placement chose from.
	Sampled int
	// Map says where the pair's holder map was stored.
	Map *dht.Publication
}

// Grant splits the owner's re-encryption key for req.Prefix (at the
// prefix's current key epoch) to req.To m-of-n, places one fragment on
// each of n nodes chosen with fresh randomness (SPEC.md §5.2), records the
// grant in the ledger, and publishes the pair's holder map so that the
// recipient finds the holders without the owner. When not every fragment
// found a node, it returns the result with a *TooFewPlacedError.
func (c *Client) Grant(ctx context.Context, req GrantRequest) (*GrantResult, error) {
	if err := CheckThreshold(req.M, req.N); err != nil {
		return nil, err
	}
	if wanted := time.Until(req.Expires); wanted < time.Minute {
		return nil, fmt.Errorf("%w: %s is less than a minute from now", ErrBadExpiry, req.Expires.Local().Format(time.RFC3339))
	}
	doc, err := c.ledger.read()
	if err != nil {
		return nil, err
	}
	// Whether nodes would keep the grant is asked while the placement
	// draws its sample; no fragment is sent before the answer.
	check := make(chan error, 1)
	go func() { check <- c.checkDuration(ctx, req) }()
	return c.grant(ctx, req, doc.epoch(req.Prefix.String()), func() error { return <-check })
}

// CheckThreshold says precisely what is wrong with an m-of-n split, if
// anything (policy.ErrBadThreshold).
func CheckThreshold(m, n int) error {
	switch {
	case m < 1:
		return fmt.Errorf("%w: m=%d: a grant needs at least 1 fragment to decrypt", policy.ErrBadThreshold, m)
	case n > policy.MaxShares:
		return fmt.Errorf("%w: n=%d: a grant has at most %d fragments, one per node", policy.ErrBadThreshold, n, policy.MaxShares)
	case n < m:
		return fmt.Errorf("%w: m=%d is more than n=%d: a grant cannot need more fragments than it has", policy.ErrBadThreshold, m, n)
	}
	return nil
}

// checkDuration refuses a grant that fewer than m of the reachable nodes
// this client sees would keep (their node info, at most a minute old:
// maximum duration, free slots). With no reachable node it says nothing:
// placement will.
func (c *Client) checkDuration(ctx context.Context, req GrantRequest) error {
	st, err := c.recentStatus(ctx, statusMaxAge)
	if err != nil {
		return err
	}
	wanted := time.Until(req.Expires.Truncate(time.Second))
	e := &ExpiryTooLongError{Wanted: wanted.Round(time.Minute), M: req.M}
	for _, n := range st.Nodes {
		if !n.Reachable {
			continue
		}
		e.Reachable++
		e.Longest = max(e.Longest, n.MaxGrantDuration)
		switch {
		case n.FreeSlots == 0:
			e.Full++
		case n.MaxGrantDuration >= wanted:
			e.Accepting++
		}
	}
	if e.Reachable > 0 && e.Accepting < req.M {
		return e
	}
	return nil
}

// grant places a grant at one epoch and publishes the pair's map. The
// map's lookups (the storers of its points, the map stored there now) run
// while the fragments are placed. gate, if not nil, is called before any
// fragment is sent, and its error ends the grant.
func (c *Client) grant(ctx context.Context, req GrantRequest, epoch uint32, gate func() error) (*GrantResult, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	pair, err := policy.OwnerPairKey(c.keys, req.To.IdentityKey)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prep := c.prepareMap(pctx, h, pair)
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
		Recipient: req.To, Prefix: req.Prefix, Epoch: epoch, Threshold: uint8(req.M), Shares: uint8(req.N),
		Sequence: seq, Expiry: uint64(expiry.Unix()),
	})
	if err != nil {
		return nil, err
	}
	opt := c.opt.Placement
	var gateErr error
	if gate != nil {
		opt.Gate = func() error { gateErr = gate(); return gateErr }
	}
	pl, placeErr := h.Place(ctx, grants, opt)
	if pl == nil {
		if gateErr != nil {
			return nil, gateErr
		}
		return nil, fmt.Errorf("client: failed to place the grant: %w", placeErr)
	}
	g0 := grants[0]
	rec := &GrantRecord{Recipient: req.To.String(), Path: req.Prefix.String(), Epoch: epoch, PathHash: g0.PathHash.String(),
		Threshold: req.M, Shares: req.N, Sequence: seq, Created: now.UTC(), Expires: expiry.UTC(),
		DelegatingKey: g0.DelegatingKey.String(), VerifyingKey: g0.VerifyingKey.String()}
	var holders []peer.ID
	for i, p := range pl.Holders {
		if p == "" {
			continue
		}
		hr := HolderRecord{Fragment: i, Peer: p.String(), GrantID: grants[i].ID().String(),
			Receipt: hex.EncodeToString(pl.Receipts[i].Bytes())}
		for _, a := range h.Libp2p().Peerstore().Addrs(p) {
			hr.Addrs = append(hr.Addrs, a.String())
		}
		rec.Holders = append(rec.Holders, hr)
		holders = append(holders, p)
	}
	res := &GrantResult{Refused: pl.Refused, Sampled: pl.Sampled}
	if len(rec.Holders) == 0 {
		return res, &TooFewPlacedError{Placed: 0, M: req.M, N: req.N, Err: placeErr}
	}
	res.Record = rec
	if err := c.ledger.update(func(doc *ledgerDoc) error {
		doc.Grants = append(doc.Grants, rec)
		return nil
	}); err != nil {
		return res, fmt.Errorf("client: the grant was placed but not recorded: %w", err)
	}
	if res.Map, err = c.publishMap(ctx, req.To, holders, nil, prep); err != nil {
		return res, fmt.Errorf("client: the grant was placed but its holder map was not stored: %w", err)
	}
	if placeErr != nil {
		return res, &TooFewPlacedError{Placed: len(rec.Holders), M: req.M, N: req.N, Err: placeErr}
	}
	return res, nil
}

// RevokeResult is what revoking achieved.
type RevokeResult struct {
	// Info sums the verdicts of every grant of the prefix to the
	// recipient (one per key epoch granted).
	Info *RevocationInfo
	// Known reports whether the ledger or the network's holder map knew a
	// grant: without one, no verdict is possible.
	Known bool
	M, N  int
	// Epoch is the prefix's key epoch after the revocation: the revocation
	// rotated it (Rotated), so files written from now on use keys the
	// revoked recipient never held fragments of.
	Epoch   uint32
	Rotated bool
	// Regranted are the grants of the prefix's other recipients at the new
	// epoch; RegrantFailed says whose re-grant failed (they read old
	// files still, and new ones once granted again).
	Regranted     []*GrantResult
	RegrantFailed map[string]error
	// Writers are the certificates re-issued for the new epoch to the
	// prefix's writers, to hand to them: until a writer uses his, what he
	// writes stays readable with the old epoch's key.
	Writers []*policy.WriterCert
}

// Revoke revokes every grant of prefix to the recipient (at every key
// epoch): each current holder of a fragment (by the holder map and its
// hand-off links) deletes it and signs a receipt naming it; the verdict
// (policy.RevocationVerdict) counts only those. The pair's map is
// republished without the grants, and the ledger records the revocation.
//
// Then it rotates the prefix's key epoch (SPEC.md §5.7.5): the recipient,
// even with every holder of his fragments colluding, recovers at most the
// old epoch's key, which opens no file written afterwards. The prefix's
// other recipients are granted again at the new epoch (same split and
// expiry; their old grants stay, for the old files), and its writers'
// certificates are re-issued.
func (c *Client) Revoke(ctx context.Context, to policy.Identity, prefix policy.Path) (*RevokeResult, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	pair, err := policy.OwnerPairKey(c.keys, to.IdentityKey)
	if err != nil {
		return nil, err
	}
	doc, err := c.ledger.read()
	if err != nil {
		return nil, err
	}
	// The path hashes to revoke: every epoch the ledger granted, and the
	// current one.
	hashes := map[policy.PathHash]bool{pair.PathHash(prefix, doc.epoch(prefix.String())): true}
	for _, g := range doc.Grants {
		if g.Recipient == to.String() && g.Path == prefix.String() {
			hashes[pair.PathHash(prefix, g.Epoch)] = true
		}
	}
	net, err := c.fetchMap(ctx, pair)
	if err != nil {
		net = &holderMap{ref: dht.RefOf(pair)}
	}
	now := time.Now()
	var seq uint64
	if err := c.ledger.update(func(doc *ledgerDoc) error {
		seq = doc.nextSequence(to.String(), prefix.String(), now)
		return nil
	}); err != nil {
		return nil, err
	}
	info := &RevocationInfo{Sequence: seq, At: now.UTC(), Failed: map[string]string{}}
	res := &RevokeResult{Info: info}
	allDead := true
	for ph := range hashes {
		rev := &policy.Revocation{Owner: c.me.IdentityKey, Recipient: to.IdentityKey, PathHash: ph,
			Sequence: seq, IssuedAt: uint64(now.Unix())}
		if err := rev.Sign(policy.IdentitySigner(c.keys)); err != nil {
			return nil, err
		}
		page, e := net.entry(ph)
		var entry *policy.MapEntry
		if e != nil {
			entry = e
		} else if g := c.recorded(doc, to, ph); g != nil {
			if x, err := g.entry(); err == nil {
				entry = &x
			}
		}
		if entry == nil {
			continue // never granted at this epoch
		}
		if page == nil {
			page = &policy.HolderMap{Owner: c.me.IdentityKey, Recipient: to.IdentityKey}
		}
		current := policy.CurrentHolders(page, entry, net.links)
		receipts := c.sendRevocation(ctx, h, rev, current, info)
		v := policy.RevocationVerdict(rev, entry, current, receipts)
		res.Known = true
		res.M, res.N = int(entry.Threshold), int(entry.Shares)
		info.Deleted += v.Deleted
		info.Fragments += v.Fragments
		info.Acknowledged += v.Acknowledged
		allDead = allDead && v.Dead
		for _, rc := range receipts {
			info.Receipts = append(info.Receipts, hex.EncodeToString(rc.Bytes()))
		}
	}
	sort.Strings(info.Receipts)
	info.Dead = res.Known && allDead
	// A grant that was live until now: the ledger's, not revoked yet, or
	// one the network's map still lists. Revoking again what is revoked
	// already does not rotate the epoch again.
	wasLive := false
	for _, g := range doc.Grants {
		wasLive = wasLive || (g.Recipient == to.String() && g.Path == prefix.String() && g.Revocation == nil)
	}
	for ph := range hashes {
		if _, e := net.entry(ph); e != nil {
			wasLive = true
		}
	}
	if err := c.ledger.update(func(doc *ledgerDoc) error {
		found := false
		for _, g := range doc.Grants {
			if g.Recipient == to.String() && g.Path == prefix.String() && g.Revocation == nil {
				g.Revocation, found = info, true
			}
		}
		if !found {
			doc.Grants = append(doc.Grants, &GrantRecord{Recipient: to.String(), Path: prefix.String(),
				Sequence: seq, Created: now.UTC(), Revocation: info})
		}
		return nil
	}); err != nil {
		return res, fmt.Errorf("client: failed to record the revocation: %w", err)
	}
	if _, err := c.publishMap(ctx, to, nil, hashes, nil); err != nil {
		return res, fmt.Errorf("client: the grant was revoked but the holder map was not republished: %w", err)
	}
	if !wasLive {
		res.Epoch = doc.epoch(prefix.String())
		return res, nil
	}
	return res, c.rotate(ctx, to, prefix, res)
}

// rotate moves prefix to a new key epoch after to's revocation and grants
// the prefix's other live recipients again at it.
func (c *Client) rotate(ctx context.Context, revoked policy.Identity, prefix policy.Path, res *RevokeResult) error {
	now := time.Now()
	latest := map[string]*GrantRecord{}
	err := c.ledger.update(func(doc *ledgerDoc) error {
		if doc.Epochs == nil {
			doc.Epochs = map[string]uint32{}
		}
		res.Epoch = doc.epoch(prefix.String()) + 1
		doc.Epochs[prefix.String()] = res.Epoch
		res.Rotated = true
		for _, g := range doc.Grants {
			if g.Path != prefix.String() || g.Recipient == revoked.String() || !g.Live(now) {
				continue
			}
			if l := latest[g.Recipient]; l == nil || g.Epoch > l.Epoch || (g.Epoch == l.Epoch && g.Sequence > l.Sequence) {
				latest[g.Recipient] = g
			}
		}
		var err error
		res.Writers, err = c.reissueWriters(doc, prefix)
		return err
	})
	if err != nil {
		return fmt.Errorf("client: the grant was revoked but its key epoch was not rotated: %w", err)
	}
	// The re-grants run together, a few at a time: each waits mostly on
	// the network.
	res.RegrantFailed = map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, regrantParallel)
	for r, g := range latest {
		id, err := policy.ParseIdentity(r)
		if err != nil {
			res.RegrantFailed[r] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			gr, err := c.grant(ctx, GrantRequest{To: id, Prefix: prefix, M: g.Threshold, N: g.Shares, Expires: g.Expires}, res.Epoch, nil)
			mu.Lock()
			defer mu.Unlock()
			if gr != nil && gr.Record != nil {
				res.Regranted = append(res.Regranted, gr)
			}
			if err != nil {
				res.RegrantFailed[r] = err
			}
		}()
	}
	wg.Wait()
	return nil
}

// regrantParallel bounds the re-grants a revocation runs at once.
const regrantParallel = 8

// recorded returns the ledger's grant to recipient with path hash ph.
func (c *Client) recorded(doc *ledgerDoc, to policy.Identity, ph policy.PathHash) *GrantRecord {
	for _, g := range doc.Grants {
		if g.Recipient == to.String() && g.PathHash == ph.String() {
			return g
		}
	}
	return nil
}

// sendRevocation sends rev to every current holder of the grant's
// fragments and returns the valid receipts.
func (c *Client) sendRevocation(ctx context.Context, h *dht.Host, rev *policy.Revocation, current map[policy.RecordID][]policy.PublicKey, info *RevocationInfo) []*policy.Receipt {
	targets := map[peer.ID]bool{}
	for _, holders := range current {
		for _, k := range holders {
			if p, err := dht.PeerIDOf(k); err == nil {
				targets[p] = true
			}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var receipts []*policy.Receipt
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
			receipts = append(receipts, rc)
		}()
	}
	wg.Wait()
	return receipts
}

// GrantsOptions tune Grants.
type GrantsOptions struct {
	// Refresh asks the network where each grant's fragments are now (the
	// holder map and its hand-off links) and whether they answer.
	Refresh bool
}

// GrantStatus is a recorded grant and, with Refresh, its holders now.
type GrantStatus struct {
	*GrantRecord
	// Current is every fragment's current holders (after hand-offs), and
	// Reachable the ones that answered; both nil without Refresh.
	Current   map[string][]string `json:"current,omitempty"`
	Reachable map[string]bool     `json:"reachable,omitempty"`
	// Superseded is set on a live grant when the same recipient holds a
	// grant of the same prefix at a later key epoch (a rotation re-granted
	// it): the old one serves only files written before.
	Superseded bool `json:"superseded,omitempty"`
}

// Grants lists the owner's recorded grants, with Refresh their current
// holders and which of them answer.
func (c *Client) Grants(ctx context.Context, opt GrantsOptions) ([]GrantStatus, error) {
	doc, err := c.ledger.read()
	if err != nil {
		return nil, err
	}
	out := make([]GrantStatus, len(doc.Grants))
	now := time.Now()
	for i, g := range doc.Grants {
		out[i] = GrantStatus{GrantRecord: g}
		for _, h := range doc.Grants {
			if h.Recipient == g.Recipient && h.Path == g.Path && h.Epoch > g.Epoch && h.Live(now) {
				out[i].Superseded = true
			}
		}
	}
	if !opt.Refresh {
		return out, nil
	}
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	maps := map[string]*holderMap{}
	for _, g := range doc.Grants {
		if _, done := maps[g.Recipient]; done || g.PathHash == "" {
			continue
		}
		id, err := policy.ParseIdentity(g.Recipient)
		if err != nil {
			continue
		}
		pair, err := policy.OwnerPairKey(c.keys, id.IdentityKey)
		if err != nil {
			continue
		}
		m, err := c.fetchMap(ctx, pair)
		if err != nil {
			m = &holderMap{}
		}
		maps[g.Recipient] = m
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range out {
		g := out[i].GrantRecord
		m := maps[g.Recipient]
		e, err := g.entry()
		if m == nil || err != nil {
			continue
		}
		page, _ := m.entry(e.PathHash)
		if page == nil {
			page = &policy.HolderMap{}
		}
		cur := policy.CurrentHolders(page, &e, m.links)
		out[i].Current, out[i].Reachable = map[string][]string{}, map[string]bool{}
		for id, keys := range cur {
			for _, k := range keys {
				p, err := dht.PeerIDOf(k)
				if err != nil {
					continue
				}
				out[i].Current[id.String()] = append(out[i].Current[id.String()], p.String())
				wg.Add(1)
				go func() {
					defer wg.Done()
					cctx, cancel := context.WithTimeout(ctx, dht.DefaultPerNodeTimeout)
					defer cancel()
					_, err := h.NodeInfo(cctx, p)
					mu.Lock()
					out[i].Reachable[p.String()] = err == nil
					mu.Unlock()
				}()
			}
		}
	}
	wg.Wait()
	return out, nil
}
