package dht

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// batchFiles encrypts n files under prefix (depth 1, e.g. /docs) for bob
// and returns them with the capsules of the prefix's level.
func batchFiles(t *testing.T, owner *rekey.Keyring, bob policy.Identity, prefix string, n int) ([]*encryptedFile, []*rekey.Capsule) {
	t.Helper()
	var files []*encryptedFile
	var capsules []*rekey.Capsule
	for i := range n {
		f := encryptFor(t, owner, bob, fmt.Sprintf("%s/f%d", prefix, i))
		files = append(files, f)
		capsules = append(capsules, f.levels[1].Capsule)
	}
	return files, capsules
}

// batchRequest fetches the pair's map and builds the request for the
// grant on prefix.
func batchRequest(t *testing.T, h *Host, bob *rekey.Keyring, owner policy.PublicKey, ph policy.PathHash, capsules []*rekey.Capsule) BatchRequest {
	t.Helper()
	pair, err := policy.RecipientPairKey(bob, owner)
	if err != nil {
		t.Fatal(err)
	}
	fm, err := h.FetchMap(context.Background(), RefOf(pair), MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	page, e := fm.Entry(ph)
	if e == nil {
		t.Fatal("the map lists no grant for the prefix")
	}
	return BatchRequest{Owner: owner, Me: policy.IdentityOf(bob), Entry: e, Holders: policy.CurrentHolders(page, e, fm.Links), Capsules: capsules}
}

// checkBatch requires every file of the batch to open with its cfrags,
// none of them from a node in bad.
func checkBatch(t *testing.T, bc *BatchCollection, bob *rekey.Keyring, files []*encryptedFile, bad map[peer.ID]bool) {
	t.Helper()
	for i, f := range files {
		col := bc.Items[i]
		if bc.Errs[i] != nil || len(col.CFrags) != 3 {
			t.Fatalf("file %d: %v, %d cfrags, outcomes %v", i, bc.Errs[i], len(col.CFrags), col.Outcomes)
		}
		key, err := col.Decrypt(bob.Receiving(), f.levels[1].Capsule, f.wrapped[1])
		if err != nil || !bytes.Equal(key, f.dataKey) {
			t.Fatalf("file %d: %v", i, err)
		}
		for _, cf := range col.CFrags {
			if bad[cf.Node] {
				t.Fatalf("file %d used a cfrag of faulty node %s", i, cf.Node)
			}
		}
	}
}

// Many files under one grant: every capsule gets three verified cfrags
// of distinct fragments, in a few requests spread over all the holders.
func TestCollectBatch(t *testing.T) {
	net := newTestNet(t, 8)
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	grants := owner.newGrants(bobID, "/docs", 1, time.Hour)
	owner.place(grants, PlaceOptions{})
	files, capsules := batchFiles(t, ownerKeys, bobID, "/docs", 70)
	bobHost := net.client(bob)
	bc, err := bobHost.CollectBatch(context.Background(), batchRequest(t, bobHost, bob, owner.key(), grants[0].PathHash, capsules), BatchOptions{})
	if err != nil {
		t.Fatalf("collect batch: %v", err)
	}
	checkBatch(t, bc, bob, files, nil)
	// 70 capsules × 3 cfrags over 5 holders: each holder about 42, in
	// requests of at most 32.
	if bc.Requests < 7 || bc.Requests > 15 {
		t.Errorf("%d requests for 210 cfrags", bc.Requests)
	}
	if len(bc.Nodes) != 5 {
		t.Errorf("%d of the 5 holders asked: %v", len(bc.Nodes), bc.Nodes)
	}
	for p, err := range bc.Nodes {
		if err != nil {
			t.Errorf("holder %s: %v", p, err)
		}
	}
	used := map[peer.ID]int{}
	for _, col := range bc.Items {
		for _, cf := range col.CFrags {
			used[cf.Node]++
		}
	}
	for p, n := range used {
		if n < 20 {
			t.Errorf("holder %s served %d of 210 cfrags: the batch is not spread", p, n)
		}
	}
}

// With n − m holders dead, hung or lying, every file of a batch still
// opens, with no cfrag from them, and each is named with its fault.
func TestCollectBatchFaults(t *testing.T) {
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
			ownerKeys, bob := newKeyring(t), newKeyring(t)
			bobID := policy.IdentityOf(bob)
			owner := net.owner(ownerKeys)
			grants := owner.newGrants(bobID, "/docs", 1, time.Hour)
			pl := owner.place(grants, PlaceOptions{})
			bad := map[peer.ID]bool{}
			for _, h := range pl.Holders {
				if len(bad) < 2 && h != net.nodes[0].host.ID() {
					tc.break_(t, net.nodeOf(h))
					bad[h] = true
				}
			}
			files, capsules := batchFiles(t, ownerKeys, bobID, "/docs", 40)
			bobHost := net.client(bob)
			bc, err := bobHost.CollectBatch(context.Background(), batchRequest(t, bobHost, bob, owner.key(), grants[0].PathHash, capsules), BatchOptions{PerNodeTimeout: time.Second})
			if err != nil {
				t.Fatalf("collect batch: %v (nodes %v)", err, bc.Nodes)
			}
			checkBatch(t, bc, bob, files, bad)
			for p := range bad {
				if err, asked := bc.Nodes[p]; asked && !errors.Is(err, tc.want) {
					t.Errorf("faulty node %s: %v, want %v", p, err, tc.want)
				}
			}
			// 40 capsules over 5 holders: each faulty one was asked.
			for p := range bad {
				if _, asked := bc.Nodes[p]; !asked {
					t.Errorf("faulty node %s was never asked", p)
				}
			}
		})
	}
}

