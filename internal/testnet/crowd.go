package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// The cases of issue 12: attacks that need no malformed input, only free
// identities, a few networks, or access to the node's machine. Each runs
// against real node processes while an honest owner places 3-of-5 grants
// and a recipient decrypts (SPEC.md §8;
// RELIABILITY.md §6).

// QuickCrowdFlags make a node's limits small enough to reach in seconds
// (SPEC.md §8.2: 40 grants an owner, 80 a network, 64 verified kfrags).
var QuickCrowdFlags = []string{"-capacity", "2000", "-owner-quota", "40", "-group-quota", "80", "-kfrag-cache", "64"}

// ReserveFlags make a node small enough for the many-networks flood to
// reach its reserve in seconds: capacity 600, 40 grants a network, the
// last 60 for networks that hold fewer than 10.
var ReserveFlags = []string{"-capacity", "600", "-owner-quota", "20", "-group-quota", "40", "-kfrag-cache", "64"}

// CrowdOptions tune RunCrowd.
type CrowdOptions struct {
	// Bin is the kadre binary; Dir holds the nodes' data directories.
	Bin, Dir string
	// Duration is how long each flood lasts. Default 3 s.
	Duration time.Duration
	// Identities is how many identities the storage flood uses (on one
	// network). Default 8.
	Identities int
	// Groups is how many networks (loopback /24s) the many-networks flood
	// uses; 0 skips it.
	Groups int
	// Crowd is how many identities hold 8 silent streams each, from one
	// network. Default 100.
	Crowd int
	// RSSBound is the largest growth of a node's anonymous RSS (heap and
	// stacks; SPEC.md §8.2 bounds what the store may map) during a case
	// that passes. Default 64 MiB.
	RSSBound int64
	// NodeFlags are more `kadre run` flags for every node of the cluster
	// (the quick test makes the limits small: -capacity 2000 …).
	NodeFlags []string
	// Only, if set, runs only the cases whose name contains it.
	Only string
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// CrowdRow is one row of the table of RELIABILITY.md §6.
type CrowdRow struct {
	Case string
	// Rate is what the attacker sent, per second.
	Rate string
	// NodeDid is what the node answered and kept.
	NodeDid string
	// Honest are the recipient's decryption latencies during the attack;
	// HonestGrants says how the owner's 3-of-5 grants were placed.
	Honest       Lat
	HonestGrants string
	HonestErrors map[string]int
	// RSSGrowth is the largest growth of an attacked node's RSS during
	// the case; AnonGrowth and FileGrowth split it into anonymous memory
	// (heap, stacks) and mapped files (LMDB's data.mdb).
	RSSGrowth, AnonGrowth, FileGrowth int64
	Pass                              bool
	Reason                            string
}

// crowd is one RunCrowd run: the cluster, the honest users, the rows.
type crowd struct {
	o       CrowdOptions
	c       *Cluster
	boot    []string
	honest  *honestPair
	rows    []CrowdRow
	nextNet atomic.Int32
}

func (r *crowd) logf(format string, args ...any) {
	if r.o.Logf != nil {
		r.o.Logf(format, args...)
	}
}

// RunCrowd starts a cluster of five nodes and runs every case against it.
func RunCrowd(ctx context.Context, o CrowdOptions) ([]CrowdRow, error) {
	if o.Duration == 0 {
		o.Duration = 3 * time.Second
	}
	if o.Identities == 0 {
		o.Identities = 8
	}
	if o.Crowd == 0 {
		o.Crowd = 100
	}
	if o.RSSBound == 0 {
		o.RSSBound = 64 << 20
	}
	// Attackers connect from loopback addresses of their own (within the
	// per-address and per-subnet connection limits a real network imposes,
	// which the connection crowd checks on a node of its own), the honest
	// users from 127.0.0.1. (Nodes dial each other from 127.0.0.1 too, so
	// the cluster cannot apply those limits to loopback.)
	c, err := StartCluster(ClusterOptions{Bin: o.Bin, Dir: filepath.Join(o.Dir, "cluster"), Size: 5, Metrics: true, Extra: o.NodeFlags})
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	if err := c.WaitConverged(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	r := &crowd{o: o, c: c}
	for _, n := range c.Nodes {
		r.boot = append(r.boot, n.P2PAddr())
	}
	if r.honest, err = newHonestPair(ctx, filepath.Join(o.Dir, "users"), r.boot); err != nil {
		return nil, err
	}
	defer r.honest.close()
	// Before anything: the honest cycle works.
	if _, err := r.honest.grant(ctx); err != nil {
		return nil, fmt.Errorf("honest grant before the attacks: %w", err)
	}
	if _, err := r.honest.decrypt(ctx); err != nil {
		return nil, fmt.Errorf("honest decryption before the attacks: %w", err)
	}
	cases := []struct {
		name string
		run  func(ctx context.Context, stop time.Time) caseResult
	}{
		{"storage flood", r.storageFlood},
		{"storage flood from many networks", r.manyNetworks},
		{"kfrag cache flush", r.kfragFlush},
		{"provider-record flood", r.providerFlood},
		{"stream crowd", r.streamCrowd},
		{"connection crowd", r.connectionCrowd},
		{"local endpoint from a web page", r.endpoint},
		{"identity key at rest", r.identityKey},
		{"rollback of data.mdb", r.rollback},
	}
	for _, cs := range cases {
		if o.Only != "" && !strings.Contains(cs.name, o.Only) {
			continue
		}
		if cs.name == "storage flood from many networks" && o.Groups == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return r.rows, err
		}
		r.logf("case %q …", cs.name)
		r.run(ctx, cs.name, cs.run)
		last := r.rows[len(r.rows)-1]
		r.logf("  %v: %s | %s | honest %s %s | RSS +%.1f MiB (anonymous +%.1f, files +%.1f) | %s", last.Pass, last.Rate, last.NodeDid, last.Honest.Summary(), last.HonestGrants,
			float64(last.RSSGrowth)/(1<<20), float64(last.AnonGrowth)/(1<<20), float64(last.FileGrowth)/(1<<20), last.Reason)
	}
	return r.rows, nil
}

// caseResult is what a case reports; run adds the honest users' figures
// and the RSS.
type caseResult struct {
	rate, did, reason string
	pass              bool
	// nodes are the attacked nodes (RSS is watched on them); nil: all.
	nodes []*Node
}

// run runs one case: the RSS baseline, the honest users for as long as the
// case runs (at least Duration: stop), then the row.
func (r *crowd) run(ctx context.Context, name string, fn func(ctx context.Context, stop time.Time) caseResult) {
	r.settle(ctx)
	type mem struct{ rss, anon, file int64 }
	base := map[*Node]mem{}
	peak := map[*Node]mem{}
	var mu sync.Mutex
	sample := func(n *Node) (mem, bool) {
		rss, err := RSS(n.PID())
		anon, file, err2 := RSSParts(n.PID())
		return mem{rss, anon, file}, err == nil && err2 == nil
	}
	for _, n := range r.c.Nodes {
		if m, ok := sample(n); ok {
			base[n], peak[n] = m, m
		}
	}
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			for _, n := range r.c.Nodes {
				if m, ok := sample(n); ok {
					mu.Lock()
					p := peak[n]
					peak[n] = mem{max(p.rss, m.rss), max(p.anon, m.anon), max(p.file, m.file)}
					mu.Unlock()
				}
			}
		}
	}()
	stop := time.Now().Add(r.o.Duration)
	hctx, stopHonest := context.WithCancel(ctx)
	hr := make(chan honestReport, 1)
	go func() { hr <- r.honest.during(hctx) }()
	res := fn(ctx, stop)
	stopHonest()
	h := <-hr
	stopSampling()
	wg.Wait()
	nodes := res.nodes
	if nodes == nil {
		nodes = r.c.Nodes
	}
	var growth, anon, file int64
	for _, n := range nodes {
		if b, ok := base[n]; ok {
			growth = max(growth, peak[n].rss-b.rss)
			anon = max(anon, peak[n].anon-b.anon)
			file = max(file, peak[n].file-b.file)
		}
	}
	row := CrowdRow{Case: name, Rate: res.rate, NodeDid: res.did, Honest: h.decrypts, HonestErrors: h.errors,
		HonestGrants: h.grantsSummary(), RSSGrowth: growth, AnonGrowth: anon, FileGrowth: file, Pass: res.pass, Reason: res.reason}
	var why []string
	if !res.pass {
		why = append(why, "the node did not do what it should")
	}
	if len(h.errors) > 0 {
		why = append(why, "honest errors "+summarize(h.errors))
	}
	if h.grants == 0 || h.fullyPlaced < h.grants || len(h.decrypts) == 0 {
		why = append(why, "honest owner or recipient not served")
	}
	if anon > r.o.RSSBound {
		why = append(why, fmt.Sprintf("anonymous RSS grew %.1f MiB (bound %d MiB)", float64(anon)/(1<<20), r.o.RSSBound>>20))
	}
	for _, n := range r.c.Nodes {
		if !n.Alive() {
			why = append(why, n.Name+" died")
		}
	}
	if len(why) > 0 {
		row.Pass = false
		row.Reason = strings.TrimSpace(strings.Join(why, "; ") + ". " + row.Reason)
	}
	r.rows = append(r.rows, row)
}

