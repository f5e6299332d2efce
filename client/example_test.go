package client_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/node"
	"github.com/kadre/kadre/policy"
)

// Alice grants /docs to Bob 3-of-5, encrypts a report under it, Bob
// decrypts it through the network, Alice revokes, and Bob is refused. The
// five nodes run in this process here; in real life they are `kadre run`
// on five machines, and Bootstrap lists some of their addresses.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "kadre-example")
	defer os.RemoveAll(dir)
	boot, _, stop, err := startNodes(ctx, dir, 5)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	// Each user has a home directory with an identity (kadre keygen).
	aliceHome, bobHome := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	client.CreateIdentity(aliceHome, nil, false)
	client.CreateIdentity(bobHome, nil, false)
	// The five nodes share one address here; across real networks leave
	// Placement zero, and no two fragments land in one /24.
	oneMachine := dht.PlaceOptions{Diversity: dht.NoDiversity}
	alice, _ := client.Open(client.Options{Home: aliceHome, Bootstrap: boot, Placement: oneMachine})
	defer alice.Close()
	bob, _ := client.Open(client.Options{Home: bobHome, Bootstrap: boot})
	defer bob.Close()

	docs := policy.MustNormalizePath("/docs")
	_, err = alice.Grant(ctx, client.GrantRequest{To: bob.Identity(), Prefix: docs, M: 3, N: 5, Expires: time.Now().Add(24 * time.Hour)})
	fmt.Println("granted:", err)

	var file bytes.Buffer
	alice.Encrypt(&file, strings.NewReader("Q3: revenue up"), policy.MustNormalizePath("/docs/q3/report.txt"))

	var plain bytes.Buffer
	key, err := bob.Decrypt(ctx, &plain, bytes.NewReader(file.Bytes()), client.DecryptOptions{})
	fmt.Printf("bob reads %q through the grant on %s, %d-of-%d: %v\n", plain.String(), key.Prefix, key.M, key.N, err)

	res, err := alice.Revoke(ctx, bob.Identity(), docs)
	fmt.Println("revoked, grant provably dead:", res.Info.Dead, err)

	_, err = bob.Decrypt(ctx, &plain, bytes.NewReader(file.Bytes()), client.DecryptOptions{})
	fmt.Println("bob after the revocation:", err != nil)
	// Output:
	// granted: <nil>
	// bob reads "Q3: revenue up" through the grant on /docs, 3-of-5: <nil>
	// revoked, grant provably dead: true <nil>
	// bob after the revocation: true
}

// startNodes starts n nodes on 127.0.0.1 in this process and waits until
// each knows the others.
func startNodes(ctx context.Context, dir string, n int) (boot []string, nodes []*node.Node, stop func(), err error) {
	stop = func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}
	for i := range n {
		cfg := node.DefaultConfig()
		cfg.DataDir = filepath.Join(dir, fmt.Sprintf("node%d", i))
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.Bootstrap = boot
		cfg.MetricsAddr = ""
		nd, err := node.Start(ctx, cfg, node.Options{})
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		nodes = append(nodes, nd)
		if i == 0 {
			boot = nd.Addrs()
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ready := true
		for _, nd := range nodes {
			ready = ready && nd.Host().RoutingTableSize() >= n-1
		}
		if ready {
			return boot, nodes, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, nil, fmt.Errorf("the nodes did not find each other")
		}
	}
}
