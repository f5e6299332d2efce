package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
)

// grantRecord is one grant in the owner's grants.json.
type grantRecord struct {
	Recipient string         `json:"recipient"`
	Path      string         `json:"path"`
	Threshold int            `json:"m"`
	Shares    int            `json:"n"`
	Sequence  uint64         `json:"sequence"`
	Created   time.Time      `json:"created"`
	Expires   time.Time      `json:"expires"`
	Holders   []holderRecord `json:"holders"`
	// Announced lists the nodes that announced fragments of this owner's
	// grants to the recipient when last refreshed (grants -refresh): the
	// holders after hand-offs.
	Announced  []string        `json:"announced,omitempty"`
	Revocation *revocationInfo `json:"revocation,omitempty"`
}

type holderRecord struct {
	Fragment int      `json:"fragment"`
	Peer     string   `json:"peer"`
	Addrs    []string `json:"addrs,omitempty"`
	Receipt  string   `json:"receipt"` // hex of the node-signed receipt
}

type revocationInfo struct {
	Sequence uint64            `json:"sequence"`
	At       time.Time         `json:"at"`
	Deleted  int               `json:"deleted"`  // nodes that deleted a fragment (signed receipts)
	NotHeld  int               `json:"not_held"` // nodes that hold none and keep a tombstone
	Failed   map[string]string `json:"failed,omitempty"`
	Dead     bool              `json:"dead"` // deleted ≥ n−m+1: fewer than m fragments can remain
	Receipts []string          `json:"receipts"`
}

type grantsDB struct {
	Version int            `json:"version"`
	Grants  []*grantRecord `json:"grants"`
}

func loadGrants(home string) (*grantsDB, error) {
	db := &grantsDB{Version: 1}
	b, err := os.ReadFile(filepath.Join(home, grantsFile))
	if errors.Is(err, os.ErrNotExist) {
		return db, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, db); err != nil {
		return nil, fmt.Errorf("grants file %s: %w", filepath.Join(home, grantsFile), err)
	}
	return db, nil
}

func (db *grantsDB) save(home string) error {
	b, _ := json.MarshalIndent(db, "", "  ")
	return writeFileAtomic(filepath.Join(home, grantsFile), append(b, '\n'), 0o600)
}

// nextSequence is above every grant or revocation recorded for the
// recipient and path, and never below the current Unix time in
// milliseconds, so that an owner who lost grants.json still signs newer
// records than before.
func (db *grantsDB) nextSequence(recipient, path string) uint64 {
	seq := uint64(time.Now().UnixMilli())
	for _, g := range db.Grants {
		if g.Recipient != recipient || g.Path != path {
			continue
		}
		seq = max(seq, g.Sequence+1)
		if g.Revocation != nil {
			seq = max(seq, g.Revocation.Sequence+1)
		}
	}
	return seq
}

