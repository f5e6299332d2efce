package dht

import (
	"bytes"
	"context"
	"crypto/sha256"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// xorDistance is the DHT's distance between a key and a peer.
func xorDistance(key []byte, p peer.ID) []byte {
	a, b := sha256.Sum256(key), sha256.Sum256([]byte(p))
	out := make([]byte, 32)
	for i := range out {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// closerKeys returns k identity keys whose peers are closer to key than
// bound, ground out of random keys.
func closerKeys(t *testing.T, key []byte, bound []byte, k int) []*rekey.SecretKey {
	t.Helper()
	var out []*rekey.SecretKey
	for tries := 0; len(out) < k; tries++ {
		if tries > 100000 {
			t.Fatal("could not grind keys close to the locator")
		}
		sk := rekey.GenerateSecretKey()
		id, err := PeerIDOf(policy.PublicKeyOf(sk.PublicKey()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Compare(xorDistance(key, id), bound) < 0 {
			out = append(out, sk)
		}
	}
	return out
}

// Nodes join closer to the locator than every holder, then holders die:
// the recipient still finds m holders (their provider records) while m are
// alive, even when it asks only the 5 nodes now closest to the locator.
func TestChurnDiscovery(t *testing.T) {
	net := newTestNet(t, 10)
	ctx := context.Background()
	owner, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	ownerKey := policy.IdentityOf(owner).IdentityKey
	grants := net.newGrants(owner, bobID, "/", 1, time.Hour)
	pl := net.place(owner, grants, PlaceOptions{})
	loc := Locator(ownerKey, bobID.IdentityKey)
	nearest := pl.Holders[0]
	for _, h := range pl.Holders {
		if bytes.Compare(xorDistance(loc, h), xorDistance(loc, nearest)) < 0 {
			nearest = h
		}
	}
	// Six nodes join, every one closer to the locator than any holder.
	for _, sk := range closerKeys(t, loc, xorDistance(loc, nearest), 6) {
		net.nodes = append(net.nodes, net.start(sk, filepath.Join(t.TempDir(), "node")))
	}
	hosts := make([]*Host, len(net.nodes))
	for i, tn := range net.nodes {
		hosts[i] = tn.host
	}
	waitConverged(t, hosts)
	// Let the holders' announcements land (they are queued after storing).
	time.Sleep(500 * time.Millisecond)

	bobHost := net.client(bob)
	closest, err := bobHost.ClosestPeers(ctx, loc, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range closest {
		for _, h := range pl.Holders {
			if p == h {
				t.Fatalf("precondition: holder %s is still among the 5 closest", h)
			}
		}
	}
	// Two holders die; three remain.
	for _, h := range pl.Holders[:2] {
		net.nodeOf(h).stop()
	}
	file := encryptFor(t, owner, bobID, "/x")
	col, err := bobHost.Collect(ctx, ownerKey, bobID, file.levels, CollectOptions{Candidates: 5})
	if err != nil {
		t.Fatalf("collect after churn: %v (outcomes %v)", err, col)
	}
	if _, err := col.Decrypt(bob.Receiving(), file.levels[col.Level()].Capsule, file.wrapped[col.Level()]); err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, cf := range col.CFrags {
		used = append(used, cf.Node.String())
	}
	sort.Strings(used)
	t.Logf("decrypted with cfrags from %v", used)
}

// A holder retires: it hands its fragment to another node and deletes its
// own. Holders retire one by one until only m of the original ones remain,
// and the recipient decrypts after each step without the owner; at the
// end, with two more original holders dead, the new holders carry it.
func TestRetireHandoff(t *testing.T) {
	net := newTestNet(t, 9)
	ctx := context.Background()
	owner, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	ownerKey := policy.IdentityOf(owner).IdentityKey
	grants := net.newGrants(owner, bobID, "/docs", 1, 24*time.Hour)
	pl := net.place(owner, grants, PlaceOptions{})
	bobHost := net.client(bob)
	file := encryptFor(t, owner, bobID, "/docs/a.txt")
	decrypt := func(step string) *Collection {
		t.Helper()
		col, err := bobHost.Collect(ctx, ownerKey, bobID, file.levels, CollectOptions{})
		if err != nil {
			t.Fatalf("%s: %v (%v)", step, err, col)
		}
		key, err := col.Decrypt(bob.Receiving(), file.levels[col.Level()].Capsule, file.wrapped[col.Level()])
		if err != nil || !bytes.Equal(key, file.dataKey) {
			t.Fatalf("%s: decrypt: %v", step, err)
		}
		return col
	}
	decrypt("before")
	original := map[peer.ID]bool{}
	for _, h := range pl.Holders {
		original[h] = true
	}
	newHolders := map[peer.ID]bool{}
	for i, h := range pl.Holders[:2] {
		tn := net.nodeOf(h)
		rep, err := tn.svc.Retire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Moved) != 1 || len(rep.Kept) != 0 {
			t.Fatalf("retire %d: moved %d, kept %v", i, len(rep.Moved), rep.Kept)
		}
		to := rep.Moved[0].To
		if original[to] || newHolders[to] {
			t.Fatalf("fragment handed to %s, which already holds one of the grant", to)
		}
		if err := policy.VerifyReceiptForGrant(rep.Moved[0].Receipt, mustKey(t, to), grants[i]); err != nil || rep.Moved[0].Receipt.Kind != policy.ReceiptHandoffAccepted {
			t.Fatalf("hand-off receipt: %v", err)
		}
		newHolders[to] = true
		if _, err := tn.store.Grant(grants[i].StorageKey()); err == nil {
			t.Fatal("the retired node still holds its fragment")
		}
		tn.stop()
		decrypt("after retiring holder " + h.String())
	}
	// Two more original holders die: one original and the two new holders
	// remain, exactly m.
	for _, h := range pl.Holders[2:4] {
		net.nodeOf(h).stop()
	}
	col := decrypt("with the new holders")
	fromNew := 0
	for _, cf := range col.CFrags {
		if newHolders[cf.Node] {
			fromNew++
		}
	}
	if fromNew != 2 {
		t.Fatalf("%d cfrags from new holders, want 2", fromNew)
	}
}