// rawBatch sends a BatchReencrypt built by hand and returns the answer.
func rawBatch(t *testing.T, h *Host, p peer.ID, req *proto.BatchReencryptRequest) (*proto.BatchReencryptResponse, error) {
	t.Helper()
	env := proto.Request(newRequestID(), &proto.Envelope_BatchReencrypt{BatchReencrypt: req})
	resp, err := h.call(context.Background(), p, env)
	if err != nil {
		return nil, err
	}
	return resp.GetBatchReencryptResponse(), nil
}

// A node answers a batch capsule by capsule, refuses a bad capsule alone,
// and refuses the whole request for anyone the grant is not for, for a
// path hash it holds nothing under, and once the grant is revoked.
func TestBatchRefusals(t *testing.T) {
	net := newTestNet(t, 3)
	ctx := context.Background()
	ownerKeys, bob, eve := newKeyring(t), newKeyring(t), newKeyring(t)
	bobID, eveID := policy.IdentityOf(bob), policy.IdentityOf(eve)
	owner := net.owner(ownerKeys)
	gs, err := policy.NewGrants(ownerKeys, policy.GrantParams{Recipient: bobID, Prefix: policy.MustNormalizePath("/docs"),
		Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(net.clock.Now().Add(time.Hour).Unix())})
	if err != nil {
		t.Fatal(err)
	}
	node := net.nodes[1].host.ID()
	if _, err := owner.host.StoreGrant(ctx, node, gs[0]); err != nil {
		t.Fatal(err)
	}
	files, capsules := batchFiles(t, ownerKeys, bobID, "/docs", 5)
	bobHost, eveHost := net.client(bob), net.client(eve)
	ph := gs[0].PathHash

	ans, err := bobHost.BatchReencrypt(ctx, node, owner.key(), bobID, ph, capsules)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Grant.ID() != gs[0].ID() {
		t.Fatal("the answer's grant is not the one stored")
	}
	for i, it := range ans.Items {
		if it.Err != nil {
			t.Fatalf("item %d: %v", i, it.Err)
		}
		key, err := rekey.DecryptReencrypted(bob.Receiving(), mustRekey(t, gs[0].DelegatingKey), capsules[i],
			[]*rekey.VerifiedCapsuleFrag{it.CFrag}, files[i].wrapped[1])
		if err != nil || !bytes.Equal(key, files[i].dataKey) {
			t.Fatalf("item %d does not open its file: %v", i, err)
		}
	}

	// A capsule that does not parse is refused alone.
	raw := &proto.BatchReencryptRequest{Owner: owner.key().Bytes(), PathHash: ph[:]}
	for _, c := range capsules {
		raw.Capsules = append(raw.Capsules, c.Bytes())
	}
	raw.Capsules[2] = bytes.Repeat([]byte{0xff}, len(raw.Capsules[2]))
	r, err := rawBatch(t, bobHost, node, raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range r.GetItems() {
		if got := it.GetError().GetCode(); (i == 2) != (got == proto.Code_MALFORMED) || (i != 2 && it.GetCfrag() == nil) {
			t.Fatalf("item %d: %v", i, it)
		}
	}
	// Too many capsules: the whole request is malformed.
	raw.Capsules = make([][]byte, proto.MaxBatchItems+1)
	for i := range raw.Capsules {
		raw.Capsules[i] = capsules[0].Bytes()
	}
	env := proto.Request(newRequestID(), &proto.Envelope_BatchReencrypt{BatchReencrypt: raw})
	if err := proto.ValidateRequest(env); !errors.Is(err, proto.ErrMalformed) {
		t.Fatalf("%d capsules validate: %v", len(raw.Capsules), err)
	}
	if resp := sendUnchecked(t, bobHost, node, env); resp.GetError().GetCode() != proto.Code_MALFORMED {
		t.Fatalf("%d capsules: %v", len(raw.Capsules), resp)
	}

	// Eve with bob's path hash, and bob under another one.
	if _, err := eveHost.BatchReencrypt(ctx, node, owner.key(), eveID, ph, capsules); !errors.Is(err, policy.ErrNotGranted) {
		t.Fatalf("eve: %v", err)
	}
	pair, _ := policy.OwnerPairKey(ownerKeys, bobID.IdentityKey)
	if _, err := bobHost.BatchReencrypt(ctx, node, owner.key(), bobID, pair.PathHash(policy.MustNormalizePath("/other"), 0), capsules); !errors.Is(err, policy.ErrNotGranted) {
		t.Fatalf("another path hash: %v", err)
	}
	// Revoked: refused as such.
	if _, err := owner.host.Revoke(ctx, node, owner.revocation(bobID, ph, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := bobHost.BatchReencrypt(ctx, node, owner.key(), bobID, ph, capsules); !errors.Is(err, policy.ErrRevoked) {
		t.Fatalf("after revocation: %v", err)
	}
	// The node keeps serving.
	if _, err := bobHost.NodeInfo(ctx, node); err != nil {
		t.Fatal(err)
	}
}

// sendUnchecked sends env on a stream without the client's validation.
func sendUnchecked(t *testing.T, h *Host, p peer.ID, env *proto.Envelope) *proto.Envelope {
	t.Helper()
	s, err := h.Libp2p().NewStream(context.Background(), p, RPCProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := proto.WriteFrame(s, env); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	resp, err := proto.ReadFrame(bufio.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func mustRekey(t *testing.T, k policy.PublicKey) *rekey.PublicKey {
	t.Helper()
	pk, err := k.Rekey()
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// A batch pays the per-peer rate one token per capsule: with 10 tokens,
// a batch of 32 gets 10 cfrags and 22 refusals, and the next batch is
// refused whole. A collection that cannot get more gives the node up
// after its retries; one whose tokens come back finishes.
func TestBatchRateLimit(t *testing.T) {
	net := newTestNetWith(t, 2, func(c *ServiceConfig) { c.PeerRate, c.PeerBurst = 0.001, 10 })
	ctx := context.Background()
	ownerKeys := newKeyring(t)
	owner := net.owner(ownerKeys)
	node := net.nodes[1].host.ID()
	grant := func(bob *rekey.Keyring) *policy.Grant {
		gs, err := policy.NewGrants(ownerKeys, policy.GrantParams{Recipient: policy.IdentityOf(bob), Prefix: policy.MustNormalizePath("/docs"),
			Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(net.clock.Now().Add(time.Hour).Unix())})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := owner.host.StoreGrant(ctx, node, gs[0]); err != nil {
			t.Fatal(err)
		}
		return gs[0]
	}

	bob := newKeyring(t)
	g := grant(bob)
	_, capsules := batchFiles(t, ownerKeys, policy.IdentityOf(bob), "/docs", proto.MaxBatchItems)
	bobHost := net.client(bob)
	ans, err := bobHost.BatchReencrypt(ctx, node, owner.key(), policy.IdentityOf(bob), g.PathHash, capsules)
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	for i, it := range ans.Items {
		switch {
		case it.Err == nil:
			served++
		case !errors.Is(it.Err, proto.ErrRateLimited):
			t.Fatalf("item %d: %v", i, it.Err)
		}
	}
	if served != 10 {
		t.Fatalf("%d of %d capsules served with 10 tokens", served, len(capsules))
	}
	if _, err := bobHost.BatchReencrypt(ctx, node, owner.key(), policy.IdentityOf(bob), g.PathHash, capsules[:1]); !errors.Is(err, proto.ErrRateLimited) {
		t.Fatalf("batch with no token left: %v", err)
	}

	// Another recipient (a bucket of its own) asks for 15 capsules: 10
	// are served, the node is given up for the other 5.
	carol := newKeyring(t)
	g = grant(carol)
	_, capsules = batchFiles(t, ownerKeys, policy.IdentityOf(carol), "/docs", 15)
	carolHost := net.client(carol)
	e := &policy.MapEntry{PathHash: g.PathHash, Threshold: 1, Shares: 1, Holders: []policy.MapHolder{{Node: mustKey(t, node), GrantID: g.ID()}}}
	req := BatchRequest{Owner: owner.key(), Me: policy.IdentityOf(carol), Entry: e,
		Holders: map[policy.RecordID][]policy.PublicKey{g.ID(): {mustKey(t, node)}}, Capsules: capsules}
	bc, err := carolHost.CollectBatch(ctx, req, BatchOptions{Retries: 3})
	if !errors.Is(err, ErrNotEnoughCFrags) {
		t.Fatalf("collect beyond the rate: %v", err)
	}
	ok := 0
	for i := range capsules {
		if bc.Errs[i] == nil {
			ok++
		} else if !errors.Is(bc.Items[i].Outcomes[node], proto.ErrRateLimited) {
			t.Fatalf("capsule %d: %v (%v)", i, bc.Errs[i], bc.Items[i].Outcomes)
		}
	}
	if ok != 10 || !errors.Is(bc.Nodes[node], proto.ErrRateLimited) {
		t.Fatalf("%d of 15 capsules served; node %v", ok, bc.Nodes[node])
	}
}

// Rate-limited capsules are asked again when tokens come back.
func TestBatchRateLimitRetry(t *testing.T) {
	net := newTestNetWith(t, 2, func(c *ServiceConfig) { c.PeerRate, c.PeerBurst = 50, 10 })
	ctx := context.Background()
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	node := net.nodes[1].host.ID()
	gs, err := policy.NewGrants(ownerKeys, policy.GrantParams{Recipient: bobID, Prefix: policy.MustNormalizePath("/docs"),
		Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(net.clock.Now().Add(time.Hour).Unix())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.host.StoreGrant(ctx, node, gs[0]); err != nil {
		t.Fatal(err)
	}
	g := gs[0]
	files, capsules := batchFiles(t, ownerKeys, bobID, "/docs", 40)
	bobHost := net.client(bob)
	e := &policy.MapEntry{PathHash: g.PathHash, Threshold: 1, Shares: 1, Holders: []policy.MapHolder{{Node: mustKey(t, node), GrantID: g.ID()}}}
	bc, err := bobHost.CollectBatch(ctx, BatchRequest{Owner: owner.key(), Me: bobID, Entry: e,
		Holders: map[policy.RecordID][]policy.PublicKey{g.ID(): {mustKey(t, node)}}, Capsules: capsules}, BatchOptions{})
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if bc.Requests < 2 {
		t.Fatalf("40 capsules with 10 tokens in %d request", bc.Requests)
	}
	for i, f := range files {
		key, err := bc.Items[i].Decrypt(bob.Receiving(), f.levels[1].Capsule, f.wrapped[1])
		if err != nil || !bytes.Equal(key, f.dataKey) {
			t.Fatalf("file %d: %v", i, err)
		}
	}
}

// oldNode makes a node answer BatchReencrypt as a node of before the
// message would (UNKNOWN_TYPE) and everything else as usual.
func oldNode(tn *testNode) {
	svc := tn.svc
	tn.host.Libp2p().SetStreamHandler(RPCProtocol, func(s network.Stream) {
		defer s.Close()
		req, err := proto.ReadRequest(bufio.NewReader(s))
		if err != nil {
			s.Reset()
			return
		}
		if req.GetBatchReencrypt() != nil {
			proto.WriteFrame(s, proto.Refuse(req, proto.ErrUnknownType))
			return
		}
		proto.WriteFrame(s, svc.dispatch(context.Background(), s, svc.group(s.Conn().RemotePeer()), req))
	})
}

// Holders that do not know batches are asked one capsule at a time.
func TestCollectBatchOldNodes(t *testing.T) {
	net := newTestNet(t, 6)
	ownerKeys, bob := newKeyring(t), newKeyring(t)
	bobID := policy.IdentityOf(bob)
	owner := net.owner(ownerKeys)
	grants := owner.newGrants(bobID, "/docs", 1, time.Hour)
	pl := owner.place(grants, PlaceOptions{})
	for _, h := range pl.Holders {
		oldNode(net.nodeOf(h))
	}
	files, capsules := batchFiles(t, ownerKeys, bobID, "/docs", 6)
	bobHost := net.client(bob)
	bc, err := bobHost.CollectBatch(context.Background(), batchRequest(t, bobHost, bob, owner.key(), grants[0].PathHash, capsules), BatchOptions{})
	if err != nil {
		t.Fatalf("collect from old nodes: %v (%v)", err, bc.Nodes)
	}
	checkBatch(t, bc, bob, files, nil)
}