func cmdGrant(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "grant", "-to <identity> -path </prefix> [-m 3] [-n 5] [-expires 30d]",
		"Grants a recipient access to every file under a path prefix: splits a re-encryption key m-of-n and places one fragment on each of n nodes.")
	u.bind(fs, e)
	to := fs.String("to", "", "the recipient's identity (kadre1…)")
	path := fs.String("path", "", "the path prefix to grant, e.g. /docs")
	m := fs.Int("m", 3, "fragments needed to decrypt")
	n := fs.Int("n", 5, "fragments placed, one per node")
	expires := Duration(30 * 24 * time.Hour)
	fs.Var(&expires, "expires", "how long the grant lasts, e.g. 30d or 12h")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *to == "" || *path == "" {
		fs.Usage()
		return errUsage
	}
	recipient, prefix, err := parseTarget(*to, *path)
	if err != nil {
		return err
	}
	if *m < 1 || *n < *m || *n > policy.MaxShares {
		return withHint(fmt.Errorf("invalid threshold %d of %d", *m, *n), "need 1 ≤ m ≤ n ≤ %d", policy.MaxShares)
	}
	s, err := u.connect(ctx, e)
	if err != nil {
		return err
	}
	defer s.close()
	db, err := loadGrants(s.home)
	if err != nil {
		return err
	}
	now := time.Now()
	expiry := now.Add(time.Duration(expires)).Truncate(time.Second)
	seq := db.nextSequence(recipient.String(), prefix.String())
	grants, err := policy.NewGrants(s.keys, policy.GrantParams{
		Recipient: recipient, Prefix: prefix, Threshold: uint8(*m), Shares: uint8(*n),
		Sequence: seq, Expiry: uint64(expiry.Unix()),
	})
	if err != nil {
		return err
	}
	pl, placeErr := s.host.Place(ctx, grants, dht.PlaceOptions{})
	if pl == nil {
		return withHint(fmt.Errorf("failed to place the grant: %w", placeErr), "check the network with `kadre status`")
	}
	rec := &grantRecord{Recipient: recipient.String(), Path: prefix.String(), Threshold: *m, Shares: *n,
		Sequence: seq, Created: now.UTC(), Expires: expiry.UTC()}
	for i, h := range pl.Holders {
		if h == "" {
			continue
		}
		hr := holderRecord{Fragment: i, Peer: h.String(), Receipt: hex.EncodeToString(pl.Receipts[i].Bytes())}
		for _, a := range s.host.Libp2p().Peerstore().Addrs(h) {
			hr.Addrs = append(hr.Addrs, a.String())
		}
		rec.Holders = append(rec.Holders, hr)
	}
	if len(rec.Holders) > 0 {
		db.Grants = append(db.Grants, rec)
		if err := db.save(s.home); err != nil {
			return fmt.Errorf("failed to record the grant: %w", err)
		}
	}
	if u.json {
		if err := printJSON(e.stdout, rec); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "granted %s to %s, %d-of-%d, until %s\n", prefix, shortID(recipient.String()), *m, *n, expiry.Local().Format(time.RFC3339))
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "fragment\tnode")
		for _, h := range rec.Holders {
			fmt.Fprintf(tw, "%d\t%s\n", h.Fragment, h.Peer)
		}
		tw.Flush()
	}
	if placeErr != nil {
		if len(rec.Holders) >= *m {
			return withHint(fmt.Errorf("only %d of %d fragments were placed: %w", len(rec.Holders), *n, placeErr),
				"the grant works while those %d nodes do, with less margin; revoke and grant again when more nodes are up", len(rec.Holders))
		}
		return withHint(fmt.Errorf("only %d of %d fragments were placed, fewer than m=%d: %w", len(rec.Holders), *n, *m, placeErr),
			"the grant cannot work; start more nodes (kadre status shows what is reachable) and grant again")
	}
	return nil
}

