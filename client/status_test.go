package client_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/rekey"
)

// A peer that speaks the DHT but not kadre's RPC (a DHT server without
// the service) is shown as such, not as unreachable; and status needs no
// identity of the user's.
func TestStatusNotKadre(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	boot, nodes, stop, err := startNodes(ctx, dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	infos, err := dht.ParseAddrs(boot)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := dht.New(ctx, dht.Config{Identity: rekey.GenerateSecretKey(), Server: true, Bootstrap: infos})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if err := bare.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); nodes[1].Host().RoutingTableSize() < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bare host did not enter the routing tables")
		}
	}
	seed := make([]byte, rekey.SeedSize)
	seed[0] = 1
	anon, err := rekey.NewKeyring(seed)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(client.Options{Home: filepath.Join(dir, "nobody"), Keyring: anon, Bootstrap: boot})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var st *client.NetworkStatus
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		if len(st.Nodes) == 4 || time.Now().After(deadline) {
			break
		}
	}
	found := false
	for _, n := range st.Nodes {
		switch {
		case n.Peer == bare.ID().String():
			found = true
			if n.Reachable || n.Outcome != dht.NotKadre {
				t.Fatalf("the bare host: reachable %v, outcome %s (%v)", n.Reachable, n.Outcome, n.Error)
			}
		case !n.Reachable:
			t.Fatalf("node %s: %s", n.Peer, n.Outcome)
		}
	}
	if !found {
		t.Fatalf("the bare host is not in the status (%d nodes)", len(st.Nodes))
	}
}
