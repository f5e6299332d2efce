package dht

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

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

// lie makes a node answer re-encryption requests (single and batch) with cfrags whose proof
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
		resp := svc.dispatch(context.Background(), s, svc.group(s.Conn().RemotePeer()), req)
		if r := resp.GetReencryptResponse(); r != nil {
			r.Cfrag[300] ^= 1
		}
		for _, it := range resp.GetBatchReencryptResponse().GetItems() {
			if cf := it.GetCfrag(); cf != nil {
				cf[300] ^= 1
			}
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
			ownerKeys, bob := newKeyring(t), newKeyring(t)
			bobID := policy.IdentityOf(bob)
			owner := net.owner(ownerKeys)
			grants := owner.newGrants(bobID, "/", 1, time.Hour)
			pl := owner.place(grants, PlaceOptions{})
			bad := map[peer.ID]bool{}
			for _, h := range pl.Holders { // n − m = 2 of them, never the bootstrap node
				if len(bad) < 2 && h != net.nodes[0].host.ID() {
					tc.break_(t, net.nodeOf(h))
					bad[h] = true
				}
			}
			bobHost := net.client(bob)
			file := encryptFor(t, ownerKeys, bobID, "/f")
			start := time.Now()
			col, level, err := collect(ctx, bobHost, bob, owner.key(), file, CollectOptions{PerNodeTimeout: time.Second})
			if err != nil {
				t.Fatalf("collect: %v (%v)", err, col)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("collect took %s", d)
			}
			if _, err := col.Decrypt(bob.Receiving(), file.levels[level].Capsule, file.wrapped[level]); err != nil {
				t.Fatal(err)
			}
			for _, cf := range col.CFrags {
				if bad[cf.Node] {
					t.Fatalf("a cfrag from faulty node %s was used", cf.Node)
				}
			}
			// Every faulty node asked before m good answers came is named
			// with its fault; with all fragments asked at once, all are.
			named := 0
			for p, err := range col.Outcomes {
				if bad[p] {
					named++
					if !errors.Is(err, tc.want) {
						t.Fatalf("faulty node %s: %v, want %v", p, err, tc.want)
					}
				}
			}
			if tc.name == "lying" && named == 0 {
				t.Fatalf("no lying node was named: %v", col.Outcomes)
			}
			// Placing a new grant skips the faulty nodes (a lying node is
			// indistinguishable until it lies, and stays eligible).
			if tc.name != "lying" {
				g2 := owner.newGrants(bobID, "/other", 1, time.Hour)
				pl2, err := owner.host.Place(ctx, g2, PlaceOptions{PerNodeTimeout: time.Second})
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

// Copies of a fragment (a holder hands it to two nodes of its own and
// keeps serving it) cannot block decryption: the recipient keeps one cfrag
// per fragment and goes on until m distinct ones.
func TestReplicasDoNotBlock(t *testing.T) {
	net := newTestNet(t, 9)
	ctx := context.Background()
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	grants := owner.newGrants(bobID, "/r", 1, time.Hour)
	pl := owner.place(grants, PlaceOptions{})
	holder := net.nodeOf(pl.Holders[0])
	pages, links, err := holder.svc.storedMap(owner.key(), bobID.IdentityKey)
	if err != nil || len(pages) == 0 {
		t.Fatalf("map: %v", err)
	}
	// The malicious holder forks its fragment onto two other nodes with
	// valid links, keeps its copy, and tells the map's storers.
	var sybils []*testNode
	for _, tn := range net.nodes {
		if !contains(pl.Holders, tn.host.ID()) && len(sybils) < 2 {
			sybils = append(sybils, tn)
		}
	}
	for _, sy := range sybils {
		l := &policy.HandoffLink{Owner: owner.key(), Recipient: bobID.IdentityKey, GrantID: grants[0].ID(),
			PathHash: grants[0].PathHash, To: mustKey(t, sy.host.ID()), At: uint64(time.Now().Unix())}
		if err := l.SignFrom(holder.svc.signer); err != nil {
			t.Fatal(err)
		}
		signed, err := holder.host.Handoff(ctx, sy.host.ID(), grants[0], &HandoffProof{Map: pages[0], Links: links}, l)
		if err != nil {
			t.Fatal(err)
		}
		holder.svc.spreadLinks(ctx, []*policy.HandoffLink{signed}, pages[0], nil)
	}
	// Three honest holders are enough; the fragment's three copies count
	// once, and nobody ever reports repeated cfrags.
	for range 5 {
		col := decrypt(t, net.client(bob), bob, owner.key(), encryptFor(t, ownerKeys, bobID, "/r/f"))
		ids := map[policy.RecordID]bool{}
		for _, cf := range col.CFrags {
			if ids[cf.Grant.ID()] {
				t.Fatal("two cfrags of one fragment used")
			}
			ids[cf.Grant.ID()] = true
		}
	}
	// Even with two honest holders down, the fragment and its copies make
	// one of the three.
	for _, h := range pl.Holders[3:] {
		net.nodeOf(h).stop()
	}
	decrypt(t, net.client(bob), bob, owner.key(), encryptFor(t, ownerKeys, bobID, "/r/g"))
}

// A peer whose machine takes connections and never completes a handshake
// (or never answers at all) costs a call DefaultDialTimeout, not the
// call's whole deadline: the call fails unreachable while its context is
// still alive. The deadline is shorter than the swarm's own dial timeout
// for a local address (5 s), so without DefaultDialTimeout the context
// would end first.
func TestDialTimeout(t *testing.T) {
	net := newTestNet(t, 1)
	h := net.client(newKeyring(t))
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	id, err := PeerIDOf(policy.IdentityOf(newKeyring(t)).IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*stdnet.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	h.Libp2p().Peerstore().AddAddr(id, addr, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDialTimeout+1500*time.Millisecond)
	defer cancel()
	_, err = h.NodeInfo(ctx, id)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a silent machine: %v, want unreachable", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the dial lasted the whole deadline: %v", err)
	}
}

// A joining host whose routing-table refresh waits on nodes that never
// answer a DHT query joins anyway once a bootstrap peer is in its table,
// and finds peers; the refresh goes on after the join (before, a refresh
// slower than the join timeout failed the join: 8 of 20 users at 1,000
// simulated nodes under sybils).
func TestJoinDespiteSlowRefresh(t *testing.T) {
	net := newTestNet(t, 7)
	ctx := context.Background()
	kad := ProtocolPrefix + "/kad/1.0.0"
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for _, tn := range net.nodes[2:] {
		tn.host.Libp2p().SetStreamHandler(kad, func(s network.Stream) {
			select { // read nothing, answer nothing
			case <-done:
			case <-time.After(time.Minute):
			}
			s.Reset()
		})
	}
	h, err := New(ctx, Config{Identity: newKeyring(t).Identity(), Bootstrap: net.bootstrap(),
		QueryTimeout: 3 * time.Second, JoinRefreshWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	jctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := h.Bootstrap(jctx); err != nil {
		t.Fatalf("join with a slow refresh: %v", err)
	}
	if h.RoutingTableSize() == 0 {
		t.Fatal("joined with an empty routing table")
	}
	// The test shows something only if a refresh outlasts the join's 2 s.
	select {
	case <-h.kad.ForceRefresh():
		t.Fatal("a refresh finished within 2 s: the hung nodes do not slow it")
	case <-time.After(2 * time.Second):
	}
	ps, err := h.ClosestPeers(ctx, []byte("any key at all"), 2)
	if err != nil || len(ps) == 0 {
		t.Fatalf("after the join: %v, %d peers", err, len(ps))
	}
}
