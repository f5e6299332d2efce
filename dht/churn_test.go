package dht

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// Twenty nodes join (the nodes closest to the map's rendezvous points are
// now mostly new) and two holders die: after the holders republish the
// map, a recipient with nothing cached finds it and decrypts with the
// three holders left.
func TestChurnDiscovery(t *testing.T) {
	net := newTestNet(t, 8)
	ctx := context.Background()
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	grants := owner.newGrants(bobID, "/", 1, time.Hour)
	pl := owner.place(grants, PlaceOptions{})
	for range 20 {
		net.nodes = append(net.nodes, net.start(rekey.GenerateSecretKey(), filepath.Join(t.TempDir(), "node")))
	}
	net.converge()
	for _, h := range pl.Holders {
		if n, err := net.nodeOf(h).svc.Republish(ctx); err != nil || n != 1 {
			t.Fatalf("republish on %s: %d maps, %v", h, n, err)
		}
	}
	for _, h := range pl.Holders[:2] {
		net.nodeOf(h).stop()
	}
	decrypt(t, net.client(bob), bob, owner.key(), encryptFor(t, ownerKeys, bobID, "/x"))
}

// A holder retires: it hands its fragment to another node with its proof
// and deletes its own. Holders retire one by one until only m of the
// original ones remain, and a recipient with nothing cached decrypts after
// each step without the owner (the hand-off links extend the map); at the
// end, with two more original holders dead, the new holders carry it.
func TestRetireHandoff(t *testing.T) {
	net := newTestNet(t, 9)
	ctx := context.Background()
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	grants := owner.newGrants(bobID, "/docs", 1, 24*time.Hour)
	pl := owner.place(grants, PlaceOptions{})
	file := encryptFor(t, ownerKeys, bobID, "/docs/a.txt")
	decrypt(t, net.client(bob), bob, owner.key(), file)
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
		mv := rep.Moved[0]
		if original[mv.To] || newHolders[mv.To] {
			t.Fatalf("fragment handed to %s, which already holds one of the grant", mv.To)
		}
		if err := mv.Link.VerifySignatures(); err != nil || mv.Link.From != mustKey(t, h) || mv.Link.To != mustKey(t, mv.To) || mv.Link.GrantID != grants[i].ID() {
			t.Fatalf("hand-off link: %v %+v", err, mv.Link)
		}
		if mv.Told == 0 {
			t.Fatal("nobody took the hand-off link")
		}
		newHolders[mv.To] = true
		if _, err := tn.store.Grant(grants[i].StorageKey()); err == nil {
			t.Fatal("the retired node still holds its fragment")
		}
		tn.stop()
		decrypt(t, net.client(bob), bob, owner.key(), file)
	}
	// Two more original holders die: one original and the two new holders
	// remain, exactly m.
	for _, h := range pl.Holders[2:4] {
		net.nodeOf(h).stop()
	}
	col := decrypt(t, net.client(bob), bob, owner.key(), file)
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

