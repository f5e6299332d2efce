package dht

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// newTestHosts starts n server hosts on 127.0.0.1, bootstrapped as a star
// on host 0, and waits until every routing table holds every other host.
func newTestHosts(t *testing.T, n int) []*Host {
	t.Helper()
	ctx := context.Background()
	hosts := make([]*Host, 0, n)
	for i := 0; i < n; i++ {
		cfg := Config{Identity: rekey.GenerateSecretKey(), Server: true, RefreshPeriod: 10 * time.Second}
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{{ID: hosts[0].ID(), Addrs: hosts[0].Libp2p().Addrs()}}
		}
		h, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	waitConverged(t, hosts)
	return hosts
}

func waitConverged(t *testing.T, hosts []*Host) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	want := min(len(hosts)-1, 20)
	for {
		ok := true
		for _, h := range hosts {
			if h.RoutingTableSize() < want {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("routing tables did not converge in 30 s")
		}
		for _, h := range hosts {
			if h.RoutingTableSize() < want {
				<-h.kad.ForceRefresh()
			}
		}
	}
}

func TestPeerIDKeyRoundTrip(t *testing.T) {
	sk := rekey.GenerateSecretKey()
	pk := policy.PublicKeyOf(sk.PublicKey())
	id, err := PeerIDOf(pk)
	if err != nil {
		t.Fatal(err)
	}
	back, err := PublicKeyOf(id)
	if err != nil || back != pk {
		t.Fatalf("PublicKeyOf(PeerIDOf(pk)) = %v, %v", back, err)
	}
	h, err := New(context.Background(), Config{Identity: sk})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.ID() != id {
		t.Fatalf("host ID %s, derived %s", h.ID(), id)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestClosestPeers(t *testing.T) {
	hosts := newTestHosts(t, 12)
	ctx := context.Background()
	all := make([]peer.ID, len(hosts))
	for i, h := range hosts {
		all[i] = h.ID()
	}
	for k := 0; k < 10; k++ {
		key := sha256.Sum256([]byte(fmt.Sprint("point", k)))
		truth := SortByDistance(append([]peer.ID(nil), all...), key[:])[:5]
		q := hosts[(k*7)%len(hosts)]
		got, err := q.ClosestPeers(ctx, key[:], 5)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(truth) {
			t.Fatalf("key %d: closest %v, want %v", k, got, truth)
		}
	}
}

// Network groups come from the address a host reaches a peer at: nodes on
// 127.0.1.1, 127.0.2.1 and 127.0.2.7 are two /24 groups, or three /32s.
func TestGroups(t *testing.T) {
	ctx := context.Background()
	var hosts []*Host
	for _, ip := range []string{"127.0.1.1", "127.0.2.1", "127.0.2.7"} {
		cfg := Config{Identity: rekey.GenerateSecretKey(), Server: true, ListenAddrs: []string{"/ip4/" + ip + "/tcp/0"}}
		if len(hosts) > 0 {
			cfg.Bootstrap = []peer.AddrInfo{{ID: hosts[0].ID(), Addrs: hosts[0].Libp2p().Addrs()}}
		}
		h, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	waitConverged(t, hosts)
	q := hosts[0]
	// Every node dialed by q (a sample connects to them).
	if _, err := q.Sample(ctx, 2, nil); err != nil {
		t.Fatal(err)
	}
	g1, g2 := q.Group(hosts[1].ID(), Diversity{}), q.Group(hosts[2].ID(), Diversity{})
	if g1 != "127.0.2.0/24" || g1 != g2 {
		t.Fatalf("/24 groups: %q and %q", g1, g2)
	}
	if a, b := q.Group(hosts[1].ID(), Diversity{V4: 32, V6: 128}), q.Group(hosts[2].ID(), Diversity{V4: 32, V6: 128}); a == b {
		t.Fatalf("/32 groups equal: %q", a)
	}
	if a, b := q.Group(hosts[1].ID(), NoDiversity), q.Group(hosts[2].ID(), NoDiversity); a == b || a == "" {
		t.Fatalf("no diversity: %q and %q", a, b)
	}
	// From the other side, over connections q did not dial, the loopback
	// address each listens on still counts.
	if g := hosts[2].Group(q.ID(), Diversity{}); g != "127.0.1.0/24" {
		t.Fatalf("group of an inbound loopback peer: %q", g)
	}
	if g := q.Group(peer.ID("nobody"), Diversity{}); g != "" {
		t.Fatalf("group of an unknown peer: %q", g)
	}
}