// settle waits, up to 15 s, until every node answers its endpoint within
// 200 ms: what one case left queued (requests still being handled, writes
// still being synced) must not count against the next.
func (r *crowd) settle(ctx context.Context) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		slow := false
		for _, n := range r.c.Nodes {
			start := time.Now()
			if _, err := n.state(ctx); err != nil || time.Since(start) > 200*time.Millisecond {
				slow = true
			}
		}
		if !slow {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// honestPair is an owner and a recipient (package client, as the CLI),
// on their own network: the harness's 127.0.0.1.
type honestPair struct {
	alice, bob *client.Client
	// granting serializes the owner's grants: two grants at once publish
	// two map sequences at once, and the older is refused STALE_SEQUENCE
	// by the storers that got the newer first (a client finding of issue
	// 12, RELIABILITY.md §6).
	granting sync.Mutex
	mu       sync.Mutex
	n        int
	file     []byte // the newest encrypted file
	plain    []byte
}

func newHonestPair(ctx context.Context, dir string, boot []string) (*honestPair, error) {
	open := func(name string) (*client.Client, error) {
		home := filepath.Join(dir, name)
		if _, err := client.CreateIdentity(home, nil, false); err != nil {
			return nil, err
		}
		return client.Open(client.Options{Home: home, Bootstrap: boot, Placement: dht.PlaceOptions{PerNodeTimeout: 3 * time.Second}})
	}
	hp := &honestPair{}
	var err error
	if hp.alice, err = open("alice"); err != nil {
		return nil, err
	}
	if hp.bob, err = open("bob"); err != nil {
		return nil, err
	}
	return hp, nil
}

func (hp *honestPair) close() {
	hp.alice.Close()
	hp.bob.Close()
}

// grant places a new 3-of-5 grant and encrypts a file under it; it
// returns how many fragments were placed.
func (hp *honestPair) grant(ctx context.Context) (int, error) {
	hp.granting.Lock()
	defer hp.granting.Unlock()
	hp.mu.Lock()
	hp.n++
	n := hp.n
	hp.mu.Unlock()
	prefix := policy.MustNormalizePath(fmt.Sprintf("/honest/%d", n))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := hp.alice.Grant(cctx, client.GrantRequest{To: hp.bob.Identity(), Prefix: prefix, M: 3, N: 5, Expires: time.Now().Add(2 * time.Hour)})
	placed := 0
	if res != nil && res.Record != nil {
		placed = len(res.Record.Holders)
	}
	if err != nil {
		if res != nil && res.Map != nil {
			// Why the map's storers did not keep it, by reason.
			why := map[string]int{}
			for _, e := range res.Map.Failed {
				why[oneWord(e)]++
			}
			err = fmt.Errorf("%w [storers: %s]", err, summarize(why))
		}
		return placed, err
	}
	plain := fmt.Appendf(nil, "honest file %d", n)
	var enc bytes.Buffer
	if err := hp.alice.Encrypt(&enc, bytes.NewReader(plain), policy.MustNormalizePath(fmt.Sprintf("/honest/%d/f", n))); err != nil {
		return placed, err
	}
	hp.mu.Lock()
	hp.file, hp.plain = enc.Bytes(), plain
	hp.mu.Unlock()
	return placed, nil
}

// decrypt decrypts the newest file as the recipient.
func (hp *honestPair) decrypt(ctx context.Context) (time.Duration, error) {
	hp.mu.Lock()
	file, plain := hp.file, hp.plain
	hp.mu.Unlock()
	return hp.decryptFile(ctx, file, plain)
}

func (hp *honestPair) decryptFile(ctx context.Context, file, plain []byte) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	var out bytes.Buffer
	if _, err := hp.bob.Decrypt(cctx, &out, bytes.NewReader(file), client.DecryptOptions{}); err != nil {
		return 0, err
	}
	if !bytes.Equal(out.Bytes(), plain) {
		return 0, errors.New("decrypted something else")
	}
	return time.Since(start), nil
}