func cmdRevoke(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "revoke", "-to <identity> -path </prefix>",
		"Revokes the grants of a path prefix to a recipient: every node that holds a fragment deletes it and answers with a signed receipt.")
	u.bind(fs, e)
	to := fs.String("to", "", "the recipient's identity (kadre1…)")
	path := fs.String("path", "", "the granted path prefix")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *to == "" || *path == "" {
		fs.Usage()
		return errUsage
	}
	recipient, prefix, err := parseTarget(*to, *path)
	if err != nil {
		return err
	}
	s, err := u.connect(ctx, e)
	if err != nil {
		return err
	}
	defer s.close()
	db, err := loadGrants(s.home)
	if err != nil {
		return err
	}
	var recs []*grantRecord
	for _, g := range db.Grants {
		if g.Recipient == recipient.String() && g.Path == prefix.String() {
			recs = append(recs, g)
		}
	}
	now := time.Now()
	rev := &policy.Revocation{
		Owner: s.me.IdentityKey, Recipient: recipient.IdentityKey,
		PathHash: policy.ComputePathHash(s.me.IdentityKey, recipient.IdentityKey, prefix),
		Sequence: db.nextSequence(recipient.String(), prefix.String()), IssuedAt: uint64(now.Unix()),
	}
	if err := rev.Sign(policy.IdentitySigner(s.keys)); err != nil {
		return err
	}
	// Every recorded holder, and every node that announces or is close to
	// the locator (fragments may have been handed off): nodes without a
	// fragment keep a tombstone and refuse the grant if it comes back.
	targets := map[peer.ID]bool{}
	for _, g := range recs {
		for _, h := range g.Holders {
			id, err := peer.Decode(h.Peer)
			if err != nil {
				continue
			}
			if infos, err := dht.ParseAddrs(withP2P(h.Addrs, h.Peer)); err == nil && len(infos) > 0 {
				s.host.Libp2p().Peerstore().AddAddrs(id, infos[0].Addrs, time.Hour)
			}
			targets[id] = true
		}
	}
	if found, err := s.host.Holders(ctx, s.me.IdentityKey, recipient.IdentityKey, 20); err == nil {
		for _, p := range found {
			targets[p] = true
		}
	}
	info := &revocationInfo{Sequence: rev.Sequence, At: now.UTC(), Failed: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			rc, err := s.host.Revoke(cctx, p, rev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				info.Failed[p.String()] = describe(err)
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
	m, n := 0, 0
	for _, g := range recs {
		m, n = g.Threshold, g.Shares
	}
	if n > 0 {
		info.Dead = info.Deleted >= n-m+1
	}
	for _, g := range recs {
		g.Revocation = info
	}
	if len(recs) == 0 {
		db.Grants = append(db.Grants, &grantRecord{Recipient: recipient.String(), Path: prefix.String(), Sequence: rev.Sequence, Created: now.UTC(), Revocation: info})
	}
	if err := db.save(s.home); err != nil {
		return fmt.Errorf("failed to record the revocation: %w", err)
	}
	if u.json {
		return printJSON(e.stdout, info)
	}
	fmt.Fprintf(e.stdout, "revoked %s for %s: %s deleted a fragment (signed receipts), %s hold none and keep a tombstone\n",
		prefix, shortID(recipient.String()), plural(info.Deleted, "node", "nodes"), plural(info.NotHeld, "node", "nodes"))
	for p, why := range info.Failed {
		fmt.Fprintf(e.stdout, "  %s: %s\n", p, why)
	}
	switch {
	case n == 0:
		fmt.Fprintln(e.stdout, "no local record of this grant: m and n are unknown, so whether it is dead cannot be said")
	case info.Dead:
		fmt.Fprintf(e.stdout, "the grant is dead: %d of %d fragments are provably gone, fewer than m=%d can remain\n", info.Deleted, n, m)
	default:
		return withHint(fmt.Errorf("the grant is not provably dead: %d of %d fragments provably deleted, %d needed", info.Deleted, n, n-m+1),
			"run `kadre revoke` again when the unreachable holders are back")
	}
	return nil
}

// parseTarget parses the -to and -path of grant and revoke.
func parseTarget(to, path string) (policy.Identity, policy.Path, error) {
	recipient, err := policy.ParseIdentity(to)
	if err != nil {
		return policy.Identity{}, policy.Path{}, withHint(err, "the recipient prints their identity with `kadre identity`; `kadre grants` lists the ones you granted to")
	}
	prefix, err := policy.NormalizePath(path)
	if err != nil {
		return policy.Identity{}, policy.Path{}, withHint(err, "paths look like /docs or /home/ubuntu")
	}
	return recipient, prefix, nil
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

func cmdGrants(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "grants", "[-refresh]", "Lists this owner's grants: path, recipient, m-of-n, holders, expiry, revocation receipts.")
	u.bind(fs, e)
	refresh := fs.Bool("refresh", false, "ask the network which nodes hold fragments now (after hand-offs)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	home, err := u.dir()
	if err != nil {
		return err
	}
	db, err := loadGrants(home)
	if err != nil {
		return err
	}
	if *refresh {
		s, err := u.connect(ctx, e)
		if err != nil {
			return err
		}
		byRecipient := map[string][]string{}
		for _, g := range db.Grants {
			if _, done := byRecipient[g.Recipient]; done {
				g.Announced = byRecipient[g.Recipient]
				continue
			}
			id, err := policy.ParseIdentity(g.Recipient)
			if err != nil {
				continue
			}
			provs, err := s.host.FindProviders(ctx, dht.Locator(s.me.IdentityKey, id.IdentityKey), 64)
			if err != nil {
				s.close()
				return err
			}
			var ids []string
			for _, p := range provs {
				ids = append(ids, p.ID.String())
			}
			sort.Strings(ids)
			byRecipient[g.Recipient] = ids
			g.Announced = ids
		}
		s.close()
		if err := db.save(home); err != nil {
			return err
		}
	}
	if u.json {
		return printJSON(e.stdout, db.Grants)
	}
	if len(db.Grants) == 0 {
		fmt.Fprintln(e.stdout, "no grants yet (kadre grant -to … -path …)")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "path\trecipient\tm-of-n\tholders\tannounced\texpires\tstate")
	now := time.Now()
	for _, g := range db.Grants {
		state := "live"
		switch {
		case g.Revocation != nil && g.Revocation.Dead:
			state = fmt.Sprintf("revoked (%d receipts, dead)", g.Revocation.Deleted)
		case g.Revocation != nil:
			state = fmt.Sprintf("revoked (%d receipts, not provably dead)", g.Revocation.Deleted)
		case !g.Expires.IsZero() && now.After(g.Expires):
			state = "expired"
		}
		announced := "-"
		if g.Announced != nil {
			announced = fmt.Sprint(len(g.Announced))
		}
		split, expires := "-", "-"
		if g.Shares > 0 { // a revocation of a grant this home never recorded has neither
			split = fmt.Sprintf("%d-of-%d", g.Threshold, g.Shares)
			expires = g.Expires.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", g.Path, shortID(g.Recipient), split,
			len(g.Holders), announced, expires, state)
	}
	return tw.Flush()
}
