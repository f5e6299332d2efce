package dht

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
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
	id    *rekey.SecretKey
	dir   string
	addrs []string
	host  *Host
	store *store.Store
	svc   *Service
}

type testNet struct {
	t     *testing.T
	clock *testClock
	nodes []*testNode
}

func (n *testNet) bootstrap() []peer.AddrInfo {
	h := n.nodes[0].host
	return []peer.AddrInfo{{ID: h.ID(), Addrs: h.Libp2p().Addrs()}}
}

// start brings up a node from its data directory (new or existing).
func (n *testNet) start(id *rekey.SecretKey, dir string, listen ...string) *testNode {
	t := n.t
	t.Helper()
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
	svc, err := NewService(h, ServiceConfig{Store: st, Identity: id, MaxGrantDuration: 30 * 24 * time.Hour, Now: n.clock.Now})
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
	tn.svc.Close()
	tn.host.Close()
	tn.store.Close()
}

func newTestNet(t *testing.T, size int) *testNet {
	t.Helper()
	n := &testNet{t: t, clock: &testClock{}}
	for i := 0; i < size; i++ {
		n.nodes = append(n.nodes, n.start(rekey.GenerateSecretKey(), filepath.Join(t.TempDir(), "node")))
	}
	hosts := make([]*Host, len(n.nodes))
	for i, tn := range n.nodes {
		hosts[i] = tn.host
	}
	waitConverged(t, hosts)
	return n
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
// path, a capsule wrapping the data key to that prefix's key.
type encryptedFile struct {
	levels  []Level
	wrapped [][]byte
	dataKey []byte
}

func encryptFor(t testing.TB, owner *rekey.Keyring, recipient policy.Identity, path string) *encryptedFile {
	t.Helper()
	p := policy.MustNormalizePath(path)
	me := policy.IdentityOf(owner)
	f := &encryptedFile{dataKey: make([]byte, 32)}
	rand.Read(f.dataKey)
	for _, prefix := range p.Prefixes() {
		c, ct, err := rekey.Encrypt(policy.DelegatingKey(owner, prefix).PublicKey(), f.dataKey)
		if err != nil {
			t.Fatal(err)
		}
		f.levels = append(f.levels, Level{PathHash: policy.ComputePathHash(me.IdentityKey, recipient.IdentityKey, prefix), Capsule: c})
		f.wrapped = append(f.wrapped, ct)
	}
	return f
}

func grantParams(recipient policy.Identity, prefix string, seq uint64, expiry time.Time) policy.GrantParams {
	return policy.GrantParams{Recipient: recipient, Prefix: policy.MustNormalizePath(prefix),
		Threshold: 3, Shares: 5, Sequence: seq, Expiry: uint64(expiry.Unix())}
}

// newGrants splits a 3-of-5 grant of prefix from owner to recipient,
// sequence seq, living ttl.
func (n *testNet) newGrants(owner *rekey.Keyring, to policy.Identity, prefix string, seq uint64, ttl time.Duration) []*policy.Grant {
	n.t.Helper()
	gs, err := policy.NewGrants(owner, grantParams(to, prefix, seq, n.clock.Now().Add(ttl)))
	if err != nil {
		n.t.Fatal(err)
	}
	return gs
}

// place places a grant from the owner's client and requires every fragment
// to find a node.
func (n *testNet) place(owner *rekey.Keyring, grants []*policy.Grant, opt PlaceOptions) *Placement {
	n.t.Helper()
	opt.Now = n.clock.Now
	pl, err := n.client(owner).Place(context.Background(), grants, opt)
	if err != nil {
		n.t.Fatalf("place: %v (%+v)", err, pl)
	}
	return pl
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
	owner, bob, eve := newKeyring(t), newKeyring(t), newKeyring(t)
	bobID, eveID := policy.IdentityOf(bob), policy.IdentityOf(eve)
	ownerHost := net.client(owner)
	ownerKey := policy.IdentityOf(owner).IdentityKey

	// Grant /a to bob, 3-of-5.
	grants, err := policy.NewGrants(owner, grantParams(bobID, "/a", 1, net.clock.Now().Add(7*24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := ownerHost.Place(ctx, grants, PlaceOptions{Now: net.clock.Now})
	if err != nil {
		t.Fatalf("place: %v (refused: %v)", err, pl)
	}
	holders := map[peer.ID]bool{}
	for i, h := range pl.Holders {
		if holders[h] {
			t.Fatalf("node %s holds two fragments", h)
		}
		holders[h] = true
		if err := policy.VerifyReceiptForGrant(pl.Receipts[i], mustKey(t, h), grants[i]); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	// The holders are the 5 nodes closest to the locator.
	var all []peer.ID
	for _, tn := range net.nodes {
		all = append(all, tn.host.ID())
	}
	closest := SortByDistance(all, Locator(ownerKey, bobID.IdentityKey))[:5]
	for _, p := range closest {
		if !holders[p] {
			t.Fatalf("holders %v are not the 5 closest %v", pl.Holders, closest)
		}
	}

	// Bob decrypts /a/b/c, served by the grant on /a.
	bobHost := net.client(bob)
	file := encryptFor(t, owner, bobID, "/a/b/c")
	col, err := bobHost.Collect(ctx, ownerKey, bobID, file.levels, CollectOptions{})
	if err != nil {
		t.Fatalf("collect: %v (%v)", err, col)
	}
	if col.Level() != 1 {
		t.Fatalf("served level %d, want 1 (/a)", col.Level())
	}
	key, err := col.Decrypt(bob.Receiving(), file.levels[1].Capsule, file.wrapped[1])
	if err != nil || !bytes.Equal(key, file.dataKey) {
		t.Fatalf("decrypt: %v", err)
	}

	// Eve, not the recipient, gets nothing, even with bob's path hashes.
	eveHost := net.client(eve)
	for h := range holders {
		_, err := eveHost.Reencrypt(ctx, h, ownerKey, eveID, file.levels)
		if !errors.Is(err, policy.ErrNotGranted) {
			t.Fatalf("eve at %s: %v, want not granted", h, err)
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
	if _, err := bobHost.Reencrypt(ctx, restarted.host.ID(), ownerKey, bobID, file.levels); err != nil {
		t.Fatalf("restarted holder: %v", err)
	}

	// Revoke: every holder answers with a signed receipt.
	rev := &policy.Revocation{Owner: ownerKey, Recipient: bobID.IdentityKey, PathHash: grants[0].PathHash,
		Sequence: 2, IssuedAt: uint64(net.clock.Now().Unix())}
	if err := rev.Sign(policy.IdentitySigner(owner)); err != nil {
		t.Fatal(err)
	}
	var receipts []*policy.Receipt
	for h := range holders {
		rc, err := ownerHost.Revoke(ctx, h, rev)
		if err != nil {
			t.Fatalf("revoke at %s: %v", h, err)
		}
		if rc.Kind != policy.ReceiptRevoked {
			t.Fatalf("receipt kind %s", rc.Kind)
		}
		receipts = append(receipts, rc)
	}
	if n := policy.CountRevocationReceipts(rev, receipts); n != 5 {
		t.Fatalf("%d valid revocation receipts", n)
	}
	// Sending the same revocation again is answered again (a retry);
	// an older one is refused as stale.
	if rc, err := ownerHost.Revoke(ctx, pl.Holders[0], rev); err != nil || rc.Kind != policy.ReceiptRevoked {
		t.Fatalf("retried revocation: %v", err)
	}
	old := *rev
	old.Sequence = 1
	if err := old.Sign(policy.IdentitySigner(owner)); err != nil {
		t.Fatal(err)
	}
	if _, err := ownerHost.Revoke(ctx, pl.Holders[0], &old); !errors.Is(err, policy.ErrStaleSequence) {
		t.Fatalf("stale revocation: %v", err)
	}
	// Bob is refused as revoked, everywhere.
	for h := range holders {
		if _, err := bobHost.Reencrypt(ctx, h, ownerKey, bobID, file.levels); !errors.Is(err, policy.ErrRevoked) {
			t.Fatalf("after revocation at %s: %v", h, err)
		}
	}
	if _, err := bobHost.Collect(ctx, ownerKey, bobID, file.levels, CollectOptions{}); !errors.Is(err, ErrNotEnoughCFrags) {
		t.Fatalf("collect after revocation: %v", err)
	}
	// Replaying the revoked grant is refused.
	for i, h := range pl.Holders {
		if _, err := ownerHost.StoreGrant(ctx, h, grants[i]); !errors.Is(err, policy.ErrStaleSequence) && !errors.Is(err, policy.ErrRevoked) {
			t.Fatalf("replayed grant at %s: %v", h, err)
		}
	}

	// A new grant with a higher sequence works again, and expires.
	grants2, err := policy.NewGrants(owner, grantParams(bobID, "/a", 3, net.clock.Now().Add(2*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ownerHost.Place(ctx, grants2, PlaceOptions{Now: net.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := bobHost.Collect(ctx, ownerKey, bobID, file.levels, CollectOptions{}); err != nil {
		t.Fatalf("collect after re-grant: %v", err)
	}
	net.clock.Advance(3 * time.Hour)
	col, err = bobHost.Collect(ctx, ownerKey, bobID, file.levels, CollectOptions{})
	if !errors.Is(err, ErrNotEnoughCFrags) {
		t.Fatalf("collect after expiry: %v", err)
	}
	expired := 0
	for _, e := range col.Outcomes {
		if errors.Is(e, policy.ErrExpired) {
			expired++
		}
	}
	if expired < 5 {
		t.Fatalf("%d nodes said expired: %v", expired, col.Outcomes)
	}
}

func TestStoreGrantRefusals(t *testing.T) {
	net := newTestNet(t, 3)
	ctx := context.Background()
	owner, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	c := net.client(owner)
	node := net.nodes[1].host.ID()

	tooLong, err := policy.NewGrants(owner, grantParams(bobID, "/x", 1, net.clock.Now().Add(90*24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreGrant(ctx, node, tooLong[0]); !errors.Is(err, policy.ErrExpiryTooLong) {
		t.Fatalf("too long: %v", err)
	}
	gs, err := policy.NewGrants(owner, grantParams(bobID, "/x", 5, net.clock.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
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
