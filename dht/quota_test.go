package dht

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// quotaNode is one node whose store has small limits.
func quotaNode(t *testing.T, limits quota.Limits, cfg ServiceConfig) (*Host, *Service) {
	t.Helper()
	id := rekey.GenerateSecretKey()
	h, err := New(context.Background(), Config{Identity: id, Server: true, ListenAddrs: []string{"/ip4/127.0.90.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "store"), store.Options{Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Identity = st, id
	svc, err := NewService(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); h.Close(); st.Close() })
	return h, svc
}

// clientFrom is a client of k that connects from its own loopback address
// ip (a network group of its own).
func clientFrom(t *testing.T, k *rekey.SecretKey, ip string, node *Host) *Host {
	t.Helper()
	cfg := Config{Identity: k, Bootstrap: []peer.AddrInfo{{ID: node.ID(), Addrs: node.Libp2p().Addrs()}}}
	if ip != "" {
		cfg.ListenAddrs, cfg.ReusePort = []string{"/ip4/" + ip + "/tcp/0"}, true
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// Throwaway owners on one network fill their group's quota and no more:
// an owner on another network still stores, and node info tells each what
// it can still store (SPEC.md §8.2).
func TestQuotasOverRPC(t *testing.T) {
	var l quota.Limits
	l[quota.Grants] = quota.Limit{All: 1000, Owner: 3, Peer: 3, Group: 10, Reserve: 100, Floor: 5}
	l[quota.History] = quota.Limit{All: 4000, Owner: 12, Peer: 12, Group: 20, Reserve: 400, Floor: 10}
	l[quota.Maps] = quota.Limit{All: 250, Owner: 3, Peer: 3, Group: 6, Reserve: 25, Floor: 3}
	node, _ := quotaNode(t, l, ServiceConfig{})
	ctx := context.Background()
	bob := policy.IdentityOf(newKeyring(t))
	expiry := time.Now().Add(time.Hour)
	one := func(k *rekey.Keyring, prefix string) *policy.Grant {
		gs, err := policy.NewGrants(k, policy.GrantParams{Recipient: bob, Prefix: policy.MustNormalizePath(prefix),
			Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(expiry.Unix())})
		if err != nil {
			t.Fatal(err)
		}
		return gs[0]
	}
	// Attackers: every identity from 127.0.0.1 (group 127.0.0.0/24).
	stored, refused := 0, map[string]int{}
	for i := range 6 {
		k := newKeyring(t)
		h := clientFrom(t, k.Identity(), "", node)
		if i == 0 {
			ni, err := h.NodeInfo(ctx, node.ID())
			if err != nil || ni.FreeSlots != 3 {
				t.Fatalf("a new owner's free slots: %+v, %v", ni, err)
			}
		}
		for j := range 4 {
			_, err := h.StoreGrant(ctx, node.ID(), one(k, fmt.Sprintf("/a/%d", j)))
			switch {
			case err == nil:
				stored++
			case errors.Is(err, proto.ErrQuota):
				refused[proto.CodeOf(err).String()]++
			default:
				t.Fatalf("store: %v", err)
			}
		}
		if i == 5 {
			if ni, err := h.NodeInfo(ctx, node.ID()); err != nil || ni.FreeSlots != 0 {
				t.Fatalf("free slots of an owner of the full group: %+v, %v", ni, err)
			}
		}
	}
	if stored != 10 {
		t.Fatalf("%d grants stored from one group, want its quota 10 (refused %v)", stored, refused)
	}
	// An owner on its own network is served.
	alice := newKeyring(t)
	ah := clientFrom(t, alice.Identity(), "127.0.91.1", node)
	if g := node.Group(ah.ID(), DefaultDiversity); g != "" {
		t.Logf("alice's group as the node sees it: %s", g)
	}
	ni, err := ah.NodeInfo(ctx, node.ID())
	if err != nil || ni.FreeSlots != 3 {
		t.Fatalf("alice's free slots: %+v, %v", ni, err)
	}
	g := one(alice, "/docs")
	if _, err := ah.StoreGrant(ctx, node.ID(), g); err != nil {
		t.Fatalf("alice refused: %v", err)
	}
	if ni, _ := ah.NodeInfo(ctx, node.ID()); ni.FreeSlots != 2 {
		t.Fatalf("alice's free slots after one grant: %d", ni.FreeSlots)
	}
	// Tombstones of grants not held: bounded per group; a revocation of
	// a held grant from the full group still applies.
	mallory := newKeyring(t)
	mh := clientFrom(t, mallory.Identity(), "", node)
	revs := 0
	var last error
	for j := range 10 {
		r := &policy.Revocation{Owner: policy.IdentityOf(mallory).IdentityKey, Recipient: bob.IdentityKey,
			PathHash: policy.PathHash{byte(j), 1}, Sequence: 1, IssuedAt: uint64(time.Now().Unix())}
		r.Sign(policy.IdentitySigner(mallory))
		if _, last = mh.Revoke(ctx, node.ID(), r); last == nil {
			revs++
		}
	}
	// The group's history (20) holds the 10 marks of its grants; each
	// revocation not held is a tombstone and a mark.
	if !errors.Is(last, proto.ErrQuota) || revs != 5 {
		t.Fatalf("%d not-held revocations accepted, want 5; last %v", revs, last)
	}
	// Holder-map pages from throwaway owners.
	pages := 0
	for i := range 8 {
		k := newKeyring(t)
		pair, _ := policy.OwnerPairKey(k, bob.IdentityKey)
		m := &policy.HolderMap{Recipient: bob.IdentityKey, Points: pair.Points(), Sequence: 1, IssuedAt: uint64(time.Now().Unix()), Pages: 1}
		m.Sign(policy.IdentitySigner(k))
		if err := mh.PutMap(ctx, node.ID(), m); err == nil {
			pages++
		} else if !errors.Is(err, proto.ErrQuota) {
			t.Fatalf("map %d: %v", i, err)
		}
	}
	// One relaying peer brings them all: its peer quota (3) binds first.
	if pages != 3 {
		t.Fatalf("%d map pages kept from one relay, want its quota 3", pages)
	}
}

// Silent streams from many identities of one network are capped per
// group; a peer on another network is served meanwhile.
func TestStreamsPerGroup(t *testing.T) {
	node, _ := quotaNode(t, quota.Off, ServiceConfig{MaxStreamsPerGroup: 6})
	ctx := context.Background()
	var streams []network.Stream
	for range 4 {
		h := clientFrom(t, rekey.GenerateSecretKey(), "", node)
		for range 4 {
			s, err := h.Libp2p().NewStream(ctx, node.ID(), RPCProtocol)
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte{0x80})
			streams = append(streams, s)
		}
	}
	time.Sleep(200 * time.Millisecond)
	held := 0
	for _, s := range streams {
		s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := s.Read(make([]byte, 1))
		if errors.Is(err, network.ErrReset) || errors.As(err, new(*network.StreamError)) {
			continue
		}
		held++
	}
	if held > 6 {
		t.Fatalf("%d silent streams of one group held, limit 6", held)
	}
	other := clientFrom(t, rekey.GenerateSecretKey(), "127.0.92.1", node)
	if _, err := other.NodeInfo(ctx, node.ID()); err != nil {
		t.Fatalf("a peer of another group: %v", err)
	}
}

// The verified-kfrag cache: a flood from one group evicts only that
// group's entries; k groups leave every other group max/(k+1).
func TestKFragCacheFair(t *testing.T) {
	c := newKFragCache(100)
	id := func(g string, i int) policy.RecordID {
		var r policy.RecordID
		copy(r[:], fmt.Sprintf("%s/%d", g, i))
		return r
	}
	for i := range 20 {
		c.put(id("honest", i), "honest", nil, nil)
	}
	for i := range 10_000 {
		c.put(id("evil", i), "evil", nil, nil)
	}
	for i := range 20 {
		if _, ok := c.m[id("honest", i)]; !ok {
			t.Fatalf("honest entry %d evicted by one group's flood", i)
		}
	}
	if n := c.groups["evil"].Len(); n > 25 {
		t.Fatalf("one group holds %d of 100, share 25", n)
	}
	for g := range 10 {
		for i := range 1000 {
			c.put(id(fmt.Sprintf("evil%d", g), i), fmt.Sprintf("evil%d", g), nil, nil)
		}
	}
	if n := c.groups["honest"].Len(); n < 100/12 {
		t.Fatalf("honest group left %d entries against 11 flooding groups", n)
	}
	if len(c.m) > 100 {
		t.Fatalf("cache holds %d > 100", len(c.m))
	}
}
