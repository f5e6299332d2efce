package dht

import (
	"bufio"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// BenchmarkBatchReencrypt is a node's work for one BatchReencrypt of
// proto.MaxBatchItems capsules without the transport: the request frame
// decoded and validated, the grant looked up in LMDB, every capsule
// parsed (with its self-check) and re-encrypted, the answer encoded.
// Each round also times as many bare rekey.Reencrypt calls on a parsed
// capsule, so the ratio of the two (ratio/op, target ≤ 1.3) comes from
// one run under the same load.
func BenchmarkBatchReencrypt(b *testing.B) {
	ctx := context.Background()
	id := rekey.GenerateSecretKey()
	h, err := New(ctx, Config{Identity: id, Server: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc, err := NewService(h, ServiceConfig{Store: st, Identity: id, PeerRate: 1e9, PeerBurst: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	owner, bob := newKeyring(b), newKeyring(b)
	bobID := policy.IdentityOf(bob)
	gs, err := policy.NewGrants(owner, policy.GrantParams{Recipient: bobID, Prefix: policy.MustNormalizePath("/docs"),
		Threshold: 1, Shares: 1, Sequence: 1, Expiry: uint64(time.Now().Add(time.Hour).Unix())})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.PutGrant(gs[0], time.Now()); err != nil {
		b.Fatal(err)
	}
	vkf, err := policy.VerifyGrantKFrag(gs[0])
	if err != nil {
		b.Fatal(err)
	}
	ownerKey := policy.IdentityOf(owner).IdentityKey
	req := &proto.BatchReencryptRequest{Owner: ownerKey[:], PathHash: gs[0].PathHash[:]}
	var parsed []*rekey.Capsule
	for range proto.MaxBatchItems {
		c, _, err := rekey.Encrypt(policy.DelegatingKey(owner, policy.MustNormalizePath("/docs"), 0).PublicKey(), []byte("key"))
		if err != nil {
			b.Fatal(err)
		}
		req.Capsules = append(req.Capsules, c.Bytes())
		parsed = append(parsed, c)
	}
	var frame bytes.Buffer
	if err := proto.WriteFrame(&frame, proto.Request(1, &proto.Envelope_BatchReencrypt{BatchReencrypt: req})); err != nil {
		b.Fatal(err)
	}
	p, err := PeerIDOf(bobID.IdentityKey)
	if err != nil {
		b.Fatal(err)
	}
	var batch, bare time.Duration
	var out bytes.Buffer
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		env, err := proto.ReadRequest(bufio.NewReader(bytes.NewReader(frame.Bytes())))
		if err != nil {
			b.Fatal(err)
		}
		svc.limiter.allow(p, time.Now())
		resp, err := svc.batchReencrypt(p, sender{key: bobID.IdentityKey}, env.GetBatchReencrypt())
		if err != nil {
			b.Fatal(err)
		}
		out.Reset()
		if err := proto.WriteFrame(&out, proto.Respond(env, &proto.Envelope_BatchReencryptResponse{BatchReencryptResponse: resp})); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		for _, c := range parsed {
			if _, err := rekey.Reencrypt(c, vkf); err != nil {
				b.Fatal(err)
			}
		}
		batch += t1.Sub(t0)
		bare += time.Since(t1)
	}
	n := float64(b.N * proto.MaxBatchItems)
	b.ReportMetric(float64(batch.Nanoseconds())/n, "ns/capsule")
	b.ReportMetric(float64(bare.Nanoseconds())/n, "ns/bare-reencrypt")
	b.ReportMetric(float64(batch)/float64(bare), "ratio")
}
