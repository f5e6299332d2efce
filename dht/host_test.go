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

func TestClosestPeersAndProviders(t *testing.T) {
	hosts := newTestHosts(t, 12)
	ctx := context.Background()
	all := make([]peer.ID, len(hosts))
	for i, h := range hosts {
		all[i] = h.ID()
	}
	for k := 0; k < 10; k++ {
		key := sha256.Sum256([]byte(fmt.Sprint("locator", k)))
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
	// Two hosts provide a locator; a third finds them.
	loc := sha256.Sum256([]byte("kadre/locator/v1 test"))
	for _, h := range hosts[3:5] {
		if err := h.Provide(ctx, loc[:]); err != nil {
			t.Fatal(err)
		}
	}
	provs, err := hosts[9].FindProviders(ctx, loc[:], 20)
	if err != nil {
		t.Fatal(err)
	}
	found := map[peer.ID]bool{}
	for _, p := range provs {
		found[p.ID] = true
	}
	if len(found) != 2 || !found[hosts[3].ID()] || !found[hosts[4].ID()] {
		t.Fatalf("providers %v, want %s and %s", provs, hosts[3].ID(), hosts[4].ID())
	}
}