// A hand-off is accepted only from the fragment's current holder, with the
// owner's map, to a node that holds no other fragment of the grant, and
// not once the owner's newer map dropped the grant.
func TestHandoffRequiresProof(t *testing.T) {
	net := newTestNet(t, 8)
	ctx := context.Background()
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	grants := owner.newGrants(bobID, "/p", 1, time.Hour)
	pl := owner.place(grants, PlaceOptions{})
	holder := net.nodeOf(pl.Holders[0])
	var outsider *testNode
	for _, tn := range net.nodes {
		if !contains(pl.Holders, tn.host.ID()) {
			outsider = tn
			break
		}
	}
	pages, links, err := holder.svc.storedMap(owner.key(), bobID.IdentityKey)
	if err != nil || len(pages) != 1 {
		t.Fatalf("the holder keeps no map: %v", err)
	}
	proof := &HandoffProof{Map: pages[0], Links: links}
	handoff := func(from *testNode, to peer.ID, g *policy.Grant) error {
		l := &policy.HandoffLink{Owner: owner.key(), Recipient: bobID.IdentityKey, GrantID: g.ID(), PathHash: g.PathHash,
			To: mustKey(t, to), At: uint64(time.Now().Unix())}
		if err := l.SignFrom(rekey.NewSigner(from.id)); err != nil {
			t.Fatal(err)
		}
		_, err := from.host.Handoff(ctx, to, g, proof, l)
		return err
	}
	// An outsider with the owner-signed grant and map, but not its holder.
	if err := handoff(outsider, pl.Holders[1], grants[0]); !errors.Is(err, proto.ErrUnauthorized) {
		t.Fatalf("hand-off by a node that does not hold the fragment: %v", err)
	}
	// The holder, of another fragment than its own.
	if err := handoff(holder, outsider.host.ID(), grants[1]); !errors.Is(err, proto.ErrUnauthorized) {
		t.Fatalf("hand-off of another node's fragment: %v", err)
	}
	// The holder, to a node that holds another fragment of the grant.
	if err := handoff(holder, pl.Holders[1], grants[0]); !errors.Is(err, proto.ErrAlreadyHeld) {
		t.Fatalf("hand-off to another holder: %v", err)
	}
	// The owner publishes a map without the grant (as after a
	// revocation): the holder's old map no longer proves anything.
	owner.drop(bobID, grants[0].PathHash)
	if err := handoff(holder, outsider.host.ID(), grants[0]); !errors.Is(err, policy.ErrRevoked) {
		t.Fatalf("hand-off of a fragment the owner's newer map dropped: %v", err)
	}
}

func contains(ps []peer.ID, p peer.ID) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// A node holding fragments of many grants retires (Retire hands them off
// RetireParallel at once): every fragment moves, each to a node that holds
// no other fragment of its grant, none stays in the node's store, and the
// recipient decrypts a file of each of those grants after the node is gone.
func TestRetireManyFragments(t *testing.T) {
	net := newTestNet(t, 9)
	ctx := context.Background()
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	type placed struct {
		prefix string
		grants []*policy.Grant
		pl     *Placement
	}
	var all []placed
	held := map[peer.ID][]int{}
	for i := range 12 {
		prefix := "/p" + string(rune('a'+i))
		grants := owner.newGrants(bobID, prefix, 1, time.Hour)
		pl := owner.place(grants, PlaceOptions{})
		all = append(all, placed{prefix, grants, pl})
		for _, h := range pl.Holders {
			held[h] = append(held[h], i)
		}
	}
	var busiest peer.ID
	for h, gs := range held {
		if len(gs) > len(held[busiest]) {
			busiest = h
		}
	}
	if len(held[busiest]) <= RetireParallel/2 {
		t.Fatalf("the busiest node holds %d fragments: too few to retire several at once", len(held[busiest]))
	}
	tn := net.nodeOf(busiest)
	rep, err := tn.svc.Retire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Moved) != len(held[busiest]) || len(rep.Kept) != 0 {
		t.Fatalf("moved %d of %d, kept %v", len(rep.Moved), len(held[busiest]), rep.Kept)
	}
	byGrant := map[policy.RecordID]peer.ID{}
	for _, mv := range rep.Moved {
		byGrant[mv.Link.GrantID] = mv.To
	}
	for _, i := range held[busiest] {
		p := all[i]
		j := slices.Index(p.pl.Holders, busiest)
		to, ok := byGrant[p.grants[j].ID()]
		if !ok {
			t.Fatalf("fragment %d of %s not among the moved", j, p.prefix)
		}
		if slices.Contains(p.pl.Holders, to) {
			t.Fatalf("fragment %d of %s handed to %s, which holds another fragment of the grant", j, p.prefix, to)
		}
		if _, err := tn.store.Grant(p.grants[j].StorageKey()); err == nil {
			t.Fatalf("the retired node still holds fragment %d of %s", j, p.prefix)
		}
	}
	tn.stop()
	c := net.client(bob)
	for _, i := range held[busiest] {
		decrypt(t, c, bob, owner.key(), encryptFor(t, ownerKeys, bobID, all[i].prefix+"/f"))
	}
}