type honestReport struct {
	grants, fullyPlaced int
	grantLat            Lat
	decrypts            Lat
	errors              map[string]int
}

func (h honestReport) grantsSummary() string {
	return fmt.Sprintf("%d/%d grants 5/5 (placement p50 %s)", h.fullyPlaced, h.grants, Ms(h.grantLat.Pct(50)))
}

// during places a new 3-of-5 grant every two seconds and decrypts the
// newest file in between, until ctx ends (at least one of each).
func (hp *honestPair) during(ctx context.Context) honestReport {
	rep := honestReport{errors: map[string]int{}}
	var lastGrant time.Time
	for first := true; first || ctx.Err() == nil; first = false {
		if time.Since(lastGrant) >= 2*time.Second {
			lastGrant = time.Now()
			placed, err := hp.grant(context.WithoutCancel(ctx))
			rep.grants++
			rep.grantLat = append(rep.grantLat, time.Since(lastGrant))
			if placed == 5 {
				rep.fullyPlaced++
			}
			if err != nil {
				rep.errors["grant: "+oneWord(err)]++
			}
		}
		d, err := hp.decrypt(context.WithoutCancel(ctx))
		if err != nil {
			rep.errors["decrypt: "+oneWord(err)]++
			time.Sleep(50 * time.Millisecond)
			continue
		}
		rep.decrypts = append(rep.decrypts, d)
		time.Sleep(20 * time.Millisecond)
	}
	return rep
}

func oneWord(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// attackerIP returns a loopback address on a /24 of its own for the
// attackers of a case (127.0.66.1, 127.0.67.1, …): off the honest users'
// 127.0.0.0/24 and the nodes' 127.0.i.0/24.
func (r *crowd) attackerIP() string {
	return fmt.Sprintf("127.0.%d.1", 66+r.nextNet.Add(1))
}

// attacker is one identity with a host connected to targets from ip.
type attacker struct {
	keys *rekey.Keyring
	h    host.Host
	tmpl *policy.Grant
}

func (r *crowd) attackers(ctx context.Context, n int, ip string, targets []*Node) ([]*attacker, error) {
	var out []*attacker
	for range n {
		k := NewKeyring()
		h, err := NewRawHostFrom(ctx, k.Identity(), ip, addrInfos(targets)...)
		if err != nil {
			for _, a := range out {
				a.h.Close()
			}
			return nil, err
		}
		out = append(out, &attacker{keys: k, h: h})
	}
	return out, nil
}

func closeAll(as []*attacker) {
	for _, a := range as {
		a.h.Close()
	}
}

func addrInfos(ns []*Node) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, n := range ns {
		out = append(out, n.AddrInfo())
	}
	return out
}

