package dht

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// testClock is a clock the test can move forward, shared by all nodes.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// testNode is one kadre node: host, store, service, in this process.
type testNode struct {
	id      *rekey.SecretKey
	dir     string
	addrs   []string
	host    *Host
	store   *store.Store
	svc     *Service
	stopped bool
}

type testNet struct {
	t     *testing.T
	clock *testClock
	nodes []*testNode
	ips   int // loopback addresses handed out
	// tweak, if set, changes the service configuration of nodes started
	// from then on.
	tweak func(*ServiceConfig)
}

// bootstrap returns the first running node.
func (n *testNet) bootstrap() []peer.AddrInfo {
	for _, tn := range n.nodes {
		if !tn.stopped {
			return []peer.AddrInfo{{ID: tn.host.ID(), Addrs: tn.host.Libp2p().Addrs()}}
		}
	}
	n.t.Fatal("no node runs")
	return nil
}

// nextListen is a listen address on a loopback address of its own
// (127.0.i.1), so that every node is its own network group, as on separate
// machines.
func (n *testNet) nextListen() string {
	n.ips++
	return fmt.Sprintf("/ip4/127.0.%d.1/tcp/0", n.ips)
}

// start brings up a node from its data directory (new or existing); with no
// listen address it gets a loopback address of its own.
func (n *testNet) start(id *rekey.SecretKey, dir string, listen ...string) *testNode {
	t := n.t
	t.Helper()
	if len(listen) == 0 {
		listen = []string{n.nextListen()}
	}
	ctx := context.Background()
	cfg := Config{Identity: id, Server: true, RefreshPeriod: 10 * time.Second, ListenAddrs: listen}
	if len(n.nodes) > 0 {
		cfg.Bootstrap = n.bootstrap()
	}
	h, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := ServiceConfig{Store: st, Identity: id, MaxGrantDuration: 30 * 24 * time.Hour, Now: n.clock.Now}
	if n.tweak != nil {
		n.tweak(&sc)
	}
	svc, err := NewService(h, sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{id: id, dir: dir, host: h, store: st, svc: svc}
	for _, a := range h.Libp2p().Addrs() {
		tn.addrs = append(tn.addrs, a.String())
	}
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	tn.stopped = true
	tn.svc.Close()
	tn.host.Close()
	tn.store.Close()
}

func newTestNet(t *testing.T, size int) *testNet {
	t.Helper()
	return newTestNetWith(t, size, nil)
}

// newTestNetWith is newTestNet with every node's service configuration
// changed by tweak.
func newTestNetWith(t *testing.T, size int, tweak func(*ServiceConfig)) *testNet {
	t.Helper()
	n := &testNet{t: t, clock: &testClock{}, tweak: tweak}
	for i := 0; i < size; i++ {
		n.nodes = append(n.nodes, n.start(rekey.GenerateSecretKey(), filepath.Join(t.TempDir(), "node")))
	}
	n.converge()
	return n
}

func (n *testNet) converge() {
	hosts := make([]*Host, len(n.nodes))
	for i, tn := range n.nodes {
		hosts[i] = tn.host
	}
	waitConverged(n.t, hosts)
}

// client starts a light client (DHT client mode) for a user's keyring.
func (n *testNet) client(k *rekey.Keyring) *Host {
	t := n.t
	t.Helper()
	h, err := New(context.Background(), Config{Identity: k.Identity(), Bootstrap: n.bootstrap(), QueryTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func newKeyring(t testing.TB) *rekey.Keyring {
	t.Helper()
	seed := make([]byte, 32)
	rand.Read(seed)
	k, err := rekey.NewKeyring(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// encryptedFile is what a file header carries: for every prefix of the
// path, a capsule wrapping the data key to that prefix's key (epoch 0).
type encryptedFile struct {
	path    policy.Path
	levels  []Level // path hashes of the recipient the file was made for
	wrapped [][]byte
	dataKey []byte
}

func encryptFor(t testing.TB, owner *rekey.Keyring, recipient policy.Identity, path string) *encryptedFile {
	t.Helper()
	p := policy.MustNormalizePath(path)
	pair, err := policy.OwnerPairKey(owner, recipient.IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &encryptedFile{path: p, dataKey: make([]byte, 32)}
	rand.Read(f.dataKey)
	for _, prefix := range p.Prefixes() {
		c, ct, err := rekey.Encrypt(policy.DelegatingKey(owner, prefix, 0).PublicKey(), f.dataKey)
		if err != nil {
			t.Fatal(err)
		}
		f.levels = append(f.levels, Level{PathHash: pair.PathHash(prefix, 0), Capsule: c})
		f.wrapped = append(f.wrapped, ct)
	}
	return f
}

func grantParams(recipient policy.Identity, prefix string, seq uint64, expiry time.Time) policy.GrantParams {
	return policy.GrantParams{Recipient: recipient, Prefix: policy.MustNormalizePath(prefix),
		Threshold: 3, Shares: 5, Sequence: seq, Expiry: uint64(expiry.Unix())}
}

// testOwner is an owner with its own client host, and the holder map it
// keeps for each of its recipients (what package client keeps in the
// ledger).
type testOwner struct {
	net     *testNet
	keys    *rekey.Keyring
	host    *Host
	seq     uint64
	entries map[policy.PublicKey][]policy.MapEntry
}

func (n *testNet) owner(k *rekey.Keyring) *testOwner {
	return &testOwner{net: n, keys: k, host: n.client(k), entries: map[policy.PublicKey][]policy.MapEntry{}}
}

func (o *testOwner) key() policy.PublicKey { return policy.IdentityOf(o.keys).IdentityKey }

// newGrants splits a 3-of-5 grant of prefix to recipient, sequence seq,
// living ttl.
func (o *testOwner) newGrants(to policy.Identity, prefix string, seq uint64, ttl time.Duration) []*policy.Grant {
	o.net.t.Helper()
	gs, err := policy.NewGrants(o.keys, grantParams(to, prefix, seq, o.net.clock.Now().Add(ttl)))
	if err != nil {
		o.net.t.Fatal(err)
	}
	return gs
}

// place places grants (requiring every fragment to find a node) and
// publishes the pair's map with them.
func (o *testOwner) place(grants []*policy.Grant, opt PlaceOptions) *Placement {
	t := o.net.t
	t.Helper()
	pl, err := o.host.Place(context.Background(), grants, opt)
	if err != nil {
		t.Fatalf("place: %v (%+v)", err, pl)
	}
	o.record(grants, pl)
	return pl
}

// record adds a placed grant to its pair's map (replacing an entry of the
// same path hash) and publishes the map.
func (o *testOwner) record(grants []*policy.Grant, pl *Placement) {
	g := grants[0]
	e := policy.MapEntry{PathHash: g.PathHash, Sequence: g.Sequence, Expiry: g.Expiry, Threshold: g.Threshold, Shares: g.Shares,
		DelegatingKey: g.DelegatingKey, VerifyingKey: g.VerifyingKey}
	var holders []peer.ID
	for i, h := range pl.Holders {
		if h != "" {
			e.Holders = append(e.Holders, policy.MapHolder{Node: mustKey(o.net.t, h), GrantID: grants[i].ID()})
			holders = append(holders, h)
		}
	}
	r := g.Recipient.IdentityKey
	kept := o.entries[r][:0]
	for _, x := range o.entries[r] {
		if x.PathHash != e.PathHash {
			kept = append(kept, x)
		}
	}
	o.entries[r] = append(kept, e)
	o.publish(g.Recipient, holders)
}

// drop removes path hash ph from the pair's map and publishes it.
func (o *testOwner) drop(to policy.Identity, ph policy.PathHash) {
	kept := o.entries[to.IdentityKey][:0]
	for _, x := range o.entries[to.IdentityKey] {
		if x.PathHash != ph {
			kept = append(kept, x)
		}
	}
	o.entries[to.IdentityKey] = kept
	o.publish(to, nil)
}

func (o *testOwner) publish(to policy.Identity, extra []peer.ID) {
	t := o.net.t
	t.Helper()
	pair, err := policy.OwnerPairKey(o.keys, to.IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	o.seq++
	m := &policy.HolderMap{Recipient: to.IdentityKey, Points: pair.Points(), Sequence: o.seq,
		IssuedAt: uint64(o.net.clock.Now().Unix()), Pages: 1, Entries: o.entries[to.IdentityKey]}
	if err := m.Sign(policy.IdentitySigner(o.keys)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.host.PublishMap(context.Background(), []*policy.HolderMap{m}, extra, MapOptions{}); err != nil {
		t.Fatalf("publish map: %v", err)
	}
}

// revoke sends a revocation of ph to every node and returns the receipts.
func (o *testOwner) revocation(to policy.Identity, ph policy.PathHash, seq uint64) *policy.Revocation {
	r := &policy.Revocation{Owner: o.key(), Recipient: to.IdentityKey, PathHash: ph, Sequence: seq,
		IssuedAt: uint64(o.net.clock.Now().Unix())}
	if err := r.Sign(policy.IdentitySigner(o.keys)); err != nil {
		o.net.t.Fatal(err)
	}
	return r
}

// collect is the recipient's side: fetch the pair's map, find the deepest
// level of f it lists, and collect m cfrags from that grant's current
// holders.
func collect(ctx context.Context, h *Host, bob *rekey.Keyring, owner policy.PublicKey, f *encryptedFile, opt CollectOptions) (*Collection, int, error) {
	pair, err := policy.RecipientPairKey(bob, owner)
	if err != nil {
		return nil, 0, err
	}
	fm, err := h.FetchMap(ctx, RefOf(pair), MapOptions{})
	if err != nil {
		return nil, 0, err
	}
	for i := len(f.levels) - 1; i >= 0; i-- {
		page, e := fm.Entry(f.levels[i].PathHash)
		if e == nil {
			continue
		}
		col, err := h.Collect(ctx, CollectRequest{Owner: owner, Me: policy.IdentityOf(bob), Entry: e,
			Holders: policy.CurrentHolders(page, e, fm.Links), Level: f.levels[i]}, opt)
		return col, i, err
	}
	return nil, 0, fmt.Errorf("%w: no grant in the map", ErrNotEnoughCFrags)
}

// decrypt collects and decrypts f, requiring its data key.
func decrypt(t *testing.T, h *Host, bob *rekey.Keyring, owner policy.PublicKey, f *encryptedFile) *Collection {
	t.Helper()
	col, level, err := collect(context.Background(), h, bob, owner, f, CollectOptions{})
	if err != nil {
		t.Fatalf("collect: %v (%+v)", err, col)
	}
	key, err := col.Decrypt(bob.Receiving(), f.levels[level].Capsule, f.wrapped[level])
	if err != nil || !bytes.Equal(key, f.dataKey) {
		t.Fatalf("decrypt: %v", err)
	}
	return col
}

func (n *testNet) nodeOf(p peer.ID) *testNode {
	for _, tn := range n.nodes {
		if tn.host.ID() == p {
			return tn
		}
	}
	n.t.Fatalf("no node %s", p)
	return nil
}

func TestNetworkStory(t *testing.T) {
	net := newTestNet(t, 10)
	ctx := context.Background()
	ownerKeys, bob, eve := newKeyring(t), newKeyring(t), newKeyring(t)
	bobID, eveID := policy.IdentityOf(bob), policy.IdentityOf(eve)
	owner := net.owner(ownerKeys)

	// Grant /a to bob, 3-of-5, on five distinct nodes of five groups.
	grants := owner.newGrants(bobID, "/a", 1, 7*24*time.Hour)
	pl := owner.place(grants, PlaceOptions{})
	holders, groups := map[peer.ID]bool{}, map[string]bool{}
	for i, h := range pl.Holders {
		if holders[h] || groups[pl.Groups[i]] {
			t.Fatalf("node %s (group %s) holds two fragments", h, pl.Groups[i])
		}
		holders[h], groups[pl.Groups[i]] = true, true
		if err := policy.VerifyReceiptForGrant(pl.Receipts[i], mustKey(t, h), grants[i]); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}

	// Bob decrypts /a/b/c without the owner, served by the grant on /a.
	bobHost := net.client(bob)
	file := encryptFor(t, ownerKeys, bobID, "/a/b/c")
	col := decrypt(t, bobHost, bob, owner.key(), file)
	if len(col.CFrags) != 3 {
		t.Fatalf("%d cfrags", len(col.CFrags))
	}

	// Eve, not the recipient, gets nothing, even with bob's path hashes.
	eveHost := net.client(eve)
	for h := range holders {
		if _, err := eveHost.Reencrypt(ctx, h, owner.key(), eveID, file.levels); !errors.Is(err, policy.ErrNotGranted) {
			t.Fatalf("eve at %s: %v, want not granted", h, err)
		}
	}
	// Nobody but the owner stores a fragment, not even an owner-signed one.
	for _, other := range []*Host{eveHost, bobHost} {
		if _, err := other.StoreGrant(ctx, net.nodes[0].host.ID(), grants[0]); !errors.Is(err, proto.ErrUnauthorized) {
			t.Fatalf("StoreGrant from a non-owner: %v", err)
		}
	}

	// A holder restarted from its data directory still serves.
	var restarted *testNode
	for i, tn := range net.nodes {
		if holders[tn.host.ID()] && i != 0 {
			tn.stop()
			restarted = net.start(tn.id, tn.dir, tn.addrs...)
			net.nodes[i] = restarted
			break
		}
	}
	net.converge() // bob finds it by its ID once the others know it again
	if _, err := bobHost.Reencrypt(ctx, restarted.host.ID(), owner.key(), bobID, file.levels[1:2]); err != nil {
		t.Fatalf("restarted holder: %v", err)
	}

	// Revoke: every holder deletes its fragment and names it.
	rev := owner.revocation(bobID, grants[0].PathHash, 2)
	var receipts []*policy.Receipt
	for h := range holders {
		rc, err := owner.host.Revoke(ctx, h, rev)
		if err != nil {
			t.Fatalf("revoke at %s: %v", h, err)
		}
		if rc.Kind != policy.ReceiptRevoked {
			t.Fatalf("receipt kind %s", rc.Kind)
		}
		receipts = append(receipts, rc)
	}
	pair, _ := policy.OwnerPairKey(ownerKeys, bobID.IdentityKey)
	fm, err := owner.host.FetchMap(ctx, RefOf(pair), MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	page, e := fm.Entry(grants[0].PathHash)
	if v := policy.RevocationVerdict(rev, e, policy.CurrentHolders(page, e, fm.Links), receipts); v.Deleted != 5 || !v.Dead {
		t.Fatalf("verdict %+v", v)
	}
	owner.drop(bobID, grants[0].PathHash)
	// Sending the same revocation again is answered again (a retry); an
	// older one is refused as stale.
	if rc, err := owner.host.Revoke(ctx, pl.Holders[0], rev); err != nil || rc.Kind != policy.ReceiptRevoked {
		t.Fatalf("retried revocation: %v", err)
	}
	if _, err := owner.host.Revoke(ctx, pl.Holders[0], owner.revocation(bobID, grants[0].PathHash, 1)); !errors.Is(err, policy.ErrStaleSequence) {
		t.Fatalf("stale revocation: %v", err)
	}
	// Bob is refused as revoked, everywhere.
	for h := range holders {
		if _, err := bobHost.Reencrypt(ctx, h, owner.key(), bobID, file.levels); !errors.Is(err, policy.ErrRevoked) {
			t.Fatalf("after revocation at %s: %v", h, err)
		}
	}
	if _, _, err := collect(ctx, bobHost, bob, owner.key(), file, CollectOptions{}); !errors.Is(err, ErrNotEnoughCFrags) {
		t.Fatalf("collect after revocation: %v", err)
	}
	// Replaying the revoked grant is refused.
	for i, h := range pl.Holders {
		if _, err := owner.host.StoreGrant(ctx, h, grants[i]); !errors.Is(err, policy.ErrStaleSequence) && !errors.Is(err, policy.ErrRevoked) {
			t.Fatalf("replayed grant at %s: %v", h, err)
		}
	}

	// A new grant with a higher sequence works again, and expires.
	grants2 := owner.newGrants(bobID, "/a", 3, 2*time.Hour)
	owner.place(grants2, PlaceOptions{})
	decrypt(t, bobHost, bob, owner.key(), file)
	net.clock.Advance(3 * time.Hour)
	col, _, err = collect(ctx, bobHost, bob, owner.key(), file, CollectOptions{})
	if !errors.Is(err, ErrNotEnoughCFrags) {
		t.Fatalf("collect after expiry: %v", err)
	}
	expired := 0
	for _, e := range col.Outcomes {
		if errors.Is(e, policy.ErrExpired) {
			expired++
		}
	}
	if expired < 3 {
		t.Fatalf("%d nodes said expired: %v", expired, col.Outcomes)
	}
}

func TestStoreGrantRefusals(t *testing.T) {
	net := newTestNet(t, 3)
	ctx := context.Background()
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	c := owner.host
	node := net.nodes[1].host.ID()

	tooLong := owner.newGrants(bobID, "/x", 1, 90*24*time.Hour)
	if _, err := c.StoreGrant(ctx, node, tooLong[0]); !errors.Is(err, policy.ErrExpiryTooLong) {
		t.Fatalf("too long: %v", err)
	}
	gs := owner.newGrants(bobID, "/x", 5, time.Hour)
	if _, err := c.StoreGrant(ctx, node, gs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreGrant(ctx, node, gs[0]); err != nil {
		t.Fatalf("storing the same fragment again is not idempotent: %v", err)
	}
	if _, err := c.StoreGrant(ctx, node, gs[1]); !errors.Is(err, proto.ErrAlreadyHeld) {
		t.Fatalf("second fragment of one grant: %v", err)
	}
	tampered := *gs[2]
	tampered.Threshold = 1
	if _, err := c.StoreGrant(ctx, net.nodes[2].host.ID(), &tampered); !errors.Is(err, policy.ErrBadSignature) {
		t.Fatalf("tampered grant: %v", err)
	}
	// A revocation of the owner's path hash signed by someone else.
	mallory := newKeyring(t)
	rev := &policy.Revocation{Owner: policy.IdentityOf(mallory).IdentityKey, Recipient: bobID.IdentityKey,
		PathHash: gs[0].PathHash, Sequence: 9, IssuedAt: uint64(net.clock.Now().Unix())}
	if err := rev.Sign(policy.IdentitySigner(mallory)); err != nil {
		t.Fatal(err)
	}
	rev.Owner = gs[0].Owner
	if _, err := c.Revoke(ctx, node, rev); !errors.Is(err, policy.ErrBadSignature) {
		t.Fatalf("revocation signed by another key: %v", err)
	}
	if _, err := net.nodes[1].store.Grant(gs[0].StorageKey()); err != nil {
		t.Fatalf("the fragment is gone after a forged revocation: %v", err)
	}
}

func mustKey(t testing.TB, p peer.ID) policy.PublicKey {
	t.Helper()
	k, err := PublicKeyOf(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
