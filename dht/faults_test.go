package dht

import (
	"bufio"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// hang makes a node accept RPC streams and never answer (connected but
// silent).
func hang(t *testing.T, tn *testNode) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	tn.host.Libp2p().SetStreamHandler(RPCProtocol, func(s network.Stream) {
		io.Copy(io.Discard, s) // the whole request, then silence
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
		s.Reset()
	})
}

// lie makes a node answer re-encryption requests with a cfrag whose proof
// does not hold (one byte of z flipped), and everything else honestly.
func lie(tn *testNode) {
	svc := tn.svc
	tn.host.Libp2p().SetStreamHandler(RPCProtocol, func(s network.Stream) {
		defer s.Close()
		req, err := proto.ReadRequest(bufio.NewReader(s))
		if err != nil {
			s.Reset()
			return
		}
		resp := svc.dispatch(context.Background(), s, req)
		if r := resp.GetReencryptResponse(); r != nil {
			r.Cfrag[300] ^= 1
		}
		proto.WriteFrame(s, resp)
	})
}

// Decryption succeeds with n−m holders misbehaving, and the recipient is
// told which ones and how; placement skips dead and hung nodes.
func TestFaultyHolders(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*testing.T, *testNode)
		want   error
	}{
		{"dead", func(_ *testing.T, tn *testNode) { tn.stop() }, ErrUnreachable},
		{"hung", hang, ErrTimeout},
		{"lying", func(_ *testing.T, tn *testNode) { lie(tn) }, ErrBadProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := newTestNet(t, 7)
			ctx := context.Background()
			owner, bob := newKeyring(t), newKeyring(t)
			bobID := policy.IdentityOf(bob)
			ownerKey := policy.IdentityOf(owner).IdentityKey
			grants := net.newGrants(owner, bobID, "/", 1, time.Hour)
			pl := net.place(owner, grants, PlaceOptions{})
			bad := map[peer.ID]bool{}
			for _, h := range pl.Holders { // n − m = 2 of them, never the bootstrap node
				if len(bad) < 2 && h != net.nodes[0].host.ID() {
					tc.break_(t, net.nodeOf(h))
					bad[h] = true
				}
			}
			bobHost := net.client(bob)
			file := encryptFor(t, owner, bobID, "/f")
			start := time.Now()
			col, err := bobHost.Collect(ctx, ownerKey, bobID, file.levels, CollectOptions{PerNodeTimeout: time.Second, Concurrency: 7})
			if err != nil {
				t.Fatalf("collect: %v (%v)", err, col)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("collect took %s", d)
			}
			if _, err := col.Decrypt(bob.Receiving(), file.levels[col.Level()].Capsule, file.wrapped[col.Level()]); err != nil {
				t.Fatal(err)
			}
			for _, cf := range col.CFrags {
				if bad[cf.Node] {
					t.Fatalf("a cfrag from faulty node %s was used", cf.Node)
				}
			}
			// Every faulty node that was asked before m good answers came
			// is named with its fault.
			for p, err := range col.Outcomes {
				if bad[p] && !errors.Is(err, tc.want) {
					t.Fatalf("faulty node %s: %v, want %v", p, err, tc.want)
				}
			}
			// A lying node's answer is always looked at when asked first.
			if tc.name == "lying" {
				named := 0
				for p := range bad {
					if err, ok := col.Outcomes[p]; ok && errors.Is(err, ErrBadProof) {
						named++
					}
				}
				if named == 0 {
					t.Fatalf("no lying node was named: %v", col.Outcomes)
				}
			}
			// Placing a new grant skips the faulty nodes (a lying node is
			// indistinguishable until it lies, and stays eligible).
			if tc.name != "lying" {
				g2, err := policy.NewGrants(owner, grantParams(bobID, "/other", 1, net.clock.Now().Add(time.Hour)))
				if err != nil {
					t.Fatal(err)
				}
				pl2, err := net.client(owner).Place(ctx, g2, PlaceOptions{Now: net.clock.Now, PerNodeTimeout: time.Second})
				if err != nil {
					t.Fatalf("placement with faulty nodes: %v", err)
				}
				for _, h := range pl2.Holders {
					if bad[h] {
						t.Fatalf("fragment placed on faulty node %s", h)
					}
				}
			}
		})
	}
}