// grant returns a new self-signed grant of a's: the template's kfrag
// under a random path hash (what finding 1 did: ~110 µs of attacker CPU
// each).
func (a *attacker) grant(recipient policy.Identity) (*policy.Grant, error) {
	if a.tmpl == nil {
		gs, err := Grants(a.keys, recipient, "/flood", 1, 1, 1, time.Hour)
		if err != nil {
			return nil, err
		}
		a.tmpl = gs[0]
	}
	g := *a.tmpl
	rand.Read(g.PathHash[:])
	if err := g.Sign(policy.IdentitySigner(a.keys)); err != nil {
		return nil, err
	}
	return &g, nil
}

// counts is a concurrent outcome counter.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) add(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
	c.mu.Unlock()
}

func (c *counts) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return summarize(c.m)
}

func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// nodeState reads what a node keeps (its /status).
type nodeState struct {
	State map[string]struct {
		Used  uint64 `json:"used"`
		Group uint64 `json:"group_limit"`
	} `json:"state"`
	KFragCache struct {
		Entries int    `json:"entries"`
		Hits    uint64 `json:"hits"`
		Misses  uint64 `json:"misses"`
	} `json:"kfrag_cache"`
}

func (n *Node) state(ctx context.Context) (*nodeState, error) {
	resp, err := n.Endpoint(ctx, "GET", "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st nodeState
	if err := jsonDecode(resp.Body, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// storageFlood: 8 identities on one network store self-signed grants,
// revoke grants never stored (tombstones) and relay holder-map pages of
// made-up pairs on three of the five nodes, as fast as the nodes let them
// (findings 1 of issue 12). The nodes must answer QUOTA for each kind once
// the network's share is used, keep no more than the quotas, and the
// honest owner still places 5 of 5.
func (r *crowd) storageFlood(ctx context.Context, stop time.Time) caseResult {
	targets := r.c.Nodes[:3]
	as, err := r.attackers(ctx, r.o.Identities, r.attackerIP(), targets)
	if err != nil {
		return caseResult{reason: err.Error(), nodes: targets}
	}
	defer closeAll(as)
	victim := policy.IdentityOf(NewKeyring())
	var grants, revs, maps counts
	var wg sync.WaitGroup
	start := time.Now()
	// Until stop, and then until every kind was refused QUOTA (on a slow
	// machine the quotas take longer to reach), 4 × Duration at most.
	last := stop.Add(min(3*r.o.Duration, 10*time.Second))
	going := func() bool {
		now := time.Now()
		switch {
		case now.Before(stop):
			return true
		case now.After(last):
			return false
		}
		return grants.get("QUOTA") == 0 || revs.get("QUOTA") == 0 || maps.get("QUOTA") == 0
	}
	for _, a := range as {
		for ti, t := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; going(); i++ {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					// One grant, two revocations, one map page: each
					// revocation not held is two units (its tombstone and
					// its mark) of a quota four times the grants'.
					switch (i + ti) % 4 {
					case 0:
						g, err := a.grant(victim)
						if err != nil {
							cancel()
							return
						}
						resp, err := Call(cctx, a.h, t.ID, storeReq(g.Bytes()))
						grants.add(Outcome(resp, err))
					case 1, 2:
						rv := &policy.Revocation{Owner: policy.IdentityOf(a.keys).IdentityKey, Recipient: victim.IdentityKey, Sequence: 1, IssuedAt: uint64(time.Now().Unix())}
						rand.Read(rv.PathHash[:])
						rv.Sign(policy.IdentitySigner(a.keys))
						resp, err := Call(cctx, a.h, t.ID, proto.Request(RequestID(), &proto.Envelope_Revoke{Revoke: &proto.RevokeRequest{Revocation: rv.Bytes()}}))
						revs.add(Outcome(resp, err))
					case 3:
						// A page of a made-up pair of a's, up to 8 KiB of
						// entries: what a node keeps for a year.
						m := &policy.HolderMap{Recipient: policy.PublicKeyOf(rekey.GenerateSecretKey().PublicKey()), Sequence: 1,
							IssuedAt: uint64(time.Now().Unix()), Pages: 1}
						for j := range m.Points {
							rand.Read(m.Points[j][:])
						}
						m.Sign(policy.IdentitySigner(a.keys))
						resp, err := Call(cctx, a.h, t.ID, proto.Request(RequestID(), &proto.Envelope_PutMap{PutMap: &proto.PutMapRequest{Page: m.Bytes()}}))
						maps.add(Outcome(resp, err))
					}
					cancel()
				}
			}()
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var kept []string
	pass := true
	for _, t := range targets {
		st, err := t.state(ctx)
		if err != nil {
			pass = false
			continue
		}
		g, h, m := st.State["grants"], st.State["history"], st.State["maps"]
		kept = append(kept, fmt.Sprintf("%d/%d/%d", g.Used, h.Used, m.Used))
		// The attacker's network holds at most its group quotas (the
		// honest owner's grants come on top), and a kind whose quota was
		// reached was refused QUOTA.
		slack := uint64(4*r.honest.n + 8)
		for _, k := range []struct {
			used, limit uint64
			c           *counts
		}{{g.Used, g.Group, &grants}, {h.Used, h.Group, &revs}, {m.Used, m.Group, &maps}} {
			if k.used > k.limit+slack || (k.used >= k.limit && k.c.get("QUOTA") == 0 && k.c != &grants) {
				pass = false
			}
		}
	}
	if grants.get("QUOTA")+revs.get("QUOTA")+maps.get("QUOTA") == 0 && r.o.NodeFlags != nil {
		pass = false // the small limits of the quick run are always reached
	}
	return caseResult{nodes: targets, pass: pass,
		rate: fmt.Sprintf("%.0f/s (%d identities, 1 network, 3 nodes)", float64(grants.total()+revs.total()+maps.total())/secs, len(as)),
		did: fmt.Sprintf("grants %s; not-held revocations %s; map pages %s; kept grants/history/pages per node %s",
			grants.String(), revs.String(), maps.String(), strings.Join(kept, ", "))}
}

// manyNetworks: identities on Groups networks fill three nodes up to
// their reserve; the honest owner's network (which holds little) still
// stores in the reserve.
func (r *crowd) manyNetworks(ctx context.Context, stop time.Time) caseResult {
	targets := r.c.Nodes[:3]
	victim := policy.IdentityOf(NewKeyring())
	var grants counts
	var wg sync.WaitGroup
	start := time.Now()
	var hosts [][]*attacker
	for range r.o.Groups {
		as, err := r.attackers(ctx, 2, r.attackerIP(), targets)
		if err != nil {
			return caseResult{reason: err.Error(), nodes: targets}
		}
		hosts = append(hosts, as)
	}
	defer func() {
		for _, as := range hosts {
			closeAll(as)
		}
	}()
	for _, as := range hosts {
		for _, a := range as {
			for _, t := range targets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(stop) {
						g, err := a.grant(victim)
						if err != nil {
							return
						}
						cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						resp, err := Call(cctx, a.h, t.ID, storeReq(g.Bytes()))
						cancel()
						o := Outcome(resp, err)
						grants.add(o)
						if o == "QUOTA" || o == "CAPACITY" {
							time.Sleep(20 * time.Millisecond)
						}
					}
				}()
			}
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var kept []string
	for _, t := range targets {
		if st, err := t.state(ctx); err == nil {
			kept = append(kept, fmt.Sprint(st.State["grants"].Used))
		}
	}
	return caseResult{nodes: targets, pass: grants.get("QUOTA") > 0,
		rate: fmt.Sprintf("%.0f/s (%d networks × 2 identities, 3 nodes)", float64(grants.total())/secs, r.o.Groups),
		did:  fmt.Sprintf("grants %s; grants kept per node %s", grants.String(), strings.Join(kept, ", "))}
}

// kfragFlush: strangers on several networks store grants to themselves
// and ask for re-encryptions of each, to push the honest recipient's
// verified kfrags out of the nodes' caches (finding 4). The recipient's
// requests after the flood must still find theirs.
func (r *crowd) kfragFlush(ctx context.Context, stop time.Time) caseResult {
	targets := r.c.Nodes[:3]
	// The honest recipient's kfrags of one file are in the caches of its
	// holders: it decrypted it a few times.
	if _, err := r.honest.grant(ctx); err != nil {
		return caseResult{reason: "setup: " + err.Error(), nodes: targets}
	}
	r.honest.mu.Lock()
	file, plain := r.honest.file, r.honest.plain
	r.honest.mu.Unlock()
	for range 3 {
		if _, err := r.honest.decryptFile(ctx, file, plain); err != nil {
			return caseResult{reason: err.Error(), nodes: targets}
		}
	}
	var hosts [][]*attacker
	for range 4 {
		as, err := r.attackers(ctx, 2, r.attackerIP(), targets)
		if err != nil {
			return caseResult{reason: err.Error(), nodes: targets}
		}
		hosts = append(hosts, as)
	}
	defer func() {
		for _, as := range hosts {
			closeAll(as)
		}
	}()
	var stores, reenc counts
	var wg sync.WaitGroup
	start := time.Now()
	capsule, _, err := rekey.Encrypt(rekey.GenerateSecretKey().PublicKey(), make([]byte, 32))
	if err != nil {
		return caseResult{reason: err.Error()}
	}
	for _, as := range hosts {
		for _, a := range as {
			for _, t := range targets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					me := policy.IdentityOf(a.keys)
					var held []policy.PathHash
					for i := 0; time.Now().Before(stop); i++ {
						cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						if i%2 == 0 || len(held) == 0 {
							g, err := a.grant(me)
							if err != nil {
								cancel()
								return
							}
							resp, err := Call(cctx, a.h, t.ID, storeReq(g.Bytes()))
							o := Outcome(resp, err)
							stores.add(o)
							if o == "ok" {
								held = append(held, g.PathHash)
							}
						} else {
							ph := held[i%len(held)]
							resp, err := Call(cctx, a.h, t.ID, ReencryptRequest(me.IdentityKey, []dht.Level{{PathHash: ph, Capsule: capsule}}))
							reenc.add(Outcome(resp, err))
						}
						cancel()
					}
				}()
			}
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	// The recipient's requests for that file now: no kfrag verified
	// again (after the honest loop's last grant settled).
	time.Sleep(500 * time.Millisecond)
	before := map[*Node]uint64{}
	for _, t := range r.c.Nodes {
		if st, err := t.state(ctx); err == nil {
			before[t] = st.KFragCache.Misses
		}
	}
	_, derr := r.honest.decryptFile(ctx, file, plain)
	missed, entries := 0, []string{}
	for _, t := range r.c.Nodes {
		if st, err := t.state(ctx); err == nil {
			missed += int(st.KFragCache.Misses - before[t])
			entries = append(entries, fmt.Sprint(st.KFragCache.Entries))
		}
	}
	pass := derr == nil && missed == 0 && reenc.get("ok") > 0
	reason := ""
	if derr != nil {
		reason = "decrypt after the flood: " + derr.Error()
	}
	return caseResult{nodes: targets, pass: pass, reason: reason,
		rate: fmt.Sprintf("%.0f/s (4 networks × 2 identities, 3 nodes)", float64(stores.total()+reenc.total())/secs),
		did: fmt.Sprintf("stores %s, re-encryptions %s; cache entries per node %s; the recipient's next decryption verified %d kfrags again",
			stores.String(), reenc.String(), strings.Join(entries, ", "), missed)}
}

// providerFlood: ADD_PROVIDER messages on the DHT protocol, as fast as one
// peer can write them (finding 2). kadre runs the DHT without provider
// records: the node resets every such stream and keeps nothing.
func (r *crowd) providerFlood(ctx context.Context, stop time.Time) caseResult {
	t := r.c.Nodes[0]
	as, err := r.attackers(ctx, 1, r.attackerIP(), []*Node{t})
	if err != nil {
		return caseResult{reason: err.Error(), nodes: []*Node{t}}
	}
	defer closeAll(as)
	a := as[0]
	var sent, streams, resets atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	kad := dht.ProtocolPrefix + "/kad/1.0.0"
	var addrBytes [][]byte
	for _, ad := range a.h.Addrs() {
		addrBytes = append(addrBytes, ad.Bytes())
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				s, err := a.h.NewStream(cctx, t.ID, kad)
				cancel()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				streams.Add(1)
				s.SetDeadline(stop.Add(time.Second))
				for time.Now().Before(stop) {
					key := make([]byte, 80)
					rand.Read(key)
					msg := &kadpb.Message{Type: kadpb.Message_ADD_PROVIDER, Key: key,
						ProviderPeers: []*kadpb.Message_Peer{{Id: []byte(a.h.ID()), Addrs: addrBytes}}}
					b, _ := gproto.Marshal(msg)
					frame := binary.AppendUvarint(nil, uint64(len(b)))
					if _, err := s.Write(append(frame, b...)); err != nil {
						resets.Add(1)
						break
					}
					sent.Add(1)
				}
				s.Reset()
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return caseResult{nodes: []*Node{t}, pass: sent.Load() > 0,
		rate: fmt.Sprintf("%.0f messages/s (1 identity, %d streams)", float64(sent.Load())/secs, streams.Load()),
		did:  fmt.Sprintf("no provider store: every stream reset after its first message (%d of %d streams reset while writing); nothing kept", resets.Load(), streams.Load())}
}

// streamCrowd: Crowd identities on one network each hold 8 silent RPC
// streams (finding 3). At most dht.MaxStreamsPerGroup are held; the
// honest users and a newcomer are served.
func (r *crowd) streamCrowd(ctx context.Context, stop time.Time) caseResult {
	t := r.c.Nodes[0]
	var hosts []host.Host
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	var mu sync.Mutex
	var outcomes counts
	var streams []network.Stream
	// The crowd stays within the connection limits (dht.ConnsPerIP
	// identities an address, 7 addresses a /24), as it must on a real
	// network: it needs a network for every 56 identities.
	perNet := 7 * dht.ConnsPerIP
	nets := (r.o.Crowd + perNet - 1) / perNet
	base := 66 + int(r.nextNet.Add(int32(nets))) - nets + 1
	for i := range r.o.Crowd {
		ip := fmt.Sprintf("127.0.%d.%d", base+i/perNet, 1+(i%perNet)/dht.ConnsPerIP)
		h, err := NewRawHostFrom(ctx, rekey.GenerateSecretKey(), ip, t.AddrInfo())
		if err != nil {
			outcomes.add("connect failed")
			continue
		}
		hosts = append(hosts, h)
	}
	// Renew the silent streams until stop, as an attacker would (the
	// node resets each after its 2 s read deadline).
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				var mine []network.Stream
				for range dht.MaxStreamsPerPeer {
					cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					s, err := h.NewStream(cctx, t.ID, dht.RPCProtocol)
					cancel()
					if err == nil {
						_, err = s.Write([]byte{0x80})
					}
					if err != nil {
						outcomes.add("open failed")
						continue
					}
					mine = append(mine, s)
				}
				mu.Lock()
				streams = append(streams, mine...)
				mu.Unlock()
				time.Sleep(min(time.Until(stop), 2*time.Second))
			}
		}()
	}
	// Meanwhile a newcomer from the honest network.
	time.Sleep(min(time.Until(stop)/2, time.Second))
	newcomer := "ok"
	held := 0
	mu.Lock()
	for _, s := range streams {
		s.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		if _, err := s.Read(make([]byte, 1)); isTimeout(err) {
			held++
		}
	}
	opened := len(streams)
	mu.Unlock()
	// The newcomer retries, as a client does: while the crowd holds every
	// inbound connection, it gets in when the connection manager trims
	// (idle connections beyond 192, after 10 s).
	first := time.Now()
	var waited time.Duration
	for {
		h, err := NewRawHost(ctx, rekey.GenerateSecretKey(), t.AddrInfo())
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := Call(cctx, h, t.ID, nodeInfoReq())
			cancel()
			newcomer = Outcome(resp, err)
			h.Close()
		} else {
			newcomer = "cannot connect"
		}
		waited = time.Since(first)
		if newcomer == "ok" || waited > 25*time.Second {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if newcomer == "ok" {
		newcomer = fmt.Sprintf("ok after %s", waited.Round(100*time.Millisecond))
	}
	wg.Wait()
	mu.Lock()
	for _, s := range streams {
		s.Reset()
	}
	mu.Unlock()
	// Every identity connects when the crowd is within the node's 512
	// inbound connections; beyond that, some cannot, which is the limit
	// working.
	pass := held <= nets*dht.MaxStreamsPerGroup && strings.HasPrefix(newcomer, "ok") &&
		(outcomes.get("connect failed") == 0 || r.o.Crowd > dht.MaxConnsInbound)
	return caseResult{nodes: []*Node{t}, pass: pass,
		rate: fmt.Sprintf("%d identities × %d silent streams renewed every 2 s, %d networks", len(hosts), dht.MaxStreamsPerPeer, nets),
		did: fmt.Sprintf("%d opened, %d held at once (limit %d per network), the rest reset; %s; a newcomer's node info: %s",
			opened, held, dht.MaxStreamsPerGroup, outcomes.String(), newcomer)}
}

// connectionCrowd: a node that applies the per-IP and per-subnet
// connection limits to loopback too; many identities on one address, and
// on many addresses of one /24, connect. At most dht.ConnsPerIP and
// dht.ConnsPerSubnet get in; a newcomer from another network is served.
func (r *crowd) connectionCrowd(ctx context.Context, stop time.Time) caseResult {
	port, err := FreePortOn("127.0.60.1")
	if err != nil {
		return caseResult{reason: err.Error()}
	}
	n := &Node{Name: "limited", Bin: r.o.Bin, Dir: filepath.Join(r.o.Dir, "limited"), Host: "127.0.60.1", Port: port,
		Extra: append([]string{"-limit-loopback"}, r.o.NodeFlags...)}
	if err := n.Start(); err != nil {
		return caseResult{reason: err.Error()}
	}
	defer n.Stop()
	subnet := 66 + int(r.nextNet.Add(1))
	var one, many counts
	var hosts []host.Host
	var mu sync.Mutex
	var wg sync.WaitGroup
	try := func(ip string, c *counts) {
		defer wg.Done()
		h, err := NewRawHostFrom(ctx, rekey.GenerateSecretKey(), ip, n.AddrInfo())
		if err != nil {
			c.add("refused")
			return
		}
		c.add("connected")
		mu.Lock()
		hosts = append(hosts, h)
		mu.Unlock()
	}
	for range 3 * dht.ConnsPerIP {
		wg.Add(1)
		go try(fmt.Sprintf("127.0.%d.1", subnet), &one)
	}
	wg.Wait()
	for i := range 2 * dht.ConnsPerSubnet / dht.ConnsPerIP {
		for range dht.ConnsPerIP {
			wg.Add(1)
			go try(fmt.Sprintf("127.0.%d.%d", subnet, i+2), &many)
		}
	}
	wg.Wait()
	newcomer := "ok"
	if h, err := NewRawHost(ctx, rekey.GenerateSecretKey(), n.AddrInfo()); err != nil {
		newcomer = "cannot connect"
	} else {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := Call(cctx, h, n.ID, nodeInfoReq())
		cancel()
		newcomer = Outcome(resp, err)
		h.Close()
	}
	time.Sleep(time.Until(stop))
	for _, h := range hosts {
		h.Close()
	}
	total := one.get("connected") + many.get("connected")
	pass := one.get("connected") <= dht.ConnsPerIP && total <= dht.ConnsPerSubnet && newcomer == "ok"
	return caseResult{nodes: []*Node{n}, pass: pass,
		rate: fmt.Sprintf("%d identities from 1 address, then %d from %d addresses of the same /24", 3*dht.ConnsPerIP, 2*dht.ConnsPerSubnet, 2*dht.ConnsPerSubnet/dht.ConnsPerIP),
		did: fmt.Sprintf("one address: %s (limit %d); the /24: %d connected in all (limit %d); a newcomer from another network: %s",
			one.String(), dht.ConnsPerIP, total, dht.ConnsPerSubnet, newcomer)}
}

// endpoint: what a web page the operator opens can send to the node's
// local endpoint (finding 5): a cross-origin text/plain POST /retire, the
// profiles. Everything without the cookie's token, or with an Origin, is
// refused, and the node keeps running.
func (r *crowd) endpoint(ctx context.Context, stop time.Time) caseResult {
	t := r.c.Nodes[4]
	base := "http://" + t.MetricsAddr()
	var got []string
	pass := true
	try := func(method, path string, hdr map[string]string, want int) {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader("x"))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		code := 0
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		got = append(got, fmt.Sprintf("%s %s → %d", method, path, code))
		if code != want {
			pass = false
		}
	}
	page := map[string]string{"Origin": "https://attacker.example", "Content-Type": "text/plain"}
	try("POST", "/retire", page, 403)
	try("POST", "/retire", nil, 401)
	try("GET", "/status", nil, 401)
	try("GET", "/debug/pprof/", nil, 401)
	// With the token (the operator's tools): pprof is off by default.
	resp, err := t.Endpoint(ctx, "GET", "/debug/pprof/")
	if err != nil || resp.StatusCode != 404 {
		pass = false
	}
	if err == nil {
		resp.Body.Close()
		got = append(got, fmt.Sprintf("GET /debug/pprof/ with the token → %d", resp.StatusCode))
	}
	fi, err := os.Stat(filepath.Join(t.Dir, "endpoint.cookie"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		pass = false
	} else {
		got = append(got, "cookie mode 0600")
	}
	if _, err := t.state(ctx); err != nil || !t.Alive() {
		pass = false
		got = append(got, "the node stopped")
	}
	return caseResult{nodes: []*Node{t}, pass: pass, rate: "one request each", did: strings.Join(got, "; ")}
}

// identityKey: the identity key file at rest (finding 6): sealed, a
// key in clear is sealed at start, a group-readable file is refused.
func (r *crowd) identityKey(ctx context.Context, stop time.Time) caseResult {
	port, err := FreePortOn("127.0.61.1")
	if err != nil {
		return caseResult{reason: err.Error()}
	}
	n := &Node{Name: "idkey", Bin: r.o.Bin, Dir: filepath.Join(r.o.Dir, "idkey"), Host: "127.0.61.1", Port: port}
	os.MkdirAll(n.Dir, 0o700)
	// A key of the first releases, in clear.
	sk := rekey.GenerateSecretKey()
	raw := fmt.Sprintf("%x", sk.Bytes())
	os.WriteFile(filepath.Join(n.Dir, "identity.key"), []byte(raw+"\n"), 0o600)
	var did []string
	pass := true
	if err := n.Start(); err != nil {
		return caseResult{reason: err.Error()}
	}
	want, _ := dht.PeerIDOf(policy.PublicKeyOf(sk.PublicKey()))
	n.Stop()
	b, _ := os.ReadFile(filepath.Join(n.Dir, "identity.key"))
	if n.ID != want || strings.Contains(string(b), raw) || !strings.HasPrefix(string(b), "kadre-node-identity-v1 ") {
		pass = false
	}
	did = append(did, fmt.Sprintf("a key in clear: sealed at start, same peer %v", n.ID == want))
	os.Chmod(filepath.Join(n.Dir, "identity.key"), 0o640)
	err = n.Start()
	if err == nil || !strings.Contains(n.Log(), "readable by others") {
		pass = false
		n.Stop()
	}
	did = append(did, fmt.Sprintf("mode 0640: start refused %v", err != nil))
	os.Chmod(filepath.Join(n.Dir, "identity.key"), 0o600)
	return caseResult{nodes: []*Node{}, pass: pass, rate: "-", did: strings.Join(did, "; ")}
}

// rollback: a copy of data.mdb taken before a revocation is put back
// (finding 7). The node refuses to start on it.
func (r *crowd) rollback(ctx context.Context, stop time.Time) caseResult {
	port, err := FreePortOn("127.0.62.1")
	if err != nil {
		return caseResult{reason: err.Error()}
	}
	n := &Node{Name: "rollback", Bin: r.o.Bin, Dir: filepath.Join(r.o.Dir, "rollback"), Host: "127.0.62.1", Port: port}
	if err := n.Start(); err != nil {
		return caseResult{reason: err.Error()}
	}
	owner, bob := NewKeyring(), policy.IdentityOf(NewKeyring())
	h, err := NewRawHost(ctx, owner.Identity(), n.AddrInfo())
	if err != nil {
		n.Stop()
		return caseResult{reason: err.Error()}
	}
	defer h.Close()
	gs, _ := Grants(owner, bob, "/kept", 1, 1, 1, time.Hour)
	resp, err := Call(ctx, h, n.ID, storeReq(gs[0].Bytes()))
	if Outcome(resp, err) != "ok" {
		n.Stop()
		return caseResult{reason: "store: " + Outcome(resp, err)}
	}
	n.Stop()
	mdb := filepath.Join(n.Dir, "store", "data.mdb")
	copyOf, err := os.ReadFile(mdb)
	if err != nil {
		return caseResult{reason: err.Error()}
	}
	if err := n.Start(); err != nil {
		return caseResult{reason: err.Error()}
	}
	h.Close()
	h, err = NewRawHost(ctx, owner.Identity(), n.AddrInfo())
	if err != nil {
		n.Stop()
		return caseResult{reason: err.Error()}
	}
	rv := &policy.Revocation{Owner: policy.IdentityOf(owner).IdentityKey, Recipient: bob.IdentityKey, PathHash: gs[0].PathHash, Sequence: 2, IssuedAt: uint64(time.Now().Unix())}
	rv.Sign(policy.IdentitySigner(owner))
	resp, err = Call(ctx, h, n.ID, proto.Request(RequestID(), &proto.Envelope_Revoke{Revoke: &proto.RevokeRequest{Revocation: rv.Bytes()}}))
	revoked := Outcome(resp, err)
	n.Stop()
	os.WriteFile(mdb, copyOf, 0o600)
	serr := n.Start()
	refused := serr != nil && strings.Contains(n.Log(), "older than its rollback counter")
	if serr == nil {
		n.Stop()
	}
	return caseResult{nodes: []*Node{}, pass: revoked == "ok" && refused, rate: "-",
		did: fmt.Sprintf("revocation %s, then data.mdb from before it put back: start refused %v (rollback counter)", revoked, refused)}
}

func jsonDecode(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(v)
}
